"""CUDA optimiser steps (csrc/cuda/optim.cu) vs the NumPy reference in float64 and the
CPU kernel, over several steps, for every option combination the CPU tests cover.

Runs on the emulator (fastlayers._cuda_emu on EmuArrays) under two schedules and two
launch shapes, and on a real GPU through fastlayers._cuda and CuPy where one is usable
(marked ``gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers import _cpu
from fastlayers import reference as ref

from cuda_backends import Emu, Offset, backend_fixture, emu, emu_backend, gpu_backend  # noqa: F401 (emu: a fixture)

# (name, optimiser, state buffer names, hyper-parameters), as tests/test_optim.py.
OPTS = [
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
    ("adamw amsgrad beta1<0.5", "adam", ["m", "v", "max_v"],
     dict(lr=1e-2, beta1=0.3, beta2=0.5, eps=1e-6, weight_decay=0.05, decoupled_weight_decay=True, amsgrad=True)),
]
OPT_IDS = [o[0] for o in OPTS]
STEPS = 4
SIZES = [1, 7, 1031]  # 1031: two 256-thread blocks of 4 elements, a partial last group

# The _cpu / _cuda signatures' defaults (fastlayers.ops.optim).
DEFAULTS = {
    "sgd": dict(momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
    "rmsprop": dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False),
    "adagrad": dict(lr=0.01, eps=1e-10, weight_decay=0.0, lr_decay=0.0),
    "adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
                 amsgrad=False),
}


# --- devices -----------------------------------------------------------------------

# The emulator under two schedules and launch shapes (the default; 40-thread blocks, at
# most 3: partial warps, several grid-stride rounds), one under the threads engine; the GPU.
dev = backend_fixture(Emu("round-robin", launch=(256, 4096)), Emu("random", launch=(40, 3)))


# --- helpers ------------------------------------------------------------------------

def close(actual, expected, what):
    """Float32 vs float64 (tests/test_optim.py's criterion): a momentum buffer is a sum of
    terms as large as its largest elements, so a small element carries their absolute
    rounding, not its own."""
    atol = 2e-6 * max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=atol, err_msg=what)


def well_conditioned(size, seed=7):
    """p0 in [-1, 1]; |g| in [0.5, 1.5] with a sign alternating between steps (see
    tests/test_optim.py: near-zero or near-equal gradients amplify rounding unboundedly)."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(-1, 1, size).astype(np.float32)
    sign = rng.choice([-1.0, 1.0], size)
    grads = [(sign * (-1) ** k * rng.uniform(0.5, 1.5, size)).astype(np.float32) for k in range(STEPS)]
    return p0, grads


def call_step(mod, opt, hp, p, g, state, i):
    """One step through a _cpu / _cuda style module (positional, as the bindings)."""
    h = dict(DEFAULTS[opt], **hp)
    if opt == "sgd":
        mod.sgd_step(p, g, state.get("velocity"), h["lr"], h["momentum"], h["dampening"], h["nesterov"],
                     h["weight_decay"], i == 0)
    elif opt == "rmsprop":
        mod.rmsprop_step(p, g, state["square_avg"], h["lr"], h["alpha"], h["eps"], h["weight_decay"],
                         h["momentum"], state.get("momentum_buf"), h["centered"], state.get("grad_avg"))
    elif opt == "adagrad":
        mod.adagrad_step(p, g, state["sum_sq"], h["lr"], h["eps"], h["weight_decay"], h["lr_decay"], i + 1)
    else:
        mod.adam_step(p, g, state["m"], state["v"], i + 1, h["lr"], h["beta1"], h["beta2"], h["eps"],
                      h["weight_decay"], h["decoupled_weight_decay"], h["amsgrad"], state.get("max_v"))


def reference_step(opt, hp, p, g, state, i):
    if opt == "sgd":
        ref.sgd_step(p, g, state.get("velocity"), first_step=i == 0, **hp)
    elif opt == "rmsprop":
        ref.rmsprop_step(p, g, state["square_avg"], momentum_buf=state.get("momentum_buf"),
                         grad_avg=state.get("grad_avg"), **hp)
    elif opt == "adagrad":
        ref.adagrad_step(p, g, state["sum_sq"], step=i + 1, **hp)
    else:
        ref.adam_step(p, g, state["m"], state["v"], step=i + 1, max_v=state.get("max_v"), **hp)


def run_all(d, opt, state_names, hp, p0, grads, views=None):
    """Steps on the device, the CPU kernel and the float64 reference side by side,
    yielding (step, device, cpu, reference) with each a dict of arrays after the step.
    views(base) -> array gives the device arrays (default: the arrays themselves)."""
    views = views or (lambda b: b)
    bases = {"param": d.asarray(p0), **{k: d.asarray(np.zeros_like(p0)) for k in state_names}}
    dev_arrays = {k: views(b) for k, b in bases.items()}
    cpu = {"param": p0.copy(), **{k: np.zeros_like(p0) for k in state_names}}
    r64 = {"param": p0.astype(np.float64), **{k: np.zeros(p0.shape) for k in state_names}}
    for i, g in enumerate(grads):
        state = {k: v for k, v in dev_arrays.items() if k != "param"}
        call_step(d.mod, opt, hp, dev_arrays["param"], views(d.asarray(g)), state, i)
        call_step(_cpu, opt, hp, cpu["param"], g, {k: v for k, v in cpu.items() if k != "param"}, i)
        reference_step(opt, hp, r64["param"], g.astype(np.float64), {k: v for k, v in r64.items() if k != "param"}, i)
        yield i + 1, {k: d.get(b) for k, b in bases.items()}, cpu, r64


# --- tests --------------------------------------------------------------------------

@pytest.mark.parametrize("name,opt,state_names,hp", OPTS, ids=OPT_IDS)
def test_steps_match_reference_and_cpu(dev, name, opt, state_names, hp):
    for size in SIZES:
        p0, grads = well_conditioned(size)
        for step, got, cpu, r64 in run_all(dev, opt, state_names, hp, p0, grads):
            for k in got:
                close(got[k], r64[k], f"{name} n={size}: {k} after step {step} vs reference")
                close(got[k], cpu[k], f"{name} n={size}: {k} after step {step} vs cpu")
        assert not np.array_equal(got["param"], p0)  # something moved


@pytest.mark.parametrize("name,opt,state_names,hp", OPTS, ids=OPT_IDS)
def test_unaligned_arrays(dev, name, opt, state_names, hp):
    """Every array one element into its allocation: the scalar path of the kernels."""
    n = 37
    p0, grads = well_conditioned(n, seed=11)

    def shifted(host):
        big = dev.asarray(np.concatenate([np.zeros(1, np.float32), host]))
        return Offset(big, 1, n)

    dev_arrays = {"param": shifted(p0), **{k: shifted(np.zeros_like(p0)) for k in state_names}}
    r64 = {"param": p0.astype(np.float64), **{k: np.zeros(n) for k in state_names}}
    for i, g in enumerate(grads):
        call_step(dev.mod, opt, hp, dev_arrays["param"], shifted(g),
                  {k: v for k, v in dev_arrays.items() if k != "param"}, i)
        reference_step(opt, hp, r64["param"], g.astype(np.float64), {k: v for k, v in r64.items() if k != "param"}, i)
    for k, v in dev_arrays.items():
        close(dev.get(v._base)[1:], r64[k], f"{name}: {k} after {STEPS} steps")


def test_sgd_first_step_ignores_velocity(dev):
    p, vel = dev.asarray(np.ones(9, np.float32)), dev.asarray(np.full(9, 123.0, np.float32))
    dev.mod.sgd_step(p, dev.asarray(np.full(9, 0.5, np.float32)), vel, 0.1, 0.9, 0.5, False, 0.1, True)
    np.testing.assert_allclose(dev.get(p), 0.94, rtol=1e-6)
    np.testing.assert_allclose(dev.get(vel), 0.6, rtol=1e-6)


def test_empty(dev):
    e = dev.empty((0,))
    dev.mod.sgd_step(e, e, None, 0.1, 0.0, 0.0, False, 0.0, False)
    dev.mod.adam_step(e, dev.empty((0,)), dev.empty((0,)), dev.empty((0,)), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0,
                      False, False, None)


def test_bad_input(emu):
    m = emu.mod
    n = 10
    p, g, s = (emu.asarray(np.zeros(n, np.float32)) for _ in range(3))
    with pytest.raises(TypeError, match="param: expected a GPU array"):
        m.sgd_step(np.zeros(n, np.float32), g, None, 0.1, 0.0, 0.0, False, 0.0, False)
    with pytest.raises(TypeError, match="grad: expected dtype <f4"):
        m.sgd_step(p, emu.asarray(np.zeros(n)), None, 0.1, 0.0, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="grad: expected 10 elements, got 9"):
        m.sgd_step(p, emu.empty((9,)), None, 0.1, 0.0, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="velocity: required when momentum != 0"):
        m.sgd_step(p, g, None, 0.1, 0.9, 0.0, False, 0.0, False)
    with pytest.raises(ValueError, match="nesterov: requires momentum > 0 and dampening == 0"):
        m.sgd_step(p, g, s, 0.1, 0.9, 0.5, True, 0.0, False)
    with pytest.raises(ValueError, match="lr: expected >= 0"):
        m.adagrad_step(p, g, s, -1.0, 1e-10, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="step: expected >= 1, got 0"):
        m.adagrad_step(p, g, s, 0.1, 1e-10, 0.0, 0.0, 0)
    with pytest.raises(TypeError, match="sum_sq: expected a GPU array"):
        m.adagrad_step(p, g, None, 0.1, 1e-10, 0.0, 0.0, 1)
    with pytest.raises(ValueError, match="momentum_buf: required when momentum > 0"):
        m.rmsprop_step(p, g, s, 0.01, 0.99, 1e-8, 0.0, 0.9, None, False, None)
    with pytest.raises(ValueError, match="grad_avg: required when centered"):
        m.rmsprop_step(p, g, s, 0.01, 0.99, 1e-8, 0.0, 0.0, None, True, None)
    with pytest.raises(ValueError, match="v: expected 10 elements, got 11"):
        m.adam_step(p, g, s, emu.empty((11,)), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, None)
    with pytest.raises(ValueError, match=r"beta1: expected in \[0, 1\)"):
        m.adam_step(p, g, s, emu.empty((n,)), 1, 1e-3, 1.0, 0.999, 1e-8, 0.0, False, False, None)
    with pytest.raises(ValueError, match="max_v: required when amsgrad"):
        m.adam_step(p, g, s, emu.empty((n,)), 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, True, None)


def test_launch_failure_names_op_and_sizes(emu):
    """A host buffer passed off as a device array: RuntimeError naming the op and size."""
    host = np.zeros(10, np.float32)

    class HostMemory:
        __cuda_array_interface__ = {"shape": (10,), "typestr": "<f4", "strides": None, "version": 3,
                                    "data": (host.ctypes.data, False)}

    p, s = emu.asarray(np.zeros(10, np.float32)), emu.asarray(np.zeros(10, np.float32))
    with pytest.raises(RuntimeError, match=r"adagrad_step \(n=10\)"):
        emu.mod.adagrad_step(p, HostMemory(), s, 0.1, 1e-10, 0.0, 0.0, 1)


@pytest.mark.gpu
@pytest.mark.parametrize("name,opt,state_names,hp", OPTS, ids=OPT_IDS)
def test_gpu_matches_emulator(name, opt, state_names, hp):
    """The real GPU against the emulated run of the same kernels, after STEPS steps."""
    gpu, emu = gpu_backend(), emu_backend()
    p0, grads = well_conditioned(4099, seed=13)
    final = {}
    for d in (gpu, emu):
        *_, (_, got, _, _) = run_all(d, opt, state_names, hp, p0, grads)
        final[d.name] = got
    for k in final["gpu"]:
        close(final["gpu"][k], final["emu"][k].astype(np.float64), f"{name}: {k}")
