"""Convolution benchmarks (pytest-benchmark): forward, backward-data and backward-weight
of the LeNet-5, Fashion-MNIST convnet, VGG, ResNet and AlexNet layers; fastlayers vs the
NumPy reference vs an im2col + matmul NumPy formulation vs PyTorch CPU.

    python -m pytest benchmarks/bench_conv.py --benchmark-only -k "vgg and t1"

The cases are those of ``fastlayers bench`` (fastlayers.bench.cases.conv2d); for one
side-by-side table: ``fastlayers bench --filter conv2d``.
"""

import pytest

from fastlayers.bench.pytest_support import bench, params


@pytest.mark.parametrize(("case", "backend", "threads"), params("conv2d"))
def test_conv2d(benchmark, case, backend, threads):
    bench(benchmark, case, backend, threads)
