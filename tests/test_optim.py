"""Optimiser steps: hand-computed updates over three steps, kernel vs reference over
several steps, PyTorch's torch.optim when installed, in-place state, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import _cpu, ops
from fastlayers import reference as ref

RNG = np.random.default_rng(7)
BACKENDS = ["cpu", "reference"]
GRADS = [0.5, -0.25, 1.0]  # the gradient of each of the three hand-computed steps


def full(value, n=17):
    """n equal elements: exercises the vector loop and its tail with one known value."""
    return np.full(n, value, np.float32)


# ------------------------------------------------------------------------------------
# Hand-computed updates, three steps each, p0 = 1 and g = 0.5, -0.25, 1.0.
# ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_momentum_dampening_weight_decay_by_hand(backend):
    # lr 0.1, momentum 0.9, dampening 0.5, weight_decay 0.1
    # step 1: g = 0.5 + 0.1*1 = 0.6;        buf = g = 0.6 (first step: no dampening)
    #         p = 1 - 0.1*0.6 = 0.94
    # step 2: g = -0.25 + 0.1*0.94 = -0.156; buf = 0.9*0.6 + 0.5*(-0.156) = 0.462
    #         p = 0.94 - 0.1*0.462 = 0.8938
    # step 3: g = 1 + 0.1*0.8938 = 1.08938;  buf = 0.9*0.462 + 0.5*1.08938 = 0.96049
    #         p = 0.8938 - 0.1*0.96049 = 0.797751
    expected = [(0.94, 0.6), (0.8938, 0.462), (0.797751, 0.96049)]
    p, vel = full(1.0), full(123.0)  # the first step ignores the velocity's contents
    for i, (g, (pe, be)) in enumerate(zip(GRADS, expected)):
        ops.sgd_step(p, full(g), vel, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1,
                     first_step=i == 0, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(vel, be, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_nesterov_by_hand(backend):
    # lr 0.1, momentum 0.9, Nesterov look-ahead g + momentum * buf
    # step 1: buf = 0.5;                   g = 0.5 + 0.9*0.5 = 0.95;    p = 1 - 0.095 = 0.905
    # step 2: buf = 0.9*0.5 - 0.25 = 0.2;  g = -0.25 + 0.9*0.2 = -0.07; p = 0.905 + 0.007 = 0.912
    # step 3: buf = 0.9*0.2 + 1 = 1.18;    g = 1 + 0.9*1.18 = 2.062;    p = 0.912 - 0.2062 = 0.7058
    expected = [(0.905, 0.5), (0.912, 0.2), (0.7058, 1.18)]
    p, vel = full(1.0), full(0.0)
    for i, (g, (pe, be)) in enumerate(zip(GRADS, expected)):
        ops.sgd_step(p, full(g), vel, lr=0.1, momentum=0.9, nesterov=True, first_step=i == 0, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(vel, be, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_bias_correction_by_hand(backend):
    # lr 0.1, betas (0.9, 0.999), eps 1e-8. p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
    # step 1: m = 0.1*0.5 = 0.05;  v = 0.001*0.25 = 0.00025
    #         bc1 = 1 - 0.9 = 0.1, bc2 = 1 - 0.999 = 0.001: m_hat = 0.5, v_hat = 0.25
    #         p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
    # step 2: m = 0.9*0.05 + 0.1*(-0.25) = 0.02;  v = 0.999*0.00025 + 0.001*0.0625 = 0.00031225
    #         bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
    #         m_hat = 0.105263158, v_hat = 0.156203102, sqrt = 0.395225382
    #         p = 0.900000002 - 0.1 * 0.105263158 / 0.395225382 = 0.873366299
    # step 3: m = 0.9*0.02 + 0.1*1 = 0.118;  v = 0.999*0.00031225 + 0.001*1 = 0.00131193775
    #         bc1 = 1 - 0.729 = 0.271, bc2 = 1 - 0.997002999 = 0.002997001
    #         m_hat = 0.435424354, v_hat = 0.437750188, sqrt = 0.661626926
    #         p = 0.873366299 - 0.1 * 0.435424354 / 0.661626926 = 0.807555140
    expected = [(0.900000002, 0.05, 0.00025), (0.873366299, 0.02, 0.00031225), (0.807555140, 0.118, 0.00131193775)]
    p, m, v = full(1.0), full(0.0), full(0.0)
    for step, (g, (pe, me, ve)) in enumerate(zip(GRADS, expected), start=1):
        ops.adam_step(p, full(g), m, v, step=step, lr=0.1, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(m, me, rtol=1e-6)
        np.testing.assert_allclose(v, ve, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adamw_decoupled_decay_by_hand(backend):
    # As Adam above (same m, v, bias corrections) with lr 0.1, weight_decay 0.1, but each
    # step first decays the parameter: p *= 1 - lr*wd = 0.99; the gradient is not changed.
    # step 1: p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8)              = 0.890000002
    # step 2: p = 0.99*0.890000002 - 0.1*0.105263158/0.395225382 = 0.854466299
    # step 3: p = 0.99*0.854466299 - 0.1*0.435424354/0.661626926 = 0.780110477
    expected = [0.890000002, 0.854466299, 0.780110477]
    p, m, v = full(1.0), full(0.0), full(0.0)
    for step, (g, pe) in enumerate(zip(GRADS, expected), start=1):
        ops.adam_step(p, full(g), m, v, step=step, lr=0.1, weight_decay=0.1, decoupled_weight_decay=True,
                      backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_l2_weight_decay_by_hand(backend):
    # Adam with weight_decay 0.1 (coupled, L2): g = grad + 0.1 * p enters m and v.
    # step 1: g = 0.5 + 0.1 = 0.6;                 m = 0.06,   v = 0.00036;    p = 0.900000002
    # step 2: g = -0.25 + 0.0900000002 = -0.16;    m = 0.038,  v = 0.00038524; p = 0.854441367
    # step 3: g = 1 + 0.0854441367 = 1.08544414;   m = 0.14274441, v = 0.00156304373; p = 0.781504400
    expected = [(0.900000002, 0.06), (0.854441367, 0.038), (0.781504400, 0.142744414)]
    p, m, v = full(1.0), full(0.0), full(0.0)
    for step, (g, (pe, me)) in enumerate(zip(GRADS, expected), start=1):
        ops.adam_step(p, full(g), m, v, step=step, lr=0.1, weight_decay=0.1, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(m, me, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rmsprop_momentum_by_hand(backend):
    # lr 0.01, alpha 0.9, eps 1e-8, momentum 0.5: buf = 0.5*buf + g/avg, p -= lr*buf
    # step 1: sq = 0.1*0.25 = 0.025;                avg = 0.158113893; buf = 3.16227746; p = 0.968377225
    # step 2: sq = 0.9*0.025 + 0.1*0.0625 = 0.02875; avg = 0.169558260; buf = 1.58113873 - 1.47441948
    #                                                                   = 0.106719255; p = 0.967310033
    # step 3: sq = 0.9*0.02875 + 0.1*1 = 0.125875;   avg = 0.354788679; buf = 2.87193885; p = 0.938590644
    expected = [(0.968377225, 0.025, 3.16227746), (0.967310033, 0.02875, 0.106719255),
                (0.938590644, 0.125875, 2.87193885)]
    p, sq, buf = full(1.0), full(0.0), full(0.0)
    for g, (pe, se, be) in zip(GRADS, expected):
        ops.rmsprop_step(p, full(g), sq, lr=0.01, alpha=0.9, momentum=0.5, momentum_buf=buf, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(sq, se, rtol=1e-6)
        np.testing.assert_allclose(buf, be, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adagrad_lr_decay_by_hand(backend):
    # lr 0.1, lr_decay 0.5, eps 1e-10: clr = 0.1 / (1 + (step - 1) * 0.5)
    # step 1: sum = 0.25;   clr = 0.1;        p = 1 - 0.1 * 0.5 / 0.5               = 0.9
    # step 2: sum = 0.3125; clr = 0.0666667;  p = 0.9 + 0.0666667 * 0.25 / 0.559017  = 0.929814240
    # step 3: sum = 1.3125; clr = 0.05;       p = 0.929814240 - 0.05 * 1 / 1.145644  = 0.886170662
    expected = [(0.9, 0.25), (0.929814240, 0.3125), (0.886170662, 1.3125)]
    p, s = full(1.0), full(0.0)
    for step, (g, (pe, se)) in enumerate(zip(GRADS, expected), start=1):
        ops.adagrad_step(p, full(g), s, lr=0.1, lr_decay=0.5, step=step, backend=backend)
        np.testing.assert_allclose(p, pe, rtol=1e-6)
        np.testing.assert_allclose(s, se, rtol=1e-6)


# ------------------------------------------------------------------------------------
# Kernel vs reference over several steps. One line per configuration:
# (name, optimiser, state buffer names, hyper-parameters)
# ------------------------------------------------------------------------------------
CONFIGS = [
    ("sgd", "sgd", [], dict(lr=0.1)),
    ("sgd momentum", "sgd", ["velocity"], dict(lr=0.05, momentum=0.9)),
    ("sgd dampening wd", "sgd", ["velocity"], dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2)),
    ("sgd nesterov wd", "sgd", ["velocity"], dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("rmsprop", "rmsprop", ["square_avg"], dict(lr=0.01)),
    ("rmsprop momentum wd", "rmsprop", ["square_avg", "momentum_buf"], dict(lr=0.01, momentum=0.9, weight_decay=0.1)),
    ("rmsprop centered", "rmsprop", ["square_avg", "grad_avg"], dict(lr=0.01, alpha=0.9, centered=True)),
    ("rmsprop centered momentum alpha<0.5", "rmsprop", ["square_avg", "momentum_buf", "grad_avg"],
     dict(lr=0.01, alpha=0.3, centered=True, momentum=0.5)),
    ("adagrad", "adagrad", ["sum_sq"], dict(lr=0.1)),
    ("adagrad lr_decay wd", "adagrad", ["sum_sq"], dict(lr=0.1, lr_decay=0.01, weight_decay=0.1)),
    ("adam", "adam", ["m", "v"], dict(lr=1e-2)),
    ("adam l2", "adam", ["m", "v"], dict(lr=1e-2, weight_decay=0.1)),
    ("adamw", "adam", ["m", "v"], dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("adam amsgrad", "adam", ["m", "v", "max_v"], dict(lr=1e-2, amsgrad=True)),
    ("adam beta1<0.5", "adam", ["m", "v"], dict(lr=1e-2, beta1=0.3, beta2=0.5, eps=1e-6)),
]
STEPS = 5


def close(actual, expected, what):
    """Float32 agreement: a momentum buffer is a sum of terms as large as its largest
    elements, so a small element carries their absolute rounding, not its own."""
    atol = 2e-6 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=atol, err_msg=what)


def well_conditioned(size):
    """p0 in [-1, 1]; gradients with |g| in [0.5, 1.5] whose sign alternates from step to
    step (from a random first sign). g / sqrt(mean g^2) amplifies the relative rounding of
    a near-zero gradient, and centered RMSprop's sqrt(mean g^2 - (mean g)^2) that of
    near-equal gradients, without bound: on such inputs two correct float32
    implementations disagree in any digit."""
    p0 = RNG.uniform(-1, 1, size).astype(np.float32)
    sign = RNG.choice([-1.0, 1.0], size)
    grads = [(sign * (-1) ** k * RNG.uniform(0.5, 1.5, size)).astype(np.float32) for k in range(STEPS)]
    return p0, grads


def run_steps(opt, state_names, hp, p, grads, backend):
    """Runs len(grads) steps from zero state; returns param and state after each step."""
    state = {name: np.zeros_like(p) for name in state_names}
    history = []
    for i, g in enumerate(grads):
        kw = dict(hp, backend=backend)
        if opt == "sgd":
            ops.sgd_step(p, g, state.get("velocity"), first_step=i == 0, **kw)
        elif opt == "rmsprop":
            ops.rmsprop_step(p, g, state["square_avg"], momentum_buf=state.get("momentum_buf"),
                             grad_avg=state.get("grad_avg"), **kw)
        elif opt == "adagrad":
            ops.adagrad_step(p, g, state["sum_sq"], step=i + 1, **kw)
        else:
            ops.adam_step(p, g, state["m"], state["v"], step=i + 1, max_v=state.get("max_v"), **kw)
        history.append((p.copy(), {k: s.copy() for k, s in state.items()}))
    return history


@pytest.mark.parametrize("size", [1, 7, 1000, 300_001])  # 300_001: threaded, ragged last chunk
@pytest.mark.parametrize("name,opt,state_names,hp", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_step_matches_reference(name, opt, state_names, hp, size):
    p0, grads = well_conditioned(size)
    hist = run_steps(opt, state_names, hp, p0.copy(), grads, "cpu")
    hist_r = run_steps(opt, state_names, hp, p0.copy(), grads, "reference")
    for step, ((p, st), (pr, str_)) in enumerate(zip(hist, hist_r), start=1):
        close(p, pr, f"param after step {step}")
        for k in st:
            close(st[k], str_[k], f"{k} after step {step}")
    assert not np.array_equal(hist[-1][0], p0)  # something moved


@pytest.mark.parametrize("name,opt,state_names,hp", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_every_simd_path_matches_reference(simd_path, name, opt, state_names, hp):
    """The loops are compiled once per instruction set; each path is checked."""
    assert fl.get_simd_path() == simd_path
    p0, grads = well_conditioned(1003)
    hist = run_steps(opt, state_names, hp, p0.copy(), grads, "cpu")
    hist_r = run_steps(opt, state_names, hp, p0.copy(), grads, "reference")
    for step, ((p, st), (pr, str_)) in enumerate(zip(hist, hist_r), start=1):
        close(p, pr, f"{simd_path}: param after step {step}")
        for k in st:
            close(st[k], str_[k], f"{simd_path}: {k} after step {step}")


def test_threads_give_the_same_result():
    """Chunks split over threads: 1, 2 and 3 threads agree bit for bit."""
    results = []
    for nt in (1, 2, 3):  # the thread count is restored by conftest's autouse fixture
        fl.set_num_threads(nt)
        p, g = np.linspace(-1, 1, 400_003, dtype=np.float32), np.linspace(2, -1, 400_003, dtype=np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        ops.adam_step(p, g, m, v, step=1)
        results.append((p, m, v))
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_and_inputs_untouched(backend):
    """Buffers are updated in place; grad (even a strided, read-only view) is not written."""
    p = np.ones((3, 4), np.float32)
    gbase = RNG.standard_normal((3, 8)).astype(np.float32)
    g = gbase[:, ::2]
    g.flags.writeable = False
    g_before = g.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    ids = id(p), id(m), id(v)
    assert ops.adam_step(p, g, m, v, step=1, backend=backend) is None
    assert (id(p), id(m), id(v)) == ids
    np.testing.assert_array_equal(g, g_before)
    assert np.all(m != 0) and np.all(v != 0) and np.all(p != 1)
    # momentum == 0: the velocity is not used, not even touched.
    vel = np.full_like(p, 7.0)
    ops.sgd_step(p, g, vel, lr=0.1, backend=backend)
    assert np.all(vel == 7.0)


def test_grad_aliasing_a_buffer_is_copied():
    """grad may be the very array being updated (the kernel then reads a copy)."""
    p = np.linspace(1, 2, 50, dtype=np.float32)
    s = np.zeros_like(p)
    expect_p, expect_s = p.copy(), s.copy()
    ref.adagrad_step(expect_p, expect_p.copy(), expect_s, lr=0.1, step=1)
    ops.adagrad_step(p, p, s, lr=0.1, step=1)
    np.testing.assert_allclose(p, expect_p, rtol=1e-6)


# ------------------------------------------------------------------------------------
# Optional: torch.optim itself over five steps.
# ------------------------------------------------------------------------------------
TORCH_CONFIGS = [
    # name, torch class and kwargs, our optimiser, our kwargs, {our state: torch state}
    ("sgd momentum dampening", "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
     "sgd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), {"velocity": "momentum_buffer"}),
    ("sgd nesterov", "SGD", dict(lr=0.05, momentum=0.9, nesterov=True),
     "sgd", dict(lr=0.05, momentum=0.9, nesterov=True), {"velocity": "momentum_buffer"}),
    ("rmsprop momentum", "RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1),
     "rmsprop", dict(lr=0.01, momentum=0.9, weight_decay=0.1), {"square_avg": "square_avg", "momentum_buf": "momentum_buffer"}),
    ("rmsprop centered", "RMSprop", dict(lr=0.01, alpha=0.9, centered=True),
     "rmsprop", dict(lr=0.01, alpha=0.9, centered=True), {"square_avg": "square_avg", "grad_avg": "grad_avg"}),
    ("adagrad", "Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1),
     "adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1), {"sum_sq": "sum"}),
    ("adam", "Adam", dict(lr=1e-2, weight_decay=0.1),
     "adam", dict(lr=1e-2, weight_decay=0.1), {"m": "exp_avg", "v": "exp_avg_sq"}),
    ("adamw", "AdamW", dict(lr=1e-2, weight_decay=0.1),
     "adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True), {"m": "exp_avg", "v": "exp_avg_sq"}),
    ("adam amsgrad", "Adam", dict(lr=1e-2, amsgrad=True),
     "adam", dict(lr=1e-2, amsgrad=True), {"m": "exp_avg", "v": "exp_avg_sq", "max_v": "max_exp_avg_sq"}),
]


@pytest.mark.parametrize("name,tcls,tkw,opt,kw,state_map", TORCH_CONFIGS, ids=[c[0] for c in TORCH_CONFIGS])
def test_step_matches_torch(name, tcls, tkw, opt, kw, state_map):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    p0, grads = well_conditioned(1001)
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    topt = getattr(torch.optim, tcls)([tp], **tkw)
    hist = run_steps(opt, list(state_map), kw, p0.copy(), grads, "cpu")
    for step, (g, (p, st)) in enumerate(zip(grads, hist), start=1):
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        close(p, tp.detach().numpy(), f"param step {step}")
        tstate = topt.state[tp]
        for ours, theirs in state_map.items():
            close(st[ours], tstate[theirs].numpy(), f"{ours} step {step}")


# ------------------------------------------------------------------------------------
# Bad input: one line per case; each runs on both backends.
# ------------------------------------------------------------------------------------
def _z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


def _ro(a):
    a.flags.writeable = False
    return a


P = _z(4, 3)
BAD = [
    # function, keyword arguments replacing the defaults, exception, match
    ("adam", dict(param=_z(4, 3, dtype=np.float64)), TypeError, r"param: expected dtype float32"),
    ("adam", dict(param=[1.0, 2.0]), TypeError, r"param: expected a numpy.ndarray"),
    ("adam", dict(param=_z(3, 4).T), ValueError, r"param: expected a C-contiguous"),
    ("adam", dict(param=_ro(_z(4, 3))), ValueError, r"param: array is read-only"),
    ("adam", dict(grad=_z(3, 4)), ValueError, r"grad: expected shape \(4, 3\) \(param's\), got \(3, 4\)"),
    ("adam", dict(grad=_z(4, 3, dtype=np.float16)), TypeError, r"grad: expected dtype float32"),
    ("adam", dict(m=_z(12)), ValueError, r"m: expected shape \(4, 3\)"),
    ("adam", dict(v=_ro(_z(4, 3))), ValueError, r"v: array is read-only"),
    ("adam", dict(v="m"), ValueError, r"v: must not share memory with m"),
    ("adam", dict(m="param"), ValueError, r"m: must not share memory with param"),
    ("adam", dict(step=0), ValueError, r"step: expected an integer >= 1"),
    ("adam", dict(step=1.0), TypeError, r"step: expected an integer >= 1"),
    ("adam", dict(step=True), TypeError, r"step: expected an integer"),
    ("adam", dict(lr=-1e-3), ValueError, r"lr: expected a number >= 0"),
    ("adam", dict(lr=float("nan")), ValueError, r"lr: expected a number >= 0"),
    ("adam", dict(beta1=1.0), ValueError, r"beta1: expected a number in \[0, 1\)"),
    ("adam", dict(beta2=-0.1), ValueError, r"beta2: expected a number in \[0, 1\)"),
    ("adam", dict(eps=-1e-8), ValueError, r"eps: expected a number >= 0"),
    ("adam", dict(weight_decay=-0.1), ValueError, r"weight_decay: expected a number >= 0"),
    ("adam", dict(amsgrad=True), ValueError, r"max_v: required when amsgrad=True"),
    ("adam", dict(lr="0.1"), TypeError, r"lr: expected a real number"),
    ("sgd", dict(momentum=0.9), ValueError, r"velocity: required when momentum != 0"),
    ("sgd", dict(nesterov=True), ValueError, r"nesterov: Nesterov momentum requires momentum > 0"),
    ("sgd", dict(nesterov=True, momentum=0.9, dampening=0.1, velocity=_z(4, 3)), ValueError,
     r"nesterov: .*dampening == 0"),
    ("sgd", dict(momentum=-0.5), ValueError, r"momentum: expected a number >= 0"),
    ("sgd", dict(momentum=0.9, velocity=_z(4, 4)), ValueError, r"velocity: expected shape \(4, 3\)"),
    ("sgd", dict(first_step=1), TypeError, r"first_step: expected a bool"),
    ("rmsprop", dict(momentum=0.9), ValueError, r"momentum_buf: required when momentum > 0"),
    ("rmsprop", dict(centered=True), ValueError, r"grad_avg: required when centered=True"),
    ("rmsprop", dict(alpha=-0.9), ValueError, r"alpha: expected a number >= 0"),
    ("rmsprop", dict(square_avg=_z(4, 3)[:, :2]), ValueError, r"square_avg: expected shape"),
    ("adagrad", dict(step=-3), ValueError, r"step: expected an integer >= 1"),
    ("adagrad", dict(lr_decay=-1.0), ValueError, r"lr_decay: expected a number >= 0"),
    ("adagrad", dict(sum_sq=_z(8, 3)[::2]), ValueError, r"sum_sq: expected a C-contiguous"),
]


def _call(fn, kwargs, backend):
    args = {
        "adam": dict(param=_z(4, 3), grad=_z(4, 3), m=_z(4, 3), v=_z(4, 3), step=1),
        "sgd": dict(param=_z(4, 3), grad=_z(4, 3), lr=0.1),
        "rmsprop": dict(param=_z(4, 3), grad=_z(4, 3), square_avg=_z(4, 3)),
        "adagrad": dict(param=_z(4, 3), grad=_z(4, 3), sum_sq=_z(4, 3), step=1),
    }[fn]
    args.update(kwargs)
    for k, val in args.items():  # "m" / "param": the same array as that argument
        if isinstance(val, str) and val in args and k != "lr":
            args[k] = args[val]
    getattr(ops, f"{fn}_step")(**args, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn,kwargs,exc,match", BAD)
def test_bad_input(fn, kwargs, exc, match, backend):
    with pytest.raises(exc, match=match):
        _call(fn, kwargs, backend)


def test_kernel_bindings_recheck_sizes():
    """The C++ side re-checks sizes and flags without the Python layer."""
    p, g = _z(10), _z(10)
    with pytest.raises(ValueError, match=r"m: expected 10 elements, got 9"):
        _cpu.adam_step(p, g, _z(9), _z(10), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, None)
    with pytest.raises(ValueError, match=r"step: expected >= 1"):
        _cpu.adam_step(p, g, _z(10), _z(10), 0, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, None)
    with pytest.raises(ValueError, match=r"max_v: required when amsgrad"):
        _cpu.adam_step(p, g, _z(10), _z(10), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, True, None)
    with pytest.raises(ValueError, match=r"velocity: required when momentum"):
        _cpu.sgd_step(p, g, None, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match=r"param: array is read-only"):
        _cpu.adagrad_step(_ro(_z(10)), g, _z(10), 0.1, 1e-10, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match=r"grad_avg: required when centered"):
        _cpu.rmsprop_step(p, g, _z(10), 0.01, 0.99, 1e-8, 0.0, 0.0, None, True, None)
    with pytest.raises(TypeError, match=r"grad: expected dtype float32"):
        _cpu.sgd_step(p, np.zeros(10), None, 0.1, 0.0, 0.0, False, 0.0, False)
