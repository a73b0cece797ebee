"""Benchmark case definitions, one module per op family (``bench/gemm.py``, ...).

Shared by the pytest-benchmark suites in benchmarks/ and the ``fastlayers bench`` CLI,
so both time the same shapes, validate the same way and report the same numbers.
"""

__all__ = []
