"""CUDA loss kernels (csrc/cuda/loss.cu) against the NumPy reference.

Softmax / log-softmax (warp-per-row, block-per-row and strided-column paths), softmax
cross-entropy, BCE with logits and MSE, forward and backward, in the CPU emulator under
two schedules and, when a GPU is usable, through fastlayers._cuda on CuPy arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers.reference import loss as ref

from cuda_backends import Emu, backend_fixture

# The emulator under three schedules (one under the threads engine), then the GPU.
dev = backend_fixture(Emu("round-robin"), Emu("greedy"), Emu("descending"))


# (shape, axis): rows of 1, partial warps, > 8 rows (two blocks), a row longer than 1024
# (one block per row), and strided lines (axis not last).
SOFTMAX_CASES = [
    ((1, 1), -1),
    ((3, 10), -1),
    ((9, 33), 1),
    ((2, 1500), -1),
    ((2, 5, 3, 4), 1),
    ((3, 7), 0),
    ((4, 6, 5), -2),
    ((7,), 0),
    ((3, 4, 100), 1),  # 300 strided lines: two blocks
]


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES, ids=[f"{s}-ax{a}" for s, a in SOFTMAX_CASES])
def test_softmax(dev, shape, axis, log):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 3 + 20).astype(np.float32)  # large offset: the max shift matters
    fwd, bwd = (ref.log_softmax_forward, ref.log_softmax_backward) if log else (ref.softmax_forward, ref.softmax_backward)
    want, cache = fwd(x.astype(np.float64), axis)
    y = dev.empty(shape, np.float32)
    dev.mod.softmax_forward(y, dev.asarray(x), axis, log)
    np.testing.assert_allclose(dev.get(y), want, rtol=2e-5, atol=1e-6)

    dout = rng.standard_normal(shape).astype(np.float32)
    y32 = dev.get(y)
    (dx_want,) = bwd(dout.astype(np.float64), (cache[0], y32.astype(np.float64), axis))
    dx = dev.empty(shape, np.float32)
    dev.mod.softmax_backward(dx, dev.asarray(dout), y, axis, log)
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_special_values(dev, log):
    x = np.array([[1.0, -np.inf, 2.0, 0.5],
                  [-np.inf] * 4,
                  [1.0, np.inf, 2.0, 0.0],
                  [1.0, np.nan, 2.0, 0.0],
                  [-np.inf, 3.0, -np.inf, -np.inf]], np.float32)
    fwd = ref.log_softmax if log else ref.softmax
    with np.errstate(invalid="ignore"):
        want = fwd(x.astype(np.float64), -1)
    y = dev.empty(x.shape, np.float32)
    dev.mod.softmax_forward(y, dev.asarray(x), -1, log)
    np.testing.assert_allclose(dev.get(y), want, rtol=1e-6, atol=1e-7)  # NaN where the reference has NaN
    # The same lines along axis 0 (the strided-column kernel).
    yt = dev.empty(x.T.shape, np.float32)
    dev.mod.softmax_forward(yt, dev.asarray(x.T), 0, log)
    np.testing.assert_allclose(dev.get(yt), want.T, rtol=1e-6, atol=1e-7)


CE_SHAPES = [(1, 1), (5, 10), (17, 33), (3, 1100)]


@pytest.mark.parametrize("n,c", CE_SHAPES, ids=[f"{n}x{c}" for n, c in CE_SHAPES])
def test_softmax_cross_entropy(dev, n, c):
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((n, c)) * 4).astype(np.float32)
    labels = rng.integers(0, c, size=n).astype(np.int64)
    x64 = logits.astype(np.float64)
    want, cache = ref.softmax_cross_entropy_forward(x64, labels, reduction="sum")
    stats = dev.empty((n, 2), np.float32)
    total = dev.mod.softmax_cross_entropy_forward(stats, dev.asarray(logits), dev.asarray(labels))
    assert isinstance(total, float)
    np.testing.assert_allclose(total, want, rtol=1e-5)
    # the "_to" form: scale * the sum into a 0-d device array, same stats
    loss, stats2 = dev.empty((), np.float32), dev.empty((n, 2), np.float32)
    dev.mod.softmax_cross_entropy_forward_to(loss, stats2, dev.asarray(logits), dev.asarray(labels), 1.0 / n)
    np.testing.assert_allclose(dev.get(loss), want / n, rtol=1e-5)
    np.testing.assert_array_equal(dev.get(stats2), dev.get(stats))
    m = x64.max(axis=1)
    np.testing.assert_allclose(dev.get(stats), np.stack([m, np.log(np.exp(x64 - m[:, None]).sum(1))], 1),
                               rtol=1e-5, atol=1e-6)

    scale = 0.37
    (dl_want,) = ref.softmax_cross_entropy_backward(scale, cache)
    dl = dev.empty((n, c), np.float32)
    dev.mod.softmax_cross_entropy_backward(dl, stats, dev.asarray(logits), dev.asarray(labels), scale)
    np.testing.assert_allclose(dev.get(dl), dl_want, rtol=2e-5, atol=1e-6)


def test_softmax_cross_entropy_bad_label(dev):
    logits = dev.asarray(np.zeros((3, 4), np.float32))
    labels = dev.asarray(np.array([0, 4, 1], np.int64))
    stats = dev.empty((3, 2), np.float32)
    with pytest.raises(ValueError, match="labels"):
        dev.mod.softmax_cross_entropy_forward(stats, logits, labels)
    # the "_to" form does not wait to report: the loss is NaN, and nothing is read out of bounds
    loss = dev.empty((), np.float32)
    dev.mod.softmax_cross_entropy_forward_to(loss, stats, logits, labels, 1.0)
    assert np.isnan(dev.get(loss))
    dl = dev.empty((3, 4), np.float32)
    dev.mod.softmax_cross_entropy_backward(dl, stats, logits, dev.asarray(np.array([0, -1, 3], np.int64)), 1.0)
    got = dev.get(dl)
    assert np.all(np.isnan(got[1])) and np.all(np.isfinite(got[[0, 2]]))


# Element counts: one, a tail only (3), a vector body and a tail (1001), and a 3-D shape.
PAIR_SHAPES = [(1,), (3,), (1001,), (3, 5, 7)]


@pytest.mark.parametrize("shape", PAIR_SHAPES, ids=[str(s) for s in PAIR_SHAPES])
def test_bce_with_logits(dev, shape):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    t = rng.uniform(0, 1, shape).astype(np.float32)
    want, cache = ref.binary_cross_entropy_with_logits_forward(x.astype(np.float64), t.astype(np.float64), "sum")
    total = dev.mod.bce_with_logits_forward(dev.asarray(x), dev.asarray(t))
    np.testing.assert_allclose(total, want, rtol=1e-5)
    loss = dev.empty((), np.float32)
    dev.mod.bce_with_logits_forward_to(loss, dev.asarray(x), dev.asarray(t), 0.5)
    np.testing.assert_allclose(dev.get(loss), 0.5 * want, rtol=1e-5)

    scale = -1.7
    dx_want, dt_want = ref.binary_cross_entropy_with_logits_backward(scale, cache)
    dx, dt = dev.empty(shape, np.float32), dev.empty(shape, np.float32)
    dev.mod.bce_with_logits_backward(dx, dt, dev.asarray(x), dev.asarray(t), scale)
    np.testing.assert_allclose(dev.get(dx), dx_want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dev.get(dt), dt_want, rtol=1e-6)
    dx2 = dev.empty(shape, np.float32)
    dev.mod.bce_with_logits_backward(dx2, None, dev.asarray(x), dev.asarray(t), scale)
    np.testing.assert_allclose(dev.get(dx2), dx_want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", PAIR_SHAPES, ids=[str(s) for s in PAIR_SHAPES])
def test_mse(dev, shape):
    rng = np.random.default_rng(7)
    p = rng.standard_normal(shape).astype(np.float32)
    t = rng.standard_normal(shape).astype(np.float32)
    want, cache = ref.mse_loss_forward(p.astype(np.float64), t.astype(np.float64), "sum")
    total = dev.mod.mse_forward(dev.asarray(p), dev.asarray(t))
    np.testing.assert_allclose(total, want, rtol=1e-5)
    loss = dev.empty((), np.float32)
    dev.mod.mse_forward_to(loss, dev.asarray(p), dev.asarray(t), -2.0)
    np.testing.assert_allclose(dev.get(loss), -2.0 * want, rtol=1e-5)

    scale = 0.25
    dp_want, dt_want = ref.mse_loss_backward(scale, cache)
    dp, dt = dev.empty(shape, np.float32), dev.empty(shape, np.float32)
    dev.mod.mse_backward(dp, dt, dev.asarray(p), dev.asarray(t), scale)
    np.testing.assert_allclose(dev.get(dp), dp_want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dev.get(dt), dt_want, rtol=1e-5, atol=1e-7)
    dt2 = dev.empty(shape, np.float32)
    dev.mod.mse_backward(None, dt2, dev.asarray(p), dev.asarray(t), scale)
    np.testing.assert_allclose(dev.get(dt2), dt_want, rtol=1e-5, atol=1e-7)


def test_bad_input(dev):
    m = dev.mod
    x = dev.asarray(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="x"):
        m.softmax_forward(dev.empty((2, 3), np.float32), np.zeros((2, 3), np.float32), -1, False)
    with pytest.raises(TypeError, match="x"):
        m.softmax_forward(dev.empty((2, 3), np.float32), dev.asarray(np.zeros((2, 3))), -1, False)
    with pytest.raises(ValueError, match="out"):
        m.softmax_forward(dev.empty((3, 2), np.float32), x, -1, False)
    with pytest.raises(ValueError, match="axis"):
        m.softmax_forward(dev.empty((2, 3), np.float32), x, 2, False)
    with pytest.raises(ValueError, match="dout"):
        m.softmax_backward(dev.empty((2, 3), np.float32), dev.empty((2, 2), np.float32), x, -1, False)
    stats = dev.empty((2, 2), np.float32)
    with pytest.raises(TypeError, match="labels"):
        m.softmax_cross_entropy_forward(stats, x, dev.asarray(np.zeros(2, np.int32)))
    with pytest.raises(ValueError, match="labels"):
        m.softmax_cross_entropy_forward(stats, x, dev.asarray(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match="stats"):
        m.softmax_cross_entropy_forward(dev.empty((2, 3), np.float32), x, dev.asarray(np.zeros(2, np.int64)))
    with pytest.raises(ValueError, match="dlogits"):
        m.softmax_cross_entropy_backward(dev.empty((2, 2), np.float32), stats, x,
                                         dev.asarray(np.zeros(2, np.int64)), 1.0)
    with pytest.raises(ValueError, match="targets"):
        m.bce_with_logits_forward(x, dev.empty((3, 2), np.float32))
    with pytest.raises(TypeError, match="target"):
        m.mse_forward(x, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="dpred"):
        m.mse_backward(dev.empty((6,), np.float32), None, x, x, 1.0)
    with pytest.raises(ValueError, match="loss: expected a 0-D array"):
        m.mse_forward_to(dev.empty((1,), np.float32), x, x, 1.0)
    with pytest.raises(TypeError, match="loss"):
        m.bce_with_logits_forward_to(dev.empty((), np.float64), x, x, 1.0)
    with pytest.raises(ValueError, match="stats"):
        m.softmax_cross_entropy_forward_to(dev.empty((), np.float32), dev.empty((2, 3), np.float32), x,
                                           dev.asarray(np.zeros(2, np.int64)), 1.0)
