"""Reference 2-D pooling: max pool, average pool and global average pool (NCHW).

The specification of ``fastlayers.ops`` pooling, in vectorised NumPy: the windows of
every plane are a strided view (``sliding_window_view``), never a Python loop over
pixels. Works in the input's floating dtype (float64 for gradient checks).

Geometry (PyTorch's, with ``ceil_mode=False`` and no dilation). For an input plane of
H x W, window kh x kw, stride sh x sw and padding ph x pw on each side, output window
(oh, ow) covers input rows ``oh*sh - ph .. oh*sh - ph + kh - 1`` and columns
``ow*sw - pw .. ow*sw - pw + kw - 1``, and

    OH = floor((H + 2*ph - kh) / sh) + 1,    OW = floor((W + 2*pw - kw) / sw) + 1.

kernel_size, stride and padding are an int or a pair (rows, columns); stride defaults to
kernel_size. As in PyTorch, padding must be at most half the window (``2*p <= k``), which
guarantees that every window holds at least one input element; an output size below 1
(window larger than the padded input) is a ValueError naming the sizes.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


# ---------------------------------------------------------------------------
# Argument checks shared with fastlayers.ops.pool
# ---------------------------------------------------------------------------


class PoolGeometry(NamedTuple):
    """Validated pooling parameters and the output size they give."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    oh: int
    ow: int


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (rows, columns); bools and floats are a TypeError."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r} ({len(items)} items)")
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
        try:
            out.append(operator.index(v))
        except TypeError:
            raise TypeError(
                f"{name}: expected an int or a pair of ints, got {value!r} ({type(v).__name__})"
            ) from None
    return out[0], out[1]


def pool_geometry(x_shape, kernel_size, stride=None, padding=0) -> PoolGeometry:
    """Check kernel_size/stride/padding against an (N, C, H, W) shape; return the geometry.

    Raises TypeError for non-integer parameters and ValueError (naming the argument and the
    sizes) for kernel or stride < 1, padding < 0 or above half the window, and a window
    larger than the padded input.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) array, got {len(x_shape)}-D with shape {tuple(x_shape)}")
    h, w = int(x_shape[2]), int(x_shape[3])
    if h < 1 or w < 1:
        raise ValueError(f"x: expected a spatial size of at least 1x1, got {h}x{w} (shape {tuple(x_shape)})")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel_size: expected positive sizes, got {(kh, kw)}")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride: expected positive steps, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding: expected non-negative sizes, got {(ph, pw)}")
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            f"padding: expected at most half the kernel size (2 * padding <= kernel_size, as in "
            f"PyTorch), got padding {(ph, pw)} for kernel_size {(kh, kw)}"
        )
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"kernel_size: {(kh, kw)} is larger than the padded input {(h + 2 * ph, w + 2 * pw)} "
            f"(input {h}x{w}, padding {(ph, pw)}, stride {(sh, sw)}): output size "
            f"floor((n + 2p - k) / s) + 1 would be {oh}x{ow}"
        )
    return PoolGeometry(kh, kw, sh, sw, ph, pw, oh, ow)


def _float_array(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {x.dtype}")
    return x


def _windows(xp: np.ndarray, g: PoolGeometry) -> np.ndarray:
    """(..., OH, OW, kh, kw) view of the windows of a padded array (..., Hp, Wp)."""
    win = sliding_window_view(xp, (g.kh, g.kw), axis=(-2, -1))
    return win[..., :: g.sh, :: g.sw, :, :][..., : g.oh, : g.ow, :, :]


def _check_dout(dout, shape, name="dout") -> np.ndarray:
    dout = _float_array(dout, name)
    if dout.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {dout.shape}")
    return dout


# ---------------------------------------------------------------------------
# Max pool
# ---------------------------------------------------------------------------


def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pool of x (N, C, H, W) -> (out (N, C, OH, OW), cache).

        out[n, c, oh, ow] = max over the window (oh, ow) of x[n, c, :, :]

    Padding is -inf padding: it never wins, and every window holds at least one input
    element. The cache holds the argmax, the flat index ``h * W + w`` of the chosen
    element in its input plane (int64), for the backward pass.

    Ties: the FIRST maximum in row-major window order (row by row, left to right) is
    chosen, so exactly one element per window receives the gradient.
    NaN: counts as larger than every number (like ``np.argmax``), so a window holding a
    NaN outputs NaN (as PyTorch does) and its gradient goes to the first NaN in window
    order (PyTorch's CPU kernel picks the last). A window whose input elements are all -inf outputs -inf, with the argmax on its
    first input element (never on padding).
    """
    x = _float_array(x, "x")
    g = pool_geometry(x.shape, kernel_size, stride, padding)
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)), constant_values=-np.inf)
    valid = np.pad(np.ones((h, w), dtype=bool), ((g.ph, g.ph), (g.pw, g.pw)), constant_values=False)
    win = _windows(xp, g).reshape(n, c, g.oh, g.ow, g.kh * g.kw)  # (N, C, OH, OW, kh*kw)
    real = _windows(valid, g).reshape(g.oh, g.ow, g.kh * g.kw)  # (OH, OW, kh*kw)

    # The maximum (NaN propagates), then the first real window element equal to it.
    top = win.max(axis=-1, keepdims=True)
    hit = ((win == top) | (np.isnan(win) & np.isnan(top))) & real
    k = np.argmax(hit, axis=-1)  # (N, C, OH, OW): first True in window order
    out = np.take_along_axis(win, k[..., None], axis=-1)[..., 0]

    # Window element k of window (oh, ow) sits at row oh*sh - ph + k // kw, column
    # ow*sw - pw + k % kw of the input plane.
    rows = (np.arange(g.oh) * g.sh - g.ph)[:, None] + k // g.kw
    cols = (np.arange(g.ow) * g.sw - g.pw)[None, :] + k % g.kw
    argmax = (rows * w + cols).astype(np.int64)
    return out, ("max_pool2d", x.shape, g, argmax)


def max_pool2d_backward(dout, cache):
    """Gradient of max_pool2d -> (dx,).

        dx[n, c, i] = sum of dout[n, c, o] over the outputs o whose argmax is i

    (zero elsewhere; overlapping windows that chose the same element add up).
    """
    _, x_shape, g, argmax = _unpack(cache, "max_pool2d")
    dout = _check_dout(dout, argmax.shape)
    n, c, h, w = x_shape
    # One bincount over the whole batch: plane p's elements are offset by p * H * W.
    offsets = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    dx = np.bincount((argmax + offsets).ravel(), weights=dout.ravel(), minlength=n * c * h * w)
    return (dx.astype(dout.dtype).reshape(x_shape),)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pool (forward only); see :func:`max_pool2d_forward`."""
    return max_pool2d_forward(x, kernel_size, stride, padding)[0]


# ---------------------------------------------------------------------------
# Average pool
# ---------------------------------------------------------------------------


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pool of x (N, C, H, W) -> (out (N, C, OH, OW), cache).

        out[n, c, oh, ow] = sum over the window (oh, ow) of x_padded / (kh * kw)

    with zero padding counted in the divisor (PyTorch's default ``count_include_pad=True``):
    the divisor is always kh * kw. NaN or inf in a window propagate to its output.
    """
    x = _float_array(x, "x")
    g = pool_geometry(x.shape, kernel_size, stride, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (g.ph, g.ph), (g.pw, g.pw)))
    out = _windows(xp, g).mean(axis=(-2, -1))
    return out, ("avg_pool2d", x.shape, g, None)


def avg_pool2d_backward(dout, cache):
    """Gradient of avg_pool2d -> (dx,).

        dx[n, c, h, w] = sum over the windows (oh, ow) that contain (h, w) of
                         dout[n, c, oh, ow] / (kh * kw)

    Computed on the padded plane, one strided add per window offset (a, b), then cropped.
    """
    _, x_shape, g, _ = _unpack(cache, "avg_pool2d")
    n, c, h, w = x_shape
    dout = _check_dout(dout, (n, c, g.oh, g.ow))
    share = dout / (g.kh * g.kw)
    dxp = np.zeros((n, c, h + 2 * g.ph, w + 2 * g.pw), dtype=dout.dtype)
    for a in range(g.kh):  # loops over the window offsets, not over pixels
        for b in range(g.kw):
            dxp[:, :, a : a + g.sh * g.oh : g.sh, b : b + g.sw * g.ow : g.sw] += share
    return (np.ascontiguousarray(dxp[:, :, g.ph : g.ph + h, g.pw : g.pw + w]),)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pool (forward only); see :func:`avg_pool2d_forward`."""
    return avg_pool2d_forward(x, kernel_size, stride, padding)[0]


# ---------------------------------------------------------------------------
# Global average pool
# ---------------------------------------------------------------------------


def global_avg_pool2d_forward(x):
    """Mean of x (N, C, H, W) over H and W -> (out (N, C), cache).

        out[n, c] = sum_{h, w} x[n, c, h, w] / (H * W)

    The output is (N, C), ready for a linear layer; PyTorch's ``AdaptiveAvgPool2d(1)``
    gives the same values shaped (N, C, 1, 1).
    """
    x = _float_array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x: expected a 4-D (N, C, H, W) array, got {x.ndim}-D with shape {x.shape}")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x: expected a spatial size of at least 1x1, got shape {x.shape}")
    return x.mean(axis=(2, 3)), ("global_avg_pool2d", x.shape, None, None)


def global_avg_pool2d_backward(dout, cache):
    """Gradient of global_avg_pool2d -> (dx,): dx[n, c, h, w] = dout[n, c] / (H * W)."""
    _, x_shape, _, _ = _unpack(cache, "global_avg_pool2d")
    n, c, h, w = x_shape
    dout = _check_dout(dout, (n, c))
    dx = np.broadcast_to((dout / (h * w))[:, :, None, None], x_shape)
    return (np.ascontiguousarray(dx),)


def global_avg_pool2d(x):
    """Global average pool (forward only) -> (N, C); see :func:`global_avg_pool2d_forward`."""
    return global_avg_pool2d_forward(x)[0]


def _unpack(cache, op: str):
    if not (isinstance(cache, tuple) and len(cache) == 4 and cache[0] == op):
        raise TypeError(f"cache: expected the cache returned by reference.{op}_forward")
    return cache
