"""Pure-NumPy reference implementation of every fastlayers op.

The reference is the specification: each function's docstring gives the formula, the
tests compare the kernels against it, and the benchmarks measure against it. It favours
clarity over speed and works in the dtype it is given (float64 for gradient checks).
"""

from fastlayers.reference.gemm import gemm, matmul

__all__ = ["gemm", "matmul"]
