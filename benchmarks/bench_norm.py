"""Normalisation benchmarks (pytest-benchmark): training-mode batch norm on
(128, 32, 28, 28), (32, 64, 56, 56) and (128, 512), layer norm on (128, 512), forward and
backward as separate cases, in GB/s of the minimum memory passes; fastlayers vs NumPy vs
the NumPy reference vs PyTorch, each at 1 and 2 threads (the reference at 1 only).

    python -m pytest benchmarks/bench_norm.py --benchmark-only -k "t1 and bwd"

The cases (shapes, byte counts, torch formulations, tolerances, and a note on the page
faults of freshly allocated outputs with MALLOC_MMAP_THRESHOLD_) are those of
``fastlayers bench`` and live in fastlayers.bench.cases.norm; every backend is validated
against the float64 reference before it is timed. For one side-by-side table, run
``fastlayers bench --filter norm``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("norm"))
def test_norm(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
