"""Training-step benchmarks (pytest-benchmark): one SGD step of the zoo models convnet and
mlp512 at batch 128; fastlayers vs the same model on the NumPy reference vs a PyTorch
twin loaded with the same weights.

    python -m pytest benchmarks/bench_train.py --benchmark-only -k t1

The cases are those of ``fastlayers bench`` (fastlayers.bench.cases.train); for one
side-by-side table: ``fastlayers bench --filter train``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("train"))
def test_train(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
