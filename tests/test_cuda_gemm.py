"""CUDA GEMM (csrc/cuda/gemm.cu) and the SGEMM ladder (csrc/cuda/gemm_ladder.cu) against
the float64 oracle.

Runs in the CPU emulator of the CUDA execution model (fastlayers._cuda_emu, on EmuArrays)
under two thread schedules, and on a real GPU through fastlayers._cuda with CuPy
(``gpu`` marker; skipped with the reason when none is usable). Sizes are small and
awkward: 1, primes, not multiples of the 64/128 tiles, more than one block per axis.
"""

from __future__ import annotations

import numpy as np
import pytest

from cuda_backends import Emu, assert_close, backend_fixture, emu_backend, gpu_backend

# The emulator under two schedules (one under the threads engine), then the GPU.
be = backend_fixture(Emu("round-robin", seed=1), Emu("greedy", seed=1), name="be")


# ---- gemm -------------------------------------------------------------------------------


def oracle(a, b, trans_a, trans_b, alpha=1.0, beta=0.0, c0=None):
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a64 = a64.swapaxes(-1, -2) if trans_a else a64
    b64 = b64.swapaxes(-1, -2) if trans_b else b64
    ref = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        ref = ref + beta * np.asarray(c0, np.float64)
        scale = scale + np.abs(beta * np.asarray(c0, np.float64))
    return ref, scale


def operands(rng, m, n, k, trans_a, trans_b, batch=()):
    a = rng.standard_normal(batch + ((k, m) if trans_a else (m, k))).astype(np.float32)
    b = rng.standard_normal(batch + ((n, k) if trans_b else (k, n))).astype(np.float32)
    return a, b


SHAPES = [(1, 1, 1), (3, 5, 7), (37, 45, 29), (64, 68, 20), (67, 131, 17), (130, 3, 70)]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("tile", [1, 2], ids=["tile64", "tile128"])
@pytest.mark.parametrize("trans", TRANSPOSES, ids=["NN", "TN", "NT", "TT"])
@pytest.mark.parametrize("mnk", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm(be, mnk, trans, tile):
    rng = np.random.default_rng(sum(mnk) + 7 * tile)
    (m, n, k), (ta, tb) = mnk, trans
    a, b = operands(rng, m, n, k, ta, tb)
    out = be.empty((m, n))  # NaN-filled: beta == 0 must not read it
    old = be.mod._gemm_force_tile(tile)
    try:
        be.mod.gemm(out, be.asarray(a), be.asarray(b), ta, tb, 1.0, 0.0, be.stream())
    finally:
        be.mod._gemm_force_tile(old)
    ref, scale = oracle(a, b, ta, tb)
    assert_close(be.get(out), ref, scale, k)


@pytest.mark.parametrize("trans", TRANSPOSES, ids=["NN", "TN", "NT", "TT"])
@pytest.mark.parametrize(("splits", "mnk"), [(3, (37, 45, 300)), (2, (5, 70, 33)), (7, (1, 1, 100))],
                         ids=["3x37x45x300", "2x5x70x33", "7x1x1x100"])
def test_gemm_split_k(be, trans, splits, mnk):
    # Split-K, forced on small shapes: slices of k multiplied by separate blocks into a
    # workspace, summed in order, then alpha and beta applied (C read once, at the end).
    rng = np.random.default_rng(splits * 100 + sum(mnk))
    (m, n, k), (ta, tb) = mnk, trans
    a, b = operands(rng, m, n, k, ta, tb)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    old = be.mod._gemm_force_split(splits)
    try:
        be.mod.gemm(out, be.asarray(a), be.asarray(b), ta, tb, -0.75, 0.5, be.stream())
    finally:
        be.mod._gemm_force_split(old)
    ref, scale = oracle(a, b, ta, tb, alpha=-0.75, beta=0.5, c0=c0)
    assert_close(be.get(out), ref, scale, k)


def test_gemm_splits_a_long_k_by_itself(be):
    # 20 x 30 outputs (one tile) over k = 4096: chosen by size, split into four slices.
    rng = np.random.default_rng(5)
    m, n, k = 20, 30, 4096
    a, b = operands(rng, m, n, k, False, True)
    out = be.empty((m, n))
    be.mod.gemm(out, be.asarray(a), be.asarray(b), False, True, 1.0, 0.0, be.stream())
    ref, scale = oracle(a, b, False, True)
    assert_close(be.get(out), ref, scale, k)


@pytest.mark.parametrize(("alpha", "beta"), [(0.5, -1.25), (-2.0, 1.0), (0.0, 0.5)])
@pytest.mark.parametrize("trans", [(False, False), (True, True)], ids=["NN", "TT"])
def test_gemm_alpha_beta(be, alpha, beta, trans):
    rng = np.random.default_rng(3)
    m, n, k = 33, 70, 13
    a, b = operands(rng, m, n, k, *trans)
    if alpha == 0.0:
        a[0, 0] = np.nan  # BLAS: alpha == 0 does not read A and B
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    out = be.asarray(c0)
    be.mod.gemm(out, be.asarray(a), be.asarray(b), trans[0], trans[1], alpha, beta, be.stream())
    ref, scale = oracle(np.nan_to_num(a), b, *trans, alpha=alpha, beta=beta, c0=c0)
    assert_close(be.get(out), ref, scale, k)


def test_gemm_k_zero(be):
    out = be.asarray(np.full((5, 3), 2.0, np.float32))
    a, b = be.asarray(np.zeros((5, 0), np.float32)), be.asarray(np.zeros((0, 3), np.float32))
    be.mod.gemm(out, a, b, False, False, 1.0, 0.5, be.stream())
    np.testing.assert_array_equal(be.get(out), np.full((5, 3), 1.0, np.float32))


@pytest.mark.parametrize("trans", TRANSPOSES, ids=["NN", "TN", "NT", "TT"])
def test_gemm_batched(be, trans):
    rng = np.random.default_rng(11)
    batch, m, n, k = 3, 37, 20, 29
    a, b = operands(rng, m, n, k, *trans, batch=(batch,))
    out = be.empty((batch, m, n))
    be.mod.gemm_batched(out, be.asarray(a), be.asarray(b), trans[0], trans[1], 1.0, 0.0, be.stream())
    ref, scale = oracle(a, b, *trans)
    assert_close(be.get(out), ref, scale, k)


# ---- the SGEMM ladder -------------------------------------------------------------------


def test_gemm_rungs_listed(be):
    names = be.mod.gemm_rungs()
    assert names[0] == "naive" and "vectorised" in names[5] and names[6] == "warp tiling"
    assert names[7] == "double buffered" and len(names) == 8


# (129, 132, 44): float4 loads allowed (k, n % 4 == 0), a partial last k slice, edge tiles
@pytest.mark.parametrize("rung", range(8))
@pytest.mark.parametrize("mnk", [(1, 1, 1), (37, 45, 29), (130, 67, 40), (129, 132, 44)],
                         ids=lambda s: "x".join(map(str, s)))
def test_gemm_rung(be, rung, mnk):
    rng = np.random.default_rng(rung)
    m, n, k = mnk
    a, b = operands(rng, m, n, k, False, False)
    out = be.empty((m, n))
    be.mod.gemm_rung(rung, out, be.asarray(a), be.asarray(b), be.stream())
    ref, scale = oracle(a, b, False, False)
    assert_close(be.get(out), ref, scale, k, name=f"rung {rung} ({be.mod.gemm_rungs()[rung]})")


# ---- bad input --------------------------------------------------------------------------


def test_gemm_bad_input(be):
    a, b, out = be.asarray(np.ones((4, 3), np.float32)), be.asarray(np.ones((3, 5), np.float32)), be.empty((4, 5))
    s = be.stream()
    with pytest.raises(TypeError, match="a: expected a GPU array"):
        be.mod.gemm(out, np.ones((4, 3), np.float32), b, False, False, 1.0, 0.0, s)
    with pytest.raises(TypeError, match="b: expected dtype"):
        be.mod.gemm(out, a, be.asarray(np.ones((3, 5)), dtype=np.int32), False, False, 1.0, 0.0, s)
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 5\)"):
        be.mod.gemm(be.empty((5, 4)), a, b, False, False, 1.0, 0.0, s)
    with pytest.raises(ValueError, match="b: expected 3 rows"):
        be.mod.gemm(out, a, b, False, True, 1.0, 0.0, s)
    with pytest.raises(ValueError, match="a: expected a 2-D array"):
        be.mod.gemm(out, be.asarray(np.ones((2, 4, 3), np.float32)), b, False, False, 1.0, 0.0, s)
    with pytest.raises(ValueError, match="rung: expected 0 .. 7"):
        be.mod.gemm_rung(8, out, a, b, s)
    with pytest.raises(ValueError, match="b: expected a batch of 2"):
        be.mod.gemm_batched(be.empty((2, 4, 5)), be.asarray(np.ones((2, 4, 3), np.float32)),
                            be.asarray(np.ones((1, 3, 5), np.float32)), False, False, 1.0, 0.0, s)


# ---- GPU against the emulator -----------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("trans", TRANSPOSES, ids=["NN", "TN", "NT", "TT"])
def test_gemm_gpu_matches_emulator(trans):
    """The same kernel on the GPU and in the emulator agree (to FMA-contraction rounding)."""
    gpu_be, emu_be = gpu_backend(), emu_backend()
    rng = np.random.default_rng(17)
    m, n, k = 67, 131, 40
    a, b = operands(rng, m, n, k, *trans)
    results = []
    for be in (gpu_be, emu_be):
        out = be.empty((m, n))
        be.mod.gemm(out, be.asarray(a), be.asarray(b), trans[0], trans[1], 1.0, 0.0, be.stream())
        results.append(be.get(out))
    _, scale = oracle(a, b, *trans)
    assert_close(results[0], results[1].astype(np.float64), 2 * scale, k, "gpu vs emulator")
