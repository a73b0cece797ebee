"""Loss-family benchmarks (pytest-benchmark): softmax, log_softmax, softmax cross-entropy,
MSE and binary cross-entropy with logits, forward and backward as separate cases, at
(128, 10), (128, 1000) and (1024, 10000), in GB/s of the minimum traffic; fastlayers vs
NumPy vs the NumPy reference vs PyTorch's ATen kernels, each at 1 and 2 threads (the
reference at 1 only).

    python -m pytest benchmarks/bench_loss.py --benchmark-only -k "cross_entropy and 1024"

The cases (shapes, byte counts, torch formulations, tolerances) are those of
``fastlayers bench`` and live in fastlayers.bench.cases.loss; every backend is validated
against the float64 reference before it is timed. For one side-by-side table, run
``fastlayers bench --filter loss``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("loss"))
def test_loss(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
