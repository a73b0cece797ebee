"""The named cases of ``fastlayers bench`` and of the pytest-benchmark suites under
benchmarks/, one module per op family (see :mod:`fastlayers.bench.core` for what a case
holds). :func:`all_cases` lists them in report order; ``quick`` cases are the small
sizes that ``--quick`` (and CI) runs, the others the full sizes.
"""

from __future__ import annotations

import importlib

from fastlayers.bench.core import Case

__all__ = ["FAMILIES", "all_cases"]

# Report order; each name is a module of this package with a ``cases()`` function.
FAMILIES = ("gemm", "conv2d", "pool", "activation", "loss", "norm", "linear", "optim", "train")


def all_cases(families=None) -> list[Case]:
    """Every case of ``families`` (default: all of FAMILIES; quick and full), in report order."""
    out: list[Case] = []
    for family in FAMILIES if families is None else families:
        if family not in FAMILIES:
            raise ValueError(f"families: expected names from {FAMILIES}, got {family!r}")
        out += importlib.import_module(f"{__name__}.{family}").cases()
    return out
