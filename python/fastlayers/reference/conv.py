"""Reference 2-D convolution and transposed convolution (NumPy, im2col).

The specification of ``fastlayers.ops.conv2d*`` and ``conv_transpose2d*``, with
PyTorch's semantics (``torch.nn.functional.conv2d`` / ``conv_transpose2d``), in NCHW
layout. Works in the dtype it is given (float64 for gradient checks).

Notation: x (N, C, H, W), w (K, C/G, R, S) for G groups, output (N, K, P, Q); stride
(sh, sw), dilation (dh, dw), zero padding (top, bottom, left, right). Group g maps input
channels [g*C/G, (g+1)*C/G) to output channels [g*K/G, (g+1)*K/G).

Forward (a cross-correlation, as in every deep-learning library)::

    out[n, k, p, q] = b[k] + sum_{c, r, s} w[k, c, r, s] * xpad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw]
    P = floor((H + top + bottom - dh*(R-1) - 1) / sh) + 1      (Q likewise)

where xpad is x with the zero padding added and g = k // (K/G). Written as im2col: the
column matrix col[n, g] (C/G*R*S, P*Q) holds every output pixel's receptive field, and
out[n, g] = w_g (K/G, C/G*R*S) @ col[n, g].

Backward, for the upstream gradient dout (N, K, P, Q)::

    db[k]          = sum_{n, p, q} dout[n, k, p, q]
    dw_g           = sum_n dout[n, g] @ col[n, g]^T
    dx             = col2im(w_g^T @ dout[n, g])     (col2im: scatter-add each column entry
                                                     back to the pixel it was read from)

conv_transpose2d is the adjoint of conv2d with respect to its input: with w (C_in,
C_out/G, R, S) read as the weights of a conv2d from C_out to C_in channels, its forward is
that conv2d's input gradient (plus a bias over C_out), and its input gradient is that
conv2d's forward. Output size (H - 1)*sh - 2*ph + dh*(R-1) + output_padding + 1.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "conv2d",
    "conv2d_forward",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_forward",
    "conv_transpose2d_backward",
]


# --------------------------------------------------------------------------------------
# Argument normalisation, shared with fastlayers.ops.conv (the kernels' boundary).
# --------------------------------------------------------------------------------------


class ConvGeometry(NamedTuple):
    """One convolution's sizes. For conv_transpose2d it describes the adjoint conv2d:
    "input" (N, C, H, W) is the transposed conv's output and "output" (N, K, P, Q) its input."""

    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    p: int
    q: int
    stride: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, bottom, left, right
    dilation: tuple[int, int]
    groups: int


def _int_pair(v, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair."""
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {v!r}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}")
        if item < minimum:
            raise ValueError(f"{name}: expected values >= {minimum}, got {v!r}")
        out.append(int(item))
    return out[0], out[1]


def _int(v, name: str, minimum: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {v!r}")
    return int(v)


def _check_rank(shape, ndim: int, name: str, layout: str) -> None:
    if len(shape) != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape {tuple(shape)}")


def _out_size(n: int, lo: int, hi: int, k: int, stride: int, dil: int) -> int:
    """floor((n + lo + hi - dil*(k-1) - 1) / stride) + 1; < 1 when the kernel does not fit."""
    return (n + lo + hi - dil * (k - 1) - 1) // stride + 1


def conv2d_geometry(x_shape, w_shape, b_shape, stride, padding, dilation, groups) -> ConvGeometry:
    """Validate conv2d's arguments (shapes only) and return its geometry; ValueError or
    TypeError naming the argument otherwise."""
    _check_rank(x_shape, 4, "x", "(N, C, H, W)")
    _check_rank(w_shape, 4, "w", "(K, C/groups, R, S)")
    n, c, h, wd = (int(v) for v in x_shape)
    k, cg, r, s = (int(v) for v in w_shape)
    groups = _int(groups, "groups", 1)
    sh, sw = _int_pair(stride, "stride", 1)
    dh, dw = _int_pair(dilation, "dilation", 1)
    if min(n, c, h, wd) < 1:
        raise ValueError(f"x: every dimension must be >= 1, got shape {tuple(x_shape)}")
    if min(k, cg, r, s) < 1:
        raise ValueError(f"w: every dimension must be >= 1, got shape {tuple(w_shape)}")
    if c % groups:
        raise ValueError(f"groups: {groups} does not divide the input channels C={c} of x")
    if k % groups:
        raise ValueError(f"groups: {groups} does not divide the output channels K={k} of w")
    if cg * groups != c:
        raise ValueError(
            f"w: expected C/groups = {c}/{groups} = {c // groups} input channels in w.shape[1] "
            f"to match x of shape {tuple(x_shape)}, got w of shape {tuple(w_shape)}"
        )
    if b_shape is not None and tuple(b_shape) != (k,):
        raise ValueError(f"b: expected shape ({k},) (one bias per output channel), got {tuple(b_shape)}")

    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0, 0, 0)
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1, got stride {(sh, sw)}")
            # PyTorch's split of the total padding d*(k-1): the extra pixel goes last.
            th, tw = dh * (r - 1), dw * (s - 1)
            pad = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"padding: expected an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _int_pair(padding, "padding", 0)
        pad = (ph, ph, pw, pw)

    p = _out_size(h, pad[0], pad[1], r, sh, dh)
    q = _out_size(wd, pad[2], pad[3], s, sw, dw)
    if p < 1 or q < 1:
        raise ValueError(
            f"conv2d: output size would be {p}x{q}: the kernel {r}x{s} with dilation {(dh, dw)} "
            f"spans {dh * (r - 1) + 1}x{dw * (s - 1) + 1} pixels, larger than the padded input "
            f"{h + pad[0] + pad[1]}x{wd + pad[2] + pad[3]} (input {h}x{wd}, padding {pad})"
        )
    return ConvGeometry(n, c, h, wd, k, r, s, p, q, (sh, sw), pad, (dh, dw), groups)


def conv_transpose2d_geometry(x_shape, w_shape, b_shape, stride, padding, output_padding, dilation,
                              groups) -> ConvGeometry:
    """Validate conv_transpose2d's arguments and return the geometry of its adjoint conv2d:
    input (N, C_out, H_out, W_out), weights (C_in, C_out/groups, R, S), output (N, C_in, H, W)."""
    _check_rank(x_shape, 4, "x", "(N, C_in, H, W)")
    _check_rank(w_shape, 4, "w", "(C_in, C_out/groups, R, S)")
    n, cin, h, wd = (int(v) for v in x_shape)
    wk, cog, r, s = (int(v) for v in w_shape)
    groups = _int(groups, "groups", 1)
    sh, sw = _int_pair(stride, "stride", 1)
    dh, dw = _int_pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"padding: conv_transpose2d takes an int or a pair, got {padding!r}")
    ph, pw = _int_pair(padding, "padding", 0)
    oph, opw = _int_pair(output_padding, "output_padding", 0)
    if min(n, cin, h, wd) < 1:
        raise ValueError(f"x: every dimension must be >= 1, got shape {tuple(x_shape)}")
    if min(wk, cog, r, s) < 1:
        raise ValueError(f"w: every dimension must be >= 1, got shape {tuple(w_shape)}")
    if wk != cin:
        raise ValueError(
            f"w: expected w.shape[0] = C_in = {cin} to match x of shape {tuple(x_shape)}, "
            f"got w of shape {tuple(w_shape)}"
        )
    if cin % groups:
        raise ValueError(f"groups: {groups} does not divide the input channels C_in={cin} of x")
    cout = cog * groups
    if b_shape is not None and tuple(b_shape) != (cout,):
        raise ValueError(f"b: expected shape ({cout},) (one bias per output channel), got {tuple(b_shape)}")
    for op, st, dl, axis in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
        if not (op < st or op < dl):
            raise ValueError(
                f"output_padding: must be smaller than stride or dilation, got {op} with stride {st} "
                f"and dilation {dl} ({axis})"
            )
    ho = (h - 1) * sh - 2 * ph + dh * (r - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (s - 1) + opw + 1
    if ho < 1 or wo < 1:
        raise ValueError(
            f"conv_transpose2d: output size would be {ho}x{wo} (input {h}x{wd}, kernel {r}x{s}, "
            f"stride {(sh, sw)}, padding {(ph, pw)}, dilation {(dh, dw)}, output_padding {(oph, opw)})"
        )
    # The adjoint conv reads its input (H_out, W_out) with top/left padding ph/pw; its
    # output size is x's (the bottom/right padding that would give it is implied).
    pad = (ph, (h - 1) * sh + dh * (r - 1) + 1 - ho - ph, pw, (wd - 1) * sw + dw * (s - 1) + 1 - wo - pw)
    return ConvGeometry(n, cout, ho, wo, cin, r, s, h, wd, (sh, sw), pad, (dh, dw), groups)


class ConvCache:
    """What a conv backward needs from its forward (opaque to callers)."""

    __slots__ = ("op", "backend", "x", "w", "has_bias", "geom")

    def __init__(self, op, backend, x, w, has_bias, geom):
        self.op = op
        self.backend = backend
        self.x = x
        self.w = w
        self.has_bias = has_bias
        self.geom = geom

    def __repr__(self):
        return f"ConvCache(op={self.op!r}, backend={self.backend!r}, geom={self.geom})"


def check_cache(cache, op: str) -> ConvCache:
    if not isinstance(cache, ConvCache) or cache.op != op:
        raise TypeError(f"cache: expected the cache returned by {op}_forward, got {type(cache).__name__}")
    return cache


# --------------------------------------------------------------------------------------
# The three convolution primitives (no bias), on a geometry.
# --------------------------------------------------------------------------------------


def _padded_size(g: ConvGeometry) -> tuple[int, int]:
    """Rows/columns of the zero-padded input that the output pixels' windows reach."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    hp = max(g.pad[0] + g.h, (g.p - 1) * sh + (g.r - 1) * dh + 1)
    wp = max(g.pad[2] + g.w, (g.q - 1) * sw + (g.s - 1) * dw + 1)
    return hp, wp


def _im2col_view(xp: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """cols[n, c, r, s, p, q] = xp[n, c, p*sh + r*dh, q*sw + s*dw]: a read-only strided view
    of the padded input xp (N, C, Hp, Wp); reshaping it to (N, G, C/G*R*S, P*Q) is im2col."""
    (sh, sw), (dh, dw) = g.stride, g.dilation
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(
        xp,
        shape=(g.n, g.c, g.r, g.s, g.p, g.q),
        strides=(s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
        writeable=False,
    )


def _col(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """im2col: (N, G, C/G*R*S, P*Q), row index (c, r, s), column index (p, q)."""
    hp, wp = _padded_size(g)
    xp = np.zeros((g.n, g.c, hp, wp), dtype=x.dtype)
    xp[:, :, g.pad[0] : g.pad[0] + g.h, g.pad[2] : g.pad[2] + g.w] = x
    cg = g.c // g.groups
    return _im2col_view(xp, g).reshape(g.n, g.groups, cg * g.r * g.s, g.p * g.q)


def _conv(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """out (N, K, P, Q) = conv(x, w) without bias: out[n, g] = w_g @ col[n, g]."""
    kg = g.k // g.groups
    wg = w.reshape(g.groups, kg, -1)  # (G, K/G, C/G*R*S)
    out = np.matmul(wg, _col(x, g))  # (N, G, K/G, P*Q)
    return out.reshape(g.n, g.k, g.p, g.q)


def _conv_data_grad(dout: np.ndarray, w: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dx (N, C, H, W) = col2im(w_g^T @ dout[n, g]): scatter-add of every column entry."""
    kg = g.k // g.groups
    (sh, sw), (dh, dw) = g.stride, g.dilation
    wgt = w.reshape(g.groups, kg, -1).transpose(0, 2, 1)  # (G, C/G*R*S, K/G)
    dcol = np.matmul(wgt, dout.reshape(g.n, g.groups, kg, g.p * g.q))  # (N, G, C/G*R*S, P*Q)
    dcol = dcol.reshape(g.n, g.c, g.r, g.s, g.p, g.q)
    hp, wp = _padded_size(g)
    dxp = np.zeros((g.n, g.c, hp, wp), dtype=dcol.dtype)
    for r in range(g.r):  # one strided slice per kernel offset; within it no pixel repeats
        for s in range(g.s):
            rows = slice(r * dh, r * dh + (g.p - 1) * sh + 1, sh)
            cols = slice(s * dw, s * dw + (g.q - 1) * sw + 1, sw)
            dxp[:, :, rows, cols] += dcol[:, :, r, s]
    return dxp[:, :, g.pad[0] : g.pad[0] + g.h, g.pad[2] : g.pad[2] + g.w].copy()


def _conv_weight_grad(dout: np.ndarray, x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """dw (K, C/G, R, S): dw_g = sum_n dout[n, g] @ col[n, g]^T."""
    kg, cg = g.k // g.groups, g.c // g.groups
    col = _col(x, g)  # (N, G, C/G*R*S, P*Q)
    d = dout.reshape(g.n, g.groups, kg, g.p * g.q)
    dw = np.stack([np.tensordot(d[:, i], col[:, i], axes=([0, 2], [0, 2])) for i in range(g.groups)])
    return dw.reshape(g.k, cg, g.r, g.s)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _float_array(v, name: str) -> np.ndarray:
    a = np.asarray(v)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")
    return a


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """out = conv2d(x, w, b) and the cache for :func:`conv2d_backward`.

    x (N, C, H, W), w (K, C/groups, R, S), b (K,) or None. stride, dilation: int or pair
    (>= 1). padding: int or pair (>= 0, both sides), "valid" (no padding) or "same"
    (stride 1; total d*(k-1) per axis, the odd pixel at the bottom/right, as PyTorch).
    Returns out (N, K, P, Q) with P = floor((H + top + bottom - dh*(R-1) - 1)/sh) + 1::

        out[n, k, p, q] = b[k] + sum_{c,r,s} w[k, c, r, s] * xpad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw]
    """
    x = _float_array(x, "x")
    w = _float_array(w, "w")
    b = None if b is None else _float_array(b, "b")
    g = conv2d_geometry(x.shape, w.shape, None if b is None else b.shape, stride, padding, dilation, groups)
    dtype = np.result_type(x, w, *(() if b is None else (b,)))
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    out = _conv(x, w, g)
    if b is not None:
        out += b.astype(dtype).reshape(1, -1, 1, 1)
    return out, ConvCache("conv2d", "reference", x, w, b is not None, g)


def conv2d_backward(dout, cache, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db) for dout (N, K, P, Q), the gradient of the loss with respect to out::

        db[k] = sum_{n,p,q} dout[n, k, p, q]
        dw_g  = sum_n dout[n, g] @ col[n, g]^T            (col = im2col(x), (C/G*R*S, P*Q))
        dx    = col2im(w_g^T @ dout[n, g])

    dx is None when need_dx is False (nothing is computed for it), dw when need_dw is
    False, db when need_db is False or the forward had no bias.
    """
    c = check_cache(cache, "conv2d")
    g = c.geom
    dout = _float_array(dout, "dout")
    if dout.shape != (g.n, g.k, g.p, g.q):
        raise ValueError(f"dout: expected shape {(g.n, g.k, g.p, g.q)} (the output's), got {dout.shape}")
    dout = dout.astype(c.x.dtype, copy=False)
    dx = _conv_data_grad(dout, c.w, g) if need_dx else None
    dw = _conv_weight_grad(dout, c.x, g) if need_dw else None
    db = dout.sum(axis=(0, 2, 3)) if (need_db and c.has_bias) else None
    return dx, dw, db


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Forward only: see :func:`conv2d_forward`."""
    return conv2d_forward(x, w, b, stride, padding, dilation, groups)[0]


def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0, *, dilation=1, groups=1):
    """out = conv_transpose2d(x, w, b) (PyTorch's ConvTranspose2d) and the cache.

    x (N, C_in, H, W), w (C_in, C_out/groups, R, S), b (C_out,) or None; padding an int or
    pair; output_padding (extra rows/columns at the bottom/right) smaller than the stride
    or the dilation. out (N, C_out, H_out, W_out) with
    H_out = (H - 1)*sh - 2*ph + dh*(R - 1) + output_padding + 1, and::

        out[n, g*C_out/G + c, i*sh - ph + r*dh, j*sw - pw + s*dw] += x[n, k, i, j] * w[k, c, r, s]

    summed over k in group g, i, j, r, s (positions outside the output are dropped), plus
    b. It is the input gradient of conv2d(out_shape -> x_shape) with the same w.
    Note: PyTorch's positional order is (..., output_padding, groups, dilation); here
    dilation and groups are keyword-only, so a positional call cannot swap them.
    """
    x = _float_array(x, "x")
    w = _float_array(w, "w")
    b = None if b is None else _float_array(b, "b")
    g = conv_transpose2d_geometry(x.shape, w.shape, None if b is None else b.shape, stride, padding,
                                  output_padding, dilation, groups)
    dtype = np.result_type(x, w, *(() if b is None else (b,)))
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    out = _conv_data_grad(x, w, g)
    if b is not None:
        out += b.astype(dtype).reshape(1, -1, 1, 1)
    return out, ConvCache("conv_transpose2d", "reference", x, w, b is not None, g)


def conv_transpose2d_backward(dout, cache, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db) for dout (N, C_out, H_out, W_out). With conv2d the adjoint::

        dx = conv2d(dout, w)                (no bias: the forward of the adjoint pair)
        dw = conv2d's weight gradient with x and dout exchanged: sum_n x[n, g] @ col(dout)[n, g]^T
        db[c] = sum_{n,i,j} dout[n, c, i, j]
    """
    c = check_cache(cache, "conv_transpose2d")
    g = c.geom
    dout = _float_array(dout, "dout")
    if dout.shape != (g.n, g.c, g.h, g.w):
        raise ValueError(f"dout: expected shape {(g.n, g.c, g.h, g.w)} (the output's), got {dout.shape}")
    dout = dout.astype(c.x.dtype, copy=False)
    dx = _conv(dout, c.w, g) if need_dx else None
    dw = _conv_weight_grad(c.x, dout, g) if need_dw else None
    db = dout.sum(axis=(0, 2, 3)) if (need_db and c.has_bias) else None
    return dx, dw, db


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, *, dilation=1, groups=1):
    """Forward only: see :func:`conv_transpose2d_forward`."""
    return conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation=dilation,
                                    groups=groups)[0]
