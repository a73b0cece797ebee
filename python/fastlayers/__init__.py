"""fastlayers: neural-network kernels hand-written in C++ (CPU) and CUDA (GPU).

Arrays in, arrays out: NumPy arrays run on the CPU kernels, and every op has a pure
NumPy reference (``fastlayers.reference``) that is its specification.

>>> import numpy as np, fastlayers as fl
>>> a = np.ones((3, 4), np.float32); b = np.ones((4, 2), np.float32)
>>> fl.ops.matmul(a, b)
array([[4., 4.],
       [4., 4.],
       [4., 4.]], dtype=float32)
"""

from fastlayers import _cpu
from fastlayers import data, gradcheck, io, machine, metrics, models, nn, ops, optim, plots, reference, train
from fastlayers.runtime import (
    get_num_threads,
    get_simd_path,
    info,
    set_num_threads,
    set_simd_path,
)

__version__ = _cpu.runtime_info()["version"]

__all__ = [
    "__version__",
    "data",
    "get_num_threads",
    "get_simd_path",
    "gradcheck",
    "info",
    "io",
    "machine",
    "metrics",
    "models",
    "nn",
    "ops",
    "optim",
    "plots",
    "reference",
    "set_num_threads",
    "set_simd_path",
    "train",
]
