"""Batch norm and layer norm on float32 arrays (PyTorch semantics), forward and backward.

The formulas are in :mod:`fastlayers.reference.norm`. The C++ kernels accumulate the
statistics in double (shifted sums) and keep the mean in double, so inputs with a large
offset (mean 1e4, std 1e-2) normalise to float32 accuracy.

Backward runs on the backend its forward ran on; the cache is opaque.
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

from fastlayers.ops._checks import check_array, check_flag, check_scalar
from fastlayers.ops._device import device_of, placement
from fastlayers.reference import norm as _ref


class _Cache:
    """What backward needs; ``backend`` says which implementation made it."""

    __slots__ = ("backend", "data")

    def __init__(self, backend, data):
        self.backend = backend
        self.data = data


def _contiguous(x):
    return device_of(x=x).contiguous(x)


def _check_eps(eps):
    eps = check_scalar(eps, "eps")
    if not eps > 0:  # also refuses NaN
        raise ValueError(f"eps: expected a number > 0, got {eps}")
    return eps


def _check_param(p, name, shape, what):
    """An optional float32 parameter (gamma, beta, weight, bias) of exactly ``shape``."""
    if p is None:
        return None
    p = check_array(p, name, device=True)
    if p.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} ({what}), got {p.shape}")
    return _contiguous(p)


def _check_running(r, name, c, x_shape, writeable):
    """running_mean / running_var: float32, shape (C,), C-contiguous (writeable when trained)."""
    if r is None:
        return None
    r = check_array(r, name, device=True)
    if r.shape != (c,):
        raise ValueError(f"{name}: expected shape ({c},) to match the channels of x {x_shape}, got {r.shape}")
    if not r.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (it is updated in place), got strides {r.strides}")
    if writeable and not getattr(r.flags, "writeable", True):
        raise ValueError(f"{name}: array is read-only (training mode updates it in place)")
    return r


def batch_norm_forward(
    x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5, *, backend=None
):
    """Batch norm -> (out, cache), for x of shape (N, F) (per feature) or (N, C, H, W) (per channel).

    gamma, beta: float32 (C,) or None (affine=False). running_mean, running_var: float32
    C-contiguous (C,) arrays. Training mode (``training=True``) normalises with the batch
    mean and biased variance and updates the running statistics IN PLACE with ``momentum``
    (running_var receives the unbiased variance, like PyTorch); they may be None there,
    meaning "don't track". Eval mode normalises with the running statistics (required).
    Training with one value per channel (N*H*W == 1) is a ValueError, as in PyTorch.
    Non-contiguous x is copied once; other dtypes than float32 are a TypeError.
    """
    x = check_array(x, "x", device=True)
    if x.ndim not in (2, 4):
        raise ValueError(f"x: expected a 2-D (N, F) or 4-D (N, C, H, W) array, got {x.ndim}-D with shape {x.shape}")
    training = check_flag(training, "training")
    momentum = check_scalar(momentum, "momentum")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum: expected a number in [0, 1], got {momentum}")
    eps = _check_eps(eps)
    n, c = x.shape[0], x.shape[1]
    if n == 0 or x.size == 0:
        raise ValueError(f"x: expected a non-empty array, got shape {x.shape}")
    m = x.size // c
    if training and m <= 1:
        raise ValueError(
            f"x: expected more than 1 value per channel when training, got input shape {x.shape} "
            f"(N*H*W = {m})"
        )
    what = f"one value per channel of x, whose shape is {x.shape}"
    gamma = _check_param(gamma, "gamma", (c,), what)
    beta = _check_param(beta, "beta", (c,), what)
    running_mean = _check_running(running_mean, "running_mean", c, x.shape, training)
    running_var = _check_running(running_var, "running_var", c, x.shape, training)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean/running_var: required in eval mode (training=False)")
    dev, backend = placement(backend, x=x, gamma=gamma, beta=beta, running_mean=running_mean,
                             running_var=running_var)
    if training and running_mean is not None and running_var is not None:
        if dev.may_share_memory(running_mean, running_var):
            raise ValueError("running_var: must not share memory with running_mean")

    if backend == "reference":
        out, cache = _ref.batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        return out, _Cache("reference", cache)

    x = dev.contiguous(x)
    out = dev.empty(x.shape)
    save_mean = dev.empty(c, np.float64)
    save_invstd = dev.empty(c, np.float64)
    dev.run(
        "batch_norm_forward",
        out, save_mean, save_invstd, running_mean, running_var, x, gamma, beta, training, momentum, eps
    )
    return out, _Cache("cpu", (x, save_mean, save_invstd, gamma, beta is not None, training))


def batch_norm_backward(dout, cache):
    """(dx, dgamma, dbeta) for the forward that made ``cache``; dgamma/dbeta are None
    when gamma/beta were None. Training mode differentiates through the batch statistics;
    eval mode treats the running statistics as constants (dx = dout * gamma * invstd)."""
    if not isinstance(cache, _Cache):
        raise TypeError(f"cache: expected the cache returned by batch_norm_forward, got {type(cache).__name__}")
    dout = check_array(dout, "dout", device=True)
    if cache.backend == "reference":
        xhat = cache.data[0]
        if dout.shape != xhat.shape:
            raise ValueError(f"dout: expected shape {xhat.shape} (the forward output's), got {dout.shape}")
        return _ref.batch_norm_backward(dout, cache.data)
    x, save_mean, save_invstd, gamma, has_beta, training = cache.data
    if dout.shape != x.shape:
        raise ValueError(f"dout: expected shape {x.shape} (the forward output's), got {dout.shape}")
    dev = device_of(dout=dout, x=x)
    dout = dev.contiguous(dout)
    c = x.shape[1]
    dx = dev.empty(x.shape)
    dgamma = dev.empty(c) if gamma is not None else None
    dbeta = dev.empty(c) if has_beta else None
    dev.run("batch_norm_backward", dx, dgamma, dbeta, dout, x, save_mean, save_invstd, gamma, training)
    return dx, dgamma, dbeta


def batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5, *, backend=None):
    """Forward only (see batch_norm_forward); training mode still updates the running statistics."""
    return batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps, backend=backend)[0]


def _check_normalized_shape(normalized_shape, x):
    if isinstance(normalized_shape, numbers.Integral) and not isinstance(normalized_shape, (bool, np.bool_)):
        ns = (int(normalized_shape),)
    elif isinstance(normalized_shape, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) for d in normalized_shape
    ):
        ns = tuple(int(d) for d in normalized_shape)
    else:
        raise TypeError(f"normalized_shape: expected an int or a tuple of ints, got {normalized_shape!r}")
    if len(ns) == 0 or any(d < 1 for d in ns):
        raise ValueError(f"normalized_shape: expected one or more positive sizes, got {ns}")
    k = len(ns)
    if x.ndim < k or x.shape[x.ndim - k :] != ns:
        raise ValueError(
            f"normalized_shape: expected the trailing dimensions of x, got {ns} for x of shape {x.shape}"
        )
    return ns


def layer_norm_forward(x, normalized_shape, weight=None, bias=None, eps=1e-5, *, backend=None):
    """Layer norm over the trailing dims ``normalized_shape`` (int or tuple) -> (out, cache).

    Each sample x[i, ...] is normalised by the mean and biased variance of its last
    prod(normalized_shape) values; weight and bias (float32, shape normalized_shape, or
    None) scale and shift elementwise. torch.nn.functional.layer_norm semantics.
    """
    x = check_array(x, "x", device=True)
    ns = _check_normalized_shape(normalized_shape, x)
    eps = _check_eps(eps)
    what = f"normalized_shape, the trailing dimensions of x, whose shape is {x.shape}"
    weight = _check_param(weight, "weight", ns, what)
    bias = _check_param(bias, "bias", ns, what)
    dev, backend = placement(backend, x=x, weight=weight, bias=bias)

    if backend == "reference":
        out, cache = _ref.layer_norm_forward(x, ns, weight, bias, eps)
        return out, _Cache("reference", cache)

    x = dev.contiguous(x)
    d = int(np.prod(ns))
    rows = x.size // d
    out = dev.empty(x.shape)
    save_mean = dev.empty(rows, np.float64)
    save_invstd = dev.empty(rows, np.float64)
    wf = weight.reshape(-1) if weight is not None else None
    bf = bias.reshape(-1) if bias is not None else None
    dev.run("layer_norm_forward", out, save_mean, save_invstd, x, wf, bf, d, eps)
    return out, _Cache("cpu", (x, save_mean, save_invstd, wf, bias is not None, ns))


def layer_norm_backward(dout, cache):
    """(dx, dweight, dbias) for the forward that made ``cache``; dweight/dbias are None
    when weight/bias were None."""
    if not isinstance(cache, _Cache):
        raise TypeError(f"cache: expected the cache returned by layer_norm_forward, got {type(cache).__name__}")
    dout = check_array(dout, "dout", device=True)
    if cache.backend == "reference":
        xhat = cache.data[0]
        if dout.shape != xhat.shape:
            raise ValueError(f"dout: expected shape {xhat.shape} (the forward output's), got {dout.shape}")
        return _ref.layer_norm_backward(dout, cache.data)
    x, save_mean, save_invstd, wf, has_bias, ns = cache.data
    if dout.shape != x.shape:
        raise ValueError(f"dout: expected shape {x.shape} (the forward output's), got {dout.shape}")
    dev = device_of(dout=dout, x=x)
    dout = dev.contiguous(dout)
    d = int(np.prod(ns))
    dx = dev.empty(x.shape)
    dweight = dev.empty(ns) if wf is not None else None
    dbias = dev.empty(ns) if has_bias else None
    dev.run(
        "layer_norm_backward",
        dx,
        dweight.reshape(-1) if dweight is not None else None,
        dbias.reshape(-1) if dbias is not None else None,
        dout,
        x,
        save_mean,
        save_invstd,
        wf,
        d,
    )
    return dx, dweight, dbias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, *, backend=None):
    """Forward only (see layer_norm_forward)."""
    return layer_norm_forward(x, normalized_shape, weight, bias, eps, backend=backend)[0]
