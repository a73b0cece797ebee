"""Pooling: C++ kernels vs the NumPy reference, the reference vs plain loops, the tie and
NaN rules, float64 finite-difference gradients of the reference, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import ops, reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

def make_input(shape, kind, seed=0):
    """float32 test input. normal: distinct values; ties: small integers (many ties);
    negative: huge negative values and -inf (padding must still never win)."""
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "ties":
        return rng.integers(-1, 2, size=shape).astype(np.float32)
    if kind == "negative":
        x = -1e30 * (1 + rng.random(shape)).astype(np.float32)
        x[rng.random(shape) < 0.3] = -np.inf
        return x.astype(np.float32)
    raise ValueError(kind)


# (x shape (N, C, H, W), kernel_size, stride, padding): batch 1, odd and prime sizes,
# H != W, channels 1/3/prime, kernels 1/2/3/5 and pairs, strides 1-4 (overlapping windows
# when stride < kernel), padding 0-2, the two fast paths (2x2/2 and 3x3/2 pad 1).
CASES = [
    ((2, 3, 28, 28), 2, None, 0),  # fast path 2x2/2, tiled backward
    ((1, 3, 7, 9), 2, 2, 0),  # fast path, odd sizes: last row / column uncovered
    ((2, 5, 13, 11), 2, 2, 1),  # 2x2/2 with padding
    ((1, 3, 17, 19), 3, 2, 1),  # fast path 3x3/2 pad 1 (ResNet stem)
    ((2, 1, 8, 8), 3, 2, 0),
    ((1, 7, 5, 5), 3, 2, 1),
    ((1, 1, 5, 7), 1, 1, 0),  # 1x1: identity
    ((2, 3, 9, 8), 1, 2, 0),  # 1x1 subsampling
    ((1, 3, 11, 13), 3, 1, 1),  # overlapping, stride 1
    ((2, 2, 12, 10), 3, 1, 0),
    ((1, 3, 10, 10), 5, 3, 2),
    ((1, 2, 23, 29), 5, 1, 2),  # stride 1, big overlap
    ((3, 3, 16, 16), 5, 4, 0),
    ((1, 5, 11, 13), (2, 3), (1, 2), (1, 1)),  # rectangular window and stride
    ((2, 3, 7, 31), (3, 2), (2, 1), (1, 0)),
    ((1, 13, 9, 7), 4, 3, 2),  # stride < kernel, pad = k/2
    ((1, 2, 6, 6), 2, 1, 1),
    ((2, 3, 14, 15), 3, 3, 1),
    ((1, 1, 31, 37), 4, 4, 2),
    ((1, 3, 5, 5), 5, 1, 0),  # kernel == input: one output
    ((1, 2, 3, 3), 5, 1, 2),  # kernel larger than the input, fits the padding
    ((2, 3, 20, 21), 2, 3, 0),  # stride > kernel: gaps between windows
    ((1, 3, 9, 40), (1, 4), (1, 4), 0),
    ((1, 2, 9, 71), 2, 2, 0),  # rows longer than a vector, not a multiple of one
    ((1, 2, 5, 67), 3, 2, 1),
    ((1, 1, 4, 64), 3, 1, 1),  # rows a multiple of every vector width
    ((0, 3, 8, 8), 2, 2, 0),  # empty batch
]


def _id(case):
    shape, k, s, p = case
    return f"{'x'.join(map(str, shape))}-k{k}-s{s}-p{p}".replace(" ", "")


# ---------------------------------------------------------------------------
# Kernel vs reference
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "ties", "negative"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool2d_matches_reference(case, kind, simd_path):
    shape, k, s, p = case
    x = make_input(shape, kind)
    out, cache = ops.max_pool2d_forward(x, k, s, p)
    r_out, r_cache = ref.max_pool2d_forward(x, k, s, p)
    assert out.dtype == np.float32 and out.shape == r_out.shape
    # Selection involves no arithmetic: the values and the chosen elements are identical.
    np.testing.assert_array_equal(out, r_out)
    np.testing.assert_array_equal(cache.argmax, r_cache[3])
    np.testing.assert_array_equal(ops.max_pool2d(x, k, s, p), out)

    dout = make_input(out.shape, "normal", seed=1)
    (dx,) = ops.max_pool2d_backward(dout, cache)
    (r_dx,) = ref.max_pool2d_backward(dout, r_cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(dx, r_dx, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_avg_pool2d_matches_reference(case, simd_path):
    shape, k, s, p = case
    x = make_input(shape, "normal")
    out, cache = ops.avg_pool2d_forward(x, k, s, p)
    r_out, r_cache = ref.avg_pool2d_forward(x, k, s, p)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, r_out, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ops.avg_pool2d(x, k, s, p), out)

    dout = make_input(out.shape, "normal", seed=1)
    (dx,) = ops.avg_pool2d_backward(dout, cache)
    (r_dx,) = ref.avg_pool2d_backward(dout, r_cache)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(dx, r_dx, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 7, 7), (1, 13, 5, 11), (4, 64, 1, 3), (3, 5, 56, 56), (0, 3, 4, 4)])
def test_global_avg_pool2d_matches_reference(shape, simd_path):
    x = make_input(shape, "normal")
    out, cache = ops.global_avg_pool2d_forward(x)
    r_out, r_cache = ref.global_avg_pool2d_forward(x)
    assert out.shape == shape[:2] and out.dtype == np.float32
    np.testing.assert_allclose(out, r_out, rtol=1e-5, atol=1e-6)
    dout = make_input(out.shape, "normal", seed=1)
    (dx,) = ops.global_avg_pool2d_backward(dout, cache)
    (r_dx,) = ref.global_avg_pool2d_backward(dout, r_cache)
    np.testing.assert_allclose(dx, r_dx, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "op", ["max_pool2d", "avg_pool2d"],
)
def test_reference_backend_through_ops(op):
    x = make_input((2, 3, 9, 10), "ties")
    out, cache = getattr(ops, f"{op}_forward")(x, 3, 2, 1, backend="reference")
    r_out, r_cache = getattr(ref, f"{op}_forward")(x, 3, 2, 1)
    np.testing.assert_array_equal(out, r_out)
    dout = make_input(out.shape, "normal", seed=2)
    np.testing.assert_array_equal(
        getattr(ops, f"{op}_backward")(dout, cache)[0], getattr(ref, f"{op}_backward")(dout, r_cache)[0]
    )
    np.testing.assert_array_equal(getattr(ops, op)(x, 3, 2, 1, backend="reference"), r_out)


def test_global_avg_pool2d_reference_backend_through_ops():
    x = make_input((2, 3, 5, 4), "normal")
    out, cache = ops.global_avg_pool2d_forward(x, backend="reference")
    np.testing.assert_array_equal(out, ref.global_avg_pool2d(x))
    (dx,) = ops.global_avg_pool2d_backward(np.ones((2, 3), np.float32), cache)
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 20))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_give_identical_results(threads):
    x = make_input((3, 7, 19, 17), "normal")
    before = fl.get_num_threads()
    try:
        fl.set_num_threads(1)
        expect = [ops.max_pool2d_forward(x, 3, 2, 1), ops.avg_pool2d_forward(x, 3, 1, 1)]
        fl.set_num_threads(threads)
        got = [ops.max_pool2d_forward(x, 3, 2, 1), ops.avg_pool2d_forward(x, 3, 1, 1)]
        dout = make_input(expect[0][0].shape, "normal", 1)
        dout_a = make_input(expect[1][0].shape, "normal", 2)
        np.testing.assert_array_equal(got[0][0], expect[0][0])
        np.testing.assert_array_equal(got[1][0], expect[1][0])
        np.testing.assert_array_equal(ops.max_pool2d_backward(dout, got[0][1])[0], ops.max_pool2d_backward(dout, expect[0][1])[0])
        np.testing.assert_array_equal(ops.avg_pool2d_backward(dout_a, got[1][1])[0], ops.avg_pool2d_backward(dout_a, expect[1][1])[0])
    finally:
        fl.set_num_threads(before)


def test_non_contiguous_input_is_copied():
    base = make_input((2, 6, 12, 14), "normal")
    x = base[:, ::2, :, ::-1]  # strided and reversed view
    for op in (ops.max_pool2d, ops.avg_pool2d):
        np.testing.assert_array_equal(op(x, 2), op(np.ascontiguousarray(x), 2))
    np.testing.assert_array_equal(ops.global_avg_pool2d(x), ops.global_avg_pool2d(np.ascontiguousarray(x)))
    out, cache = ops.max_pool2d_forward(x, 2)
    dout = make_input(out.shape, "normal", 1)
    (dx,) = ops.max_pool2d_backward(dout[:, :, :, ::-1].copy()[:, :, :, ::-1], cache)  # view dout
    np.testing.assert_array_equal(dx, ops.max_pool2d_backward(dout, ops.max_pool2d_forward(x, 2)[1])[0])


# ---------------------------------------------------------------------------
# The reference against plain loops, and the documented rules
# ---------------------------------------------------------------------------


def naive_max_pool(x, k, s, p):
    """Literal loops: the first maximum in row-major window order, NaN above every
    number, padding never chosen. Returns (out, argmax)."""
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.empty((n, c, oh, ow), x.dtype)
    arg = np.empty((n, c, oh, ow), np.int64)
    for i, j, a, b in itertools.product(range(n), range(c), range(oh), range(ow)):
        best, best_i = None, None
        for r in range(a * sh - ph, a * sh - ph + kh):
            for q in range(b * sw - pw, b * sw - pw + kw):
                if not (0 <= r < h and 0 <= q < w):
                    continue
                v = x[i, j, r, q]
                if best is None or v > best or (math.isnan(v) and not math.isnan(best)):
                    best, best_i = v, r * w + q
        out[i, j, a, b], arg[i, j, a, b] = best, best_i
    return out, arg


def naive_avg_pool(x, k, s, p):
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, oh, ow), np.float64)
    for i, j, a, b in itertools.product(range(n), range(c), range(oh), range(ow)):
        for r in range(max(a * sh - ph, 0), min(a * sh - ph + kh, h)):
            for q in range(max(b * sw - pw, 0), min(b * sw - pw + kw, w)):
                out[i, j, a, b] += x[i, j, r, q]
    return out / (kh * kw)


NAIVE_CASES = [
    ((1, 2, 5, 6), 2, 2, 0),
    ((2, 1, 7, 5), 3, 2, 1),
    ((1, 2, 6, 7), 3, 1, 1),
    ((1, 1, 8, 9), (2, 3), (3, 1), (1, 1)),
    ((1, 1, 4, 4), 4, 1, 2),
]


@pytest.mark.parametrize("case", NAIVE_CASES, ids=_id)
def test_reference_and_kernel_match_plain_loops(case):
    """Small integers (ties everywhere), NaN and -inf: the reference and the kernel both
    follow the documented rule, checked against literal loops."""
    shape, k, s, p = case
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 2, size=shape).astype(np.float32)
    x[rng.random(shape) < 0.1] = np.nan
    x[rng.random(shape) < 0.15] = -np.inf
    x[0, 0, 0, :] = -np.inf  # a row of -inf next to the padding
    e_out, e_arg = naive_max_pool(x, k, s, p)
    r_out, r_cache = ref.max_pool2d_forward(x, k, s, p)
    out, cache = ops.max_pool2d_forward(x, k, s, p)
    for o, a in ((r_out, r_cache[3]), (out, cache.argmax)):
        np.testing.assert_array_equal(o, e_out)  # NaN == NaN for assert_array_equal
        np.testing.assert_array_equal(a, e_arg)
    xf = np.nan_to_num(x, nan=0.5, neginf=-3.0)
    np.testing.assert_allclose(ref.avg_pool2d(xf, k, s, p), naive_avg_pool(xf, k, s, p), rtol=1e-6)
    np.testing.assert_allclose(ops.avg_pool2d(xf, k, s, p), naive_avg_pool(xf, k, s, p), rtol=1e-6)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 1))])
def test_ties_route_the_gradient_to_the_first_element(backend, k, s, p):
    """Constant input: every element ties, so each window sends its whole gradient to its
    first input element in row-major order (its top-left one inside the input)."""
    x = np.ones((1, 2, 7, 8), np.float32)
    out, cache = ops.max_pool2d_forward(x, k, s, p, backend=backend)
    dout = np.ones_like(out)
    (dx,) = ops.max_pool2d_backward(dout, cache)
    (kh, kw), (sh, sw), (ph, pw) = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    expect = np.zeros((7, 8), np.float32)
    for a, b in itertools.product(range(out.shape[2]), range(out.shape[3])):
        expect[max(a * sh - ph, 0), max(b * sw - pw, 0)] += 1
    np.testing.assert_array_equal(dx[0, 0], expect)
    np.testing.assert_array_equal(dx[0, 1], expect)
    assert dx.sum() == out.size  # exactly one element per window


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_nan_becomes_the_max_and_takes_the_gradient(backend):
    x = np.array([[[[1.0, np.nan, 5.0, np.nan], [np.nan, 2.0, 7.0, 3.0], [np.inf, 0.0, -1.0, -2.0], [1.0, 1.0, np.nan, np.nan]]]], np.float32)
    out, cache = ops.max_pool2d_forward(x, 2, backend=backend)
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out[0, 0, 0, 1]) and np.isnan(out[0, 0, 1, 1])
    assert out[0, 0, 1, 0] == np.inf
    (dx,) = ops.max_pool2d_backward(np.ones_like(out), cache)
    expect = np.zeros((4, 4), np.float32)
    expect[0, 1] = expect[0, 3] = expect[2, 0] = expect[3, 2] = 1  # first NaN / the inf
    np.testing.assert_array_equal(dx[0, 0], expect)
    # avg pool: NaN propagates to every output whose window holds it
    a = ops.avg_pool2d(x, 2, backend=backend)
    assert np.isnan(a).tolist() == [[[[True, True], [False, True]]]]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_padding_never_wins(backend):
    """-inf padding: all -inf or huge negative input still outputs the input's values,
    and the gradient lands on an input element."""
    x = np.full((1, 1, 3, 5), -np.inf, np.float32)
    out, cache = ops.max_pool2d_forward(x, 3, 2, 1, backend=backend)
    assert np.all(out == -np.inf)
    (dx,) = ops.max_pool2d_backward(np.ones_like(out), cache)
    assert dx.sum() == out.size and dx[0, 0, 0, 0] == 1  # window (0, 0): its first input element
    x = np.full((1, 1, 3, 5), -3e38, np.float32)
    assert np.all(ops.max_pool2d(x, 2, 1, 1, backend=backend) == np.float32(-3e38))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_avg_pool2d_counts_padding_in_the_divisor(backend):
    x = np.ones((1, 1, 4, 4), np.float32)
    out = ops.avg_pool2d(x, 3, 1, 1, backend=backend)
    np.testing.assert_allclose(out[0, 0], [[4 / 9, 6 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 1, 6 / 9], [6 / 9, 1, 1, 6 / 9], [4 / 9, 6 / 9, 6 / 9, 4 / 9]], rtol=1e-6)


def test_max_backward_rejects_a_corrupted_argmax():
    x = make_input((1, 2, 6, 6), "normal")
    out, cache = ops.max_pool2d_forward(x, 3, 1, 1)  # general (scatter) backward
    cache.argmax[0, 1, 2, 2] = 36  # one past the plane
    with pytest.raises(ValueError, match="cache: 1 argmax entries lie outside"):
        ops.max_pool2d_backward(np.ones_like(out), cache)
    out, cache = ops.max_pool2d_forward(x, 2)  # tiled 2x2 backward: nothing written outside the window
    cache.argmax[...] = -(2**31)
    (dx,) = ops.max_pool2d_backward(np.ones_like(out), cache)
    assert not dx.any()


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1)), (3, 1, 0)])
def test_matches_pytorch(k, s, p):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional cross-check")
    F = torch.nn.functional
    x = make_input((2, 3, 11, 10), "ties")
    out, cache = ops.max_pool2d_forward(x, k, s, p)
    t_out, t_idx = F.max_pool2d(torch.from_numpy(x), k, s, p, return_indices=True)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(cache.argmax, t_idx.numpy())  # same tie rule
    np.testing.assert_allclose(ops.avg_pool2d(x, k, s, p), F.avg_pool2d(torch.from_numpy(x), k, s, p).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        ops.global_avg_pool2d(x), F.adaptive_avg_pool2d(torch.from_numpy(x), 1).numpy()[:, :, 0, 0], rtol=1e-6
    )


# ---------------------------------------------------------------------------
# Float64 finite-difference gradients of the reference
# ---------------------------------------------------------------------------


def distinct_input(shape, seed=0):
    """float64 values at least 0.01 apart (no ties, so max pool is differentiable)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01 - 0.3


# (op, x shape, kwargs): one line per op and geometry.
GRAD_CASES = [
    ("max_pool2d", (2, 2, 5, 6), dict(kernel_size=2)),
    ("max_pool2d", (1, 3, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", (1, 2, 6, 7), dict(kernel_size=(2, 3), stride=1, padding=(1, 0))),
    ("avg_pool2d", (2, 2, 5, 6), dict(kernel_size=2)),
    ("avg_pool2d", (1, 3, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", (1, 2, 6, 7), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1))),
    ("global_avg_pool2d", (2, 3, 4, 5), dict()),
]


@pytest.mark.parametrize("op,shape,kwargs", GRAD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_reference_gradient_by_finite_differences(op, shape, kwargs):
    x = distinct_input(shape)
    fwd = getattr(ref, f"{op}_forward")
    out, cache = fwd(x, **kwargs)
    assert out.dtype == np.float64
    dout = np.random.default_rng(1).standard_normal(out.shape)
    (dx,) = getattr(ref, f"{op}_backward")(dout, cache)
    num = numerical_gradient(lambda: fwd(x, **kwargs)[0], x, dout, h=1e-5)
    assert rel_error(dx, num) < 1e-8


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

X = np.zeros((2, 3, 8, 8), np.float32)

BAD = [
    (lambda: ops.max_pool2d(np.zeros((3, 8, 8), np.float32), 2), ValueError, r"x: expected a 4-D"),
    (lambda: ops.avg_pool2d(np.zeros((1, 2, 3, 8, 8), np.float32), 2), ValueError, r"x: expected a 4-D"),
    (lambda: ops.global_avg_pool2d(np.zeros((3, 8), np.float32)), ValueError, r"x: expected a 4-D"),
    (lambda: ops.max_pool2d(X.astype(np.float64), 2), TypeError, r"x: expected dtype float32"),
    (lambda: ops.avg_pool2d(X.astype(np.int32), 2), TypeError, r"x: expected dtype float32"),
    (lambda: ops.global_avg_pool2d(X.astype(np.float16)), TypeError, r"x: expected dtype float32"),
    (lambda: ops.max_pool2d(X.tolist(), 2), TypeError, r"x: expected a numpy.ndarray"),
    (lambda: ops.max_pool2d(X, 9), ValueError, r"kernel_size: \(9, 9\) is larger than the padded input \(8, 8\)"),
    (lambda: ops.avg_pool2d(X, (3, 11), padding=1), ValueError, r"kernel_size: .*padded input \(10, 10\).*output size"),
    (lambda: ops.max_pool2d(X, 0), ValueError, r"kernel_size: expected positive"),
    (lambda: ops.max_pool2d(X, (2, -1)), ValueError, r"kernel_size: expected positive"),
    (lambda: ops.max_pool2d(X, 2, stride=0), ValueError, r"stride: expected positive"),
    (lambda: ops.avg_pool2d(X, 2, stride=(1, -2)), ValueError, r"stride: expected positive"),
    (lambda: ops.max_pool2d(X, 2, padding=-1), ValueError, r"padding: expected non-negative"),
    (lambda: ops.max_pool2d(X, 3, padding=2), ValueError, r"padding: expected at most half"),
    (lambda: ops.avg_pool2d(X, (2, 4), padding=(1, 3)), ValueError, r"padding: expected at most half"),
    (lambda: ops.max_pool2d(X, 2.0), TypeError, r"kernel_size: expected an int"),
    (lambda: ops.max_pool2d(X, True), TypeError, r"kernel_size: expected an int"),
    (lambda: ops.max_pool2d(X, "2"), TypeError, r"kernel_size: expected an int"),
    (lambda: ops.max_pool2d(X, (2, 2, 2)), ValueError, r"kernel_size: expected an int or a pair"),
    (lambda: ops.avg_pool2d(X, 2, stride=1.5), TypeError, r"stride: expected an int"),
    (lambda: ops.avg_pool2d(X, 2, padding=(0.5, 0)), TypeError, r"padding: expected an int"),
    (lambda: ops.max_pool2d(np.zeros((1, 1, 0, 4), np.float32), 1), ValueError, r"x: expected a spatial size"),
    (lambda: ops.global_avg_pool2d(np.zeros((1, 1, 4, 0), np.float32)), ValueError, r"x: expected a spatial size"),
    (lambda: ops.max_pool2d(X, 2, backend="gpu"), ValueError, r"backend: expected one of"),
    (lambda: ref.max_pool2d(X.astype(np.int64), 2), TypeError, r"x: expected a floating-point array"),
    (lambda: ref.avg_pool2d(X, 9), ValueError, r"kernel_size: .* larger than the padded input"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "global_avg_pool2d"])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_bad_backward_arguments(op, backend):
    args = () if op == "global_avg_pool2d" else (2,)
    out, cache = getattr(ops, f"{op}_forward")(X, *args, backend=backend)
    bwd = getattr(ops, f"{op}_backward")
    with pytest.raises(ValueError, match=r"dout: expected shape"):
        bwd(np.ones(out.shape[:-1] + (out.shape[-1] + 1,), np.float32), cache)
    with pytest.raises(ValueError, match=r"dout: expected a"):
        bwd(np.ones(out.shape + (1,), np.float32), cache)
    with pytest.raises(TypeError, match=r"dout: expected dtype float32"):
        bwd(np.ones(out.shape, np.float64), cache)
    with pytest.raises(TypeError, match=r"cache: expected the cache returned by"):
        bwd(np.ones(out.shape, np.float32), ("not", "a", "cache"))
    other = "avg_pool2d" if op == "max_pool2d" else "max_pool2d"
    _, other_cache = getattr(ops, f"{other}_forward")(X, 2, backend=backend)
    with pytest.raises(TypeError, match=r"cache: expected the cache returned by"):
        bwd(np.ones(out.shape, np.float32), other_cache)


def test_kernel_bindings_recheck_shapes():
    """The C++ side re-checks what memory safety depends on, whatever Python passes."""
    from fastlayers import _cpu

    out = np.empty((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 3, 4, 4\)"):
        _cpu.max_pool2d_forward(np.empty((2, 3, 4, 5), np.float32), None, X, 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match=r"argmax: expected 96 elements"):
        _cpu.max_pool2d_forward(out, np.empty((2, 3, 4, 3), np.int32), X, 2, 2, 2, 2, 0, 0)
    with pytest.raises(TypeError, match=r"argmax: expected dtype int32"):
        _cpu.max_pool2d_forward(out, np.empty((2, 3, 4, 4), np.int64), X, 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match=r"padding: expected 0 <= padding <= kernel_size / 2"):
        _cpu.avg_pool2d_forward(np.empty((2, 3, 11, 11), np.float32), X, 2, 2, 1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"kernel_size: \(9, 2\) is larger"):
        _cpu.avg_pool2d_forward(out, X, 9, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match=r"x: expected a C-contiguous"):
        _cpu.avg_pool2d_forward(out, np.zeros((2, 3, 8, 16), np.float32)[:, :, :, ::2], 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match=r"dout: expected shape \(2, 3\)"):
        _cpu.global_avg_pool2d_backward(np.empty_like(X), np.ones((3, 2), np.float32))
