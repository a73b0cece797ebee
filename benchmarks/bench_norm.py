"""Normalisation benchmarks (pytest-benchmark): fastlayers vs the NumPy reference vs PyTorch.

    python -m pytest benchmarks/bench_norm.py --benchmark-only
    python -m pytest benchmarks/bench_norm.py --benchmark-only -k "t1 and fwd+bwd"

Not collected by a plain ``pytest`` (testpaths = tests). Cases: training-mode batch norm
on (128, 32, 28, 28) and (32, 64, 56, 56) (per channel) and (128, 512) (per feature),
and layer norm over the last dim of (128, 512); each forward alone and forward+backward,
at 1 and 2 threads (the reference is single-threaded NumPy: 1 thread only). PyTorch
(torch.nn.functional.batch_norm / layer_norm, autograd for backward) runs when
``import torch`` works.

Every backend is validated against the NumPy reference before it is timed. extra_info:
gbs counts the minimum memory passes over the activation (forward: read x for the
statistics, read x and write out = 3 passes; backward: read x and dout for the two
channel sums, read them again and write dx = 5), pct_bandwidth relates it to the
STREAM-triad bandwidth (fastlayers.machine.bandwidth_gbs), and vs_reference / vs_torch
are the other backend's time over this one's, re-timed side by side (interleaved
medians) right after the benchmark (> 1: fastlayers is faster).

Every call allocates its outputs (out, dx), as a training loop does. For the large
activations that costs first-touch page faults on top of the kernel: glibc hands a
freed 25 MB block back to the OS and maps a fresh one on the next call (measured: the
(32, 64, 56, 56) forward+backward takes ~15 ms instead of the kernels' ~9.5 ms). PyTorch
pays the same in the same process. To time the kernels without it, keep freed memory in
the heap: MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483648.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
import pytest

import fastlayers
from fastlayers import machine, ops
from fastlayers import reference as ref

THREADS = (1, 2)


@dataclass(frozen=True)
class Case:
    name: str
    op: str  # "batch_norm" or "layer_norm"
    shape: tuple
    direction: str  # "fwd" or "fwd+bwd"

    @property
    def passes(self) -> int:
        return 3 if self.direction == "fwd" else 8

    @property
    def nbytes(self) -> int:
        return self.passes * 4 * int(np.prod(self.shape))


CASES = [
    Case(f"{op}-{'x'.join(map(str, shape))}-{d}", op, shape, d)
    for op, shape in [
        ("batch_norm", (128, 32, 28, 28)),
        ("batch_norm", (32, 64, 56, 56)),
        ("batch_norm", (128, 512)),
        ("layer_norm", (128, 512)),
    ]
    for d in ("fwd", "fwd+bwd")
]


class Inputs:
    def __init__(self, case: Case):
        rng = np.random.default_rng(0)
        c = case.shape[1] if case.op == "batch_norm" else case.shape[-1]
        self.x = (rng.standard_normal(case.shape) * 2 + 0.5).astype(np.float32)
        self.dout = rng.standard_normal(case.shape).astype(np.float32)
        self.gamma = rng.standard_normal(c).astype(np.float32)
        self.beta = rng.standard_normal(c).astype(np.float32)
        self.c = c


def _fastlayers_runner(case: Case, inp: Inputs, backend: str):
    """A callable that runs the case on ops with ``backend`` and returns (out, grads)."""
    rm, rv = np.zeros(inp.c, np.float32), np.ones(inp.c, np.float32)
    if case.op == "batch_norm":
        def fwd():
            return ops.batch_norm_forward(inp.x, inp.gamma, inp.beta, rm, rv, backend=backend)

        bwd = ops.batch_norm_backward
    else:
        def fwd():
            return ops.layer_norm_forward(inp.x, case.shape[-1], inp.gamma, inp.beta, backend=backend)

        bwd = ops.layer_norm_backward
    if case.direction == "fwd":
        return lambda: (fwd()[0], ())

    def run():
        out, cache = fwd()
        return out, bwd(inp.dout, cache)

    return run


def _torch_runner(case: Case, inp: Inputs):
    torch = pytest.importorskip("torch", reason="optional: PyTorch is not installed")
    x = torch.from_numpy(inp.x)
    dout = torch.from_numpy(inp.dout)
    g, b = torch.from_numpy(inp.gamma), torch.from_numpy(inp.beta)
    rm, rv = torch.zeros(inp.c), torch.ones(inp.c)
    F = torch.nn.functional

    def fwd(xx, gg, bb):
        if case.op == "batch_norm":
            return F.batch_norm(xx, rm, rv, gg, bb, training=True, momentum=0.1, eps=1e-5)
        return F.layer_norm(xx, (case.shape[-1],), gg, bb, eps=1e-5)

    if case.direction == "fwd":
        def run():
            with torch.no_grad():
                return fwd(x, g, b).numpy(), ()

        return run

    def run():
        xx = x.detach().requires_grad_()
        gg = g.detach().requires_grad_()
        bb = b.detach().requires_grad_()
        out = fwd(xx, gg, bb)
        out.backward(dout)
        return out.detach().numpy(), (xx.grad.numpy(), gg.grad.numpy(), bb.grad.numpy())

    return run


def make_runner(case: Case, inp: Inputs, backend: str):
    if backend == "torch":
        return _torch_runner(case, inp)
    return _fastlayers_runner(case, inp, backend)


def validate(case: Case, inp: Inputs, run) -> None:
    """Compares one call with the NumPy reference; raises AssertionError on a mismatch."""
    out, grads = run()
    out_r, grads_r = _fastlayers_runner(case, inp, "reference")()
    np.testing.assert_allclose(out, out_r, rtol=1e-4, atol=1e-4, err_msg=f"{case.name}: out")
    for i, (g, gr) in enumerate(zip(grads, grads_r)):
        scale = float(np.abs(gr).max())
        np.testing.assert_allclose(g, gr, rtol=1e-3, atol=1e-4 * scale, err_msg=f"{case.name}: grad {i}")


def _params():
    for case in CASES:
        for threads in THREADS:
            for backend in ("fastlayers", "reference", "torch"):
                if backend == "reference" and threads != 1:
                    continue
                yield pytest.param(case, threads, backend, id=f"{case.name}-t{threads}-{backend}")


def _set_threads(threads: int) -> None:
    fastlayers.set_num_threads(threads)
    try:
        import torch  # noqa: PLC0415 - optional

        torch.set_num_threads(threads)
    except ImportError:
        pass


@pytest.mark.parametrize(("case", "threads", "backend"), list(_params()))
def test_norm(benchmark, case, threads, backend):
    old = fastlayers.get_num_threads()
    try:
        _set_threads(threads)
        inp = Inputs(case)
        run = make_runner(case, inp, "cpu" if backend == "fastlayers" else backend)
        validate(case, inp, run)
        benchmark.group = f"{case.name} t{threads}"
        benchmark.extra_info.update(op=case.op, shape=case.shape, direction=case.direction,
                                    threads=threads, backend=backend, bytes=case.nbytes)
        if threads > 1:
            machine.wait_until_idle()
        benchmark(run)
        stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
        if stats is None:
            return
        median = stats.stats.median
        gbs = case.nbytes / median / 1e9
        benchmark.extra_info.update(gbs=round(gbs, 2),
                                    pct_bandwidth=round(100 * gbs / machine.bandwidth_gbs(threads), 1))
        if backend == "fastlayers":
            others = {"reference": _fastlayers_runner(case, inp, "reference")} if threads == 1 else {}
            try:
                others["torch"] = _torch_runner(case, inp)
            except pytest.skip.Exception:
                pass
            for name, other in others.items():
                times = machine.time_interleaved({"fastlayers": run, name: other}, repeat=5, min_time=0.02,
                                                 settle=threads > 1)
                ratio = statistics.median(times[name]) / statistics.median(times["fastlayers"])
                benchmark.extra_info[f"vs_{name}"] = round(ratio, 2)
    finally:
        _set_threads(old)
