"""Optimiser-step benchmarks (pytest-benchmark): one in-place step of SGD with momentum,
Nesterov SGD, RMSprop, Adagrad, Adam and AdamW on 1M and 16M float32 parameters, in GB/s
of what one fused pass must move; fastlayers vs NumPy vs the NumPy reference vs
torch.optim, each at 1 and 2 threads (the reference at 1 only).

    python -m pytest benchmarks/bench_optim.py --benchmark-only -k "adam and 16M"

The cases (sizes, byte counts, the fixed step count, torch's warm state, tolerances)
are those of ``fastlayers bench`` and live in fastlayers.bench.cases.optim; every
backend is validated against the float64 reference (one step from the same state)
before it is timed. For one side-by-side table, run ``fastlayers bench --filter optim``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("optim"))
def test_optim(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
