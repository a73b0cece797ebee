"""GEMM benchmarks (pytest-benchmark): fastlayers vs NumPy/OpenBLAS vs the NumPy reference.

    python -m pytest benchmarks/bench_gemm.py --benchmark-only
    python -m pytest benchmarks/bench_gemm.py --benchmark-only -k "mlp and t1"

Not collected by a plain ``pytest`` (testpaths = tests). The cases live in
fastlayers.bench.gemm (shared with benchmarks/gemm_table.py and ``fastlayers bench``):
squares 256..2048 and the GEMMs of a 784-512-10 MLP at batch 128, each at 1 and 2
threads. The naive reference (k rank-1 updates) is slow and single-threaded: it runs
only at 1 thread and on cases with m*n*k <= 512^3 (squares up to 512, MLP shapes).

Every case is validated against a float64 oracle before it is timed; a mismatch fails
it. NumPy cases are skipped when NumPy's BLAS threads cannot be set to the requested
count (install threadpoolctl, the ``bench`` extra). extra_info of each benchmark:
gflops, peak_gflops and pct_peak (fastlayers.machine.peak_gflops(threads)), and
vs_numpy = NumPy's time / this backend's time, both re-timed side by side (interleaved,
fastlayers.machine.time_interleaved) right after the benchmark (> 1: faster than
NumPy). For one table of every case, run benchmarks/gemm_table.py.
"""

from __future__ import annotations

import functools
import statistics

import pytest

from fastlayers import machine
from fastlayers.bench import gemm as cases

THREADS = (1, 2)


def _params():
    for case in cases.CASES:
        for threads in THREADS:
            for backend in case.backends():
                if backend == "reference" and threads != 1:
                    continue  # single-threaded NumPy: the same at every thread count
                yield pytest.param(case, threads, backend, id=f"{case.name}-t{threads}-{backend}")


@functools.lru_cache(maxsize=2)
def _inputs(case: cases.GemmCase) -> cases.GemmInputs:
    # Kept across the tests of a case: the float64 oracle of 2048^3 takes a while.
    return cases.make_inputs(case)


def _vs_numpy(inputs: cases.GemmInputs, backend: str, run, threads: int) -> float:
    """NumPy time / ``backend`` time, both timed side by side (interleaved medians)."""
    np_run = cases.prepare(inputs.case, "numpy", inputs)
    times = machine.time_interleaved({backend: run, "numpy": np_run}, repeat=5, min_time=0.02,
                                     settle=threads > 1)
    return statistics.median(times["numpy"]) / statistics.median(times[backend])


@pytest.mark.parametrize(("case", "threads", "backend"), list(_params()))
def test_gemm(benchmark, case, threads, backend):
    with cases.threads(threads) as blas_threads:
        numpy_ok = blas_threads == threads
        if backend == "numpy" and not numpy_ok:
            pytest.skip(f"NumPy's BLAS threads are {blas_threads}, not {threads}: install threadpoolctl")
        inputs = _inputs(case)
        run = cases.prepare(case, backend, inputs)  # raises GemmMismatch: the case fails

        benchmark.group = f"{case.name} {case.shape} t{threads}"
        benchmark.extra_info.update(
            m=case.m, n=case.n, k=case.k, trans_a=case.trans_a, trans_b=case.trans_b,
            threads=threads, backend=backend, flops=case.flops,
        )
        if threads > 1:
            machine.wait_until_idle()  # the previous test's thread pool may still spin
        benchmark(run)

        stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
        if stats is None:
            return
        median = stats.stats.median
        peak = machine.peak_gflops(threads)
        gflops = cases.gflops(case, median)
        benchmark.extra_info.update(gflops=gflops, peak_gflops=peak, pct_peak=100.0 * gflops / peak)
        if numpy_ok:
            vs_numpy = 1.0 if backend == "numpy" else _vs_numpy(inputs, backend, run, threads)
            benchmark.extra_info.update(vs_numpy=vs_numpy)
