"""Linear layer: CPU kernel vs the NumPy reference (forward, dx, dw, db) on awkward
shapes, bias/no bias, fused ReLU, leading dimensions, strided inputs, need_dx; the
reference's gradients by finite differences; bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers import ops
from fastlayers import reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

# (x shape, out features): batch 1, primes, sizes off every GEMM tile, leading dims,
# 1-D x, zero-size dimensions.
CASES = [
    ((1, 1), 1),
    ((1, 7), 3),
    ((13, 17), 11),
    ((128, 784), 10),
    ((37, 64), 129),
    ((3, 5, 19), 7),
    ((2, 3, 4, 9), 5),
    ((23,), 6),
    ((0, 5), 4),
    ((6, 0), 4),
    ((6, 5), 0),
]
CASE_IDS = [f"{x}->{o}" for x, o in CASES]


def _arrays(x_shape, out_features, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal((out_features, x_shape[-1])) / np.sqrt(max(x_shape[-1], 1))).astype(np.float32)
    b = rng.standard_normal(out_features).astype(np.float32)
    return x, w, b


def _tol(k):
    # float32 sums of k products of O(1) values vs float64
    return dict(rtol=1e-4, atol=1e-5 * max(1.0, np.sqrt(k)))


def _compare(x, w, b, activation, need_dx=True, backend="cpu"):
    y, cache = ops.linear_forward(x, w, b, activation, backend=backend)
    dout = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    dx, dw, db = ops.linear_backward(dout, cache, need_dx=need_dx)
    y64, c64 = ref.linear_forward(x.astype(np.float64), w.astype(np.float64),
                                  None if b is None else b.astype(np.float64), activation)
    dx64, dw64, db64 = ref.linear_backward(dout.astype(np.float64), c64)
    assert y.shape == x.shape[:-1] + (w.shape[0],) and y.dtype == np.float32
    np.testing.assert_allclose(y, y64, **_tol(w.shape[1]))
    if need_dx:
        assert dx.shape == x.shape and dx.dtype == np.float32
        np.testing.assert_allclose(dx, dx64, **_tol(w.shape[0]))
    else:
        assert dx is None
    assert dw.shape == w.shape and dw.dtype == np.float32
    np.testing.assert_allclose(dw, dw64, **_tol(y.size // max(w.shape[0], 1)))
    if b is None:
        assert db is None
    else:
        assert db.shape == b.shape and db.dtype == np.float32
        np.testing.assert_allclose(db, db64, **_tol(y.size // max(w.shape[0], 1)))


@pytest.mark.parametrize("x_shape,out_features", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_vs_reference(x_shape, out_features, bias, activation, backend):
    x, w, b = _arrays(x_shape, out_features)
    _compare(x, w, b if bias else None, activation, backend=backend)


@pytest.mark.parametrize("x_shape,out_features", [((13, 17), 11), ((2, 3, 9), 5)], ids=str)
def test_need_dx_false_returns_none(x_shape, out_features):
    x, w, b = _arrays(x_shape, out_features)
    for backend in ("cpu", "reference"):
        _compare(x, w, b, "relu", need_dx=False, backend=backend)


def test_strided_inputs_are_read_in_place():
    x, w, b = _arrays((40, 60), 30)
    xs = x[::2, 1::2]  # (20, 30) strided view
    ws = np.asfortranarray(w[:, :30])  # column-major weight
    _compare(np.ascontiguousarray(xs), np.ascontiguousarray(ws), b, None)
    _compare(xs, ws, b, "relu")
    _compare(x.T[:30, :7].T, w[:5, :30], b[:5], None)  # x transposed view


def test_non_contiguous_leading_dims():
    x, w, b = _arrays((4, 6, 9), 5)
    _compare(x.transpose(1, 0, 2), w, b, "relu")


def test_relu_fused_output_matches_unfused():
    x, w, b = _arrays((33, 47), 21)
    np.testing.assert_array_equal(ops.linear(x, w, b, "relu"), np.maximum(ops.linear(x, w, b), 0))


# --- reference gradients by centred differences (float64) ------------------------------

def _away_from_the_kink(x_shape):
    """float64 x, w, b whose pre-activations all keep |z| > 0.05 (first such seed)."""
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal((3, x_shape[-1])), rng.standard_normal(3)
        if np.min(np.abs(x @ w.T + b)) > 0.05:
            return x, w, b, rng
    raise AssertionError("no seed found")


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("x_shape", [(4, 5), (2, 3, 5)], ids=str)
def test_reference_gradients_by_finite_differences(activation, x_shape):
    x, w, b, rng = _away_from_the_kink(x_shape)
    y, cache = ref.linear_forward(x, w, b, activation)
    dout = rng.standard_normal(y.shape)
    dx, dw, db = ref.linear_backward(dout, cache)
    f = lambda: ref.linear(x, w, b, activation)  # noqa: E731
    assert rel_error(dx, numerical_gradient(f, x, dout)) < 1e-7
    assert rel_error(dw, numerical_gradient(f, w, dout)) < 1e-7
    assert rel_error(db, numerical_gradient(f, b, dout)) < 1e-7


# --- bad input ----------------------------------------------------------------------

X = np.ones((4, 5), np.float32)
W = np.ones((3, 5), np.float32)
B = np.ones(3, np.float32)
BAD = [
    (lambda: ops.linear(X, np.ones((3, 6), np.float32)), ValueError,
     r"x: in-features mismatch: x has shape \(4, 5\) and w has shape \(3, 6\)"),
    (lambda: ops.linear(X, W, np.ones(4, np.float32)), ValueError, r"b: expected shape \(3,\).*got \(4,\)"),
    (lambda: ops.linear(X, W, np.ones((1, 3), np.float32)), ValueError, "b: expected a 1-D array"),
    (lambda: ops.linear(X, np.ones(5, np.float32)), ValueError, "w: expected a 2-D array"),
    (lambda: ops.linear(np.float32(1.0), W), TypeError, "x: expected a numpy.ndarray"),
    (lambda: ops.linear(np.ones((), np.float32), W), ValueError, "x: expected at least 1 dimensions"),
    (lambda: ops.linear(X.astype(np.float64), W), TypeError, "x: expected dtype float32"),
    (lambda: ops.linear(X, W.astype(np.float16)), TypeError, "w: expected dtype float32"),
    (lambda: ops.linear(X, W, B.astype(np.float64)), TypeError, "b: expected dtype float32"),
    (lambda: ops.linear(X, W, B, activation="tanh"), ValueError, "activation"),
    (lambda: ops.linear(X, W, backend="gpu"), ValueError, "backend"),
    (lambda: ops.linear_backward(np.ones((4, 3), np.float32), None), TypeError, "cache"),
    (lambda: ops.linear_backward(np.ones((3, 4), np.float32), ops.linear_forward(X, W)[1]), ValueError,
     r"dout: expected shape \(4, 3\)"),
    (lambda: ops.linear_backward(np.ones((4, 3), np.float32), ops.linear_forward(X, W)[1], need_dx=1), TypeError,
     "need_dx"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[b[2] for b in BAD])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_kernel_rechecks_shapes():
    from fastlayers import _cpu

    with pytest.raises(ValueError, match="x: expected 5 in-features"):
        _cpu.linear_forward(np.empty((4, 3), np.float32), np.ones((4, 4), np.float32), W, None, False)
    with pytest.raises(ValueError, match="out: expected shape"):
        _cpu.linear_forward(np.empty((4, 2), np.float32), X, W, None, False)
    with pytest.raises(ValueError, match="b: expected shape"):
        _cpu.linear_forward(np.empty((4, 3), np.float32), X, W, np.ones(2, np.float32), False)
    with pytest.raises(ValueError, match="y: relu needs"):
        _cpu.linear_backward(None, np.empty((3, 5), np.float32), None, None, np.ones((4, 3), np.float32), X, W, True)
