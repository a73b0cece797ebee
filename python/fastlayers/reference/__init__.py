"""Pure-NumPy reference implementation of every fastlayers op.

The reference is the specification: each function's docstring gives the formula, the
tests compare the kernels against it, and the benchmarks measure against it. It favours
clarity over speed and works in the dtype it is given (float64 for gradient checks).

One module per op family (``reference/gemm.py``, ...); their ``__all__`` names are
re-exported here.
"""

from fastlayers._families import export_families

__all__ = export_families(__name__, globals())
