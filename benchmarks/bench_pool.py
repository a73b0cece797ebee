"""Pooling benchmarks (pytest-benchmark): max / average pooling forward and backward, max
pooling for inference and global average pooling; fastlayers vs the NumPy reference vs
plain NumPy vs PyTorch CPU.

    python -m pytest benchmarks/bench_pool.py --benchmark-only -k "max-fwd and t1"

The cases are those of ``fastlayers bench`` (fastlayers.bench.cases.pool); for one
side-by-side table: ``fastlayers bench --filter pool``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("pool"))
def test_pool(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
