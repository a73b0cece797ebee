"""GEMM cases: the squares and MLP shapes of :mod:`fastlayers.bench.gemm`, and a 4096
square for GPUs. Every backend writes into its own preallocated C; the check is the
float64 oracle with the k-dependent tolerance of :func:`fastlayers.bench.gemm.check_result`."""

from __future__ import annotations

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench import gemm as shapes
from fastlayers.bench.core import Case, Mismatch

QUICK = ("square-256", "mlp-fc1-fwd")


def _fl(case: shapes.GemmCase):
    def factory(inputs, backend):
        a, b = inputs
        out = np.full((case.m, case.n), np.nan, dtype=np.float32)  # every element must be written
        ta, tb = case.trans_a, case.trans_b
        if backend == "reference":
            def run():
                np.copyto(out, reference.gemm(a, b, trans_a=ta, trans_b=tb))
                return out
        else:
            def run():
                return ops.gemm(a, b, trans_a=ta, trans_b=tb, out=out)
        return run
    return factory


def _np(case: shapes.GemmCase):
    def factory(xp, inputs):
        a, b = inputs
        opa = a.T if case.trans_a else a
        opb = b.T if case.trans_b else b
        out = xp.full((case.m, case.n), np.nan, dtype=np.float32)
        return lambda: xp.matmul(opa, opb, out=out)
    return factory


def _torch(case: shapes.GemmCase):
    def factory(torch, inputs, device):
        a, b = inputs
        opa = a.T if case.trans_a else a
        opb = b.T if case.trans_b else b
        out = torch.full((case.m, case.n), float("nan"), dtype=torch.float32, device=device)
        return lambda: torch.matmul(opa, opb, out=out)
    return factory


def _check(case: shapes.GemmCase):
    def compare(got, gemm_inputs: shapes.GemmInputs, what):
        try:
            shapes.check_result(gemm_inputs, np.asarray(got), what)
        except shapes.GemmMismatch as e:
            raise Mismatch(str(e)) from None
    return compare


def gemm_case(c: shapes.GemmCase, cpu: bool = True) -> Case:
    """The benchmark case of one GEMM shape."""
    def make_inputs():
        gi = shapes.make_inputs(c)
        return gi.a, gi.b

    def expected(inputs):  # the oracle is computed lazily, on the first check
        a, b = inputs
        return shapes.GemmInputs(c, a, b, np.empty(0, np.float32))

    return Case(family="gemm", name=c.name, shape=c.shape, make_inputs=make_inputs, expected=expected,
                fl=_fl(c), np=_np(c), torch=_torch(c), flops=float(c.flops), quick=c.name in QUICK,
                compare=_check(c), reference=c.runs_reference, cpu=cpu)


def cases() -> list[Case]:
    return [gemm_case(c) for c in shapes.CASES] + [gemm_case(shapes.GemmCase.square(4096), cpu=False)]
