"""Reference fully connected layer (torch.nn.functional.linear, optionally fused ReLU).

    forward:   z = x @ w.T + b          x (..., in), w (out, in), b (out,) or None
               y = z, or max(z, 0) when activation == "relu"
    backward:  dz = dout * [y > 0] (relu) or dout
               dx = dz @ w              (..., in)   (None when need_dx is False)
               dw = dz^T @ x            (out, in)   summed over every leading index
               db = sum of dz over every leading index   (out,)   (None without bias)

Leading dimensions of x are flattened (N = prod(x.shape[:-1])) as torch does; a 1-D x
is one row and gives a 1-D y.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["linear", "linear_forward", "linear_backward"]


def _check_activation(activation):
    if activation not in (None, "relu"):
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")


def linear_forward(x, w, b=None, activation=None):
    """y = x @ w.T + b, then ReLU if activation == "relu". Returns (out, cache)."""
    _check_activation(activation)
    x = np.asarray(x)
    w = np.asarray(w)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"x: in-features mismatch: x has shape {x.shape} and w has shape {w.shape}")
    y = x @ w.T
    if b is not None:
        y = y + np.asarray(b)
    if activation == "relu":
        y = np.maximum(y, 0)
    return y, (x, w, b is not None, activation, y)


def linear_backward(dout, cache, need_dx=True):
    """(dx, dw, db): dx = dz @ w, dw = dz^T @ x, db = sum(dz), dz = dout (* [y > 0])."""
    x, w, has_bias, activation, y = cache
    dz = np.asarray(dout)
    if activation == "relu":
        dz = np.where(y > 0, dz, 0)
    n = math.prod(x.shape[:-1])
    dz2 = dz.reshape(n, w.shape[0])
    x2 = x.reshape(n, w.shape[1])
    dx = (dz2 @ w).reshape(x.shape) if need_dx else None
    dw = dz2.T @ x2
    db = dz2.sum(axis=0) if has_bias else None
    return dx, dw, db


def linear(x, w, b=None, activation=None):
    return linear_forward(x, w, b, activation)[0]
