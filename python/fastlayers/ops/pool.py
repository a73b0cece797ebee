"""2-D pooling on NCHW float32 arrays: max_pool2d, avg_pool2d, global_avg_pool2d.

Each op comes as ``<op>(...)`` (forward only), ``<op>_forward(...) -> (out, cache)`` and
``<op>_backward(dout, cache) -> (dx,)``. ``backend=None`` or ``"cpu"`` runs the C++
kernels (OpenMP over the N*C planes), ``"reference"`` the NumPy reference
(:mod:`fastlayers.reference.pool`, which also states the formulas); the backward pass runs
on the backend its forward ran on.

Geometry follows PyTorch (``ceil_mode=False``): kernel_size, stride and padding are an int
or a pair (rows, columns), stride defaults to kernel_size, padding must be at most half
the window, and the output is ``floor((n + 2p - k) / s) + 1`` per spatial axis; a window
larger than the padded input is a ValueError naming the sizes. Inputs must be float32
(other dtypes are a TypeError); a non-contiguous input is copied once.
"""

from __future__ import annotations

import numpy as np

from fastlayers.ops._checks import check_array
from fastlayers.ops._device import device_of, placement
from fastlayers.reference import pool as _ref
from fastlayers.reference.pool import PoolGeometry, pool_geometry

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


class PoolCache:
    """What a pooling backward needs from its forward (opaque to callers).

    op: the op's name; backend: where the forward ran; x_shape: the input shape;
    geometry: the PoolGeometry (None for global pooling); argmax: max pool's int32
    (N, C, OH, OW) flat plane indices on the CPU backend; ref: the reference's own cache.
    The input itself is not kept.
    """

    __slots__ = ("op", "backend", "x_shape", "geometry", "argmax", "ref")

    def __init__(self, op, backend, x_shape, geometry=None, argmax=None, ref=None):
        self.op = op
        self.backend = backend
        self.x_shape = x_shape
        self.geometry = geometry
        self.argmax = argmax
        self.ref = ref


def _input(x, kernel_size, stride, padding) -> tuple[np.ndarray, PoolGeometry]:
    x = check_array(x, "x", ndim=4, device=True)
    g = pool_geometry(x.shape, kernel_size, stride, padding)
    if x.shape[2] * x.shape[3] > np.iinfo(np.int32).max:
        raise ValueError(f"x: a plane of {x.shape[2]}x{x.shape[3]} is too large for int32 argmax indices")
    return device_of(x=x).contiguous(x), g


def _cache_for(cache, op: str) -> PoolCache:
    if not isinstance(cache, PoolCache) or cache.op != op:
        raise TypeError(f"cache: expected the cache returned by {op}_forward, got {type(cache).__name__}")
    return cache


def _dout(dout, shape) -> np.ndarray:
    dout = check_array(dout, "dout", ndim=len(shape), device=True)
    if dout.shape != tuple(shape):
        raise ValueError(f"dout: expected shape {tuple(shape)} (the forward output's), got {dout.shape}")
    return device_of(dout=dout).contiguous(dout)


def _geometry_args(g: PoolGeometry) -> tuple[int, ...]:
    return g.kh, g.kw, g.sh, g.sw, g.ph, g.pw


# ---------------------------------------------------------------------------
# Max pool
# ---------------------------------------------------------------------------


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, *, backend=None):
    """Max pool of x (N, C, H, W) float32 -> (out (N, C, OH, OW), cache).

    out[n, c, oh, ow] is the maximum of window (oh, ow); padding is -inf padding and is
    never chosen. The cache keeps the argmax (the flat index h * W + w of the chosen
    element in its input plane; int32 on the CPU), not the input.

    Ties: the FIRST maximum in row-major window order wins, so exactly one element per
    window receives the gradient (PyTorch's CPU kernel makes the same choice).
    NaN: counts as larger than every number, so a window holding a NaN outputs NaN (as in
    PyTorch) and its gradient goes to the window's first NaN (PyTorch's CPU kernel picks
    the last one). A window whose input elements are all -inf outputs -inf and routes its
    gradient to its first input element.
    """
    x, g = _input(x, kernel_size, stride, padding)
    dev, backend = placement(backend, x=x)
    if backend == "reference":
        out, ref = _ref.max_pool2d_forward(x, (g.kh, g.kw), (g.sh, g.sw), (g.ph, g.pw))
        return out, PoolCache("max_pool2d", backend, x.shape, g, ref=ref)
    n, c = x.shape[:2]
    out = dev.empty((n, c, g.oh, g.ow))
    argmax = dev.empty((n, c, g.oh, g.ow), np.int32)
    dev.run("max_pool2d_forward", out, argmax, x, *_geometry_args(g))
    return out, PoolCache("max_pool2d", backend, x.shape, g, argmax=argmax)


def max_pool2d_backward(dout, cache):
    """Gradient of max_pool2d -> (dx,): each dout[n, c, oh, ow] is added to the input
    element its window chose (overlapping windows accumulate); dx is zero elsewhere."""
    cache = _cache_for(cache, "max_pool2d")
    g = cache.geometry
    n, c = cache.x_shape[:2]
    dout = _dout(dout, (n, c, g.oh, g.ow))
    if cache.backend == "reference":
        return _ref.max_pool2d_backward(dout, cache.ref)
    dev = device_of(dout=dout)
    dx = dev.empty(cache.x_shape)
    dev.run("max_pool2d_backward", dx, dout, cache.argmax, *_geometry_args(g))
    return (dx,)


def max_pool2d(x, kernel_size, stride=None, padding=0, *, backend=None):
    """Max pool for inference: the output of :func:`max_pool2d_forward` without saving
    the argmax (less memory traffic)."""
    x, g = _input(x, kernel_size, stride, padding)
    dev, backend = placement(backend, x=x)
    if backend == "reference":
        return _ref.max_pool2d(x, (g.kh, g.kw), (g.sh, g.sw), (g.ph, g.pw))
    out = dev.empty((x.shape[0], x.shape[1], g.oh, g.ow))
    dev.run("max_pool2d_forward", out, None, x, *_geometry_args(g))
    return out


# ---------------------------------------------------------------------------
# Average pool
# ---------------------------------------------------------------------------


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, *, backend=None):
    """Average pool of x (N, C, H, W) float32 -> (out (N, C, OH, OW), cache).

    out = sum(window) / (kh * kw), padded zeros counted in the divisor (PyTorch's default
    ``count_include_pad=True``). NaN and inf propagate to the outputs whose windows hold them.
    """
    x, g = _input(x, kernel_size, stride, padding)
    dev, backend = placement(backend, x=x)
    if backend == "reference":
        out, ref = _ref.avg_pool2d_forward(x, (g.kh, g.kw), (g.sh, g.sw), (g.ph, g.pw))
        return out, PoolCache("avg_pool2d", backend, x.shape, g, ref=ref)
    out = dev.empty((x.shape[0], x.shape[1], g.oh, g.ow))
    dev.run("avg_pool2d_forward", out, x, *_geometry_args(g))
    return out, PoolCache("avg_pool2d", backend, x.shape, g)


def avg_pool2d_backward(dout, cache):
    """Gradient of avg_pool2d -> (dx,): every input element gets dout / (kh * kw) from
    each window that contains it."""
    cache = _cache_for(cache, "avg_pool2d")
    g = cache.geometry
    n, c = cache.x_shape[:2]
    dout = _dout(dout, (n, c, g.oh, g.ow))
    if cache.backend == "reference":
        return _ref.avg_pool2d_backward(dout, cache.ref)
    dev = device_of(dout=dout)
    dx = dev.empty(cache.x_shape)
    dev.run("avg_pool2d_backward", dx, dout, *_geometry_args(g))
    return (dx,)


def avg_pool2d(x, kernel_size, stride=None, padding=0, *, backend=None):
    """Average pool (forward only); see :func:`avg_pool2d_forward`."""
    return avg_pool2d_forward(x, kernel_size, stride, padding, backend=backend)[0]


# ---------------------------------------------------------------------------
# Global average pool
# ---------------------------------------------------------------------------


def global_avg_pool2d_forward(x, *, backend=None):
    """Mean of x (N, C, H, W) float32 over H and W -> (out (N, C), cache).

    The output is (N, C), ready for a linear layer (PyTorch's ``AdaptiveAvgPool2d(1)``
    gives the same values shaped (N, C, 1, 1); ``out[:, :, None, None]`` converts).
    """
    x = check_array(x, "x", ndim=4, device=True)
    dev, backend = placement(backend, x=x)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x: expected a spatial size of at least 1x1, got shape {x.shape}")
    x = dev.contiguous(x)
    if backend == "reference":
        out, ref = _ref.global_avg_pool2d_forward(x)
        return out, PoolCache("global_avg_pool2d", backend, x.shape, ref=ref)
    out = dev.empty(x.shape[:2])
    dev.run("global_avg_pool2d_forward", out, x)
    return out, PoolCache("global_avg_pool2d", backend, x.shape)


def global_avg_pool2d_backward(dout, cache):
    """Gradient of global_avg_pool2d -> (dx,): dx[n, c, :, :] = dout[n, c] / (H * W)."""
    cache = _cache_for(cache, "global_avg_pool2d")
    dout = _dout(dout, cache.x_shape[:2])
    if cache.backend == "reference":
        return _ref.global_avg_pool2d_backward(dout, cache.ref)
    dev = device_of(dout=dout)
    dx = dev.empty(cache.x_shape)
    dev.run("global_avg_pool2d_backward", dx, dout)
    return (dx,)


def global_avg_pool2d(x, *, backend=None):
    """Global average pool (forward only) -> (N, C); see :func:`global_avg_pool2d_forward`."""
    return global_avg_pool2d_forward(x, backend=backend)[0]
