"""CUDA fully connected layer (csrc/cuda/linear.cu) against the NumPy reference in float64.

Mirrors _cpu.linear_forward / linear_backward (bias and ReLU fused into the GEMM
epilogue; dx optional, db only with a bias). Runs in the CPU emulator under two
schedules, and on a real GPU with CuPy (``gpu`` marker; skipped when none is usable).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers import reference as ref

from cuda_backends import Emu, assert_close, backend_fixture, emu_backend, gpu_backend

# The emulator under two schedules (one under the threads engine), then the GPU.
be = backend_fixture(Emu("round-robin", seed=1), Emu("greedy", seed=1), name="be")


# ---- linear -----------------------------------------------------------------------------

SHAPES = [(1, 1, 1), (5, 7, 3), (33, 70, 65), (2, 9, 130)]  # (N, in, out)


@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("sizes", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_linear_forward_backward(be, sizes, bias, relu):
    n, fin, fout = sizes
    rng = np.random.default_rng(n * 131 + fin * 7 + fout)
    x = rng.standard_normal((n, fin)).astype(np.float32)
    w = rng.standard_normal((fout, fin)).astype(np.float32)
    b = rng.standard_normal(fout).astype(np.float32) if bias else None
    dout = rng.standard_normal((n, fout)).astype(np.float32)
    act = "relu" if relu else None
    s = be.stream()

    dx_, w_, b_ = be.asarray(x), be.asarray(w), (be.asarray(b) if bias else None)
    y = be.empty((n, fout))
    be.mod.linear_forward(y, dx_, w_, b_, relu, s)
    y_ref, cache = ref.linear_forward(x.astype(np.float64), w.astype(np.float64),
                                      None if b is None else b.astype(np.float64), act)
    y_scale = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T + (0 if b is None else np.abs(b))
    y_got = be.get(y)
    assert_close(y_got, y_ref, y_scale, fin, "y")

    dx, dw = be.empty((n, fin)), be.empty((fout, fin))
    db = be.empty((fout,)) if bias else None
    be.mod.linear_backward(dx, dw, db, y if relu else None, be.asarray(dout), dx_, w_, relu, s)
    # The mask comes from the kernel's own y (exact for the reference where y is not ~0).
    dz = np.where(y_got > 0, dout, 0).astype(np.float64) if relu else dout.astype(np.float64)
    dx_ref, dw_ref, db_ref = ref.linear_backward(dz, (x.astype(np.float64), w.astype(np.float64), bias, None, None))
    adz = np.abs(dz)
    assert_close(be.get(dx), dx_ref, adz @ np.abs(w), fout, "dx")
    assert_close(be.get(dw), dw_ref, adz.T @ np.abs(x), n, "dw")
    if bias:
        assert_close(be.get(db), db_ref, adz.sum(axis=0), n, "db")


@pytest.mark.parametrize("relu", [False, True], ids=["none", "relu"])
def test_linear_forward_split_k_epilogue(be, relu):
    # The bias and ReLU of the fused epilogue, applied by split-K's second pass.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 50)).astype(np.float32)
    w = rng.standard_normal((7, 50)).astype(np.float32)
    b = rng.standard_normal(7).astype(np.float32)
    y = be.empty((6, 7))
    old = be.mod._gemm_force_split(3)
    try:
        be.mod.linear_forward(y, be.asarray(x), be.asarray(w), be.asarray(b), relu, be.stream())
    finally:
        be.mod._gemm_force_split(old)
    y_ref, _ = ref.linear_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                  "relu" if relu else None)
    y_scale = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T + np.abs(b)
    assert_close(be.get(y), y_ref, y_scale, 50, "y")


def test_linear_backward_without_dx(be):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    w = rng.standard_normal((3, 4)).astype(np.float32)
    dout = rng.standard_normal((6, 3)).astype(np.float32)
    dw = be.empty((3, 4))
    be.mod.linear_backward(None, dw, None, None, be.asarray(dout), be.asarray(x), be.asarray(w), False, be.stream())
    d64 = dout.astype(np.float64)
    assert_close(be.get(dw), d64.T @ x, np.abs(d64).T @ np.abs(x), 6, "dw")


def test_linear_bad_input(be):
    x, w = be.asarray(np.ones((4, 3), np.float32)), be.asarray(np.ones((5, 3), np.float32))
    y, s = be.empty((4, 5)), be.stream()
    with pytest.raises(TypeError, match="x: expected a GPU array"):
        be.mod.linear_forward(y, np.ones((4, 3), np.float32), w, None, False, s)
    with pytest.raises(TypeError, match="w: expected dtype"):
        be.mod.linear_forward(y, x, be.asarray(np.ones((5, 3)), dtype=np.int32), None, False, s)
    with pytest.raises(ValueError, match="x: expected 2 in-features"):
        be.mod.linear_forward(y, x, be.asarray(np.ones((5, 2), np.float32)), None, False, s)
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 5\)"):
        be.mod.linear_forward(be.empty((4, 4)), x, w, None, False, s)
    with pytest.raises(ValueError, match=r"b: expected shape \(5\)"):
        be.mod.linear_forward(y, x, w, be.asarray(np.ones(4, np.float32)), False, s)
    dout, dw = be.asarray(np.ones((4, 5), np.float32)), be.empty((5, 3))
    with pytest.raises(ValueError, match=r"dout: expected shape \(4, 5\)"):
        be.mod.linear_backward(None, dw, None, None, be.asarray(np.ones((5, 4), np.float32)), x, w, False, s)
    with pytest.raises(ValueError, match=r"dx: expected shape \(4, 3\)"):
        be.mod.linear_backward(be.empty((3, 4)), dw, None, None, dout, x, w, False, s)
    with pytest.raises(ValueError, match="y: relu needs the forward output"):
        be.mod.linear_backward(None, dw, None, None, dout, x, w, True, s)
    with pytest.raises(ValueError, match="y: expected 20 elements"):
        be.mod.linear_backward(None, dw, None, be.empty((4, 4)), dout, x, w, True, s)
