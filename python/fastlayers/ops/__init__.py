"""The functional API: every fastlayers op on NumPy arrays.

Each op validates its arguments (dtype float32, ranks, matching shapes) and raises
TypeError/ValueError naming the argument, then calls the C++ kernel with the GIL
released. ``backend="reference"`` runs the NumPy reference instead.
"""

from fastlayers.ops.gemm import gemm, matmul

__all__ = ["gemm", "matmul"]
