"""Shared fixtures: a seeded generator, runtime-setting guards and the GEMM oracle.

The oracle is NumPy's matmul in float64 of the float32 inputs (every float32 product is
exact in float64), so the only error measured is fastlayers' own. The accepted error is
elementwise and grows with K (see ``gemm_tolerance``).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers

EPS32 = float(np.finfo(np.float32).eps)
SIMD_PATHS = fastlayers.info()["simd_paths_supported"]


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed: every test sees the same data on every run."""
    return np.random.default_rng(20240611)


@pytest.fixture(autouse=True)
def _restore_runtime():
    """Undo any thread-count or SIMD-path change a test makes, even when it fails."""
    threads, path = fastlayers.get_num_threads(), fastlayers.get_simd_path()
    yield
    fastlayers.set_num_threads(threads)
    fastlayers.set_simd_path(path)


@pytest.fixture(params=SIMD_PATHS)
def simd_path(request):
    """Runs the test once per SIMD path this CPU supports, with that path forced."""
    fastlayers.set_simd_path(request.param)
    return request.param


def gemm_oracle(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c0=None):
    """(C64, scale): the float64 result and the magnitude its rounding error scales with.

    C64   = alpha * op(A) @ op(B) + beta * C0                     (C0 ignored when beta == 0)
    scale = |alpha| * |op(A)| @ |op(B)| + |beta * C0|
    """
    a64 = np.asarray(a, np.float64)
    b64 = np.asarray(b, np.float64)
    a64 = a64.T if trans_a else a64
    b64 = b64.T if trans_b else b64
    c64 = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        c64 = c64 + beta * np.asarray(c0, np.float64)
        scale = scale + np.abs(beta * np.asarray(c0, np.float64))
    return c64, scale


def gemm_tolerance(k: int, scale):
    """Elementwise bound 2 * (sqrt(K) + 2) * eps32 * scale.

    sqrt(K) is the typical growth of a K-term float32 sum; the +2 covers the roundings of
    alpha, beta and the final add at small K. Measured errors stay below half of this on
    every path, while one dropped k-step (error |a_ik * b_kj| ~ scale / K) is caught for
    any K up to ~10^4 — see test_tolerance_catches_* in test_gemm.py.
    """
    return 2.0 * (np.sqrt(max(k, 1)) + 2.0) * EPS32 * scale


def assert_gemm_close(c, a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c0=None):
    """Asserts that c matches the float64 oracle elementwise within gemm_tolerance."""
    c64, scale = gemm_oracle(a, b, trans_a, trans_b, alpha, beta, c0)
    assert c.shape == c64.shape, f"shape {c.shape}, expected {c64.shape}"
    assert c.dtype == np.float32, f"dtype {c.dtype}, expected float32"
    k = np.shape(a)[0 if trans_a else 1]
    err = np.abs(c.astype(np.float64) - c64)
    tol = gemm_tolerance(k, scale)
    bad = ~(err <= tol)  # also flags NaN
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} elements outside tolerance (K={k}); first at "
            f"[{i}, {j}]: got {c[i, j]!r}, expected {c64[i, j]!r}, |err|={err[i, j]:.3g} > tol={tol[i, j]:.3g}"
        )


@pytest.fixture
def check_gemm():
    """The assert_gemm_close helper, as a fixture so test files need not import conftest."""
    return assert_gemm_close


def random_operands(rng, m, n, k, trans_a=False, trans_b=False):
    """Standard-normal float32 A and B stored so that op(A) is (m, k) and op(B) is (k, n)."""
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    return a, b


@pytest.fixture
def operands(rng):
    """random_operands bound to the seeded generator: operands(m, n, k, trans_a, trans_b)."""
    return lambda m, n, k, trans_a=False, trans_b=False: random_operands(rng, m, n, k, trans_a, trans_b)
