"""Fully connected layer: y = x @ w.T + b (torch.nn.Linear's layout), forward and backward.

``linear_forward(x, w, b=None, activation=None) -> (out, cache)``,
``linear_backward(dout, cache, *, need_dx=True) -> (dx, dw, db)``, ``linear(...)``.

- x (..., in) float32: leading dimensions are flattened into N = prod(x.shape[:-1])
  rows, as torch does (a 1-D x is a single row and gives a 1-D output); w (out, in);
  b (out,) or None. x and w may be any strided views: a 2-D x and w are read in place
  by the GEMM (w.T is a stride swap, never a copy); an N-D x that cannot be reshaped
  without copying is copied once.
- activation="relu" applies max(., 0) in the same pass that adds the bias, and
  backward masks dout with out > 0 first. The cache then references ``out``: do not
  modify it in place before backward. The cache also references x and w.
- Backward: dx = dz @ w (None when need_dx=False: the first layer of a network needs no
  input gradient), dw = dz^T @ x, db = dz summed over the rows (None when b is None).
- backend=None or "cpu": the C++ GEMM; "reference": NumPy.
"""

from __future__ import annotations

import math

import numpy as np

from fastlayers import reference as _ref
from fastlayers.ops._checks import check_array, check_flag, readable_strides
from fastlayers.ops._device import device_of, placement

__all__ = ["linear", "linear_forward", "linear_backward"]


class _LinearCache:
    __slots__ = ("backend", "x_shape", "out_shape", "x2", "w", "has_bias", "relu", "y2", "ref")

    def __init__(self, backend, x_shape, out_shape, x2=None, w=None, has_bias=False, relu=False, y2=None, ref=None):
        self.backend = backend
        self.x_shape = x_shape
        self.out_shape = out_shape
        self.x2 = x2
        self.w = w
        self.has_bias = has_bias
        self.relu = relu
        self.y2 = y2
        self.ref = ref

    def __repr__(self):
        return f"<linear_forward cache, backend={self.backend!r}, x={self.x_shape}, out={self.out_shape}>"


def _check_inputs(x, w, b, activation):
    x = check_array(x, "x", min_ndim=1, device=True)
    w = check_array(w, "w", ndim=2, device=True)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"x: in-features mismatch: x has shape {x.shape} and w has shape {w.shape}; "
            f"expected x.shape[-1] == w.shape[1] == {w.shape[1]}"
        )
    if b is not None:
        b = check_array(b, "b", ndim=1, device=True)
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"b: expected shape ({w.shape[0]},) to match w of shape {w.shape}, got {b.shape}")
    if activation not in (None, "relu"):
        raise ValueError(f"activation: expected None or 'relu', got {activation!r}")
    return x, w, b


def linear_forward(x, w, b=None, activation=None, *, backend=None):
    """y = act(x @ w.T + b) with x (..., in), w (out, in), b (out,) or None,
    act None or "relu". Returns (out (..., out), cache)."""
    x, w, b = _check_inputs(x, w, b, activation)
    dev, backend = placement(backend, x=x, w=w, b=b)
    out_shape = x.shape[:-1] + (w.shape[0],)
    if backend == "reference":
        out, ref_cache = _ref.linear_forward(x, w, b, activation)
        return out, _LinearCache(backend, x.shape, out_shape, ref=ref_cache)
    n = math.prod(x.shape[:-1])
    x2 = x if x.ndim == 2 else x.reshape(n, x.shape[-1])  # reshape copies only if it must
    if dev.is_cpu:  # the CPU kernels read strided views in place
        x2, w = readable_strides(x2), readable_strides(w)
    else:
        x2, w = dev.contiguous(x2), dev.contiguous(w)
    if b is not None and not b.flags.c_contiguous:
        b = dev.contiguous(b)
    y2 = dev.empty((n, w.shape[0]))
    relu = activation == "relu"
    dev.run("linear_forward", y2, x2, w, b, relu)
    cache = _LinearCache(backend, x.shape, out_shape, x2, w, b is not None, relu, y2 if relu else None)
    return y2.reshape(out_shape), cache


def linear_backward(dout, cache, *, need_dx=True):
    """(dx, dw, db) = (dz @ w, dz^T @ x, sum of dz over rows), dz = dout, masked by
    out > 0 for activation="relu". dx is None when need_dx is False, db None without bias."""
    if not isinstance(cache, _LinearCache):
        raise TypeError(f"cache: expected the cache returned by linear_forward, got {type(cache).__name__}")
    need_dx = check_flag(need_dx, "need_dx")
    dout = check_array(dout, "dout", device=True)
    if dout.shape != cache.out_shape:
        raise ValueError(f"dout: expected shape {cache.out_shape} (the forward output's), got {dout.shape}")
    if cache.backend == "reference":
        return _ref.linear_backward(dout, cache.ref, need_dx=need_dx)
    x2, w = cache.x2, cache.w
    n, out_features, in_features = x2.shape[0], w.shape[0], w.shape[1]
    dev = device_of(dout=dout, x=x2)
    dout2 = dev.contiguous(dout).reshape(n, out_features)
    dx = dev.empty((n, in_features)) if need_dx else None
    dw = dev.empty((out_features, in_features))
    db = dev.empty((out_features,)) if cache.has_bias else None
    dev.run("linear_backward", dx, dw, db, cache.y2, dout2, x2, w, cache.relu)
    return (dx.reshape(cache.x_shape) if need_dx else None), dw, db


def linear(x, w, b=None, activation=None, *, backend=None):
    """act(x @ w.T + b), forward only (see linear_forward)."""
    return linear_forward(x, w, b, activation, backend=backend)[0]
