"""GEMM benchmarks (pytest-benchmark): fastlayers vs NumPy/OpenBLAS vs the NumPy
reference vs PyTorch, on the squares 256..2048 and the GEMMs of a 784-512-10 MLP at batch
128, each at 1 and 2 threads (the single-threaded reference at 1 only, and only where
m*n*k <= 512^3).

    python -m pytest benchmarks/bench_gemm.py --benchmark-only -k "mlp and t1"

The cases are those of ``fastlayers bench`` (fastlayers.bench.cases.gemm); for one
side-by-side table, or any other shape, run ``fastlayers bench --filter gemm`` or
``fastlayers bench --gemm 1000x1000x1000:tB``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("gemm"))
def test_gemm(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
