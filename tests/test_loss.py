"""Tests of the loss family: softmax, log_softmax, softmax_cross_entropy,
binary_cross_entropy_with_logits, mse_loss (fastlayers.ops vs fastlayers.reference).

The oracle is the NumPy reference evaluated in float64 on the float32 inputs, so the
error measured is the kernel's own. Tables: one line per case.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers
from fastlayers import _cpu, ops
from fastlayers import reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

# Absolute floor of every comparison: the kernels' exp flushes results below float32's
# smallest normal number (e^-87.3) to 0, where float64 still has e.g. 1e-43.
TINY32 = float(np.finfo(np.float32).tiny)


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def assert_close(got, want, rtol=1e-5, rel_atol=1e-6, what="result", scale=None):
    """|got - want| <= rtol * scale + rel_atol * max|want| elementwise; NaN only where want is NaN.

    scale defaults to |want|. A softmax gradient passes the magnitude its float32
    rounding error grows with instead (see softmax_dx_scale), since its exact value can
    be far smaller than the terms that cancel in it. The rel_atol term covers float32
    cancellation in values much smaller than the array's largest.
    """
    got = np.asarray(got)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{what}: NaN at different positions"
    g = got.astype(np.float64)[~nan]
    w = want[~nan]
    if w.size == 0:
        return
    scale = np.abs(w) if scale is None else np.asarray(scale, np.float64)[~nan]
    tol = rtol * scale + rel_atol * np.max(np.abs(w)) + TINY32
    err = np.abs(g - w)
    bad = ~(err <= tol)
    if bad.any():
        i = int(np.argmax(err - tol))
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {w.size} elements outside tolerance; worst: got {g[i]!r}, "
            f"expected {w[i]!r}, |err|={err[i]:.3g} > tol={tol[i]:.3g}"
        )


def softmax_dx_scale(name, y64, dout, axis):
    """The magnitude of the terms of the (log_)softmax gradient (float64):

    softmax:      y_i (|dout_i| + sum_j |dout_j| y_j)
    log_softmax:  |dout_i| + exp(y_i) sum_j |dout_j|
    """
    a = np.abs(np.asarray(dout, np.float64))
    if name == "softmax":
        return y64 * (a + np.sum(a * y64, axis=axis, keepdims=True))
    return a + np.exp(y64) * np.sum(a, axis=axis, keepdims=True)


def ce_dlogits_scale(cache64, dloss=1.0):
    """Magnitude of the terms of the cross-entropy gradient: |dloss| s (p + onehot)."""
    _, p, labels, s = cache64
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    return abs(dloss) * s * (p + onehot)


def assert_loss_close(got, want, rtol=1e-5, what="loss"):
    assert isinstance(got, float), f"{what}: expected a Python float, got {type(got).__name__}"
    assert abs(got - want) <= rtol * abs(want) + 1e-7 or (np.isnan(want) and np.isnan(got)), (
        f"{what}: got {got!r}, expected {want!r}"
    )


def test_assert_close_catches_small_errors():
    """The tolerance used below is tight enough to notice a 1e-4 relative error."""
    y = ref.softmax(np.random.default_rng(0).standard_normal((4, 1000)))
    with pytest.raises(AssertionError):
        assert_close(y * (1 + 1e-4), y)
    with pytest.raises(AssertionError):
        assert_close(np.where(np.arange(1000) == 3, y + 1e-5, y), y)


# ---------------------------------------------------------------------------
# softmax / log_softmax vs the reference, every SIMD path
# ---------------------------------------------------------------------------

SOFTMAX_CASES = [
    # (shape, axis)
    ((1, 1), -1),
    ((1, 7), -1),
    ((3, 1), -1),
    ((5, 7), -1),
    ((3, 17), -1),
    ((128, 10), -1),
    ((2, 1000), -1),
    ((2, 1001), -1),
    ((2, 10000), -1),
    ((7,), 0),
    ((2, 3, 4, 5), 1),  # NCHW along C: strided (dim, inner) tiles
    ((2, 3, 4, 5), 0),
    ((2, 3, 4, 5), 2),
    ((2, 3, 4, 5), -1),
    ((1, 1, 1, 1), 1),
    ((2, 7, 5, 5), 1),
    ((3, 17, 33), 1),
    ((2, 1000, 3), 1),  # big dim, narrow inner
    ((2, 300, 500), 1),  # inner split into column tiles with a remainder
    ((4, 5), 0),  # reduce over rows of a 2-D array
    ((0, 5), -1),
    ((5, 0), -1),
    ((2, 0, 3), 1),
]
SOFTMAX_OPS = [
    # (name, ops forward, ops backward, reference forward, reference backward)
    ("softmax", ops.softmax_forward, ops.softmax_backward, ref.softmax_forward, ref.softmax_backward),
    (
        "log_softmax",
        ops.log_softmax_forward,
        ops.log_softmax_backward,
        ref.log_softmax_forward,
        ref.log_softmax_backward,
    ),
]


@pytest.mark.parametrize("op", SOFTMAX_OPS, ids=lambda o: o[0])
@pytest.mark.parametrize("shape, axis", SOFTMAX_CASES, ids=str)
def test_softmax_matches_reference(simd_path, rng, op, shape, axis):
    _, fwd, bwd, ref_fwd, ref_bwd = op
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    y, cache = fwd(x, axis)
    y64, cache64 = ref_fwd(f64(x), axis)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert_close(y, y64, what="y")
    (dx,) = bwd(dout, cache)
    (dx64,) = ref_bwd(f64(dout), cache64)
    assert dx.dtype == np.float32
    scale = softmax_dx_scale(op[0], y64, dout, axis)
    assert_close(dx, dx64, rtol=1e-5, rel_atol=0, scale=scale, what="dx")


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_forward_only_and_reference_backend(rng, name):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    dout = rng.standard_normal((3, 4, 5)).astype(np.float32)
    fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    y, cache = fwd(x, 1)
    np.testing.assert_array_equal(getattr(ops, name)(x, axis=1), y)
    y_ref, cache_ref = fwd(x, 1, backend="reference")
    assert y_ref.dtype == np.float32
    assert_close(y, y_ref, rtol=1e-5, what="y (reference backend)")
    assert_close(bwd(dout, cache)[0], bwd(dout, cache_ref)[0], rtol=1e-4, rel_atol=1e-5, what="dx")
    np.testing.assert_array_equal(getattr(ref, name)(f64(x), 1), getattr(ref, f"{name}_forward")(f64(x), 1)[0])


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.T,  # transposed (2-D)
        lambda x: x[:, ::2],  # column stride 2
        lambda x: x[::-1],  # negative stride
    ],
    ids=["transposed", "strided", "reversed"],
)
def test_softmax_non_contiguous_input(rng, make):
    base = rng.standard_normal((6, 10)).astype(np.float32)
    x = make(base)
    dout = make(rng.standard_normal((6, 10)).astype(np.float32))
    for name in ("softmax", "log_softmax"):
        y, cache = getattr(ops, f"{name}_forward")(x)
        y64, cache64 = getattr(ref, f"{name}_forward")(f64(x))
        assert_close(y, y64, what=name)
        assert_close(getattr(ops, f"{name}_backward")(dout, cache)[0],
                     getattr(ref, f"{name}_backward")(f64(dout), cache64)[0], rtol=1e-4, rel_atol=1e-5)


# ---------------------------------------------------------------------------
# Losses vs the reference, every SIMD path
# ---------------------------------------------------------------------------

CE_CASES = [
    # (n, c, reduction, dloss)
    (1, 1, "mean", 1.0),
    (1, 7, "mean", 1.0),
    (5, 1, "sum", 1.0),
    (3, 2, "mean", -0.5),
    (64, 33, "sum", 2.0),
    (128, 10, "mean", 1.0),
    (7, 1000, "mean", 1.0),
    (3, 1001, "sum", 0.25),
    (2, 10000, "mean", 1.0),
]


@pytest.mark.parametrize("n, c, reduction, dloss", CE_CASES, ids=str)
def test_softmax_cross_entropy_matches_reference(simd_path, rng, n, c, reduction, dloss):
    logits = (3 * rng.standard_normal((n, c))).astype(np.float32)
    labels = rng.integers(0, c, n)
    loss, cache = ops.softmax_cross_entropy_forward(logits, labels, reduction)
    loss64, cache64 = ref.softmax_cross_entropy_forward(f64(logits), labels, reduction)
    assert_loss_close(loss, loss64)
    assert ops.softmax_cross_entropy(logits, labels, reduction=reduction) == loss
    (dlogits,) = ops.softmax_cross_entropy_backward(dloss, cache)
    (d64,) = ref.softmax_cross_entropy_backward(dloss, cache64)
    assert dlogits.dtype == np.float32
    assert_close(dlogits, d64, rtol=1e-5, rel_atol=0, scale=ce_dlogits_scale(cache64, dloss), what="dlogits")


ELEMENTWISE_SHAPES = [(1,), (7,), (3, 5), (2, 3, 4, 5), (1001,), (3, 10000), (40000,)]
TARGET_KINDS = ["uniform", "binary", "outside"]  # outside [0, 1]: allowed, just computed


def make_targets(rng, shape, kind):
    if kind == "uniform":
        return rng.uniform(0, 1, shape).astype(np.float32)
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float32)
    return rng.uniform(-1, 2, shape).astype(np.float32)


@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=str)
def test_bce_with_logits_matches_reference(simd_path, rng, shape, kind):
    x = (4 * rng.standard_normal(shape)).astype(np.float32)
    t = make_targets(rng, shape, kind)
    loss, cache = ops.binary_cross_entropy_with_logits_forward(x, t)
    loss64, cache64 = ref.binary_cross_entropy_with_logits_forward(f64(x), f64(t))
    assert_loss_close(loss, loss64)
    dx, dt = ops.binary_cross_entropy_with_logits_backward(0.5, cache)
    dx64, dt64 = ref.binary_cross_entropy_with_logits_backward(0.5, cache64)
    assert_close(dx, dx64, rtol=1e-5, rel_atol=1e-6, what="dlogits")
    assert_close(dt, dt64, rtol=1e-6, rel_atol=0, what="dtargets")
    dx_only, none = ops.binary_cross_entropy_with_logits_backward(0.5, cache, need_dtargets=False)
    assert none is None
    np.testing.assert_array_equal(dx_only, dx)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=str)
def test_mse_loss_matches_reference(simd_path, rng, shape, reduction):
    p = rng.standard_normal(shape).astype(np.float32)
    t = rng.standard_normal(shape).astype(np.float32)
    loss, cache = ops.mse_loss_forward(p, t, reduction)
    loss64, cache64 = ref.mse_loss_forward(f64(p), f64(t), reduction)
    assert_loss_close(loss, loss64)
    dp, dt = ops.mse_loss_backward(-2.0, cache)
    dp64, dt64 = ref.mse_loss_backward(-2.0, cache64)
    assert_close(dp, dp64, rtol=1e-6, rel_atol=0, what="dpred")
    assert_close(dt, dt64, rtol=1e-6, rel_atol=0, what="dtarget")
    dp_only, none = ops.mse_loss_backward(-2.0, cache, need_dtarget=False)
    assert none is None
    np.testing.assert_array_equal(dp_only, dp)


def test_bce_reduction_sum_and_non_contiguous(rng):
    x = rng.standard_normal((8, 6)).astype(np.float32)[:, ::2]
    t = rng.uniform(0, 1, (3, 8)).astype(np.float32).T
    loss, cache = ops.binary_cross_entropy_with_logits_forward(x, t, "sum")
    loss64, cache64 = ref.binary_cross_entropy_with_logits_forward(f64(x), f64(t), "sum")
    assert_loss_close(loss, loss64)
    for got, want in zip(ops.binary_cross_entropy_with_logits_backward(cache),
                         ref.binary_cross_entropy_with_logits_backward(cache64)):
        assert_close(got, want)


@pytest.mark.parametrize(
    "op, args",
    [
        ("softmax_cross_entropy", lambda r: ((r.standard_normal((4, 5)).astype(np.float32)), np.array([0, 4, 2, 1]))),
        ("binary_cross_entropy_with_logits", lambda r: (r.standard_normal((4, 5)).astype(np.float32),
                                                        r.uniform(0, 1, (4, 5)).astype(np.float32))),
        ("mse_loss", lambda r: (r.standard_normal((4, 5)).astype(np.float32),
                                r.standard_normal((4, 5)).astype(np.float32))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_loss_backward_call_forms_and_backends(rng, op, args):
    """backward(cache) == backward(1.0, cache) == backward(cache=cache); the reference backend agrees."""
    a = args(rng)
    fwd, bwd = getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward")
    loss, cache = fwd(*a)
    g1 = bwd(cache)
    for g in (bwd(1.0, cache), bwd(cache=cache), bwd(np.float32(1.0), cache), bwd(np.array(1.0), cache)):
        for u, v in zip(g1, g):
            np.testing.assert_array_equal(u, v)
    g3 = bwd(3.0, cache)
    for u, v in zip(g1, g3):
        assert_close(v, 3.0 * f64(u), rtol=1e-6, rel_atol=0)
    loss_r, cache_r = fwd(*a, backend="reference")
    assert_loss_close(loss, loss_r)
    for u, v in zip(g1, bwd(cache_r)):
        assert v.dtype == np.float32
        assert_close(u, v, rtol=1e-5, rel_atol=1e-6)
    # The forward-only function and the reference module give the same loss.
    assert getattr(ops, op)(*a) == loss
    assert_loss_close(getattr(ref, op)(*a), loss)


# ---------------------------------------------------------------------------
# Extreme logits: finite, and equal to the float64 reference
# ---------------------------------------------------------------------------


def extreme_rows(name):
    rng = np.random.default_rng(7)
    if name == "pm1e4":
        return 1e4 * rng.choice([-1.0, 1.0], (4, 7))
    if name == "one_huge":
        x = rng.standard_normal((3, 1000))
        x[:, 17] = 1e4
        return x
    if name == "all_equal":
        return np.full((3, 1000), 3.0)
    if name == "all_equal_neg":
        return np.full((2, 7), -1e4)
    if name == "spread":
        return np.tile(np.linspace(-1e4, 1e4, 1001), (2, 1))
    if name == "huge_vs_tiny_wide":
        x = np.full((2, 10000), -1e4)
        x[:, 9999] = 1e4
        return x
    if name == "near_ties_large":
        return 1e4 + rng.integers(-3, 4, (3, 33)).astype(np.float64)
    raise KeyError(name)


EXTREMES = ["pm1e4", "one_huge", "all_equal", "all_equal_neg", "spread", "huge_vs_tiny_wide", "near_ties_large"]


@pytest.mark.parametrize("name", EXTREMES)
def test_extreme_logits_stay_finite_and_exact(simd_path, rng, name):
    x = extreme_rows(name).astype(np.float32)
    n, c = x.shape
    dout = rng.standard_normal(x.shape).astype(np.float32)
    for op in ("softmax", "log_softmax"):
        y, cache = getattr(ops, f"{op}_forward")(x)
        y64, cache64 = getattr(ref, f"{op}_forward")(f64(x))
        assert np.isfinite(y).all(), op
        assert_close(y, y64, rtol=1e-5, rel_atol=1e-7, what=op)
        (dx,) = getattr(ops, f"{op}_backward")(dout, cache)
        (dx64,) = getattr(ref, f"{op}_backward")(f64(dout), cache64)
        assert np.isfinite(dx).all(), op
        scale = softmax_dx_scale(op, y64, dout, -1)
        assert_close(dx, dx64, rtol=1e-5, rel_atol=0, scale=scale, what=f"{op} dx")
    # the label at the max and at the min of each row
    for labels in (np.argmax(x, axis=1), np.argmin(x, axis=1)):
        loss, cache = ops.softmax_cross_entropy_forward(x, labels)
        loss64, cache64 = ref.softmax_cross_entropy_forward(f64(x), labels)
        assert np.isfinite(loss)
        assert abs(loss - loss64) <= 1e-5 * abs(loss64) + 1e-6, (loss, loss64)
        (d,) = ops.softmax_cross_entropy_backward(cache)
        assert np.isfinite(d).all()
        assert_close(d, ref.softmax_cross_entropy_backward(cache64)[0], rtol=1e-5, rel_atol=0,
                     scale=ce_dlogits_scale(cache64), what="dlogits")
    t = rng.uniform(0, 1, x.shape).astype(np.float32)
    loss, cache = ops.binary_cross_entropy_with_logits_forward(x, t)
    loss64, cache64 = ref.binary_cross_entropy_with_logits_forward(f64(x), f64(t))
    assert np.isfinite(loss)
    assert abs(loss - loss64) <= 1e-5 * abs(loss64) + 1e-6
    for got, want in zip(ops.binary_cross_entropy_with_logits_backward(cache),
                         ref.binary_cross_entropy_with_logits_backward(cache64)):
        assert np.isfinite(got).all()
        assert_close(got, want, rtol=1e-5, rel_atol=1e-7)


def test_bce_tiny_tail_term_is_accurate(simd_path):
    """log(1 + exp(-|x|)) keeps its value when 1 + exp(-|x|) rounds to 1 in float32."""
    x = np.array([20.0, -20.0, 30.0, 80.0], np.float32)
    t = np.array([1.0, 0.0, 1.0, 1.0], np.float32)
    loss = ops.binary_cross_entropy_with_logits(x, t, "sum")
    loss64 = ref.binary_cross_entropy_with_logits(f64(x), f64(t), "sum")
    assert loss64 > 0 and abs(loss - loss64) <= 1e-5 * loss64, (loss, loss64)


def test_minus_inf_logits_are_masked(simd_path):
    """-inf logits get probability 0 and leave the rest of the row finite (masking)."""
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], np.float32)
    y = ops.softmax(x)
    with np.errstate(invalid="ignore"):
        assert_close(y, ref.softmax(f64(x)))
    assert y[0, 1] == 0 and y[1, 1] == 1 and np.isfinite(y).all()
    assert np.isfinite(ops.softmax_cross_entropy(x, np.array([0, 1])))


# ---------------------------------------------------------------------------
# NaN-producing cases, as documented in the docstrings
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_nan_or_inf_logit_makes_its_row_nan(backend, bad):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    x[1, 2] = bad
    with np.errstate(invalid="ignore"):
        for op in (ops.softmax, ops.log_softmax):
            y = op(x, backend=backend)
            assert np.isnan(y[1]).all()
            assert np.isfinite(y[[0, 2]]).all()
            y_col = op(np.ascontiguousarray(x.T), axis=0, backend=backend)  # strided kernel
            assert np.isnan(y_col[:, 1]).all() and np.isfinite(y_col[:, [0, 2]]).all()
        assert np.isnan(ops.softmax_cross_entropy(x, np.array([0, 0, 0]), backend=backend))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_all_minus_inf_row_is_nan(backend):
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], np.float32)
    with np.errstate(invalid="ignore"):
        y = ops.softmax(x, backend=backend)
    assert np.isnan(y[0]).all() and np.isfinite(y[1]).all()


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_nan_propagates_through_elementwise_losses(backend):
    x = np.array([0.5, np.nan, -1.0], np.float32)
    t = np.array([1.0, 0.0, 0.5], np.float32)
    with np.errstate(invalid="ignore"):
        loss, cache = ops.binary_cross_entropy_with_logits_forward(x, t, backend=backend)
        dx, dt = ops.binary_cross_entropy_with_logits_backward(cache)
        assert np.isnan(loss) and np.isnan(dx[1]) and np.isfinite(dx[[0, 2]]).all()
        loss, cache = ops.mse_loss_forward(x, t, backend=backend)
        dp, _ = ops.mse_loss_backward(cache)
        assert np.isnan(loss) and np.isnan(dp[1]) and np.isfinite(dp[[0, 2]]).all()


# ---------------------------------------------------------------------------
# Threads: same results (bitwise) for every thread count
# ---------------------------------------------------------------------------


def test_results_do_not_depend_on_thread_count(rng):
    x = rng.standard_normal((256, 1000)).astype(np.float32)  # above the threading threshold
    x4 = rng.standard_normal((8, 64, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 1000, 256)
    flat = rng.standard_normal(300001).astype(np.float32)
    t = rng.uniform(0, 1, 300001).astype(np.float32)

    def run():
        out = [ops.softmax(x), ops.log_softmax(x), ops.softmax(x4, axis=1)]
        loss, cache = ops.softmax_cross_entropy_forward(x, labels)
        out += [np.float64(loss), ops.softmax_cross_entropy_backward(cache)[0]]
        loss, cache = ops.binary_cross_entropy_with_logits_forward(flat, t)
        out += [np.float64(loss), *ops.binary_cross_entropy_with_logits_backward(cache)]
        loss, cache = ops.mse_loss_forward(flat, t)
        out += [np.float64(loss), *ops.mse_loss_backward(cache)]
        return out

    fastlayers.set_num_threads(1)
    one = run()
    fastlayers.set_num_threads(2)
    two = run()
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_labels_any_integer_dtype(rng, dtype, backend):
    logits = rng.standard_normal((6, 9)).astype(np.float32)
    labels = np.array([0, 8, 3, 3, 1, 7])
    want, want_cache = ops.softmax_cross_entropy_forward(logits, labels, backend=backend)
    got, cache = ops.softmax_cross_entropy_forward(logits, labels.astype(dtype), backend=backend)
    assert got == want
    np.testing.assert_array_equal(ops.softmax_cross_entropy_backward(cache)[0],
                                  ops.softmax_cross_entropy_backward(want_cache)[0])


BAD_LABELS = [
    # (labels for logits (3, 5), exception, message pattern)
    (np.array([0.0, 1.0, 2.0]), TypeError, r"labels: expected an integer dtype .*float64"),
    (np.array([0, 1, 2], np.float32), TypeError, r"labels: expected an integer dtype"),
    (np.array([True, False, True]), TypeError, r"labels: expected an integer dtype .*bool"),
    ([0, 1, 2], TypeError, r"labels: expected a numpy.ndarray"),
    (np.array([0, 1, 5]), ValueError, r"labels: value 5 at index 2 is outside \[0, 5\)"),
    (np.array([0, -1, 2]), ValueError, r"labels: value -1 at index 1 is outside \[0, 5\)"),
    (np.array([255, 0, 0], np.uint8), ValueError, r"labels: value 255 at index 0"),
    (np.array([0, 1, 2**40]), ValueError, r"labels: value 1099511627776 at index 2"),
    (np.array([0, 1, 2**63 + 5], np.uint64), ValueError, r"labels: value 9223372036854775813 at index 2"),
    (np.array([[0], [1], [2]]), ValueError, r"labels: expected shape \(3,\) .*got \(3, 1\)"),
    (np.array([0, 1, 2, 3]), ValueError, r"labels: expected shape \(3,\) .*got \(4,\)"),
    (np.array(1), ValueError, r"labels: expected shape \(3,\)"),
]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("labels, exc, match", BAD_LABELS)
def test_bad_labels(rng, backend, labels, exc, match):
    logits = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(exc, match=match):
        ops.softmax_cross_entropy_forward(logits, labels, backend=backend)
    if backend == "reference":
        with pytest.raises(exc, match=match):
            ref.softmax_cross_entropy_forward(f64(logits), labels)


@pytest.mark.parametrize("bad", [5, -1, 2**40])
def test_kernel_rechecks_labels(rng, bad):
    """The C++ entry points refuse out-of-range labels themselves (no out-of-bounds read)."""
    logits = rng.standard_normal((3, 5)).astype(np.float32)
    labels = np.array([0, 1, bad], np.int64)
    stats = np.empty((3, 2), np.float32)
    with pytest.raises(ValueError, match=rf"labels: value {bad} at index 2 is outside \[0, 5\)"):
        _cpu.softmax_cross_entropy_forward(stats, logits, labels)
    with pytest.raises(ValueError, match=rf"labels: value {bad} at index 2"):
        _cpu.softmax_cross_entropy_backward(np.empty_like(logits), stats, logits, labels, 1.0)
    with pytest.raises(TypeError, match="labels: expected dtype int64"):
        _cpu.softmax_cross_entropy_forward(stats, logits, labels.astype(np.int32))
    with pytest.raises(ValueError, match=r"labels: expected shape \(3,\)"):
        _cpu.softmax_cross_entropy_forward(stats, logits, labels[:2].copy())
    with pytest.raises(ValueError, match=r"stats: expected shape \(3, 2\)"):
        _cpu.softmax_cross_entropy_forward(np.empty((2, 2), np.float32), logits, labels)


def test_kernel_rechecks_shapes_and_axis(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="out: expected the shape of x"):
        _cpu.softmax_forward(np.empty((5, 3), np.float32), x, -1, False)
    with pytest.raises(ValueError, match="axis: 2 is out of range"):
        _cpu.softmax_forward(np.empty_like(x), x, 2, False)
    with pytest.raises(ValueError, match="x: expected a C-contiguous array"):
        _cpu.softmax_forward(np.empty((5, 3), np.float32), x.T, -1, False)
    with pytest.raises(ValueError, match="targets: expected the shape of logits"):
        _cpu.bce_with_logits_forward(x, x[:2].copy())
    with pytest.raises(ValueError, match="dtarget: expected the shape of pred"):
        _cpu.mse_backward(None, np.empty(3, np.float32), x, x, 1.0)


# ---------------------------------------------------------------------------
# Bad input at the Python boundary
# ---------------------------------------------------------------------------

X35 = np.zeros((3, 5), np.float32)
LAB3 = np.array([0, 1, 2])


def _softmax_cache():
    return ops.softmax_forward(X35)[1]


def _ce_cache():
    return ops.softmax_cross_entropy_forward(X35, LAB3)[1]


BAD_INPUT = [
    # (call, exception, message pattern)
    (lambda: ops.softmax(X35.astype(np.float64)), TypeError, r"x: expected dtype float32, got float64"),
    (lambda: ops.softmax([[1.0, 2.0]]), TypeError, r"x: expected a numpy.ndarray"),
    (lambda: ops.softmax(np.ones((), np.float32)), ValueError, r"x: expected at least 1 dim"),
    (lambda: ops.softmax(X35, axis=2), ValueError, r"axis: 2 is out of range for a 2-D array"),
    (lambda: ops.log_softmax(X35, axis=-3), ValueError, r"axis: -3 is out of range"),
    (lambda: ops.softmax(X35, axis=1.0), TypeError, r"axis: expected an integer"),
    (lambda: ops.softmax(X35, backend="gpu"), ValueError, r"backend: expected one of"),
    (lambda: ops.softmax_backward(np.zeros((5, 3), np.float32), _softmax_cache()), ValueError,
     r"dout: expected shape \(3, 5\)"),
    (lambda: ops.softmax_backward(np.zeros((3, 5)), _softmax_cache()), TypeError, r"dout: expected dtype float32"),
    (lambda: ops.log_softmax_backward(X35, _softmax_cache()), TypeError, r"cache: expected the cache returned by"),
    (lambda: ops.softmax_backward(X35, ref.softmax_forward(X35)[1]), TypeError, r"cache: expected the cache"),
    (lambda: ops.softmax_cross_entropy(X35[0], LAB3), ValueError, r"logits: expected a 2-D array"),
    (lambda: ops.softmax_cross_entropy(X35[None], LAB3), ValueError, r"logits: expected a 2-D array"),
    (lambda: ops.softmax_cross_entropy(X35.astype(np.float16), LAB3), TypeError, r"logits: expected dtype float32"),
    (lambda: ops.softmax_cross_entropy(np.zeros((0, 5), np.float32), LAB3[:0]), ValueError,
     r"logits: expected at least one row and one class"),
    (lambda: ops.softmax_cross_entropy(np.zeros((3, 0), np.float32), LAB3), ValueError,
     r"logits: expected at least one row and one class"),
    (lambda: ops.softmax_cross_entropy(X35, LAB3, reduction="none"), ValueError, r"reduction: expected one of"),
    (lambda: ops.softmax_cross_entropy_backward("1", _ce_cache()), TypeError, r"dout: expected a real number"),
    (lambda: ops.softmax_cross_entropy_backward(np.ones(2), _ce_cache()), TypeError, r"dout: expected a real number"),
    (lambda: ops.softmax_cross_entropy_backward(1.0), TypeError, r"cache: expected the cache returned by"),
    (lambda: ops.softmax_cross_entropy_backward(ops.mse_loss_forward(X35, X35)[1]), TypeError,
     r"cache: expected the cache returned by softmax_cross_entropy_forward"),
    (lambda: ops.binary_cross_entropy_with_logits(X35, X35[:2]), ValueError,
     r"targets: expected shape \(3, 5\) to match logits, got \(2, 5\)"),
    (lambda: ops.binary_cross_entropy_with_logits(X35, X35.astype(np.float64)), TypeError,
     r"targets: expected dtype float32"),
    (lambda: ops.binary_cross_entropy_with_logits(X35[:0], X35[:0]), ValueError, r"logits: expected at least one"),
    (lambda: ops.binary_cross_entropy_with_logits_backward(ops.binary_cross_entropy_with_logits_forward(X35, X35)[1],
                                                           need_dtargets=1), TypeError, r"need_dtargets: expected a bool"),
    (lambda: ops.mse_loss(X35, X35.T), ValueError, r"target: expected shape \(3, 5\) to match pred, got \(5, 3\)"),
    (lambda: ops.mse_loss(X35.astype(np.int32), X35), TypeError, r"pred: expected dtype float32"),
    (lambda: ops.mse_loss(X35, X35, reduction="max"), ValueError, r"reduction: expected one of"),
]


@pytest.mark.parametrize("call, exc, match", BAD_INPUT)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_empty_softmax_is_empty(simd_path):
    for shape, axis in [((0, 5), -1), ((5, 0), -1), ((2, 0, 3), 1)]:
        x = np.zeros(shape, np.float32)
        y, cache = ops.softmax_forward(x, axis)
        assert y.shape == shape
        assert ops.softmax_backward(np.zeros(shape, np.float32), cache)[0].shape == shape


# ---------------------------------------------------------------------------
# The reference's own gradients, by centred finite differences in float64
# ---------------------------------------------------------------------------


def _grad_softmax(name, shape, axis):
    def case(rng):
        x = rng.standard_normal(shape)
        dout = rng.standard_normal(shape)
        y, cache = getattr(ref, f"{name}_forward")(x, axis)
        (dx,) = getattr(ref, f"{name}_backward")(dout, cache)
        num = numerical_gradient(lambda: getattr(ref, name)(x, axis), x, dout)
        return [(dx, num)]

    return case


def _grad_ce(n, c, reduction):
    def case(rng):
        x = rng.standard_normal((n, c))
        labels = rng.integers(0, c, n)
        _, cache = ref.softmax_cross_entropy_forward(x, labels, reduction)
        (dx,) = ref.softmax_cross_entropy_backward(1.7, cache)
        num = numerical_gradient(lambda: ref.softmax_cross_entropy(x, labels, reduction), x, 1.7)
        return [(dx, num)]

    return case


def _grad_pair(name, make_b):
    def case(rng):
        a = rng.standard_normal((3, 4))
        b = make_b(rng)
        _, cache = getattr(ref, f"{name}_forward")(a, b)
        da, db = getattr(ref, f"{name}_backward")(-0.7, cache)
        num_a = numerical_gradient(lambda: getattr(ref, name)(a, b), a, -0.7)
        num_b = numerical_gradient(lambda: getattr(ref, name)(a, b), b, -0.7)
        return [(da, num_a), (db, num_b)]

    return case


GRADCHECKS = [
    ("softmax 2-D", _grad_softmax("softmax", (3, 5), -1)),
    ("softmax NCHW axis 1", _grad_softmax("softmax", (2, 3, 2, 2), 1)),
    ("log_softmax 2-D", _grad_softmax("log_softmax", (3, 5), -1)),
    ("log_softmax axis 0", _grad_softmax("log_softmax", (4, 2, 3), 0)),
    ("softmax_cross_entropy mean", _grad_ce(4, 5, "mean")),
    ("softmax_cross_entropy sum", _grad_ce(3, 6, "sum")),
    ("bce_with_logits", _grad_pair("binary_cross_entropy_with_logits", lambda r: r.uniform(0, 1, (3, 4)))),
    ("mse_loss", _grad_pair("mse_loss", lambda r: r.standard_normal((3, 4)))),
]


@pytest.mark.parametrize("name, case", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_reference_gradients_by_finite_differences(rng, name, case):
    for analytic, numeric in case(rng):
        assert analytic.dtype == np.float64
        assert rel_error(analytic, numeric) < 1e-7, name


# ---------------------------------------------------------------------------
# PyTorch parity (optional)
# ---------------------------------------------------------------------------


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((4, 6, 3, 3)).astype(np.float32)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    for op, tf in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        xt = torch.tensor(x, requires_grad=True)
        yt = tf(xt, dim=1)
        yt.backward(torch.tensor(dout))
        y, cache = getattr(ops, f"{op}_forward")(x, 1)
        assert_close(y, yt.detach().numpy(), rtol=1e-5, rel_atol=1e-6, what=op)
        assert_close(getattr(ops, f"{op}_backward")(dout, cache)[0], xt.grad.numpy(), rtol=1e-4, rel_atol=1e-5)
    logits = rng.standard_normal((5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5)
    targets = rng.uniform(0, 1, (5, 7)).astype(np.float32)
    for op, tf, b in (
        ("softmax_cross_entropy", F.cross_entropy, labels),
        ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, targets),
        ("mse_loss", F.mse_loss, targets),
    ):
        for reduction in ("mean", "sum"):
            xt = torch.tensor(logits, requires_grad=True)
            lt = tf(xt, torch.tensor(b), reduction=reduction)
            lt.backward()
            loss, cache = getattr(ops, f"{op}_forward")(logits, b, reduction)
            assert abs(loss - lt.item()) <= 1e-5 * abs(lt.item()), (op, reduction)
            assert_close(getattr(ops, f"{op}_backward")(cache)[0], xt.grad.numpy(), rtol=1e-5, rel_atol=1e-6)
