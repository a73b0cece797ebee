"""Activations and the residual add: CPU kernels vs the NumPy reference, forward and
backward, on awkward shapes, every SIMD path, extreme inputs; the reference's own
gradients by finite differences; bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import ops
from fastlayers import reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

# One line per op configuration: (op name, keyword arguments).
OPS = [
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.5}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("softplus", {"beta": 0.5, "threshold": 3.0}),
    ("elu", {}),
    ("elu", {"alpha": 0.3}),
]
OP_IDS = [f"{name}{''.join(f'-{k}={v}' for k, v in kw.items())}" for name, kw in OPS]

# Sizes around the 8-element mask bytes and 16-lane vectors, primes, 0-size, 0-d, and
# one large enough to be split over threads.
SHAPES = [(), (1,), (7,), (8,), (17,), (0,), (3, 0, 5), (13, 31), (2, 3, 5, 7), (1, 1, 1, 1),
          (4, 3, 29, 31), (70001,), (3, 65537)]

# float32 kernels vs float64 values: |out - ref| <= ATOL + RTOL |ref|.
RTOL, ATOL = 2e-5, 1e-6


def _x(shape, seed=0, scale=3.0):
    return np.asarray(scale * np.random.default_rng(seed).standard_normal(shape), dtype=np.float32)


def _run(name, kw, x, dout, backend):
    y, cache = getattr(ops, f"{name}_forward")(x, **kw, backend=backend)
    (dx,) = getattr(ops, f"{name}_backward")(dout, cache)
    return y, dx


def _reference64(name, kw, x, dout):
    """Reference forward and backward in float64 on the float32 values."""
    y, cache = getattr(ref, f"{name}_forward")(x.astype(np.float64), **kw)
    (dx,) = getattr(ref, f"{name}_backward")(dout.astype(np.float64), cache)
    return y, dx


def _check(name, kw, x, backend="cpu"):
    dout = _x(x.shape, seed=1, scale=1.0)
    y, dx = _run(name, kw, x, dout, backend)
    y64, dx64 = _reference64(name, kw, x, dout)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(y, y64, rtol=RTOL, atol=ATOL, err_msg=f"{name} forward")
    np.testing.assert_allclose(dx, dx64, rtol=RTOL, atol=ATOL, err_msg=f"{name} backward")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_forward_backward_vs_reference(name, kw, shape, backend):
    _check(name, kw, _x(shape), backend)


@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
def test_each_simd_path(name, kw):
    x = _x((5, 3, 67))  # 1005 elements: full vectors, a partial one, a partial mask byte
    for path in fl.info()["simd_paths_supported"]:
        fl.set_simd_path(path)
        _check(name, kw, x)


@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
def test_extreme_inputs(name, kw):
    """No overflow to inf/NaN at any magnitude, and the float64 limits are reached."""
    v = [1e-30, 1e-7, 0.5, 5.0, 15.0, 19.99, 20.01, 30.0, 87.0, 89.0, 100.0, 1e4, 1e30]
    x = np.array([0.0] + v + [-t for t in v], dtype=np.float32)
    for path in fl.info()["simd_paths_supported"]:
        fl.set_simd_path(path)
        dout = np.ones_like(x)
        y, dx = _run(name, kw, x, dout, "cpu")
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)), f"{path}: {y}, {dx}"
        y64, dx64 = _reference64(name, kw, x, dout)
        np.testing.assert_allclose(y, y64, rtol=RTOL, atol=ATOL, err_msg=f"{path} forward")
        np.testing.assert_allclose(dx, dx64, rtol=RTOL, atol=ATOL, err_msg=f"{path} backward")


@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
def test_non_contiguous_input(name, kw):
    base = _x((9, 14))
    for x in (base[:, ::3], base.T, base[::-1]):
        _check(name, kw, x)


@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
def test_forward_only_matches_forward(name, kw):
    x = _x((3, 101))
    y1 = getattr(ops, name)(x, **kw)
    y2, _ = getattr(ops, f"{name}_forward")(x, **kw)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_allclose(getattr(ref, name)(x.astype(np.float64), **kw), y1, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name,kw", OPS, ids=OP_IDS)
def test_thread_count_does_not_change_results(name, kw):
    x = _x((3, 65537))
    dout = _x(x.shape, seed=1)
    fl.set_num_threads(1)
    y1, dx1 = _run(name, kw, x, dout, "cpu")
    fl.set_num_threads(2)
    y2, dx2 = _run(name, kw, x, dout, "cpu")
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)


def test_relu_mask_is_packed_little_endian_bits():
    x = _x((3, 37))
    _, cache = ops.relu_forward(x)
    np.testing.assert_array_equal(cache.mask, np.packbits(x.ravel() > 0, bitorder="little"))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_relu_nan_and_kink_semantics(backend):
    x = np.array([np.nan, 0.0, -0.0, -1.0, 2.0], dtype=np.float32)
    y, cache = ops.relu_forward(x, backend=backend)
    assert np.isnan(y[0]) and np.array_equal(y[1:], [0, 0, 0, 2])
    (dx,) = ops.relu_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx[1:], [0, 0, 0, 1])  # gradient 0 at the kink x == 0
    (dl,) = ops.leaky_relu_backward(np.ones_like(x), ops.leaky_relu_forward(x, 0.1, backend=backend)[1])
    np.testing.assert_allclose(dl[1:], [0.1, 0.1, 0.1, 1])  # slope at x == 0, as PyTorch


def test_softplus_threshold_is_linear_region():
    x = np.array([0.9, 1.1], dtype=np.float32)
    for backend in ("cpu", "reference"):
        y = ops.softplus(x, beta=2.0, threshold=2.0, backend=backend)
        assert y[1] == x[1] and y[0] > x[0] + 0.05


# --- add --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (4, 3, 29, 31), (3, 65537)], ids=str)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_add(shape, backend):
    a, b, dout = _x(shape), _x(shape, seed=1), _x(shape, seed=2)
    y, cache = ops.add_forward(a, b, backend=backend)
    np.testing.assert_array_equal(y, a + b)
    da, db = ops.add_backward(dout, cache)
    np.testing.assert_array_equal(da, dout)
    np.testing.assert_array_equal(db, dout)
    assert da is dout and not np.shares_memory(db, dout)  # documented: da is dout itself


def test_add_non_contiguous():
    a = _x((8, 10))
    np.testing.assert_array_equal(ops.add(a.T, a[::-1].T), a.T + a[::-1].T)


# --- the reference's gradients by centred differences (float64, away from kinks) --------

def _away_from_kinks(shape, seed, kinks):
    x = np.random.default_rng(seed).uniform(-3, 3, shape)
    for k in kinks:
        x = np.where(np.abs(x - k) < 0.1, x + 0.3, x)
    return x


GRAD_CASES = [  # (op, kwargs, kink locations in x)
    ("relu", {}, [0.0]),
    ("leaky_relu", {"negative_slope": 0.2}, [0.0]),
    ("sigmoid", {}, []),
    ("tanh", {}, []),
    ("gelu", {}, []),
    ("gelu", {"approximate": "tanh"}, []),
    ("softplus", {}, []),
    ("softplus", {"beta": 2.0, "threshold": 1.0}, [0.5]),
    ("elu", {"alpha": 0.7}, [0.0]),
]


@pytest.mark.parametrize("name,kw,kinks", GRAD_CASES, ids=[c[0] + str(c[1]) for c in GRAD_CASES])
def test_reference_gradient_by_finite_differences(name, kw, kinks):
    x = _away_from_kinks((4, 5), 0, kinks)
    dout = np.random.default_rng(1).standard_normal(x.shape)
    fwd = getattr(ref, f"{name}_forward")
    _, cache = fwd(x, **kw)
    (dx,) = getattr(ref, f"{name}_backward")(dout, cache)
    num = numerical_gradient(lambda: fwd(x, **kw)[0], x, dout)
    assert rel_error(dx, num) < 1e-6


def test_reference_add_gradient_by_finite_differences():
    rng = np.random.default_rng(0)
    a, b, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    da, db = ref.add_backward(dout, ref.add_forward(a, b)[1])
    assert rel_error(da, numerical_gradient(lambda: ref.add(a, b), a, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda: ref.add(a, b), b, dout)) < 1e-8


# --- bad input ----------------------------------------------------------------------

X = np.ones((2, 3), dtype=np.float32)
BAD = [  # (call, exception, message pattern)
    (lambda: ops.relu(X.astype(np.float64)), TypeError, "x: expected dtype float32"),
    (lambda: ops.sigmoid([1.0, 2.0]), TypeError, "x: expected a numpy.ndarray"),
    (lambda: ops.tanh(X.astype(np.int32)), TypeError, "x: expected dtype float32"),
    (lambda: ops.relu(X, backend="gpu"), ValueError, "backend"),
    (lambda: ops.gelu(X, approximate="erf"), ValueError, "approximate"),
    (lambda: ops.gelu(X, approximate=None), ValueError, "approximate"),
    (lambda: ops.softplus(X, beta=0.0), ValueError, "beta"),
    (lambda: ops.softplus(X, beta="1"), TypeError, "beta"),
    (lambda: ops.softplus(X, threshold=None), TypeError, "threshold"),
    (lambda: ops.leaky_relu(X, negative_slope="a"), TypeError, "negative_slope"),
    (lambda: ops.elu(X, alpha=True), TypeError, "alpha"),
    (lambda: ops.relu_backward(X, None), TypeError, "cache"),
    (lambda: ops.relu_backward(X, ops.sigmoid_forward(X)[1]), ValueError, "cache: .*sigmoid_forward"),
    (lambda: ops.relu_backward(np.ones((3, 2), np.float32), ops.relu_forward(X)[1]), ValueError,
     r"dout: expected shape \(2, 3\)"),
    (lambda: ops.gelu_backward(X.astype(np.float64), ops.gelu_forward(X)[1]), TypeError, "dout"),
    (lambda: ops.add(X, np.ones((3, 2), np.float32)), ValueError, r"b: expected the shape of a \(2, 3\), got \(3, 2\)"),
    (lambda: ops.add(X, X.astype(np.float64)), TypeError, "b: expected dtype float32"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[b[2] for b in BAD])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_kernel_rechecks_sizes():
    """The binding refuses buffers that would be read or written out of bounds."""
    from fastlayers import _cpu

    x = np.ones(100, np.float32)
    with pytest.raises(ValueError, match="out"):
        _cpu.activation_forward(np.empty(99, np.float32), None, x, 0, 0.0, 1.0, 20.0)
    with pytest.raises(ValueError, match="mask"):
        _cpu.activation_forward(np.empty(100, np.float32), np.empty(12, np.uint8), x, 0, 0.0, 1.0, 20.0)
    with pytest.raises(ValueError, match="mask"):
        _cpu.activation_backward(np.empty(100, np.float32), x, None, None, 0, 0.0, 1.0, 20.0)
    with pytest.raises(ValueError, match="saved"):
        _cpu.activation_backward(np.empty(100, np.float32), x, np.ones(50, np.float32), None, 2, 0.0, 1.0, 20.0)
    with pytest.raises(ValueError, match="kind"):
        _cpu.activation_forward(np.empty(100, np.float32), None, x, 8, 0.0, 1.0, 20.0)
