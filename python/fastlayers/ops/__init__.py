"""The functional API: every fastlayers op on NumPy arrays.

Each op validates its arguments (dtype float32, ranks, matching shapes) and raises
TypeError/ValueError naming the argument, then calls the C++ kernel with the GIL
released. ``backend="reference"`` runs the NumPy reference instead.

One module per op family (``ops/gemm.py``, ``ops/conv.py``, ...); each lists its public
names in ``__all__`` and they are all re-exported here.
"""

from fastlayers._families import export_families

__all__ = export_families(__name__, globals())
