"""The pytest-benchmark side of the cases: benchmarks/bench_<family>.py parametrize over
:func:`params` and call :func:`bench`, so they time exactly what ``fastlayers bench``
times (same inputs, same validation, same FLOP and byte counts).

    python -m pytest benchmarks/bench_conv.py --benchmark-only -k "vgg and t1"

Each test validates its backend against the oracle before timing it (a mismatch fails
the test) and skips with the reason when the backend cannot run here. extra_info: the
case, backend and threads, the rate (GFLOP/s or GB/s) and its % of this machine's peak.
For a side-by-side comparison of the backends, interleaved, use ``fastlayers bench``.
"""

from __future__ import annotations

import pytest

from fastlayers import machine
from fastlayers.bench import core
from fastlayers.bench.cases import all_cases
from fastlayers.bench.runner import Peaks, _threads

__all__ = ["bench", "params"]


def params(family: str, threads=(1, 2), quick: bool = False) -> list:
    """pytest params (case, backend, threads) of ``family``: full sizes (or the quick
    ones), every backend with a formulation; the single-threaded NumPy reference at 1
    thread only."""
    out = []
    for case in all_cases((family,)):
        if case.quick != quick:
            continue
        for backend in core.ALL_BACKENDS:
            if case.formulation(backend) is None or (not case.cpu and backend not in core.GPU_BACKENDS):
                continue
            for t in threads:
                if backend == "reference" and t != threads[0]:
                    continue
                out.append(pytest.param(case, backend, t, id=f"{case.name}-{backend}-t{t}"))
    return out


def bench(benchmark, case: core.Case, backend: str, threads: int) -> None:
    """Validate ``case`` on ``backend`` then time it with pytest-benchmark."""
    with _threads(threads):
        try:
            run = core.prepare(case, backend, inputs := case.make_inputs())
        except core.Unavailable as e:
            pytest.skip(f"{backend}: {e}")
        core.validate(case, run, case.expected(inputs))  # raises Mismatch: the test fails
        benchmark.group = f"{case.id} {case.shape} t{threads}"
        benchmark.extra_info.update(case=case.id, shape=case.shape, backend=backend, threads=threads)
        if threads > 1:
            machine.wait_until_idle()
        benchmark(run)
        stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
        if stats is None:
            return
        rate = (case.flops or case.nbytes) / stats.stats.median * 1e-9
        peak = Peaks.measure(threads).of(backend, case.rate_unit)
        benchmark.extra_info.update(rate=rate, rate_unit=case.rate_unit,
                                    pct_peak=rate / peak * 100 if peak else None)
