"""CUDA batch norm and layer norm (csrc/cuda/norm.cu) against the NumPy reference.

Training and eval batch norm on 2-D and 4-D input (one and several chunks per channel),
running statistics, large means; layer norm with warp-per-row and block-per-row shapes,
with and without the affine parameters. In the CPU emulator under two schedules and,
when a GPU is usable, through fastlayers._cuda on CuPy arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers.reference import norm as ref

from cuda_backends import Emu, backend_fixture

# The emulator under three schedules (one under the threads engine), then the GPU.
dev = backend_fixture(Emu("round-robin"), Emu("greedy"), Emu("descending"))


# 2-D (N, F); 4-D with one chunk per channel; 4-D with M = 2 * 47 * 29 = 2726 > 2048 values
# per channel (two chunks, so the partials are merged across blocks); N*H*W = 2.
BN_SHAPES = [(5, 3), (2, 3, 5, 7), (2, 2, 47, 29), (2, 1, 1, 1), (37, 70)]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=[str(s) for s in BN_SHAPES])
def test_batch_norm_train(dev, shape, affine):
    rng = np.random.default_rng(8)
    c = shape[1]
    x = (rng.standard_normal(shape) * 0.5 + 3.0).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32) if affine else None
    beta = rng.standard_normal(c).astype(np.float32) if affine else None
    rm0 = rng.standard_normal(c).astype(np.float32)
    rv0 = rng.uniform(0.5, 2, c).astype(np.float32)
    rm64, rv64 = rm0.astype(np.float64), rv0.astype(np.float64)
    g64 = None if gamma is None else gamma.astype(np.float64)
    b64 = None if beta is None else beta.astype(np.float64)
    want, cache = ref.batch_norm_forward(x.astype(np.float64), g64, b64, rm64, rv64, True, 0.1, 1e-5)

    out = dev.empty(shape, np.float32)
    sm, si = dev.empty((c,), np.float64), dev.empty((c,), np.float64)
    rm, rv = dev.asarray(rm0), dev.asarray(rv0)
    dg = None if gamma is None else dev.asarray(gamma)
    db = None if beta is None else dev.asarray(beta)
    xd = dev.asarray(x)
    dev.mod.batch_norm_forward(out, sm, si, rm, rv, xd, dg, db, True, 0.1, 1e-5)
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-4, atol=1e-5)
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    np.testing.assert_allclose(dev.get(sm), x.astype(np.float64).mean(axis=axes), rtol=1e-6)
    np.testing.assert_allclose(dev.get(si), cache[1], rtol=1e-5)
    np.testing.assert_allclose(dev.get(rm), rm64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dev.get(rv), rv64, rtol=1e-5, atol=1e-6)

    dout = rng.standard_normal(shape).astype(np.float32)
    dx_want, dg_want, db_want = ref.batch_norm_backward(dout.astype(np.float64), cache)
    dx = dev.empty(shape, np.float32)
    dgam = dev.empty((c,), np.float32) if affine else None
    dbet = dev.empty((c,), np.float32) if affine else None
    dev.mod.batch_norm_backward(dx, dgam, dbet, dev.asarray(dout), xd, sm, si, dg, True)
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-4, atol=2e-5)
    if affine:
        np.testing.assert_allclose(dev.get(dgam), dg_want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dev.get(dbet), db_want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4, 5)], ids=str)
def test_batch_norm_eval(dev, shape):
    rng = np.random.default_rng(9)
    c = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    rm0 = rng.standard_normal(c).astype(np.float32)
    rv0 = rng.uniform(0.5, 2, c).astype(np.float32)
    want, cache = ref.batch_norm_forward(x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
                                         rm0.astype(np.float64), rv0.astype(np.float64), False, 0.1, 1e-3)
    out = dev.empty(shape, np.float32)
    sm, si = dev.empty((c,), np.float64), dev.empty((c,), np.float64)
    rm, rv = dev.asarray(rm0), dev.asarray(rv0)
    xd, dg = dev.asarray(x), dev.asarray(gamma)
    dev.mod.batch_norm_forward(out, sm, si, rm, rv, xd, dg, dev.asarray(beta), False, 0.1, 1e-3)
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dev.get(rm), rm0)  # untouched in eval mode
    np.testing.assert_array_equal(dev.get(rv), rv0)

    dout = rng.standard_normal(shape).astype(np.float32)
    dx_want, dg_want, db_want = ref.batch_norm_backward(dout.astype(np.float64), cache)
    dx, dgam, dbet = dev.empty(shape, np.float32), dev.empty((c,), np.float32), dev.empty((c,), np.float32)
    dev.mod.batch_norm_backward(dx, dgam, dbet, dev.asarray(dout), xd, sm, si, dg, False)
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dev.get(dgam), dg_want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dev.get(dbet), db_want, rtol=1e-5, atol=1e-5)


def test_batch_norm_large_mean(dev):
    # Mean 1e4, standard deviation 1e-2: a float mean or E[x^2] - E[x]^2 would lose it.
    rng = np.random.default_rng(10)
    x = (1e4 + rng.standard_normal((6, 2, 9, 11)) * 1e-2).astype(np.float32)
    x64 = x.astype(np.float64)
    want, cache = ref.batch_norm_forward(x64, None, None, None, None, True, 0.1, 1e-8)
    out = dev.empty(x.shape, np.float32)
    sm, si = dev.empty((2,), np.float64), dev.empty((2,), np.float64)
    dev.mod.batch_norm_forward(out, sm, si, None, None, dev.asarray(x), None, None, True, 0.1, 1e-8)
    np.testing.assert_allclose(dev.get(si), cache[1], rtol=1e-4)
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-3, atol=1e-3)


# (shape, normalized dims): rows of 1, partial warps, > 8 rows (two blocks), a row longer
# than 1024 (one block per row), a 2-D normalized shape, 70 rows (three row chunks in
# the parameter-gradient sums).
LN_CASES = [((1, 1), 1), ((3, 10), 1), ((19, 33), 1), ((2, 1300), 1), ((2, 3, 4, 5), 2), ((7,), 1), ((70, 5), 1)]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape,k", LN_CASES, ids=[f"{s}-{k}" for s, k in LN_CASES])
def test_layer_norm(dev, shape, k, affine):
    rng = np.random.default_rng(11)
    ns = shape[len(shape) - k:]
    d = int(np.prod(ns))
    rows = int(np.prod(shape)) // d
    x = (rng.standard_normal(shape) * 2 + 50).astype(np.float32)
    w = rng.uniform(0.5, 1.5, ns).astype(np.float32) if affine else None
    b = rng.standard_normal(ns).astype(np.float32) if affine else None
    want, cache = ref.layer_norm_forward(x.astype(np.float64), ns, None if w is None else w.astype(np.float64),
                                         None if b is None else b.astype(np.float64), 1e-5)
    out = dev.empty(shape, np.float32)
    sm, si = dev.empty((rows,), np.float64), dev.empty((rows,), np.float64)
    xd = dev.asarray(x)
    wd = None if w is None else dev.asarray(w.reshape(-1))
    bd = None if b is None else dev.asarray(b.reshape(-1))
    dev.mod.layer_norm_forward(out, sm, si, xd, wd, bd, d, 1e-5)
    np.testing.assert_allclose(dev.get(out), want, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(dev.get(sm), x.astype(np.float64).reshape(rows, d).mean(1), rtol=1e-7)
    np.testing.assert_allclose(dev.get(si), cache[1].reshape(-1), rtol=1e-4)

    dout = rng.standard_normal(shape).astype(np.float32)
    dx_want, dw_want, db_want = ref.layer_norm_backward(dout.astype(np.float64), cache)
    dx = dev.empty(shape, np.float32)
    dw = dev.empty((d,), np.float32) if affine else None
    db = dev.empty((d,), np.float32) if affine else None
    dev.mod.layer_norm_backward(dx, dw, db, dev.asarray(dout), xd, sm, si, wd, d)
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-4, atol=5e-5)
    if affine:
        np.testing.assert_allclose(dev.get(dw), dw_want.reshape(-1), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dev.get(db), db_want.reshape(-1), rtol=1e-5, atol=1e-5)


def test_bad_input(dev):
    m = dev.mod
    x = dev.asarray(np.zeros((4, 3), np.float32))
    out = dev.empty((4, 3), np.float32)
    sm, si = dev.empty((3,), np.float64), dev.empty((3,), np.float64)
    with pytest.raises(TypeError, match="x"):
        m.batch_norm_forward(out, sm, si, None, None, np.zeros((4, 3), np.float32), None, None, True, 0.1, 1e-5)
    with pytest.raises(TypeError, match="save_mean"):
        m.batch_norm_forward(out, dev.empty((3,), np.float32), si, None, None, x, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="gamma"):
        m.batch_norm_forward(out, sm, si, None, None, x, dev.empty((4,), np.float32), None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="out"):
        m.batch_norm_forward(dev.empty((3, 4), np.float32), sm, si, None, None, x, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="x"):
        m.batch_norm_forward(dev.empty((4, 3, 2), np.float32), sm, si, None, None,
                             dev.asarray(np.zeros((4, 3, 2), np.float32)), None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="running_mean"):
        m.batch_norm_forward(out, sm, si, None, None, x, None, None, False, 0.1, 1e-5)
    with pytest.raises(ValueError, match="dout"):
        m.batch_norm_backward(out, None, None, dev.empty((4, 2), np.float32), x, sm, si, None, True)
    with pytest.raises(ValueError, match="normalized_shape"):
        m.layer_norm_forward(out, dev.empty((4,), np.float64), dev.empty((4,), np.float64), x, None, None, 5, 1e-5)
    with pytest.raises(ValueError, match="save_invstd"):
        m.layer_norm_forward(out, dev.empty((4,), np.float64), dev.empty((3,), np.float64), x, None, None, 3, 1e-5)
    with pytest.raises(ValueError, match="dweight"):
        m.layer_norm_backward(out, dev.empty((4,), np.float32), None, out, x, dev.empty((4,), np.float64),
                              dev.empty((4,), np.float64), None, 3)
