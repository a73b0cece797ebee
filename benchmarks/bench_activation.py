"""Element-wise benchmarks (pytest-benchmark): the activations (relu, leaky_relu, sigmoid,
tanh, gelu erf and tanh, softplus, elu), dropout and the residual add, forward and
backward as separate cases, on a (128, 32, 28, 28) map and 16M elements, in GB/s of the
minimum traffic; fastlayers vs NumPy vs the NumPy reference vs PyTorch's ATen kernels,
each at 1 and 2 threads (the reference at 1 only).

    python -m pytest benchmarks/bench_activation.py --benchmark-only -k "relu and 16M and t1"

The cases (shapes, byte counts, torch formulations, tolerances) are those of
``fastlayers bench`` and live in fastlayers.bench.cases.activation; every backend is
validated against the float64 reference before it is timed. For one side-by-side
table, run ``fastlayers bench --filter activation``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("activation"))
def test_activation(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
