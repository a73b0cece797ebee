"""fastlayers.nn.init: the distributions' bounds and standard deviations, fans, gains,
reproducibility (global seed and per-call rng), the layers' PyTorch default
initialisations, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastlayers.nn as nn
from fastlayers.nn import init

# (id, fill function, weight shape, expected std, expected bound of a uniform or None for a normal)
# Shapes: (256, 64, 3, 3) has fan_in 576, fan_out 2304; (300, 200) has fan_in 200, fan_out 300.
DISTRIBUTIONS = [
    ("normal", lambda a, r: init.normal(a, 0.0, 0.02, rng=r), (300, 200), 0.02, None),
    ("uniform", lambda a, r: init.uniform(a, -0.5, 0.5, rng=r), (300, 200), 1 / math.sqrt(12), 0.5),
    ("xavier_uniform", lambda a, r: init.xavier_uniform(a, rng=r), (300, 200), math.sqrt(2 / 500),
     math.sqrt(6 / 500)),
    ("xavier_normal-gain", lambda a, r: init.xavier_normal(a, gain=2.0, rng=r), (300, 200), 2 * math.sqrt(2 / 500),
     None),
    ("kaiming_uniform-relu", lambda a, r: init.kaiming_uniform(a, nonlinearity="relu", rng=r), (256, 64, 3, 3),
     math.sqrt(2 / 576), math.sqrt(6 / 576)),
    ("kaiming_normal-fan_out", lambda a, r: init.kaiming_normal(a, mode="fan_out", nonlinearity="relu", rng=r),
     (256, 64, 3, 3), math.sqrt(2 / 2304), None),
    ("kaiming_uniform-a-sqrt5", lambda a, r: init.kaiming_uniform(a, a=math.sqrt(5), rng=r), (300, 200),
     1 / math.sqrt(3 * 200), 1 / math.sqrt(200)),
    ("kaiming_normal-tanh", lambda a, r: init.kaiming_normal(a, nonlinearity="tanh", rng=r), (300, 200),
     (5 / 3) / math.sqrt(200), None),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, fill, shape, std, bound", DISTRIBUTIONS, ids=[d[0] for d in DISTRIBUTIONS])
def test_distribution_std_and_bound(name, fill, shape, std, bound, dtype):
    a = np.empty(shape, dtype)
    out = fill(a, np.random.default_rng(1))
    assert out is a and a.dtype == dtype
    # 60,000+ samples: the sample std is within 2% of the true one with overwhelming probability.
    np.testing.assert_allclose(a.std(), std, rtol=0.02)
    assert abs(a.mean()) < 0.02 * std
    if bound is not None:
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound


def test_non_contiguous_arrays_are_filled_in_place():
    a = np.zeros((100, 100), np.float32)
    view = a[:, ::2]
    init.normal(view, std=1.0, rng=np.random.default_rng(0))
    assert np.all(a[:, 1::2] == 0) and np.all(a[:, ::2] != 0)
    assert np.isclose(view.std(), 1.0, rtol=0.05)


def test_constant_fills_and_the_symmetry_warning():
    a = np.empty((3, 4), np.float32)
    assert np.all(init.zeros(a) == 0)
    assert np.all(init.ones(a) == 1)
    assert np.all(init.constant(a, 0.25) == 0.25)
    assert "symmetry" in init.zeros.__doc__ and "bad idea" in init.zeros.__doc__


def test_zero_weights_never_break_the_symmetry(rng):
    # The teaching point of init.zeros: with constant weights every hidden unit gets the
    # same gradient, so after training the units are still identical.
    from fastlayers.optim import SGD

    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    for p in net.parameters():
        init.constant(p.data, 0.1)
    opt = SGD(net.parameters(), lr=0.5)
    loss_fn = nn.MSELoss()
    x, y = rng.standard_normal((16, 3)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    for _ in range(10):
        opt.zero_grad()
        loss_fn(net(x), y)
        net.backward(loss_fn.backward())
        opt.step()
    w = net[0].weight.data
    np.testing.assert_allclose(w, np.broadcast_to(w[0], w.shape), rtol=1e-6)  # all rows (units) equal
    assert not np.allclose(w, 0.1)  # although they did train


def test_fans_and_gains():
    assert init.fan_in_and_fan_out((10, 20)) == (20, 10)
    assert init.fan_in_and_fan_out((8, 4, 3, 5)) == (60, 120)
    gains = {"linear": 1.0, "conv2d": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2), "selu": 0.75}
    for name, g in gains.items():
        assert init.calculate_gain(name) == pytest.approx(g)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_gains_match_torch():
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    for name, param in [("linear", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.3), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_global_seed_and_rng_reproduce_weights():
    init.seed(123)
    a = nn.Conv2d(3, 8, 3).weight.data.copy()
    b = nn.Conv2d(3, 8, 3).weight.data.copy()
    init.seed(123)
    np.testing.assert_array_equal(nn.Conv2d(3, 8, 3).weight.data, a)
    assert not np.array_equal(a, b)
    l1 = nn.Linear(5, 4, rng=np.random.default_rng(9))
    l2 = nn.Linear(5, 4, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(l1.weight.data, l2.weight.data)
    np.testing.assert_array_equal(l1.bias.data, l2.bias.data)


# (layer, parameter, fan_in used by PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
DEFAULTS = [
    (lambda: nn.Linear(400, 50), "weight", 400),
    (lambda: nn.Linear(400, 50), "bias", 400),
    (lambda: nn.Conv2d(16, 32, 5), "weight", 16 * 25),
    (lambda: nn.Conv2d(16, 32, 3, groups=4), "bias", 4 * 9),
    (lambda: nn.ConvTranspose2d(16, 40, 3), "weight", 40 * 9),  # torch's fan_in of (C_in, C_out, k, k)
    (lambda: nn.ConvTranspose2d(16, 40, 3), "bias", 40 * 9),
]


@pytest.mark.parametrize("make, name, fan_in", DEFAULTS)
def test_layer_default_initialisation_is_pytorchs(make, name, fan_in):
    layer = make()
    w = getattr(layer, name).data
    bound = 1 / math.sqrt(fan_in)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.25)


def test_norm_layer_defaults_and_docstrings():
    bn = nn.BatchNorm2d(3)
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert np.all(bn.running_mean == 0) and np.all(bn.running_var == 1)
    ln = nn.LayerNorm(4)
    assert np.all(ln.weight.data == 1) and np.all(ln.bias.data == 0)
    for cls in (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm):
        assert "torch.nn." in cls.__doc__ and "initialisation" in cls.__doc__, cls.__name__


BAD = [
    (lambda: init.normal([1.0, 2.0]), TypeError, "array"),
    (lambda: init.zeros(np.zeros(3, np.int32)), TypeError, "array"),
    (lambda: init.normal(np.zeros(3), std=-1), ValueError, "std"),
    (lambda: init.uniform(np.zeros(3), 1.0, 0.0), ValueError, "high"),
    (lambda: init.xavier_uniform(np.zeros(3)), ValueError, "array: fan in and fan out need at least 2"),
    (lambda: init.kaiming_uniform(np.zeros((2, 2)), mode="fan"), ValueError, "mode"),
    (lambda: init.kaiming_normal(np.zeros((2, 2)), nonlinearity="swish"), ValueError, "nonlinearity"),
    (lambda: init.normal(np.zeros(3), rng=np.random.RandomState(0)), TypeError, "rng"),
    (lambda: init.seed(-1), TypeError, "n"),
    (lambda: init.constant(np.zeros(3), "1"), TypeError, "value"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
