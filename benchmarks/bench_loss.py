"""Loss-family benchmarks (pytest-benchmark): softmax and softmax cross-entropy,
forward + backward, fastlayers vs the NumPy reference vs PyTorch CPU (when importable).

    python -m pytest benchmarks/bench_loss.py --benchmark-only
    python -m pytest benchmarks/bench_loss.py --benchmark-only -k "cross_entropy and 1024"

Not collected by a plain ``pytest`` (testpaths = tests). One thread everywhere
(fastlayers.set_num_threads(1), torch.set_num_threads(1)); the machine this was written
on is a shared 2-core box, so runs are short and every comparison is interleaved.

Cases: shapes (128, 10), (128, 1000), (1024, 10000) for
- softmax:       y = softmax(x, axis=-1), then dx from dy       bytes = 5 * x.nbytes
- cross_entropy: loss = mean CE(logits, labels), then dlogits    bytes = 3 * x.nbytes
The byte counts are the minimum traffic of the fused algorithm (softmax: read x, write
y; read dy and y, write dx. Cross-entropy: read logits; read logits, write dlogits) and
are used for every backend, so GB/s compare like for like (STREAM triad on one core
here: about 20 GB/s; cache-resident shapes can exceed it).

Each backend is validated against the float64 reference before it is timed (a mismatch
fails the case). PyTorch runs its ATen kernels directly (_softmax / _softmax_backward_data,
_log_softmax + nll_loss forward/backward), without autograd, so the comparison is kernel
against kernel. extra_info: gbps, bytes, and for the fastlayers case the medians of all
backends re-timed side by side (interleaved rounds): ms_<backend>, gbps_<backend>,
speedup_vs_reference and speedup_vs_torch (> 1: fastlayers is faster).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

import fastlayers
from fastlayers import ops
from fastlayers import reference as ref

SHAPES = [(128, 10), (128, 1000), (1024, 10000)]
OPS = ["softmax", "cross_entropy"]
BACKENDS = ["fastlayers", "reference", "torch"]
BYTES_PER_ELEMENT = {"softmax": 5 * 4, "cross_entropy": 3 * 4}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = fastlayers.get_num_threads()
    fastlayers.set_num_threads(1)
    yield
    fastlayers.set_num_threads(threads)


def _inputs(shape):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    labels = rng.integers(0, shape[1], shape[0])
    return x, dy, labels


def _expected(op, x, dy, labels):
    """float64 reference results: (y, dx) for softmax, (loss, dlogits) for cross-entropy."""
    if op == "softmax":
        y, cache = ref.softmax_forward(x.astype(np.float64))
        return y, ref.softmax_backward(dy.astype(np.float64), cache)[0]
    loss, cache = ref.softmax_cross_entropy_forward(x.astype(np.float64), labels)
    return loss, ref.softmax_cross_entropy_backward(cache)[0]


def _runner(op, backend, x, dy, labels):
    """A no-argument function doing forward + backward, returning (out, grad) as NumPy."""
    if backend in ("fastlayers", "reference"):
        be = "cpu" if backend == "fastlayers" else "reference"
        if op == "softmax":
            def run():
                y, cache = ops.softmax_forward(x, backend=be)
                return y, ops.softmax_backward(dy, cache)[0]
        else:
            def run():
                loss, cache = ops.softmax_cross_entropy_forward(x, labels, backend=be)
                return loss, ops.softmax_cross_entropy_backward(cache)[0]
        return run

    torch = _torch()
    xt, dyt, lt = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(labels)
    aten = torch.ops.aten
    one = torch.tensor(1.0)
    if op == "softmax":
        def run():
            y = torch._softmax(xt, 1, False)
            return y, torch._softmax_backward_data(dyt, y, 1, torch.float32)
    else:
        def run():
            logp = torch._log_softmax(xt, 1, False)
            loss, total_weight = aten.nll_loss_forward(logp, lt, None, 1, -100)  # 1: mean
            g = aten.nll_loss_backward(one, logp, lt, None, 1, -100, total_weight)
            return loss, torch._log_softmax_backward_data(g, logp, 1, torch.float32)
    return run


def _validate(op, run, expected):
    out, grad = run()
    out, grad = np.asarray(out, np.float64), np.asarray(grad, np.float64)
    want_out, want_grad = expected
    scale = np.max(np.abs(want_grad))
    if not np.allclose(out, want_out, rtol=1e-4, atol=1e-6):
        raise AssertionError(f"{op}: forward output differs from the float64 reference")
    if not np.allclose(grad, want_grad, rtol=1e-3, atol=1e-5 * scale):
        raise AssertionError(f"{op}: gradient differs from the float64 reference")


def time_interleaved(runs: dict, budget_s: float = 1.0, max_rounds: int = 9) -> dict:
    """Median seconds per call of each function, timed in interleaved rounds.

    Each round runs every function for about budget_s / (rounds * len(runs)) seconds,
    so a burst of load from another process hits all of them alike.
    """
    per_call = {}
    for name, fn in runs.items():  # warm up and estimate
        t0 = time.perf_counter()
        fn()
        per_call[name] = max(time.perf_counter() - t0, 1e-6)
    rounds = max(3, min(max_rounds, int(budget_s / max(sum(per_call.values()), 1e-9))))
    slot = budget_s / (rounds * len(runs))
    reps = {name: max(1, int(slot / t)) for name, t in per_call.items()}
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / reps[name])
    return {name: statistics.median(ts) for name, ts in times.items()}


def _params():
    for op in OPS:
        for shape in SHAPES:
            for backend in BACKENDS:
                yield pytest.param(op, shape, backend, id=f"{op}-{shape[0]}x{shape[1]}-{backend}")


@pytest.mark.parametrize(("op", "shape", "backend"), list(_params()))
def test_loss(benchmark, op, shape, backend):
    if backend == "torch":
        pytest.importorskip("torch")
    x, dy, labels = _inputs(shape)
    expected = _expected(op, x, dy, labels)
    run = _runner(op, backend, x, dy, labels)
    _validate(op, run, expected)

    nbytes = BYTES_PER_ELEMENT[op] * x.size
    benchmark.group = f"{op} {shape[0]}x{shape[1]} fwd+bwd"
    benchmark.extra_info.update(op=op, shape=list(shape), backend=backend, threads=1, bytes=nbytes)
    t_est = time_interleaved({backend: run}, budget_s=0.05, max_rounds=3)[backend]
    rounds = max(3, min(200, int(0.5 / t_est)))
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)

    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if stats is None:
        return
    benchmark.extra_info["gbps"] = nbytes / stats.stats.median / 1e9
    if backend != "fastlayers":
        return
    runs = {"fastlayers": run, "reference": _runner(op, "reference", x, dy, labels)}
    if _torch() is not None:
        runs["torch"] = _runner(op, "torch", x, dy, labels)
    med = time_interleaved(runs)
    for name, t in med.items():
        benchmark.extra_info[f"ms_{name}"] = t * 1e3
        benchmark.extra_info[f"gbps_{name}"] = nbytes / t / 1e9
    benchmark.extra_info["speedup_vs_reference"] = med["reference"] / med["fastlayers"]
    if "torch" in med:
        benchmark.extra_info["speedup_vs_torch"] = med["torch"] / med["fastlayers"]
