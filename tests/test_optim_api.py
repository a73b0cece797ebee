"""fastlayers.optim (the optimiser and schedule classes; the step kernels are tested in
test_optim.py): each optimiser decreases the loss of a convex problem, matches
torch.optim step for step when torch is installed, skips frozen and gradient-less
parameters, runs float64 parameters on the reference, saves and restores its state;
schedules follow their formulas; bad input names the argument."""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers.nn as nn
from fastlayers import ops
from fastlayers.optim import SGD, Adagrad, Adam, AdamW, ExponentialLR, ReduceLROnPlateau, RMSprop, StepLR

# (id, class, keyword arguments): every option of every optimiser at least once.
CONFIGS = [
    ("sgd", SGD, dict(lr=0.05)),
    ("sgd-momentum-dampening-wd", SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("sgd-nesterov", SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("rmsprop", RMSprop, dict(lr=0.01)),
    ("rmsprop-centered-momentum-wd", RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.01)),
    ("adagrad", Adagrad, dict(lr=0.3)),
    ("adagrad-decay-init", Adagrad, dict(lr=0.3, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.01)),
    ("adam", Adam, dict(lr=0.05)),
    ("adam-amsgrad-wd", Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.01, betas=(0.8, 0.99))),
    ("adamw", AdamW, dict(lr=0.05)),
]
IDS = [c[0] for c in CONFIGS]


def _regression(rng, n=64, d=5):
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.standard_normal((d, 2)).astype(np.float32)
    y = (x @ w + 0.5).astype(np.float32)
    return x, y


@pytest.mark.parametrize("name, cls, kwargs", CONFIGS, ids=IDS)
def test_decreases_the_loss_of_linear_regression(name, cls, kwargs, rng):
    x, y = _regression(rng)
    model = nn.Linear(5, 2, rng=np.random.default_rng(0))
    loss_fn = nn.MSELoss()
    opt = cls(model.parameters(), **kwargs)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        losses.append(loss_fn(model(x), y))
        model.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])


@pytest.mark.parametrize("name, cls, kwargs", CONFIGS, ids=IDS)
def test_matches_torch_optim(name, cls, kwargs, rng):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    grads = [(rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32))
             for _ in range(5)]
    w, b = nn.Parameter(w0.copy()), nn.Parameter(b0.copy())
    # Two groups, the second with half the learning rate: group options are honoured.
    opt = cls([{"params": [w]}, {"params": [b], "lr": kwargs["lr"] / 2}], **kwargs)
    tw, tb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    topt = getattr(torch.optim, cls.__name__)([{"params": [tw]}, {"params": [tb], "lr": kwargs["lr"] / 2}],
                                              **kwargs)
    for gw, gb in grads:
        w.grad, b.grad = gw.copy(), gb.copy()
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        opt.step()
        topt.step()
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sgd_momentum_by_hand():
    # p = 1, g = 1 twice, lr 0.1, momentum 0.9: v1 = g = 1, p = 0.9; v2 = 0.9 + 1 = 1.9, p = 0.71
    p = nn.Parameter(np.ones(3, np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    for expected in (0.9, 0.71):
        p.grad = np.ones(3, np.float32)
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-6)
    np.testing.assert_allclose(opt.state[p]["velocity"], 1.9, rtol=1e-6)


@pytest.mark.parametrize("name, cls, kwargs", CONFIGS, ids=IDS)
def test_skips_frozen_and_gradientless_parameters(name, cls, kwargs):
    frozen, no_grad, live = (nn.Parameter(np.ones(4, np.float32)) for _ in range(3))
    frozen.grad = np.ones(4, np.float32)
    frozen.requires_grad = False
    live.grad = np.ones(4, np.float32)
    opt = cls([frozen, no_grad, live], **kwargs)
    opt.step()
    assert np.all(frozen.data == 1) and np.all(no_grad.data == 1) and np.all(live.data != 1)
    assert frozen not in opt.state and no_grad not in opt.state and opt.state[live]["step"] == 1


@pytest.mark.parametrize("name, cls, kwargs", CONFIGS, ids=IDS)
def test_float64_parameters_run_on_the_reference(name, cls, kwargs, rng):
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(3)]
    p64, p32 = nn.Parameter(w0.copy()), nn.Parameter(w0.astype(np.float32))
    o64, o32 = cls([p64], **kwargs), cls([p32], **kwargs)
    for g in grads:
        p64.grad, p32.grad = g.copy(), g.astype(np.float32)
        o64.step()
        o32.step()
    assert p64.data.dtype == np.float64
    np.testing.assert_allclose(p64.data, p32.data, rtol=1e-5, atol=1e-6)


def test_zero_grad_and_lr_property():
    a, b = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    a.grad = np.ones(2, np.float32)
    b.grad = np.ones(2, np.float32)
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert opt.lr == 0.1 and opt.param_groups[1]["lr"] == 0.5
    opt.lr = 0.01
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]
    opt.zero_grad(set_to_none=False)
    assert np.all(a.grad == 0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    model = nn.Linear(3, 2)
    assert len(SGD(model, lr=0.1).param_groups[0]["params"]) == 2  # a Module gives its parameters


@pytest.mark.parametrize("name, cls, kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_identically(name, cls, kwargs, rng):
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(6)]
    a = nn.Parameter(w0.copy())
    opt_a = cls([a], **kwargs)
    for g in grads[:3]:
        a.grad = g.copy()
        opt_a.step()
    saved = opt_a.state_dict()
    b = nn.Parameter(a.data.copy())
    opt_b = cls([b], lr=123.0)  # the hyper-parameters come from the state dict
    opt_b.load_state_dict(saved)
    assert opt_b.lr == kwargs["lr"]
    for g in grads[3:]:
        a.grad, b.grad = g.copy(), g.copy()
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)
    for key, value in saved["state"][0].items():  # the saved state is a snapshot
        if isinstance(value, np.ndarray):
            assert value is not opt_a.state[a][key]


def test_load_state_dict_errors():
    p = nn.Parameter(np.ones((2, 2), np.float32))
    p.grad = np.ones((2, 2), np.float32)
    opt = Adam([p])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        Adam([p]).load_state_dict({"state": {}})
    with pytest.raises(ValueError, match="group 0 has 1 parameters, this optimiser's has 2"):
        Adam([p, nn.Parameter(np.ones(2, np.float32))]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"state\[0\]\['m'\] has shape \(2, 2\), parameter .* has \(4,\)"):
        Adam([nn.Parameter(np.ones(4, np.float32))]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['amsgrad', 'betas', 'eps'\] for SGD"):
        SGD([p], lr=0.1).load_state_dict(sd)


# --------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------


def _opt(lr=0.1):
    return SGD([nn.Parameter(np.zeros(1, np.float32))], lr=lr)


def test_step_lr_exact_sequence():
    opt = _opt(0.1)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(8):
        sched.step()
        lrs.append(opt.lr)
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025]
    assert sched.get_last_lr() == [0.025]


def test_exponential_lr_exact_sequence():
    opt = _opt(0.2)
    sched = ExponentialLR(opt, gamma=0.9)
    for epoch in range(1, 6):
        sched.step()
        assert opt.lr == 0.2 * 0.9**epoch


@pytest.mark.parametrize("cls, kwargs", [(StepLR, {"step_size": 2, "gamma": 0.3}), (ExponentialLR, {"gamma": 0.8})],
                         ids=["StepLR", "ExponentialLR"])
def test_schedules_match_torch(cls, kwargs):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    opt = _opt(0.1)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = cls(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, cls.__name__)(topt, **kwargs)
    for _ in range(7):
        topt.step()
        sched.step()
        tsched.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


def test_reduce_on_plateau_after_patience_and_cooldown():
    opt = _opt(1.0)
    sched = ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1, min_lr=0.2)
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(opt.lr)
    # Epochs 3-5 are bad (3 > patience 2): halve at epoch 5; one cooldown epoch, then three
    # more bad epochs halve again at epoch 9; the next reduction is clamped at min_lr.
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    for _ in range(4):
        sched.step(4.0)
    assert opt.lr == 0.2
    up = _opt(1.0)
    sched = ReduceLROnPlateau(up, mode="max", patience=0)
    sched.step(0.5)
    sched.step(0.6)  # better: no change
    assert up.lr == 1.0
    sched.step(0.6)
    assert up.lr == pytest.approx(0.1)


def test_reduce_on_plateau_matches_torch(rng):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    opt = _opt(0.1)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    kw = dict(mode="min", factor=0.5, patience=2, threshold=0.05, threshold_mode="abs", cooldown=1)
    sched, tsched = ReduceLROnPlateau(opt, **kw), torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for m in np.cumsum(rng.standard_normal(40) * 0.05) + 1.0:
        sched.step(float(m))
        tsched.step(float(m))
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)


def test_schedule_state_dict_round_trip():
    opt = _opt(0.1)
    sched = StepLR(opt, 2, 0.5)
    for _ in range(3):
        sched.step()
    other = StepLR(_opt(0.1), 5, 0.9)
    other.load_state_dict(sched.state_dict())
    assert (other.last_epoch, other.step_size, other.gamma) == (3, 2, 0.5)


# --------------------------------------------------------------------------------------
# Bad input: errors name the argument
# --------------------------------------------------------------------------------------


def _p():
    return nn.Parameter(np.zeros(2, np.float32))


BAD = [
    (lambda: SGD([_p()], lr=-1), ValueError, "lr"),
    (lambda: SGD([_p()], lr="0.1"), TypeError, "lr"),
    (lambda: SGD([_p()], lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: SGD([_p()], lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: SGD([], lr=0.1), ValueError, "params"),
    (lambda: SGD(_p(), lr=0.1), TypeError, "params"),
    (lambda: SGD([np.zeros(2, np.float32)], lr=0.1), TypeError, r"params\[0\]"),
    (lambda: SGD([_p(), _p()][:1] * 2, lr=0.1), ValueError, r"params\[1\]"),
    (lambda: SGD([{"params": [_p()], "betas": (0.9, 0.9)}], lr=0.1), ValueError, "betas"),
    (lambda: Adam([_p()], betas=(1.0, 0.9)), ValueError, r"betas\[0\]"),
    (lambda: Adam([_p()], betas=0.9), TypeError, "betas"),
    (lambda: Adam([_p()], amsgrad=1), TypeError, "amsgrad"),
    (lambda: RMSprop([_p()], alpha=-0.1), ValueError, "alpha"),
    (lambda: Adagrad([_p()], eps=-1), ValueError, "eps"),
    (lambda: setattr(_opt(), "lr", -0.1), ValueError, "lr"),
    (lambda: StepLR("opt", 2), TypeError, "optimizer"),
    (lambda: StepLR(_opt(), 0), ValueError, "step_size"),
    (lambda: ExponentialLR(_opt(), -0.5), ValueError, "gamma"),
    (lambda: ReduceLROnPlateau(_opt(), factor=1.5), ValueError, "factor"),
    (lambda: ReduceLROnPlateau(_opt(), mode="lowest"), ValueError, "mode"),
    (lambda: ReduceLROnPlateau(_opt(), patience=-1), ValueError, "patience"),
    (lambda: ReduceLROnPlateau(_opt()).step(), TypeError, "metric"),
    (lambda: ReduceLROnPlateau(_opt()).step("low"), TypeError, "metric"),
]


@pytest.mark.parametrize("call, exc, pattern", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_step_kernels_are_the_ops(monkeypatch):
    # step() delegates to fastlayers.ops.<name>_step for float32 parameters.
    calls = []
    real = ops.adam_step
    monkeypatch.setattr(ops, "adam_step", lambda *a, **k: calls.append(k["step"]) or real(*a, **k))
    p = _p()
    p.grad = np.ones(2, np.float32)
    opt = Adam([p])
    opt.step()
    opt.step()
    assert calls == [1, 2]
