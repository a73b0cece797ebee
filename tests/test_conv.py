"""conv2d / conv_transpose2d: the C++ kernels against the NumPy reference, the
reference's own gradients by finite differences, and bad input.

Every kernel case runs on both kernel paths (the NCHW implicit GEMM and, for batches
of at least one block of images, the batch-blocked path), forced through a private
hook, and a subset runs on every SIMD path and with 1 and 2 threads.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import _cpu, ops, reference
from fastlayers.gradcheck import numerical_gradient, rel_error

# Images per block of the batch-blocked path on the active SIMD path (32 for AVX-512).
LANES = _cpu._conv2d_force_path(0)


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def close(actual, expected, tol=2e-5):
    """max |actual - expected| relative to the largest |expected| (float32 sums)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected))), 1.0) if expected.size else 1.0
    err = float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0
    assert err <= tol, f"max relative error {err:.2e} > {tol:.0e}"


@pytest.fixture(params=["auto", "nchw", "lanes"])
def path(request):
    mode = {"auto": 0, "nchw": 1, "lanes": 2}[request.param]
    _cpu._conv2d_force_path(mode)
    yield request.param
    _cpu._conv2d_force_path(0)


# --------------------------------------------------------------------------------------
# conv2d: kernels vs reference, forward and every gradient
# --------------------------------------------------------------------------------------

# id: (N, C, H, W, K, R, S, stride, padding, dilation, groups, bias)
CONV_CASES = {
    "basic_3x3": (2, 3, 9, 11, 5, 3, 3, 1, 0, 1, 1, True),
    "batch1_1x1": (1, 8, 7, 7, 16, 1, 1, 1, 0, 1, 1, True),
    "1x1_stride2": (2, 8, 7, 9, 6, 1, 1, 2, 0, 1, 1, False),
    "1x1_padded": (2, 4, 5, 5, 3, 1, 1, 1, 1, 1, 1, True),
    "c1_5x5": (3, 1, 13, 12, 6, 5, 5, 1, 0, 1, 1, True),
    "c3_k2": (2, 3, 8, 7, 4, 2, 2, 1, 0, 1, 1, True),
    "prime_7x7_pad3": (2, 7, 11, 13, 5, 7, 7, 1, 3, 1, 1, True),
    "k11_stride4": (2, 3, 27, 23, 8, 11, 11, 4, 0, 1, 1, True),
    "stride3_pad2": (2, 5, 13, 11, 4, 3, 3, 3, 2, 1, 1, False),
    "rect_kernel": (2, 3, 10, 9, 4, 3, 5, (2, 1), (1, 2), 1, 1, True),
    "dilation2": (2, 4, 12, 11, 3, 3, 3, 1, 2, 2, 1, True),
    "dilation_rect": (1, 4, 13, 7, 6, 5, 3, (2, 3), (1, 2), (2, 1), 2, True),
    "same_odd": (2, 3, 9, 8, 4, 3, 3, 1, "same", 1, 1, True),
    "same_even": (2, 6, 10, 9, 4, 4, 2, 1, "same", 1, 2, False),
    "same_dilated": (2, 3, 9, 10, 2, 3, 3, 1, "same", 2, 1, True),
    "valid": (2, 3, 7, 8, 2, 3, 3, 2, "valid", 1, 1, True),
    "groups2": (2, 6, 9, 9, 4, 3, 3, 1, 1, 1, 2, True),
    "groups3": (1, 9, 8, 7, 6, 3, 2, 2, 1, 1, 3, False),
    "depthwise": (2, 6, 10, 10, 6, 3, 3, 1, "same", 2, 6, True),
    "depthwise_x2_strided": (3, 6, 10, 10, 12, 3, 3, 2, 1, 1, 6, True),
    "depthwise_pad3": (1, 5, 7, 6, 5, 5, 5, (1, 2), 3, 1, 5, False),
    "kernel_fills_input": (2, 3, 5, 5, 4, 5, 5, 1, 0, 1, 1, True),
    "output_1x1_padded": (1, 2, 2, 3, 3, 4, 5, 1, (1, 1), 1, 1, True),
    "pad_beyond_kernel": (2, 3, 4, 4, 2, 2, 2, 1, 3, 1, 1, True),
    # NCHW weight gradient over several column blocks (2337 columns, one block edge
    # inside an image); padded copies of one image per chunk (133K floats each).
    "nchw_long_rows": (3, 4, 41, 37, 7, 3, 3, (1, 2), 1, 1, 1, True),
    "multi_chunk": (3, 1, 400, 330, 2, 3, 3, 2, 1, 1, 1, True),
    # Stride-phase split of long rows (vectorised for strides 2 and 4): full steps of 16,
    # a masked tail, padding on both sides, rows cut short by the last window.
    "wide_stride4_pad3": (1, 2, 9, 157, 3, 5, 5, 4, 3, 1, 1, True),
    "wide_stride2_rect_pad": (1, 2, 6, 75, 3, 3, 4, 2, (0, 1), 1, 1, False),
    "wide_stride4_cut": (2, 1, 12, 70, 2, 3, 3, 4, 0, 1, 1, True),
    # At least one block of images: the batch-blocked path, with images left over.
    "lanes_3x3_pad1": (LANES + 1, 5, 9, 8, 7, 3, 3, 1, 1, 1, 1, True),
    "lanes_groups": (LANES, 6, 7, 9, 12, 3, 2, (1, 2), (2, 1), (2, 1), 3, False),
    "lanes_5x5_stride2": (LANES + 3, 3, 11, 10, 4, 5, 5, 2, 2, 1, 1, True),
    "lanes_c1": (2 * LANES, 1, 12, 12, 6, 5, 5, 1, 0, 1, 1, True),
    "lanes_1x1": (LANES, 16, 5, 6, 20, 1, 1, 1, 0, 1, 1, True),
    # Kernel rows of >= 32 im2col rows: the window read in place, all taps of a pixel in
    # one batch-reduce call per tile of output channels (29 = 10 + 10 + 9, 15 = 8 + 7).
    "lanes_direct_3x3": (LANES + 1, 12, 7, 9, 29, 3, 3, 1, 1, 1, 1, True),
    "lanes_direct_dilated": (LANES, 8, 6, 10, 15, 5, 4, 1, (2, 1), (2, 1), 1, True),
    "lanes_direct_stride2": (LANES, 16, 9, 9, 14, 3, 3, 2, 1, 1, 1, False),
}


def conv_inputs(case, seed=0, dtype=np.float32):
    n, c, h, w, k, r, s, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, c, h, w), dtype)
    wt = rand(rng, (k, c // groups, r, s), dtype)
    b = rand(rng, (k,), dtype) if bias else None
    return x, wt, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def check_conv2d(case, seed=0):
    x, w, b, kw = conv_inputs(case, seed)
    out, cache = ops.conv2d_forward(x, w, b, **kw)
    ref, rcache = reference.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                           None if b is None else b.astype(np.float64), **kw)
    close(out, ref)
    dout = rand(np.random.default_rng(seed + 1), out.shape)
    dx, dw, db = ops.conv2d_backward(dout, cache)
    rdx, rdw, rdb = reference.conv2d_backward(dout.astype(np.float64), rcache)
    close(dx, rdx)
    close(dw, rdw)
    if b is None:
        assert db is None
    else:
        close(db, rdb)
    assert dx.dtype == dw.dtype == np.float32
    # Forward-only matches the forward of forward/backward.
    np.testing.assert_array_equal(ops.conv2d(x, w, b, **kw), out)


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_matches_reference(case, path):
    check_conv2d(case)


# (N, C_in, H, W, C_out, R, S, stride, padding, output_padding, dilation, groups, bias)
TRANSPOSE_CASES = {
    "basic": (2, 3, 5, 6, 4, 3, 3, 1, 0, 0, 1, 1, True),
    "stride2_outpad1": (2, 4, 5, 6, 6, 3, 3, 2, 1, 1, 1, 1, True),
    "unet_2x2_stride2": (2, 4, 5, 7, 3, 2, 2, 2, 0, 0, 1, 1, True),
    "k4_stride2_pad1": (1, 4, 5, 6, 6, 4, 4, 2, 1, 0, 1, 1, False),
    "stride3_groups3": (1, 6, 5, 6, 9, 3, 2, 3, (0, 1), (2, 1), 1, 3, True),
    "dilated_outpad": (1, 4, 5, 6, 4, 3, 3, 1, 2, 1, 2, 4, True),
    "outpad_below_dilation": (2, 3, 4, 5, 2, 3, 3, (1, 2), 1, (1, 0), 2, 1, True),
    "1x1": (2, 4, 5, 5, 8, 1, 1, 1, 0, 0, 1, 1, False),
    "c1_k5": (3, 1, 6, 5, 2, 5, 5, 1, 2, 0, 1, 1, True),
    "lanes_stride1": (LANES + 2, 6, 5, 6, 4, 3, 3, 1, 1, 0, 1, 1, True),
    "lanes_stride2": (LANES, 6, 5, 6, 4, 3, 3, 2, 1, 1, 1, 1, False),
}


@pytest.mark.parametrize("case", TRANSPOSE_CASES.values(), ids=TRANSPOSE_CASES.keys())
def test_conv_transpose2d_matches_reference(case, path):
    n, cin, h, w, cout, r, s, stride, padding, opad, dilation, groups, bias = case
    rng = np.random.default_rng(3)
    x = rand(rng, (n, cin, h, w))
    wt = rand(rng, (cin, cout // groups, r, s))
    b = rand(rng, (cout,)) if bias else None
    kw = dict(dilation=dilation, groups=groups)
    out, cache = ops.conv_transpose2d_forward(x, wt, b, stride, padding, opad, **kw)
    ref, rcache = reference.conv_transpose2d_forward(x.astype(np.float64), wt, b, stride, padding, opad, **kw)
    close(out, ref)
    dout = rand(rng, out.shape)
    dx, dw, db = ops.conv_transpose2d_backward(dout, cache)
    rdx, rdw, rdb = reference.conv_transpose2d_backward(dout.astype(np.float64), rcache)
    close(dx, rdx)
    close(dw, rdw)
    assert (db is None) == (b is None)
    if b is not None:
        close(db, rdb)
    np.testing.assert_array_equal(ops.conv_transpose2d(x, wt, b, stride, padding, opad, **kw), out)


SIMD_SUBSET = ["basic_3x3", "prime_7x7_pad3", "k11_stride4", "dilation_rect", "groups3", "depthwise",
               "lanes_3x3_pad1", "lanes_c1", "lanes_1x1", "lanes_direct_3x3", "nchw_long_rows", "multi_chunk",
               "wide_stride4_pad3", "wide_stride4_cut"]


@pytest.mark.parametrize("simd", fl.info()["simd_paths_supported"])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_every_simd_path_and_thread_count(simd, threads):
    saved_simd, saved_threads = fl.get_simd_path(), fl.get_num_threads()
    try:
        fl.set_simd_path(simd)
        fl.set_num_threads(threads)
        lanes = _cpu._conv2d_force_path(0)
        for name in SIMD_SUBSET:
            case = list(CONV_CASES[name])
            if name.startswith("lanes"):  # keep a full block for this path's block size
                case[0] = case[0] - LANES + lanes
            check_conv2d(tuple(case))
    finally:
        fl.set_simd_path(saved_simd)
        fl.set_num_threads(saved_threads)


def test_conv2d_thread_count_does_not_change_forward():
    x, w, b, kw = conv_inputs(CONV_CASES["lanes_3x3_pad1"])
    saved = fl.get_num_threads()
    try:
        fl.set_num_threads(1)
        one = ops.conv2d(x, w, b, **kw)
        fl.set_num_threads(2)
        two = ops.conv2d(x, w, b, **kw)
    finally:
        fl.set_num_threads(saved)
    np.testing.assert_array_equal(one, two)


# --------------------------------------------------------------------------------------
# backward options, layout and backends
# --------------------------------------------------------------------------------------


def test_need_dx_false_skips_dx():
    x, w, b, kw = conv_inputs(CONV_CASES["c1_5x5"])
    out, cache = ops.conv2d_forward(x, w, b, **kw)
    dout = np.ones_like(out)
    dx, dw, db = ops.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None
    _, dw_full, db_full = ops.conv2d_backward(dout, cache)
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(db, db_full)
    assert ops.conv2d_backward(dout, cache, need_dw=False, need_db=False)[1:] == (None, None)
    rdx, rdw, rdb = reference.conv2d_backward(dout.astype(np.float64),
                                              reference.conv2d_forward(x, w, b, **kw)[1], need_dx=False)
    assert rdx is None and rdw is not None and rdb is not None


def test_db_is_none_without_bias():
    x, w, _, kw = conv_inputs(CONV_CASES["basic_3x3"])
    out, cache = ops.conv2d_forward(x, w, None, **kw)
    assert ops.conv2d_backward(np.ones_like(out), cache)[2] is None


def test_non_contiguous_inputs_are_copied():
    x, w, b, kw = conv_inputs(CONV_CASES["basic_3x3"])
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, F-order planes
    wt = w[:, :, ::-1, :][:, :, ::-1, :]  # negative strides
    out, cache = ops.conv2d_forward(xt, wt, b, **kw)
    np.testing.assert_array_equal(out, ops.conv2d(x, w, b, **kw))
    dout = np.ones_like(out)[:, :, ::1, :]
    dx, dw, _ = ops.conv2d_backward(dout[..., ::-1][..., ::-1], cache)
    dx2, dw2, _ = ops.conv2d_backward(np.ones_like(out), ops.conv2d_forward(x, w, b, **kw)[1])
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dw, dw2)


def test_reference_backend_through_ops():
    x, w, b, kw = conv_inputs(CONV_CASES["groups2"])
    out, cache = ops.conv2d_forward(x, w, b, backend="reference", **kw)
    close(out, ops.conv2d(x, w, b, **kw))
    dx, dw, db = ops.conv2d_backward(np.ones_like(out), cache)  # runs on the reference
    cx, cw, cb = ops.conv2d_backward(np.ones_like(out), ops.conv2d_forward(x, w, b, **kw)[1])
    close(dx, cx)
    close(dw, cw)
    close(db, cb)
    y = ops.conv_transpose2d(x, np.ones((6, 2, 3, 3), np.float32), None, 2, 1, 1, groups=2, backend="reference")
    close(y, ops.conv_transpose2d(x, np.ones((6, 2, 3, 3), np.float32), None, 2, 1, 1, groups=2))


def test_reference_works_in_float64():
    x, w, b, kw = conv_inputs(CONV_CASES["dilation2"], dtype=np.float64)
    out, cache = reference.conv2d_forward(x, w, b, **kw)
    assert out.dtype == np.float64
    assert all(g.dtype == np.float64 for g in reference.conv2d_backward(np.ones_like(out), cache))


def test_same_padding_matches_explicit_padding():
    # 'same' with an even kernel pads one more pixel at the bottom/right, as PyTorch.
    rng = np.random.default_rng(5)
    x = rand(rng, (1, 2, 6, 7))
    w = rand(rng, (3, 2, 4, 2))
    out = ops.conv2d(x, w, padding="same")
    assert out.shape == (1, 3, 6, 7)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    close(out, reference.conv2d(xp.astype(np.float64), w, padding=0))


def test_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is optional: only the semantics cross-check needs it")
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, (2, 6, 9, 10)), rand(rng, (4, 3, 3, 2)), rand(rng, (4,))
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    t = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kw)
    close(ops.conv2d(x, w, b, **kw), t.numpy())
    wt = rand(rng, (6, 2, 3, 3))
    t = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), None, 2, 1, 1, 3, 2)
    close(ops.conv_transpose2d(x, wt, None, 2, 1, 1, groups=3, dilation=2), t.numpy())


# --------------------------------------------------------------------------------------
# The reference's own gradients, by centred finite differences in float64
# --------------------------------------------------------------------------------------

GRAD_CASES = {
    # op, x shape, w shape, bias, keyword arguments
    "conv2d": ("conv2d", (2, 4, 6, 5), (4, 2, 3, 2), True, dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    "conv2d_same": ("conv2d", (1, 2, 5, 5), (3, 2, 4, 3), False, dict(padding="same", dilation=1)),
    "conv_transpose2d": ("conv_transpose2d", (2, 4, 3, 4), (4, 3, 3, 2), True,
                         dict(stride=2, padding=1, output_padding=1, groups=2)),
}


@pytest.mark.parametrize("case", GRAD_CASES.values(), ids=GRAD_CASES.keys())
def test_reference_gradients_by_finite_differences(case):
    op, xs, ws, bias, kw = case
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0] if op == "conv2d" else ws[1] * kw.get("groups", 1)) if bias else None
    fwd = getattr(reference, f"{op}_forward")
    bwd = getattr(reference, f"{op}_backward")
    out, cache = fwd(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = bwd(dout, cache)
    f = lambda: fwd(x, w, b, **kw)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient(f, x, dout)) < 1e-7
    assert rel_error(dw, numerical_gradient(f, w, dout)) < 1e-7
    if bias:
        assert rel_error(db, numerical_gradient(f, b, dout)) < 1e-7


# --------------------------------------------------------------------------------------
# Bad input: a clear exception naming the argument
# --------------------------------------------------------------------------------------

X = np.zeros((2, 4, 8, 8), np.float32)
W = np.zeros((6, 4, 3, 3), np.float32)

BAD_CONV = {
    "x_rank": (dict(x=np.zeros((4, 8, 8), np.float32)), ValueError, "x: expected a 4-D"),
    "w_rank": (dict(w=np.zeros((6, 4, 3), np.float32)), ValueError, "w: expected a 4-D"),
    "channels_mismatch": (dict(w=np.zeros((6, 3, 3, 3), np.float32)), ValueError, "w: expected C/groups"),
    "groups_not_dividing_c": (dict(groups=3, w=np.zeros((6, 1, 3, 3), np.float32)), ValueError, "groups: 3 does not divide the input channels"),
    "groups_not_dividing_k": (dict(groups=2, w=np.zeros((5, 2, 3, 3), np.float32)), ValueError, "groups: 2 does not divide the output channels"),
    "groups_zero": (dict(groups=0), ValueError, "groups: expected an int >= 1"),
    "stride_zero": (dict(stride=0), ValueError, "stride: expected values >= 1"),
    "stride_negative": (dict(stride=(1, -2)), ValueError, "stride: expected values >= 1"),
    "stride_float": (dict(stride=1.5), TypeError, "stride: expected an int"),
    "dilation_zero": (dict(dilation=0), ValueError, "dilation: expected values >= 1"),
    "padding_negative": (dict(padding=-1), ValueError, "padding: expected values >= 0"),
    "padding_bad_string": (dict(padding="full"), ValueError, "padding: expected an int, a pair"),
    "padding_triple": (dict(padding=(1, 1, 1)), ValueError, "padding: expected an int or a pair"),
    "kernel_too_large": (dict(w=np.zeros((6, 4, 9, 3), np.float32)), ValueError, "output size would be 0x6"),
    "dilated_kernel_too_large": (dict(dilation=4), ValueError, r"kernel 3x3 with dilation \(4, 4\)"),
    "same_with_stride": (dict(padding="same", stride=2), ValueError, "padding: 'same' needs stride 1"),
    "bias_shape": (dict(b=np.zeros(5, np.float32)), ValueError, r"b: expected shape \(6,\)"),
    "bias_rank": (dict(b=np.zeros((6, 1), np.float32)), ValueError, r"b: expected shape \(6,\)"),
    "x_dtype": (dict(x=X.astype(np.float64)), TypeError, "x: expected dtype float32, got float64"),
    "w_dtype": (dict(w=W.astype(np.int32)), TypeError, "w: expected dtype float32"),
    "b_dtype": (dict(b=np.zeros(6, np.float16)), TypeError, "b: expected dtype float32"),
    "x_not_array": (dict(x=X.tolist()), TypeError, "x: expected a numpy.ndarray"),
    "empty_batch": (dict(x=np.zeros((0, 4, 8, 8), np.float32)), ValueError, "x: every dimension must be >= 1"),
    "backend": (dict(backend="gpu"), ValueError, "backend: expected one of"),
}


@pytest.mark.parametrize("bad", BAD_CONV.values(), ids=BAD_CONV.keys())
def test_conv2d_bad_input(bad):
    overrides, exc, match = bad
    args = dict(x=X, w=W, b=None, stride=1, padding=0, dilation=1, groups=1, backend=None)
    args.update(overrides)
    with pytest.raises(exc, match=match):
        ops.conv2d_forward(**args)
    if args["backend"] is None and exc is ValueError:  # the reference validates the same way
        del args["backend"]
        with pytest.raises(exc, match=match):
            reference.conv2d_forward(**args)


XT = np.zeros((2, 4, 5, 5), np.float32)
WT = np.zeros((4, 3, 3, 3), np.float32)

BAD_TRANSPOSE = {
    "channels_mismatch": (dict(w=np.zeros((5, 3, 3, 3), np.float32)), ValueError, r"w: expected w.shape\[0\] = C_in = 4"),
    "groups_not_dividing": (dict(groups=3), ValueError, "groups: 3 does not divide the input channels"),
    "output_padding_too_large": (dict(stride=2, output_padding=2), ValueError, "output_padding: must be smaller than stride or dilation"),
    "output_padding_stride1": (dict(output_padding=1), ValueError, "output_padding: must be smaller"),
    "output_padding_negative": (dict(output_padding=-1), ValueError, "output_padding: expected values >= 0"),
    "padding_string": (dict(padding="same"), ValueError, "padding: conv_transpose2d takes an int or a pair"),
    "output_too_small": (dict(padding=4), ValueError, "output size would be -1x-1"),
    "bias_shape": (dict(b=np.zeros(4, np.float32)), ValueError, r"b: expected shape \(3,\)"),
    "x_dtype": (dict(x=XT.astype(np.float64)), TypeError, "x: expected dtype float32"),
    "x_rank": (dict(x=np.zeros((4, 5, 5), np.float32)), ValueError, "x: expected a 4-D"),
    "stride_zero": (dict(stride=0), ValueError, "stride: expected values >= 1"),
}


@pytest.mark.parametrize("bad", BAD_TRANSPOSE.values(), ids=BAD_TRANSPOSE.keys())
def test_conv_transpose2d_bad_input(bad):
    overrides, exc, match = bad
    args = dict(x=XT, w=WT, b=None, stride=1, padding=0, output_padding=0)
    args.update(overrides)
    with pytest.raises(exc, match=match):
        ops.conv_transpose2d_forward(**args)


def test_backward_bad_input():
    out, cache = ops.conv2d_forward(X, W)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 6, 6, 6\)"):
        ops.conv2d_backward(np.zeros((2, 6, 6, 5), np.float32), cache)
    with pytest.raises(TypeError, match="dout: expected dtype float32"):
        ops.conv2d_backward(out.astype(np.float64), cache)
    with pytest.raises(TypeError, match="cache: expected the cache returned by conv2d_forward"):
        ops.conv2d_backward(out, ("not", "a", "cache"))
    _, tcache = ops.conv_transpose2d_forward(XT, WT)
    with pytest.raises(TypeError, match="cache: expected the cache returned by conv2d_forward"):
        ops.conv2d_backward(out, tcache)
    with pytest.raises(TypeError, match="need_dx: expected a bool"):
        ops.conv2d_backward(out, cache, need_dx=0)


def test_kernel_rechecks_shapes():
    # The raw binding refuses arrays whose shapes disagree (memory safety without Python checks).
    out = np.zeros((2, 6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="w: expected 4/1 input channels"):
        _cpu.conv2d_forward(out, X, np.zeros((6, 3, 3, 3), np.float32), None, 1, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 6, P, Q\)"):
        _cpu.conv2d_forward(np.zeros((2, 5, 6, 6), np.float32), X, W, None, 1, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="stride: must be >= 1"):
        _cpu.conv2d_forward(out, X, W, None, 0, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match=r"b: expected shape \(6,\)"):
        _cpu.conv2d_forward(out, X, W, np.zeros(5, np.float32), 1, 1, 0, 0, 1, 1, 1)
    with pytest.raises(ValueError, match="x: expected a C-contiguous array"):
        _cpu.conv2d_forward(out, X[:, :, :, ::-1], W, None, 1, 1, 0, 0, 1, 1, 1)
