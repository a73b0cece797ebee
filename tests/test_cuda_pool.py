"""CUDA pooling kernels (csrc/cuda/pool.cu) against the NumPy reference.

Runs the kernels in the CPU emulator of the CUDA execution model (fastlayers._cuda_emu on
EmuArrays) under two thread schedules, and, when a GPU is usable, the same checks through
fastlayers._cuda on CuPy arrays (tests marked gpu). Sizes are small (the emulator runs
every CUDA thread as a fiber) but awkward: 1, primes, partial warps, several blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers.reference import pool as ref

from cuda_backends import Emu, backend_fixture


# The emulator under three schedules (one under the threads engine), then the GPU.
dev = backend_fixture(Emu("round-robin"), Emu("greedy"), Emu("descending"))


# (N, C, H, W), kernel, stride, padding
GEOMETRIES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0)),
    ((2, 3, 7, 5), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 9, 11), (2, 2), (2, 2), (0, 0)),
    ((2, 1, 5, 6), (3, 2), (1, 2), (1, 1)),   # overlapping rows, non-square
    ((1, 1, 17, 19), (3, 3), (1, 1), (1, 1)),  # 323 outputs: two blocks of 256
    ((1, 3, 6, 13), (4, 5), (3, 2), (2, 2)),
]
IDS = [f"{s}-k{k}-s{st}-p{p}" for s, k, st, p in GEOMETRIES]


def _args(k, st, p):
    return (k[0], k[1], st[0], st[1], p[0], p[1])


@pytest.mark.parametrize("shape,k,st,p", GEOMETRIES, ids=IDS)
def test_max_pool2d(dev, shape, k, st, p):
    rng = np.random.default_rng(1)
    # Small integers: many ties, so the first-maximum rule is exercised.
    x = rng.integers(-3, 4, size=shape).astype(np.float32)
    want, cache = ref.max_pool2d_forward(x.astype(np.float64), k, st, p)
    out = dev.empty(want.shape, np.float32)
    argmax = dev.empty(want.shape, np.int32)
    dev.mod.max_pool2d_forward(out, argmax, dev.asarray(x), *_args(k, st, p))
    np.testing.assert_array_equal(dev.get(out), want.astype(np.float32))
    np.testing.assert_array_equal(dev.get(argmax), cache[3])
    # Inference path: no argmax.
    out2 = dev.empty(want.shape, np.float32)
    dev.mod.max_pool2d_forward(out2, None, dev.asarray(x), *_args(k, st, p))
    np.testing.assert_array_equal(dev.get(out2), want.astype(np.float32))

    dout = rng.standard_normal(want.shape).astype(np.float32)
    (dx_want,) = ref.max_pool2d_backward(dout.astype(np.float64), cache)
    dx = dev.empty(shape, np.float32)
    dev.mod.max_pool2d_backward(dx, dev.asarray(dout), argmax, *_args(k, st, p))
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-6, atol=1e-6)


def test_max_pool2d_nan_and_inf(dev):
    x = np.full((1, 2, 4, 4), -np.inf, np.float32)
    x[0, 0] = np.arange(16, dtype=np.float32).reshape(4, 4)
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 0, 1] = np.nan  # the first NaN in window (0, 0) in row-major order
    x[0, 0, 3, 3] = np.nan
    want, cache = ref.max_pool2d_forward(x.astype(np.float64), 2, 2, 0)
    out = dev.empty(want.shape, np.float32)
    argmax = dev.empty(want.shape, np.int32)
    dev.mod.max_pool2d_forward(out, argmax, dev.asarray(x), 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(dev.get(out), want.astype(np.float32))
    np.testing.assert_array_equal(dev.get(argmax), cache[3])
    assert dev.get(argmax)[0, 0, 0, 0] == 1 and np.isnan(dev.get(out)[0, 0, 0, 0])
    assert np.all(dev.get(out)[0, 1] == -np.inf)  # all -inf: the first element
    np.testing.assert_array_equal(dev.get(argmax)[0, 1], [[0, 2], [8, 10]])


@pytest.mark.parametrize("shape,k,st,p", GEOMETRIES, ids=IDS)
def test_avg_pool2d(dev, shape, k, st, p):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    want, cache = ref.avg_pool2d_forward(x.astype(np.float64), k, st, p)
    out = dev.empty(want.shape, np.float32)
    dev.mod.avg_pool2d_forward(out, dev.asarray(x), *_args(k, st, p))
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-5, atol=1e-6)

    dout = rng.standard_normal(want.shape).astype(np.float32)
    (dx_want,) = ref.avg_pool2d_backward(dout.astype(np.float64), cache)
    dx = dev.empty(shape, np.float32)
    dev.mod.avg_pool2d_backward(dx, dev.asarray(dout), *_args(k, st, p))
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-5, atol=1e-6)


# Planes of 1, 7x7 (warp per plane, partial warps), 3x5 (hw not a multiple of 4), 8x4
# (float4 backward), 37x31 (block per plane); 9 planes: more than one block of 8 warps.
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 3, 7, 7), (2, 1, 3, 5), (1, 9, 8, 4), (1, 2, 37, 31)])
def test_global_avg_pool2d(dev, shape):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) + 3.0).astype(np.float32)
    want, cache = ref.global_avg_pool2d_forward(x.astype(np.float64))
    out = dev.empty(want.shape, np.float32)
    dev.mod.global_avg_pool2d_forward(out, dev.asarray(x))
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-5)

    dout = rng.standard_normal(want.shape).astype(np.float32)
    (dx_want,) = ref.global_avg_pool2d_backward(dout.astype(np.float64), cache)
    dx = dev.empty(shape, np.float32)
    dev.mod.global_avg_pool2d_backward(dx, dev.asarray(dout))
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-6)


def test_bad_input(dev):
    x = dev.asarray(np.zeros((1, 1, 4, 4), np.float32))
    out = dev.empty((1, 1, 2, 2), np.float32)
    m = dev.mod
    with pytest.raises(TypeError, match="x"):
        m.max_pool2d_forward(out, None, np.zeros((1, 1, 4, 4), np.float32), 2, 2, 2, 2, 0, 0)
    with pytest.raises(TypeError, match="x"):
        m.avg_pool2d_forward(out, dev.asarray(np.zeros((1, 1, 4, 4), np.float64)), 2, 2, 2, 2, 0, 0)
    with pytest.raises(TypeError, match="argmax"):
        m.max_pool2d_forward(out, dev.empty((1, 1, 2, 2), np.float32), x, 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="out"):
        m.max_pool2d_forward(dev.empty((1, 1, 3, 2), np.float32), None, x, 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="x"):
        m.avg_pool2d_forward(out, dev.asarray(np.zeros((4, 4), np.float32)), 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="padding"):
        m.max_pool2d_forward(out, None, x, 2, 2, 2, 2, 2, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        m.avg_pool2d_forward(out, x, 5, 5, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="dout"):
        m.max_pool2d_backward(dev.empty((1, 1, 4, 4), np.float32), dev.empty((1, 1, 3, 3), np.float32),
                              dev.empty((1, 1, 2, 2), np.int32), 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="argmax"):
        m.max_pool2d_backward(dev.empty((1, 1, 4, 4), np.float32), dev.empty((1, 1, 2, 2), np.float32),
                              dev.empty((1, 2, 2), np.int32), 2, 2, 2, 2, 0, 0)
    with pytest.raises(ValueError, match="out"):
        m.global_avg_pool2d_forward(dev.empty((1, 2), np.float32), x)
    with pytest.raises(ValueError, match="dout"):
        m.global_avg_pool2d_backward(dev.empty((1, 1, 4, 4), np.float32), dev.empty((2, 1), np.float32))
