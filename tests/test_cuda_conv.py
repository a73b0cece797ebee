"""CUDA 2-D convolution (csrc/cuda/conv.cu) and conv_transpose2d built from it, against
the NumPy reference (fastlayers.reference.conv) in float64.

The four kernels are called exactly as fastlayers.ops.conv calls _cpu's: conv2d forward,
backward data (with the optional per-channel init, conv_transpose2d's bias), backward
weight, backward bias; conv_transpose2d's forward is backward-data, its input gradient is
the forward and its weight gradient backward-weight with x and dout exchanged. Runs in the
CPU emulator under two schedules, and on a real GPU with CuPy (``gpu`` marker).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers.reference import conv as ref

from cuda_backends import Emu, assert_close, backend_fixture, emu_backend, gpu_backend

# The emulator under two schedules (one under the threads engine), then the GPU.
be = backend_fixture(Emu("round-robin", seed=1), Emu("greedy", seed=1), name="be")


# ---- conv2d -----------------------------------------------------------------------------


def kernel_args(g):
    """stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, groups (as fastlayers.ops.conv)."""
    return (g.stride[0], g.stride[1], g.pad[0], g.pad[2], g.dilation[0], g.dilation[1], g.groups)


def f64(*arrays):
    return tuple(None if a is None else np.asarray(a, np.float64) for a in arrays)


# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
CONV_CASES = [
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1),  # pointwise path, single element
    (2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1),
    (3, 4, 9, 11, 6, 3, 2, (2, 1), (1, 0), (1, 2), 2),  # stride, dilation, groups
    (2, 6, 5, 5, 6, 3, 3, 1, "same", 1, 6),  # depthwise
    (1, 2, 6, 5, 3, 4, 2, 1, "same", 1, 1),  # even kernel: asymmetric padding
    (2, 5, 6, 7, 3, 1, 1, 1, 0, 1, 1),  # pointwise (GEMM without im2col)
    (2, 4, 6, 6, 6, 1, 1, 1, 0, 1, 2),  # grouped pointwise
    (2, 3, 8, 7, 5, 1, 1, 2, 0, 1, 1),  # 1x1 stride 2: im2col
    (2, 3, 10, 9, 70, 3, 3, 1, 1, 1, 1),  # K = 70, PQ = 90: several GEMM tiles
]


def conv_id(c):
    return "n{}c{}h{}w{}k{}r{}s{}-st{}-p{}-d{}-g{}".format(*c).replace(" ", "").replace("'", "")


def run_conv2d(be, x, w, b, dout, g):
    """(out, dx, dw, db) from the four CUDA kernels (as numpy arrays)."""
    args, s = kernel_args(g), be.stream()
    x_, w_, dout_ = be.asarray(x), be.asarray(w), be.asarray(dout)
    out = be.empty((g.n, g.k, g.p, g.q))
    be.mod.conv2d_forward(out, x_, w_, None if b is None else be.asarray(b), *args, s)
    dx, dw, db = be.empty(x.shape), be.empty(w.shape), be.empty((g.k,))
    be.mod.conv2d_backward_data(dx, dout_, w_, None, *args, s)
    be.mod.conv2d_backward_weight(dw, dout_, x_, *args, s)
    be.mod.conv2d_backward_bias(db, dout_, s)
    return be.get(out), be.get(dx), be.get(dw), be.get(db)


def check_conv2d(be, case, seed):
    n, c, h, wd, k, r, s, stride, padding, dilation, groups = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    g = ref.conv2d_geometry(x.shape, w.shape, b.shape, stride, padding, dilation, groups)
    dout = rng.standard_normal((g.n, g.k, g.p, g.q)).astype(np.float32)

    out, dx, dw, db = run_conv2d(be, x, w, b, dout, g)

    o_ref, cache = ref.conv2d_forward(*f64(x, w, b), stride, padding, dilation, groups)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(f64(dout)[0], cache)
    # Scales: the same sums over absolute values.
    o_abs, acache = ref.conv2d_forward(*f64(np.abs(x), np.abs(w), np.abs(b)), stride, padding, dilation, groups)
    dx_abs, dw_abs, db_abs = ref.conv2d_backward(np.abs(f64(dout)[0]), acache)
    crs = (c // groups) * r * s
    assert_close(out, o_ref, o_abs, crs, "out")
    assert_close(dx, dx_ref, dx_abs, (k // groups) * r * s, "dx")
    assert_close(dw, dw_ref, dw_abs, n * g.p * g.q, "dw")
    assert_close(db, db_ref, db_abs, n * g.p * g.q, "db")


@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_conv2d(be, case):
    check_conv2d(be, case, seed=len(conv_id(case)))


@pytest.mark.parametrize("case", [CONV_CASES[2], CONV_CASES[6]], ids=conv_id)
def test_conv2d_chunked_workspace(be, case):
    """A workspace of one image: the batch runs in chunks; dw accumulates across them."""
    old = be.mod._conv2d_workspace_limit(16)
    try:
        check_conv2d(be, case, seed=99)
    finally:
        be.mod._conv2d_workspace_limit(old)


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[8]], ids=conv_id)
def test_conv2d_split_k(be, case):
    """Every GEMM that is not batched through split-K, one image per chunk: the forward's
    bias epilogue, backward-data's columns, and dw accumulating (beta 1) across chunks in
    split-K's second pass."""
    old_ws, old_split = be.mod._conv2d_workspace_limit(16), be.mod._gemm_force_split(3)
    try:
        check_conv2d(be, case, seed=98)
    finally:
        be.mod._conv2d_workspace_limit(old_ws)
        be.mod._gemm_force_split(old_split)


def test_conv2d_backward_data_init(be):
    rng = np.random.default_rng(4)
    x_shape, w = (2, 4, 5, 6), rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    g = ref.conv2d_geometry(x_shape, w.shape, None, 2, 1, 1, 2)
    dout = rng.standard_normal((g.n, g.k, g.p, g.q)).astype(np.float32)
    init = rng.standard_normal(4).astype(np.float32)
    dx = be.empty(x_shape)
    be.mod.conv2d_backward_data(dx, be.asarray(dout), be.asarray(w), be.asarray(init), *kernel_args(g), be.stream())
    _, cache = ref.conv2d_forward(np.zeros(x_shape), w.astype(np.float64), None, 2, 1, 1, 2)
    dx_ref = ref.conv2d_backward(dout.astype(np.float64), cache)[0] + init.reshape(1, -1, 1, 1)
    _, acache = ref.conv2d_forward(np.zeros(x_shape), np.abs(w.astype(np.float64)), None, 2, 1, 1, 2)
    scale = ref.conv2d_backward(np.abs(dout.astype(np.float64)), acache)[0] + np.abs(init).reshape(1, -1, 1, 1)
    assert_close(be.get(dx), dx_ref, scale, 18, "dx")


# ---- conv_transpose2d (as fastlayers.ops.conv builds it) -----------------------------------

# (N, C_in, H, W, C_out, R, S, stride, padding, output_padding, dilation, groups)
CT_CASES = [
    (2, 3, 4, 5, 4, 3, 3, 2, 1, 1, 1, 1),
    (1, 4, 3, 3, 6, 2, 3, (2, 3), (0, 1), (1, 2), 1, 2),
    (2, 2, 5, 4, 3, 3, 2, 1, 0, 0, (2, 1), 1),
    (3, 5, 2, 3, 2, 1, 1, 1, 0, 0, 1, 1),  # 1x1: pointwise both ways
]


@pytest.mark.parametrize("case", CT_CASES, ids=conv_id)
def test_conv_transpose2d(be, case):
    n, cin, h, wd, cout, r, s, stride, padding, opad, dilation, groups = case
    rng = np.random.default_rng(cin * 10 + cout)
    x = rng.standard_normal((n, cin, h, wd)).astype(np.float32)
    w = rng.standard_normal((cin, cout // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    g = ref.conv_transpose2d_geometry(x.shape, w.shape, b.shape, stride, padding, opad, dilation, groups)
    dout = rng.standard_normal((g.n, g.c, g.h, g.w)).astype(np.float32)
    args, st = kernel_args(g), be.stream()
    x_, w_, dout_ = be.asarray(x), be.asarray(w), be.asarray(dout)

    out = be.empty((g.n, g.c, g.h, g.w))
    be.mod.conv2d_backward_data(out, x_, w_, be.asarray(b), *args, st)
    dx, dw, db = be.empty(x.shape), be.empty(w.shape), be.empty((g.c,))
    be.mod.conv2d_forward(dx, dout_, w_, None, *args, st)
    be.mod.conv2d_backward_weight(dw, x_, dout_, *args, st)
    be.mod.conv2d_backward_bias(db, dout_, st)

    kw = dict(dilation=dilation, groups=groups)
    o_ref, cache = ref.conv_transpose2d_forward(*f64(x, w, b), stride, padding, opad, **kw)
    dx_ref, dw_ref, db_ref = ref.conv_transpose2d_backward(f64(dout)[0], cache)
    o_abs, acache = ref.conv_transpose2d_forward(*f64(np.abs(x), np.abs(w), np.abs(b)), stride, padding, opad, **kw)
    dx_abs, dw_abs, db_abs = ref.conv_transpose2d_backward(np.abs(f64(dout)[0]), acache)
    assert_close(be.get(out), o_ref, o_abs, cin * r * s, "out")
    assert_close(be.get(dx), dx_ref, dx_abs, cout * r * s, "dx")
    assert_close(be.get(dw), dw_ref, dw_abs, n * g.h * g.w, "dw")
    assert_close(be.get(db), db_ref, db_abs, n * g.h * g.w, "db")


# ---- bad input --------------------------------------------------------------------------


def test_conv2d_bad_input(be):
    x, w = be.asarray(np.ones((2, 4, 5, 5), np.float32)), be.asarray(np.ones((6, 2, 3, 3), np.float32))
    out, s = be.empty((2, 6, 3, 3)), be.stream()
    args = (1, 1, 0, 0, 1, 1, 2)
    with pytest.raises(TypeError, match="x: expected a GPU array"):
        be.mod.conv2d_forward(out, np.ones((2, 4, 5, 5), np.float32), w, None, *args, s)
    with pytest.raises(TypeError, match="w: expected dtype"):
        be.mod.conv2d_forward(out, x, be.asarray(np.ones((6, 2, 3, 3)), dtype=np.int32), None, *args, s)
    with pytest.raises(ValueError, match="x: expected a 4-D array"):
        be.mod.conv2d_forward(out, be.asarray(np.ones((4, 5, 5), np.float32)), w, None, *args, s)
    with pytest.raises(ValueError, match="w: expected 4/2 input channels"):
        be.mod.conv2d_forward(out, x, be.asarray(np.ones((6, 3, 3, 3), np.float32)), None, *args, s)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 6, P, Q\)"):
        be.mod.conv2d_forward(be.empty((2, 5, 3, 3)), x, w, None, *args, s)
    with pytest.raises(ValueError, match=r"b: expected shape \(6\)"):
        be.mod.conv2d_forward(out, x, w, be.asarray(np.ones(4, np.float32)), *args, s)
    with pytest.raises(ValueError, match="groups: 4 does not divide"):
        be.mod.conv2d_forward(out, x, be.asarray(np.ones((6, 1, 3, 3), np.float32)), None, 1, 1, 0, 0, 1, 1, 4, s)
    with pytest.raises(ValueError, match="stride: must be >= 1"):
        be.mod.conv2d_forward(out, x, w, None, 0, 1, 0, 0, 1, 1, 2, s)
    with pytest.raises(ValueError, match=r"init: expected shape \(4\)"):
        be.mod.conv2d_backward_data(be.empty((2, 4, 5, 5)), out, w, be.asarray(np.ones(6, np.float32)), *args, s)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 6, P, Q\)"):
        be.mod.conv2d_backward_weight(be.empty((6, 2, 3, 3)), be.empty((1, 6, 3, 3)), x, *args, s)
    with pytest.raises(ValueError, match=r"db: expected shape \(6\)"):
        be.mod.conv2d_backward_bias(be.empty((5,)), out, s)
    with pytest.raises(TypeError, match="dout: expected a GPU array"):
        be.mod.conv2d_backward_bias(be.empty((6,)), np.ones((2, 6, 3, 3), np.float32), s)


# ---- GPU against the emulator -----------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("case", [CONV_CASES[2], CONV_CASES[8]], ids=conv_id)
def test_conv2d_gpu_matches_emulator(case):
    """The four kernels on the GPU and in the emulator agree (to FMA-contraction rounding)."""
    gpu_be, emu_be = gpu_backend(), emu_backend()
    n, c, h, wd, k, r, s, stride, padding, dilation, groups = case
    rng = np.random.default_rng(23)
    x = rng.standard_normal((n, c, h, wd)).astype(np.float32)
    w = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    g = ref.conv2d_geometry(x.shape, w.shape, b.shape, stride, padding, dilation, groups)
    dout = rng.standard_normal((g.n, g.k, g.p, g.q)).astype(np.float32)
    on_gpu, on_emu = run_conv2d(gpu_be, x, w, b, dout, g), run_conv2d(emu_be, x, w, b, dout, g)
    o_abs, acache = ref.conv2d_forward(*f64(np.abs(x), np.abs(w), np.abs(b)), stride, padding, dilation, groups)
    scales = (o_abs,) + ref.conv2d_backward(np.abs(f64(dout)[0]), acache)
    for name, got, want, scale in zip(("out", "dx", "dw", "db"), on_gpu, on_emu, scales):
        assert_close(got, want.astype(np.float64), 2 * scale, n * g.p * g.q, name)


def test_workspaces_keep_the_pool_memory():
    # A workspace (here conv's im2col buffer) tells the stream-ordered pool to keep up to
    # 2 GiB across synchronisations, instead of its default of handing everything back.
    from fastlayers import _cuda_emu, cuda_emu, ops

    x = cuda_emu.asarray(np.ones((1, 1, 5, 5), np.float32))
    w = cuda_emu.asarray(np.ones((2, 1, 3, 3), np.float32))
    ops.conv2d(x, w)
    assert _cuda_emu.mempool_release_threshold() == 2 << 30
