"""Linear-layer benchmarks (pytest-benchmark): the layers of the MNIST MLP 784 -> 512 -> 10
at batch 128 (each layer alone and the whole MLP), forward and backward as separate
cases, in GFLOP/s (2*N*in*out per GEMM); fastlayers vs NumPy vs the NumPy reference vs
PyTorch, each at 1 and 2 threads (the reference at 1 only).

    python -m pytest benchmarks/bench_linear.py --benchmark-only -k "mlp and t1"

The cases (shapes, FLOP counts, torch formulations, tolerances) are those of
``fastlayers bench`` and live in fastlayers.bench.cases.linear; every backend is
validated against the float64 reference before it is timed. For one side-by-side
table, run ``fastlayers bench --filter linear``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("linear"))
def test_linear(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
