"""Reference batch norm and layer norm (PyTorch semantics), forward and backward.

Batch norm normalises each channel over the batch (and the spatial positions): for 2-D
input (N, F) the statistics are per feature over N, for 4-D input (N, C, H, W) per channel
over M = N*H*W values. With xhat = (x - mean) / sqrt(var + eps):

    out = gamma * xhat + beta

Training mode uses the batch mean and the biased variance (divide by M) and updates the
running statistics in place, as PyTorch does (the running variance gets the UNBIASED
batch variance, var * M / (M - 1)):

    running_mean = (1 - momentum) * running_mean + momentum * mean
    running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)

Eval mode uses running_mean / running_var instead of the batch statistics. Backward:

    dbeta  = sum(dout)                        (over the batch axes)
    dgamma = sum(dout * xhat)
    training: dx = gamma * invstd / M * (M * dout - sum(dout) - xhat * sum(dout * xhat))
    eval:     dx = gamma * invstd * dout      (the statistics are constants)

Layer norm normalises over the trailing ``normalized_shape`` dimensions of each sample,
with an elementwise weight and bias of that shape; its backward is the training-mode
formula with D = prod(normalized_shape) in place of M and dweight/dbias summed over the
leading dimensions. gamma/beta and weight/bias may be None (affine=False); their
gradients are then None.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_forward",
    "layer_norm",
    "layer_norm_backward",
    "layer_norm_forward",
]


def _bn_axes(x):
    if x.ndim == 2:
        return (0,), (1, x.shape[1])
    if x.ndim == 4:
        return (0, 2, 3), (1, x.shape[1], 1, 1)
    raise ValueError(f"x: expected a 2-D (N, F) or 4-D (N, C, H, W) array, got shape {x.shape}")


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Batch norm forward -> (out, cache); see the module docstring for the formulas.

    running_mean / running_var (C,) are updated in place in training mode (either may be
    None: not tracked) and read in eval mode (required there).
    """
    x = np.asarray(x)
    axes, bshape = _bn_axes(x)
    if not eps > 0:
        raise ValueError(f"eps: expected > 0, got {eps}")
    c = x.shape[1]
    m = x.size // c if c else 0
    if training:
        if m <= 1:
            raise ValueError(
                f"x: expected more than 1 value per channel when training, got input shape {x.shape}"
            )
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * (m / (m - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean/running_var: required in eval mode (training=False)")
        mean = np.asarray(running_mean, dtype=x.dtype)
        var = np.asarray(running_var, dtype=x.dtype)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(bshape)) * invstd.reshape(bshape)
    out = xhat
    if gamma is not None:
        out = out * np.asarray(gamma).reshape(bshape)
    if beta is not None:
        out = out + np.asarray(beta).reshape(bshape)
    out = out.astype(x.dtype, copy=False)
    cache = (xhat, invstd, gamma, beta is not None, training, axes, bshape)
    return out, cache


def batch_norm_backward(dout, cache):
    """(dx, dgamma, dbeta); dgamma/dbeta are None when gamma/beta were None."""
    xhat, invstd, gamma, has_beta, training, axes, bshape = cache
    dout = np.asarray(dout)
    dgamma = (dout * xhat).sum(axis=axes) if gamma is not None else None
    dbeta = dout.sum(axis=axes) if has_beta else None
    g = np.asarray(gamma).reshape(bshape) if gamma is not None else 1.0
    dxhat = dout * g
    inv = invstd.reshape(bshape)
    if training:
        m = xhat.size // xhat.shape[1]
        dx = inv / m * (
            m * dxhat - dxhat.sum(axis=axes, keepdims=True) - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)
        )
    else:
        dx = dxhat * inv
    return dx.astype(xhat.dtype, copy=False), dgamma, dbeta


def batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Forward only (see batch_norm_forward)."""
    return batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)[0]


def _normalized_shape(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, bool):
        return (int(normalized_shape),)
    return tuple(int(d) for d in normalized_shape)


def layer_norm_forward(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm over the trailing dims ``normalized_shape`` -> (out, cache).

    mean / biased var over those dims per sample; out = xhat * weight + bias with weight
    and bias of shape normalized_shape (either may be None).
    """
    x = np.asarray(x)
    ns = _normalized_shape(normalized_shape)
    k = len(ns)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k :] != ns:
        raise ValueError(
            f"normalized_shape: expected the trailing dimensions of x, got {ns} for x of shape {x.shape}"
        )
    if not eps > 0:
        raise ValueError(f"eps: expected > 0, got {eps}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    out = xhat
    if weight is not None:
        out = out * np.asarray(weight)
    if bias is not None:
        out = out + np.asarray(bias)
    cache = (xhat, invstd, weight, bias is not None, axes)
    return out.astype(x.dtype, copy=False), cache


def layer_norm_backward(dout, cache):
    """(dx, dweight, dbias); dweight/dbias are None when weight/bias were None."""
    xhat, invstd, weight, has_bias, axes = cache
    dout = np.asarray(dout)
    lead = tuple(range(xhat.ndim - len(axes)))
    dweight = (dout * xhat).sum(axis=lead) if weight is not None else None
    dbias = dout.sum(axis=lead) if has_bias else None
    dxhat = dout * np.asarray(weight) if weight is not None else dout
    d = int(np.prod([xhat.shape[a] for a in axes]))
    dx = invstd / d * (
        d * dxhat - dxhat.sum(axis=axes, keepdims=True) - xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)
    )
    return dx.astype(xhat.dtype, copy=False), dweight, dbias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Forward only (see layer_norm_forward)."""
    return layer_norm_forward(x, normalized_shape, weight, bias, eps)[0]
