"""2-D convolution and transposed convolution on float32 NCHW arrays (PyTorch semantics).

``conv2d*`` is ``torch.nn.functional.conv2d`` (a cross-correlation) and
``conv_transpose2d*`` is ``torch.nn.functional.conv_transpose2d`` (the U-Net
"deconvolution"); the formulas are in :mod:`fastlayers.reference.conv`.

The C++ kernels (csrc/cpu/conv.cpp) are im2col + the fast GEMM, blocked so the column
buffer stays in cache; 1x1 stride-1 convolutions are plain GEMMs and depthwise ones
(groups == C) a direct kernel. conv_transpose2d runs on the same three kernels: its
forward is conv2d's input gradient and its input gradient is conv2d's forward.

Arrays must be float32 (TypeError otherwise, no silent conversion); non-contiguous
inputs are copied once to C-contiguous. The cache returned by ``*_forward`` is opaque;
``*_backward`` runs on the backend its forward ran on.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "conv2d",
    "conv2d_forward",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
]

from fastlayers.ops._checks import check_array, check_flag
from fastlayers.ops._device import device_of, placement
from fastlayers.reference import conv as _ref
from fastlayers.reference.conv import ConvCache, check_cache, conv2d_geometry, conv_transpose2d_geometry


def _inputs(x, w, b):
    x = check_array(x, "x", device=True)
    w = check_array(w, "w", device=True)
    if b is not None:
        b = check_array(b, "b", device=True)
    return x, w, b


def _contig(dev, *arrays):
    return tuple(None if a is None else dev.contiguous(a) for a in arrays)


def _kernel_args(g):
    """stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, groups for the _cpu kernels."""
    return (g.stride[0], g.stride[1], g.pad[0], g.pad[2], g.dilation[0], g.dilation[1], g.groups)


def _flags(need_dx, need_dw, need_db):
    return check_flag(need_dx, "need_dx"), check_flag(need_dw, "need_dw"), check_flag(need_db, "need_db")


# --------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None):
    """out = conv2d(x, w, b) and the cache for :func:`conv2d_backward`.

    x: (N, C, H, W) float32. w: (K, C/groups, R, S). b: (K,) or None.
    stride, dilation: int or (h, w) pair, >= 1. padding: int or pair (>= 0, applied on
    both sides), "valid" (= 0) or "same" (stride 1 only; total d*(k-1) per axis, the odd
    pixel at the bottom/right as PyTorch does). groups divides C and K (1, C for
    depthwise, or anything in between).
    Returns out (N, K, P, Q), P = floor((H + pad_top + pad_bottom - dh*(R-1) - 1)/sh) + 1
    (ValueError when it would be < 1), and the cache.
    backend: None or "cpu" for the C++ kernels, "reference" for the NumPy reference.
    """
    x, w, b = _inputs(x, w, b)
    dev, backend = placement(backend, x=x, w=w, b=b)
    g = conv2d_geometry(x.shape, w.shape, None if b is None else b.shape, stride, padding, dilation, groups)
    if backend == "reference":
        return _ref.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    x, w, b = _contig(dev, x, w, b)
    out = dev.empty((g.n, g.k, g.p, g.q))
    dev.run("conv2d_forward", out, x, w, b, *_kernel_args(g))
    return out, ConvCache("conv2d", "cpu", x, w, b is not None, g)


def conv2d_backward(dout, cache, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db): the gradients of the loss for dout = d loss / d out (N, K, P, Q).

    dx (N, C, H, W), dw (K, C/groups, R, S), db (K,). dx is None when need_dx is False
    and then costs nothing (the first layer of a network needs no input gradient; with
    1-3 input channels it would cost several times the forward). Likewise dw with
    need_dw=False; db is None when need_db is False or the forward had no bias.
    """
    c = check_cache(cache, "conv2d")
    need_dx, need_dw, need_db = _flags(need_dx, need_dw, need_db)
    if c.backend == "reference":
        dout = check_array(dout, "dout")
        return _ref.conv2d_backward(dout, c, need_dx, need_dw, need_db)
    g = c.geom
    dout = check_array(dout, "dout", ndim=4, device=True)
    if dout.shape != (g.n, g.k, g.p, g.q):
        raise ValueError(f"dout: expected shape {(g.n, g.k, g.p, g.q)} (the output's), got {dout.shape}")
    dev = device_of(dout=dout, x=c.x)
    (dout,) = _contig(dev, dout)
    args = _kernel_args(g)
    dx = dw = db = None
    if need_dx:
        dx = dev.empty(c.x.shape)
        dev.run("conv2d_backward_data", dx, dout, c.w, None, *args)
    if need_dw:
        dw = dev.empty(c.w.shape)
        dev.run("conv2d_backward_weight", dw, dout, c.x, *args)
    if need_db and c.has_bias:
        db = dev.empty(g.k)
        dev.run("conv2d_backward_bias", db, dout)
    return dx, dw, db


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *, backend=None):
    """Forward only (inference): see :func:`conv2d_forward`. Keeps no cache."""
    return conv2d_forward(x, w, b, stride, padding, dilation, groups, backend=backend)[0]


# --------------------------------------------------------------------------------------
# conv_transpose2d
# --------------------------------------------------------------------------------------


def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0, *, dilation=1, groups=1,
                             backend=None):
    """out = conv_transpose2d(x, w, b) (PyTorch's ConvTranspose2d) and the cache.

    x: (N, C_in, H, W) float32. w: (C_in, C_out/groups, R, S) (PyTorch's layout). b:
    (C_out,) or None. stride, dilation: int or pair >= 1; padding: int or pair >= 0;
    output_padding: int or pair, each smaller than the stride or the dilation (it picks
    among the output sizes that a stride > 1 makes ambiguous). Returns out (N, C_out,
    H_out, W_out) with H_out = (H - 1)*sh - 2*ph + dh*(R - 1) + output_padding + 1.
    dilation and groups are keyword-only (PyTorch's positional order has groups first).
    """
    x, w, b = _inputs(x, w, b)
    dev, backend = placement(backend, x=x, w=w, b=b)
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, stride, padding,
                                  output_padding, dilation, groups)
    if backend == "reference":
        return _ref.conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation=dilation,
                                             groups=groups)
    x, w, b = _contig(dev, x, w, b)
    out = dev.empty((g.n, g.c, g.h, g.w))
    # conv2d's input gradient, starting from the bias.
    dev.run("conv2d_backward_data", out, x, w, b, *_kernel_args(g))
    return out, ConvCache("conv_transpose2d", "cpu", x, w, b is not None, g)


def conv_transpose2d_backward(dout, cache, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db) for dout (N, C_out, H_out, W_out): dx (N, C_in, H, W) is conv2d(dout, w),
    dw (C_in, C_out/groups, R, S) and db (C_out,). None for what was not asked for (see
    :func:`conv2d_backward`); db also when the forward had no bias."""
    c = check_cache(cache, "conv_transpose2d")
    need_dx, need_dw, need_db = _flags(need_dx, need_dw, need_db)
    if c.backend == "reference":
        dout = check_array(dout, "dout")
        return _ref.conv_transpose2d_backward(dout, c, need_dx, need_dw, need_db)
    g = c.geom
    dout = check_array(dout, "dout", ndim=4, device=True)
    if dout.shape != (g.n, g.c, g.h, g.w):
        raise ValueError(f"dout: expected shape {(g.n, g.c, g.h, g.w)} (the output's), got {dout.shape}")
    dev = device_of(dout=dout, x=c.x)
    (dout,) = _contig(dev, dout)
    args = _kernel_args(g)
    dx = dw = db = None
    if need_dx:
        dx = dev.empty(c.x.shape)
        dev.run("conv2d_forward", dx, dout, c.w, None, *args)
    if need_dw:
        # conv2d's weight gradient with the roles of input and output gradient exchanged.
        dw = dev.empty(c.w.shape)
        dev.run("conv2d_backward_weight", dw, c.x, dout, *args)
    if need_db and c.has_bias:
        db = dev.empty(g.c)
        dev.run("conv2d_backward_bias", db, dout)
    return dx, dw, db


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, *, dilation=1, groups=1,
                     backend=None):
    """Forward only (inference): see :func:`conv_transpose2d_forward`."""
    return conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation=dilation,
                                    groups=groups, backend=backend)[0]
