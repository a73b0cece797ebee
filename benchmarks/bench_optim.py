"""Optimiser-step benchmarks (pytest-benchmark): fastlayers vs the NumPy reference vs torch.optim.

    python -m pytest benchmarks/bench_optim.py --benchmark-only
    python -m pytest benchmarks/bench_optim.py --benchmark-only -k "adam and 16M"

Not collected by a plain ``pytest`` (testpaths = tests). Cases: one in-place step of
SGD with momentum, Nesterov SGD, RMSprop, Adagrad, Adam and AdamW on 1M and 16M float32
parameters (1M: the arrays fit in a large L3; 16M: they stream from memory), at 1 and 2
threads (the reference is single-threaded NumPy: 1 thread only). torch.optim (its default
single-tensor CPU implementation, one parameter tensor) runs when ``import torch`` works.

Every backend is validated against the NumPy reference (one step from the same state)
before it is timed. extra_info: gbs counts the bytes one fused pass must move (each
array read once, each updated array written once: Adam reads param, grad, m, v and
writes param, m, v = 28 bytes per parameter), pct_bandwidth relates it to the
STREAM-triad bandwidth (fastlayers.machine.bandwidth_gbs; an in-place update writes
back lines it has just read, so unlike the triad it pays no write-allocate traffic, and
1M parameters stay in a 32 MB L3: more than 100% is possible), and vs_reference / vs_torch
are the other backend's time over this one's, re-timed side by side (interleaved
medians) right after the benchmark (> 1: fastlayers is faster).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
import pytest

import fastlayers
from fastlayers import machine, ops
from fastlayers import reference as ref

THREADS = (1, 2)
SIZES = {"1M": 1 << 20, "16M": 16 << 20}
STEP = 10  # a fixed step count: bias corrections stay constant over the timed calls


@dataclass(frozen=True)
class Opt:
    name: str
    fn: str  # sgd_step, rmsprop_step, adagrad_step, adam_step
    state: tuple  # state buffer argument names (zeros at the start)
    kwargs: dict = field(default_factory=dict)
    torch_cls: str = ""
    torch_kwargs: dict = field(default_factory=dict)

    @property
    def arrays_read(self) -> int:
        return 2 + len(self.state)  # param, grad, state

    @property
    def arrays_written(self) -> int:
        return 1 + len(self.state)


OPTS = [
    Opt("sgd-momentum", "sgd_step", ("velocity",), dict(lr=0.01, momentum=0.9), "SGD", dict(lr=0.01, momentum=0.9)),
    Opt("sgd-nesterov", "sgd_step", ("velocity",), dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
        "SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    Opt("rmsprop", "rmsprop_step", ("square_avg",), dict(lr=0.01), "RMSprop", dict(lr=0.01)),
    Opt("adagrad", "adagrad_step", ("sum_sq",), dict(lr=0.01), "Adagrad", dict(lr=0.01)),
    Opt("adam", "adam_step", ("m", "v"), dict(lr=1e-3), "Adam", dict(lr=1e-3)),
    Opt("adamw", "adam_step", ("m", "v"), dict(lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True),
        "AdamW", dict(lr=1e-3, weight_decay=1e-2)),
]


def nbytes(opt: Opt, n: int) -> int:
    return 4 * n * (opt.arrays_read + opt.arrays_written)


class State:
    """param, grad and zeroed state buffers for one optimiser, with a warmed-up state."""

    def __init__(self, opt: Opt, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.param = rng.standard_normal(n, dtype=np.float32)
        self.grad = rng.standard_normal(n, dtype=np.float32)
        self.state = {name: np.zeros(n, np.float32) for name in opt.state}
        self.opt = opt

    def copy(self) -> "State":
        other = object.__new__(State)
        other.param, other.grad, other.opt = self.param.copy(), self.grad, self.opt
        other.state = {k: v.copy() for k, v in self.state.items()}
        return other

    def kwargs(self) -> dict:
        kw = dict(self.opt.kwargs)
        if self.opt.fn in ("adagrad_step", "adam_step"):
            kw["step"] = STEP
        if self.opt.fn == "sgd_step":
            kw["velocity"] = self.state["velocity"]
        return kw

    def positional(self) -> list:
        if self.opt.fn == "sgd_step":
            return [self.param, self.grad]
        return [self.param, self.grad, *self.state.values()]


def fastlayers_runner(st: State, backend: str):
    fn = getattr(ops, st.opt.fn)
    args, kw = st.positional(), st.kwargs()
    return lambda: fn(*args, **kw, backend=backend)


def torch_runner(st: State):
    """One torch.optim step on a tensor that shares st.param's memory (and st.state's,
    copied into torch's state after a first step)."""
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    p = torch.nn.Parameter(torch.from_numpy(st.param))
    p.grad = torch.from_numpy(st.grad)
    topt = getattr(torch.optim, st.opt.torch_cls)([p], **st.opt.torch_kwargs)
    return topt.step


def validate(opt: Opt, n: int, backend: str) -> None:
    """One step from a warm state on ``backend`` vs the reference; AssertionError on a mismatch."""
    base = State(opt, n, seed=1)
    fastlayers_runner(base, "reference")()  # state buffers nonzero from here on
    a, b = base.copy(), base.copy()
    if backend == "torch":
        # torch's state starts empty: compare its first step with the reference's first.
        a, b = State(opt, n, seed=1), State(opt, n, seed=1)
        if opt.fn in ("adagrad_step", "adam_step"):
            b_kw = dict(step=1)
        else:
            b_kw = {}
        torch_runner(a)()
        fn = getattr(ref, opt.fn)
        kw = {**b.kwargs(), **b_kw}
        if opt.fn == "sgd_step":
            kw["first_step"] = True
        fn(*b.positional(), **kw)
    else:
        fastlayers_runner(a, "cpu" if backend == "fastlayers" else backend)()
        fastlayers_runner(b, "reference")()
    np.testing.assert_allclose(a.param, b.param, rtol=1e-5, atol=1e-6, err_msg=f"{opt.name} {backend}: param")


def _params():
    for opt in OPTS:
        for size in SIZES:
            for threads in THREADS:
                for backend in ("fastlayers", "reference", "torch"):
                    if backend == "reference" and threads != 1:
                        continue
                    yield pytest.param(opt, size, threads, backend, id=f"{opt.name}-{size}-t{threads}-{backend}")


def _set_threads(threads: int) -> None:
    fastlayers.set_num_threads(threads)
    try:
        import torch  # noqa: PLC0415 - optional

        torch.set_num_threads(threads)
    except ImportError:
        pass


@pytest.mark.parametrize(("opt", "size", "threads", "backend"), list(_params()))
def test_optim(benchmark, opt, size, threads, backend):
    n = SIZES[size]
    old = fastlayers.get_num_threads()
    try:
        _set_threads(threads)
        validate(opt, min(n, 1 << 16), backend)
        st = State(opt, n)
        run = torch_runner(st) if backend == "torch" else fastlayers_runner(st, "cpu" if backend == "fastlayers" else backend)
        benchmark.group = f"{opt.name} {size} t{threads}"
        benchmark.extra_info.update(optimizer=opt.name, params=n, threads=threads, backend=backend,
                                    bytes=nbytes(opt, n))
        if threads > 1:
            machine.wait_until_idle()
        benchmark(run)
        stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
        if stats is None:
            return
        gbs = nbytes(opt, n) / stats.stats.median / 1e9
        benchmark.extra_info.update(gbs=round(gbs, 2),
                                    pct_bandwidth=round(100 * gbs / machine.bandwidth_gbs(threads), 1))
        if backend == "fastlayers":
            others = {"reference": fastlayers_runner(State(opt, n), "reference")} if threads == 1 else {}
            try:
                others["torch"] = torch_runner(State(opt, n))
            except pytest.skip.Exception:
                pass
            for name, other in others.items():
                times = machine.time_interleaved({"fastlayers": run, name: other}, repeat=5, min_time=0.05,
                                                 settle=threads > 1)
                benchmark.extra_info[f"vs_{name}"] = round(
                    statistics.median(times[name]) / statistics.median(times["fastlayers"]), 2)
    finally:
        _set_threads(old)
