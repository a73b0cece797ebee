"""GEMM: fastlayers.ops.gemm (C++ kernel and reference backend) vs a float64 oracle.

Covers: awkward sizes and non-square shapes on every SIMD path and transpose combination;
alpha/beta (NaN in `out` must not leak when beta == 0); blocks larger than KC/MC/NC;
strided, negative-stride, Fortran-ordered, broadcast and misaligned inputs; `out` that
overlaps an input; zero-sized dimensions; bad arguments (TypeError/ValueError naming the
argument); thread counts; forcing the SIMD path through FASTLAYERS_SIMD; and a check that
the tolerance itself is tight enough to catch a dropped k-step or a wrong edge column.
The oracle and the tolerance live in conftest.py.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastlayers
from fastlayers import ops, reference

SIMD_PATHS = fastlayers.info()["simd_paths_supported"]
TRANS = list(itertools.product([False, True], repeat=2))  # (trans_a, trans_b)
SIZES = [1, 2, 3, 7, 17, 31, 33, 63, 65, 127, 129, 257]

# (m, n, k): non-square and awkward. Tiles are 14x32 (avx512), 6x16 (avx2), 4x16
# (scalar); KC = 256, MC = 224 (avx512); N << NR triggers the C^T = B^T A^T swap.
SHAPES = [
    (1, 1, 1),
    (2, 3, 1),      # K = 1
    (300, 1, 1),
    (1, 300, 1),
    (1, 1, 300),
    (7, 65, 33),
    (129, 17, 63),
    (31, 257, 3),
    (65, 2, 129),   # narrow N: transposed-problem path
    (500, 3, 100),
    (3, 500, 100),
    (14, 32, 256),  # exactly one avx512 tile and one KC block
    (15, 33, 257),  # one past in every dimension
    (300, 200, 513),  # several KC blocks, M > MC
    (450, 70, 300),
]

# (alpha, beta): zeros, one, negatives, non-unit.
ALPHA_BETA = [(1.0, 0.0), (0.0, 0.0), (1.0, 1.0), (-1.0, 0.5), (2.5, -1.0), (0.0, 1.5), (-0.5, -2.0)]


def run_gemm(a, b, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c0=None, backend=None):
    """ops.gemm into a copy of c0 (or into a NaN-filled out when beta == 0); returns out."""
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    out = np.full((m, n), np.nan, np.float32) if beta == 0.0 else c0.copy()
    res = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=out, backend=backend)
    assert res is out
    return out


# --- sizes, shapes, transposes, alpha/beta -------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_square_sizes_default_path(size, operands, check_gemm):
    a, b = operands(size, size, size)
    check_gemm(ops.gemm(a, b), a, b)


@pytest.mark.parametrize("trans_a, trans_b", TRANS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_every_path_and_transpose(simd_path, shape, trans_a, trans_b, operands, check_gemm):
    a, b = operands(*shape, trans_a, trans_b)
    check_gemm(ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b), a, b, trans_a, trans_b)


@pytest.mark.parametrize("alpha, beta", ALPHA_BETA)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, True)])
def test_alpha_beta(simd_path, alpha, beta, trans_a, trans_b, operands, rng, check_gemm):
    m, n, k = 45, 37, 270
    a, b = operands(m, n, k, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = run_gemm(a, b, trans_a, trans_b, alpha, beta, c0)
    check_gemm(c, a, b, trans_a, trans_b, alpha, beta, c0)


def test_nan_in_out_does_not_leak_when_beta_is_zero(simd_path, operands):
    a, b = operands(29, 47, 300)
    out = np.full((29, 47), np.nan, np.float32)
    assert np.isfinite(ops.gemm(a, b, beta=0.0, out=out)).all()
    out[:] = np.inf
    assert (ops.gemm(a, b, alpha=0.0, beta=0.0, out=out) == 0).all()


@pytest.mark.parametrize("shape", [(300, 200, 513), (230, 513, 600), (17, 4200, 40)], ids=str)
def test_large_blocks(shape, operands, check_gemm):
    """Several KC blocks, several MC blocks, and N > NC (4096)."""
    a, b = operands(*shape)
    check_gemm(ops.gemm(a, b), a, b)


# Narrow C (n <= 12, k >= 16, row-major A) takes the dot-product kernel on AVX-512: row
# blocks of 4, column blocks of 6 and a masked k tail of 16 must all be covered, with B
# read in place (trans_b) or copied (plain), and the rows split between threads.
NARROW = [(1, 1, 16), (5, 7, 17), (128, 10, 512), (33, 12, 100), (4, 6, 31), (130, 11, 47), (3, 13, 64)]


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", NARROW, ids=str)
def test_narrow_c(shape, threads, trans_b, operands, rng, check_gemm):
    fastlayers.set_num_threads(threads)
    m, n, k = shape
    a, b = operands(m, n, k, False, trans_b)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = run_gemm(a, b, False, trans_b, 0.75, -0.5, c0)
    check_gemm(c, a, b, False, trans_b, 0.75, -0.5, c0)


def test_matmul_is_gemm(operands, check_gemm):
    a, b = operands(33, 17, 65)
    check_gemm(ops.matmul(a, b), a, b)


# --- reference and backend="reference" -----------------------------------------------------

REF_CASES = [  # (m, n, k, alpha, beta)
    (1, 1, 1, 1.0, 0.0),
    (3, 7, 2, -1.0, 0.5),
    (17, 9, 33, 2.0, -1.0),
    (6, 31, 65, 0.0, 1.0),
    (40, 2, 129, 0.5, 0.0),
]


@pytest.mark.parametrize("trans_a, trans_b", TRANS)
@pytest.mark.parametrize("m, n, k, alpha, beta", REF_CASES)
def test_reference_gemm(m, n, k, alpha, beta, trans_a, trans_b, operands, rng, check_gemm):
    a, b = operands(m, n, k, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = reference.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=c0)
    check_gemm(c, a, b, trans_a, trans_b, alpha, beta, c0)


@pytest.mark.parametrize("trans_a, trans_b", TRANS)
@pytest.mark.parametrize("m, n, k, alpha, beta", REF_CASES)
def test_reference_backend(m, n, k, alpha, beta, trans_a, trans_b, operands, rng, check_gemm):
    a, b = operands(m, n, k, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = run_gemm(a, b, trans_a, trans_b, alpha, beta, c0, backend="reference")
    check_gemm(c, a, b, trans_a, trans_b, alpha, beta, c0)


def test_reference_keeps_float64(rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    c = reference.gemm(a, b)
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, a @ b, rtol=1e-13, atol=1e-13)


# --- strided and unusual input layouts ------------------------------------------------------


def _randn(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _from_bytes(rng, shape, offset, strides):
    """A float32 array at a byte offset into a uint8 buffer, with the given byte strides."""
    buf = np.zeros(offset + strides[0] * shape[0] + strides[1] * shape[1] + 8, np.uint8)
    x = np.ndarray(shape, np.float32, buffer=buf, offset=offset, strides=strides)
    x[...] = _randn(rng, shape)
    return x


# Each builds an array of the given logical shape whose memory layout is unusual.
LAYOUTS = {
    "c_contiguous": lambda rng, s: _randn(rng, s),
    "fortran": lambda rng, s: np.asfortranarray(_randn(rng, s)),
    "transposed_view": lambda rng, s: _randn(rng, s[::-1]).T,
    "step_slices": lambda rng, s: _randn(rng, (2 * s[0], 3 * s[1] + 1))[::2, 1::3],
    "negative_rows": lambda rng, s: _randn(rng, s)[::-1],
    "negative_both": lambda rng, s: _randn(rng, s)[::-1, ::-1],
    "negative_transposed": lambda rng, s: _randn(rng, s[::-1])[::-1].T,
    "broadcast_rows": lambda rng, s: np.broadcast_to(_randn(rng, (1, s[1])), s),
    "misaligned_pointer": lambda rng, s: _from_bytes(rng, s, 1, (4 * s[1], 4)),
    "byte_strides": lambda rng, s: _from_bytes(rng, s, 3, (6 * s[1] + 2, 6)),
}


@pytest.mark.parametrize("trans_a, trans_b", TRANS)
@pytest.mark.parametrize("operand", ["a", "b"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_strided_inputs(layout, operand, trans_a, trans_b, rng, check_gemm):
    m, n, k = 29, 47, 300
    make = LAYOUTS[layout]
    a_shape, b_shape = ((k, m) if trans_a else (m, k)), ((n, k) if trans_b else (k, n))
    a = make(rng, a_shape) if operand == "a" else _randn(rng, a_shape)
    b = make(rng, b_shape) if operand == "b" else _randn(rng, b_shape)
    a_before, b_before = a.copy(), b.copy()
    check_gemm(ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b), a, b, trans_a, trans_b)
    np.testing.assert_array_equal(a, a_before)  # inputs are only read
    np.testing.assert_array_equal(b, b_before)


def test_layouts_have_the_intended_strides(rng):
    """Guards the table above: the layouts really are unusual."""
    s = (5, 6)
    assert LAYOUTS["negative_both"](rng, s).strides == (-24, -4)
    assert LAYOUTS["broadcast_rows"](rng, s).strides[0] == 0
    assert not LAYOUTS["misaligned_pointer"](rng, s).flags.aligned
    assert all(st % 4 for st in LAYOUTS["byte_strides"](rng, s).strides)


# --- out overlapping the inputs -------------------------------------------------------------

OVERLAPS = {  # name -> (out, a, b) built from one square float32 matrix x (and a buffer)
    "out_is_a": lambda x, y: (x, x, y),
    "out_is_b": lambda x, y: (y, x, y),
    "out_is_a_and_b": lambda x, y: (x, x, x),
    "out_is_a_shifted": lambda x, y: (x[:-1], x[1:], y),  # out = rows 0..38, a = rows 1..39
    "b_is_out_transposed": lambda x, y: (x, y, x.T),
}


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("case", list(OVERLAPS))
def test_out_overlaps_input(case, beta, backend, rng, check_gemm):
    x, y = _randn(rng, (40, 40)), _randn(rng, (40, 40))
    out, a, b = OVERLAPS[case](x, y)
    a0, b0, c0 = a.copy(), b.copy(), out.copy()
    res = ops.gemm(a, b, alpha=-1.5, beta=beta, out=out, backend=backend)
    assert res is out
    check_gemm(out, a0, b0, alpha=-1.5, beta=beta, c0=c0)


# --- zero-sized dimensions ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("m, n, k", [(0, 5, 4), (3, 0, 4), (3, 5, 0), (0, 0, 0), (0, 5, 0)])
def test_zero_sized_beta_zero(m, n, k, backend):
    out = np.full((m, n), np.nan, np.float32)
    c = ops.gemm(np.ones((m, k), np.float32), np.ones((k, n), np.float32), out=out, backend=backend)
    assert c.shape == (m, n)
    np.testing.assert_array_equal(c, np.zeros((m, n), np.float32))


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("trans_a, trans_b", TRANS)
def test_k_zero_scales_out_by_beta(trans_a, trans_b, backend, rng):
    a = np.empty((0, 3) if trans_a else (3, 0), np.float32)
    b = np.empty((5, 0) if trans_b else (0, 5), np.float32)
    c0 = _randn(rng, (3, 5))
    c = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, beta=-2.5, out=c0.copy(), backend=backend)
    np.testing.assert_array_equal(c, np.float32(-2.5) * c0)


def test_zero_sized_without_out():
    assert ops.gemm(np.ones((0, 4), np.float32), np.ones((4, 6), np.float32)).shape == (0, 6)
    np.testing.assert_array_equal(ops.gemm(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32)),
                                  np.zeros((2, 3), np.float32))


# --- bad input ------------------------------------------------------------------------------

A = np.ones((3, 4), np.float32)
B = np.ones((4, 5), np.float32)
OUT = np.zeros((3, 5), np.float32)


def _read_only(x):
    x = x.copy()
    x.flags.writeable = False
    return x


# (id, keyword overrides of gemm(a=A, b=B), exception, regex the message must match)
BAD_INPUT = [
    ("a_float64", dict(a=A.astype(np.float64)), TypeError, r"^a: .*float32.*float64"),
    ("b_int32", dict(b=B.astype(np.int32)), TypeError, r"^b: .*float32.*int32"),
    ("a_list", dict(a=A.tolist()), TypeError, r"^a: .*ndarray.*list"),
    ("b_scalar", dict(b=1.0), TypeError, r"^b: .*ndarray"),
    ("a_1d", dict(a=A[0]), ValueError, r"^a: .*2-D.*1-D"),
    ("b_3d", dict(b=B[None]), ValueError, r"^b: .*2-D.*3-D"),
    ("inner_mismatch", dict(b=B[:3]), ValueError, r"^b: .*\(3, 4\).*\(3, 5\)"),
    ("inner_mismatch_trans_b", dict(trans_b=True), ValueError, r"^b: .*\(3, 4\).*\(5, 4\)"),
    ("inner_mismatch_trans_a", dict(trans_a=True), ValueError, r"^b: .*\(4, 3\).*\(4, 5\)"),
    ("out_wrong_shape", dict(out=np.zeros((5, 3), np.float32)), ValueError, r"^out: .*\(3, 5\).*\(5, 3\)"),
    ("out_float64", dict(out=OUT.astype(np.float64)), TypeError, r"^out: .*float64"),
    ("out_list", dict(out=OUT.tolist()), TypeError, r"^out: .*list"),
    ("out_fortran", dict(out=np.asfortranarray(np.zeros((3, 5), np.float32))), ValueError, r"^out: .*C-contiguous"),
    ("out_sliced", dict(out=np.zeros((3, 10), np.float32)[:, ::2]), ValueError, r"^out: .*C-contiguous"),
    ("out_read_only", dict(out=_read_only(OUT)), ValueError, r"^out: .*read-only"),
    ("beta_without_out", dict(beta=0.5), ValueError, r"^out: .*beta"),
    ("trans_a_int", dict(trans_a=1), TypeError, r"^trans_a: .*bool"),
    ("trans_b_str", dict(trans_b="T"), TypeError, r"^trans_b: .*bool"),
    ("trans_a_none", dict(trans_a=None), TypeError, r"^trans_a: "),
    ("alpha_str", dict(alpha="2"), TypeError, r"^alpha: "),
    ("alpha_bool", dict(alpha=True), TypeError, r"^alpha: "),
    ("beta_complex", dict(beta=1j, out=OUT.copy()), TypeError, r"^beta: "),
    ("alpha_huge_int", dict(alpha=10**400), ValueError, r"^alpha: .*too large"),
    ("backend_unknown", dict(backend="gpu"), ValueError, r"^backend: .*'gpu'"),
    ("backend_uppercase", dict(backend="CPU"), ValueError, r"^backend: .*'CPU'"),
]


@pytest.mark.parametrize("backend", [None, "reference"])
@pytest.mark.parametrize("overrides, exc, match", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(overrides, exc, match, backend):
    kwargs = dict(a=A, b=B, backend=backend) | overrides
    a, b = kwargs.pop("a"), kwargs.pop("b")
    with pytest.raises(exc, match=match):
        ops.gemm(a, b, **kwargs)


@pytest.mark.parametrize("backend", [None, "reference"])
def test_alpha_zero_does_not_read_a_or_b(backend):
    # BLAS: with alpha == 0 the product is not formed, so NaN/Inf in A or B cannot leak.
    a = np.full((3, 4), np.nan, np.float32)
    b = np.full((4, 5), np.inf, np.float32)
    out = np.full((3, 5), 2.0, np.float32)
    res = ops.gemm(a, b, alpha=0.0, beta=0.5, out=out, backend=backend)
    np.testing.assert_array_equal(res, np.full((3, 5), 1.0, np.float32))


def test_unpickled_arrays_are_accepted():
    # An unpickled array carries an equal but distinct dtype object; the binding must
    # compare dtypes by value, not identity.
    import pickle

    a = pickle.loads(pickle.dumps(np.ones((2, 3), np.float32)))
    b = pickle.loads(pickle.dumps(np.ones((3, 4), np.float32)))
    out = pickle.loads(pickle.dumps(np.zeros((2, 4), np.float32)))
    np.testing.assert_array_equal(ops.gemm(a, b, out=out), np.full((2, 4), 3.0, np.float32))


def test_matmul_refuses_other_dtypes():
    with pytest.raises(TypeError, match=r"^b: .*float16"):
        ops.matmul(A, B.astype(np.float16))


# --- threads --------------------------------------------------------------------------------

# Large enough that the kernel really splits the work (it stays on one thread below about
# 1 MFLOP per thread): rows split, columns split (M < MR * threads), transposed problem.
THREAD_SHAPES = [(300, 200, 513), (10, 700, 300), (700, 10, 300)]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("shape", THREAD_SHAPES, ids=str)
def test_thread_counts_agree(simd_path, shape, threads, operands, rng, check_gemm):
    a, b = operands(*shape)
    c0 = _randn(rng, shape[:2])
    fastlayers.set_num_threads(1)
    one = ops.gemm(a, b, alpha=0.75, beta=-1.0, out=c0.copy())
    fastlayers.set_num_threads(threads)
    assert fastlayers.get_num_threads() == threads
    many = ops.gemm(a, b, alpha=0.75, beta=-1.0, out=c0.copy())
    # Same blocking whatever the thread count, so the sums round identically; allow a
    # few ulps in case a future split changes the order.
    np.testing.assert_allclose(many, one, rtol=4 * np.finfo(np.float32).eps, atol=1e-6)
    check_gemm(many, a, b, alpha=0.75, beta=-1.0, c0=c0)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), ("2", TypeError), (2.0, TypeError)])
def test_set_num_threads_refuses(bad, exc):
    before = fastlayers.get_num_threads()
    with pytest.raises(exc, match=r"^n: .*>= 1"):
        fastlayers.set_num_threads(bad)
    assert fastlayers.get_num_threads() == before


# --- forcing the SIMD path at import: FASTLAYERS_SIMD --------------------------------------

_CHILD = """
import json, sys, numpy as np, fastlayers
rng = np.random.default_rng(7)
a = rng.standard_normal((37, 300)).astype(np.float32)
b = rng.standard_normal((300, 45)).astype(np.float32)
c = fastlayers.ops.gemm(a, b)
print(json.dumps({"path": fastlayers.get_simd_path(), "info": fastlayers.info(), "c": c.tolist()}))
"""


def _run_child(code, simd):
    env = dict(os.environ, FASTLAYERS_SIMD=simd)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_env_var_forces_simd_path(path, check_gemm):
    proc = _run_child(_CHILD, path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["path"] == path
    assert got["info"]["gemm_blocking"]["isa"] == path
    assert "FASTLAYERS_SIMD" in got["info"]["simd_reason"]
    rng = np.random.default_rng(7)
    a = rng.standard_normal((37, 300)).astype(np.float32)
    b = rng.standard_normal((300, 45)).astype(np.float32)
    check_gemm(np.array(got["c"], np.float32), a, b)


def test_env_var_bogus_value_fails_import():
    proc = _run_child("import fastlayers", "avx9000")
    assert proc.returncode != 0
    assert "FASTLAYERS_SIMD" in proc.stderr and "'avx9000'" in proc.stderr
    assert "avx512, avx2, scalar" in proc.stderr


@pytest.mark.parametrize("path", SIMD_PATHS)
def test_set_simd_path_switches_kernel(path):
    fastlayers.set_simd_path(path)
    assert fastlayers.get_simd_path() == path
    assert fastlayers.info()["gemm_blocking"]["isa"] == path


# --- the tolerance is tight enough to catch real bugs ---------------------------------------


@pytest.mark.parametrize("k", [3, 257, 1000, 4000])
def test_tolerance_catches_dropped_k_step(k, operands, check_gemm):
    a, b = operands(20, 40, k)
    almost = ops.gemm(np.ascontiguousarray(a[:, 1:]), np.ascontiguousarray(b[1:]))  # k-step 0 missing
    with pytest.raises(AssertionError, match="outside tolerance"):
        check_gemm(almost, a, b)


@pytest.mark.parametrize("k", [1, 65, 513])
def test_tolerance_catches_wrong_edge_column(k, operands, check_gemm):
    a, b = operands(20, 33, k)
    c = ops.gemm(a, b)
    c[:, -1] = c[:, -2]  # last (edge) column computed from the wrong column of B
    with pytest.raises(AssertionError, match="outside tolerance"):
        check_gemm(c, a, b)


def test_tolerance_catches_small_relative_error(operands, check_gemm):
    """A result off by a relative 1e-4 everywhere (e.g. a mis-rounded alpha) is caught."""
    a, b = operands(30, 30, 64)
    with pytest.raises(AssertionError, match="outside tolerance"):
        check_gemm(ops.gemm(a, b, alpha=1.0 + 1e-4), a, b)
