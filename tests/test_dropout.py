"""Dropout: bit-identical masks between the kernel, the reference, thread counts and
SIMD paths; kept fraction and scaling; identity cases; reproducibility; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import _cpu, ops
from fastlayers import reference as ref
from fastlayers.gradcheck import numerical_gradient, rel_error

SHAPES = [(1,), (2,), (31,), (32,), (33,), (63,), (64,), (65,), (0,), (3, 0), (), (7, 11, 13), (2, 3, 5, 7),
          (3, 65537)]
SEEDS = [0, 1, 12345, 2**32 + 7, 2**64 - 1]
PS = [0.1, 0.5, 0.9, 1e-9, 0.999999]


def _x(shape, seed=0):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) + 3.0, dtype=np.float32)  # nonzero


def _kernel_mask(n, p, seed):
    keep = np.empty(n, dtype=np.uint8)
    _cpu.dropout_mask(keep, seed, p)
    return keep.astype(bool)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("p", [0.5, 0.1])
def test_kernel_equals_reference_bit_for_bit(shape, p):
    x, dout = _x(shape), _x(shape, 1)
    y, cache = ops.dropout_forward(x, p, seed=77)
    yr, cache_r = ref.dropout_forward(x, p, seed=77)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(y, yr)
    (dx,) = ops.dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, ref.dropout_backward(dout, cache_r)[0])
    # backend="reference" gives the same arrays
    y2, c2 = ops.dropout_forward(x, p, seed=77, backend="reference")
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(ops.dropout_backward(dout, c2)[0], dx)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", PS)
def test_mask_equals_reference_mask(seed, p):
    n = 1000
    np.testing.assert_array_equal(_kernel_mask(n, p, seed), ref.dropout_mask((n,), p, seed))


def test_mask_same_for_every_thread_count_and_simd_path():
    n = 3 * 65537 + 5  # split over threads at 2 threads
    expected = ref.dropout_mask((n,), 0.3, 99)
    x = np.ones(n, dtype=np.float32)
    for threads in (1, 2):
        fl.set_num_threads(threads)
        for path in fl.info()["simd_paths_supported"]:
            fl.set_simd_path(path)
            np.testing.assert_array_equal(ops.dropout(x, 0.3, seed=99) != 0, expected, err_msg=f"{threads} {path}")
            np.testing.assert_array_equal(_kernel_mask(n, 0.3, 99), expected)


def test_mask_depends_on_index_only():
    """A prefix of a longer array gets the prefix of the longer array's mask."""
    long = ops.dropout(np.ones(5000, np.float32), 0.5, seed=3)
    short = ops.dropout(np.ones(777, np.float32), 0.5, seed=3)
    np.testing.assert_array_equal(short, long[:777])


def test_same_seed_same_output_different_seed_different():
    x = _x((4, 1000))
    np.testing.assert_array_equal(ops.dropout(x, seed=5), ops.dropout(x, seed=5))
    assert not np.array_equal(ops.dropout(x, seed=5) != 0, ops.dropout(x, seed=6) != 0)


def test_seed_none_draws_from_numpys_global_generator():
    x = _x((1000,))
    np.random.seed(123)
    a = ops.dropout(x)
    np.random.seed(123)
    b = ops.dropout(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ops.dropout(x))  # the next draw differs


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kept_fraction_within_binomial_bound(p, seed):
    n = 200_003
    kept = np.count_nonzero(ops.dropout(np.ones(n, np.float32), p, seed=seed))
    sd = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 5 * sd  # 5 sigma: fails by chance with probability 6e-7


def test_neighbours_and_block_halves_are_uncorrelated():
    """Elements that share a hash (i and i + 32 in a 64-block) or are adjacent are independent."""
    n = 64 * 4000
    k = ref.dropout_mask((n // 64, 64), 0.5, 11).astype(np.float64)
    bound = 5 / math.sqrt(k.size / 2)
    assert abs(np.corrcoef(k[:, :32].ravel(), k[:, 32:].ravel())[0, 1]) < bound
    flat = k.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < bound


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.3])
def test_scaling_is_exact(p):
    x = _x((5, 997))
    y = ops.dropout(x, p, seed=1)
    kept = y != 0
    scale = np.float32(1.0 / (1.0 - p))
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    assert np.all(y[~kept] == 0)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_identity_cases_return_the_input(backend):
    x, dout = _x((3, 5)), _x((3, 5), 1)
    for kwargs in ({"p": 0.0}, {"p": 0.5, "training": False}, {"p": 1.0, "training": False}):
        y, cache = ops.dropout_forward(x, seed=1, backend=backend, **kwargs)
        assert y is x
        assert ops.dropout_backward(dout, cache)[0] is dout


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_p_one_gives_zeros(backend):
    x = _x((3, 67))
    x[0, 0] = np.nan
    y, cache = ops.dropout_forward(x, 1.0, seed=4, backend=backend)
    assert np.all(y == 0)
    assert np.all(ops.dropout_backward(x, cache)[0] == 0)


def test_dropped_nan_becomes_zero():
    x = np.full(256, np.nan, dtype=np.float32)
    y = ops.dropout(x, 0.5, seed=2)
    assert np.count_nonzero(y == 0) > 50 and np.all(np.isnan(y[y != 0]))


def test_non_contiguous_input_uses_c_order_index():
    base = _x((40, 30))
    xt = base.T
    np.testing.assert_array_equal(ops.dropout(xt, 0.5, seed=8), ops.dropout(np.ascontiguousarray(xt), 0.5, seed=8))


def test_reference_gradient_by_finite_differences():
    x = np.random.default_rng(0).standard_normal((4, 5))
    dout = np.random.default_rng(1).standard_normal((4, 5))
    _, cache = ref.dropout_forward(x, 0.4, seed=3)
    (dx,) = ref.dropout_backward(dout, cache)
    num = numerical_gradient(lambda: ref.dropout(x, 0.4, seed=3), x, dout)
    assert rel_error(dx, num) < 1e-8


X = np.ones((2, 3), dtype=np.float32)
BAD = [
    (lambda: ops.dropout(X, p=-0.1), ValueError, r"p: expected a probability in \[0, 1\]"),
    (lambda: ops.dropout(X, p=1.5), ValueError, "p: expected a probability"),
    (lambda: ops.dropout(X, p=float("nan")), ValueError, "p: expected a probability"),
    (lambda: ops.dropout(X, p="0.5"), TypeError, "p: expected a real number"),
    (lambda: ops.dropout(X, p=True), TypeError, "p: expected a real number"),
    (lambda: ops.dropout(X, seed=-1), ValueError, "seed"),
    (lambda: ops.dropout(X, seed=2**64), ValueError, "seed"),
    (lambda: ops.dropout(X, seed=1.5), TypeError, "seed"),
    (lambda: ops.dropout(X, seed=True), TypeError, "seed"),
    (lambda: ops.dropout(X, seed="1"), TypeError, "seed"),
    (lambda: ops.dropout(X, training="yes"), TypeError, "training"),
    (lambda: ops.dropout(X.astype(np.float64)), TypeError, "x: expected dtype float32"),
    (lambda: ops.dropout(X, backend="cuda"), ValueError, "backend"),
    (lambda: ops.dropout_backward(X, None), TypeError, "cache"),
    (lambda: ops.dropout_backward(np.ones(6, np.float32), ops.dropout_forward(X, seed=1)[1]), ValueError,
     r"dout: expected shape \(2, 3\)"),
    (lambda: _cpu.dropout_apply(np.empty(5, np.float32), X, 1, 0.5), ValueError, "out"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[b[2] for b in BAD])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_numpy_integer_seed_accepted():
    np.testing.assert_array_equal(ops.dropout(X, seed=np.uint64(2**64 - 1)), ops.dropout(X, seed=2**64 - 1))
