"""GEMM shapes for the benchmarks, their inputs and float64 oracle, and thread control.

A case is C (m, n) = op(A) (m, k) @ op(B) (k, n) in float32: the squares 256..2048 and
the GEMMs of a 784-512-10 MLP at batch 128 (:data:`CASES`), or any shape
:func:`parse_cases` reads (``fastlayers bench --gemm 1000x1000x1000:tB``).
:mod:`fastlayers.bench.cases.gemm` turns them into benchmark cases. The naive reference
(k rank-1 updates in NumPy) runs only where ``runs_reference`` (m*n*k <= 512**3).

Results are checked against a float64 oracle (:func:`check_result`): element-wise
``|C - C64| <= 4 * sqrt(k) * eps32 * (|op(A)| @ |op(B)|)``. Correctly rounded float32
sums stay far inside that bound, while a lost or doubled rank-1 update (error
~|a_ip * b_pj|) falls well outside it.

:func:`threads` runs fastlayers and NumPy's BLAS (through threadpoolctl, when installed)
at one thread count; :func:`blas_info` describes NumPy's BLAS for a report header.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from fastlayers.runtime import get_num_threads, set_num_threads

__all__ = [
    "CASES",
    "CASES_BY_NAME",
    "GemmCase",
    "GemmInputs",
    "GemmMismatch",
    "MLP_CASES",
    "REFERENCE_MAX_MNK",
    "SQUARE_SIZES",
    "blas_info",
    "blas_threads_controllable",
    "check_result",
    "env_blas_threads",
    "make_inputs",
    "parse_cases",
    "threads",
]

SQUARE_SIZES = (256, 512, 1024, 2048)
# The naive reference runs only where m*n*k <= this (512^3: ~0.2 s a call here).
REFERENCE_MAX_MNK = 512**3

_EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class GemmCase:
    """One GEMM shape: C (m, n) = op(A) (m, k) @ op(B) (k, n); op(X) = X.T when trans_x."""

    name: str
    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False
    group: str = "custom"  # "square", "mlp" or "custom"
    description: str = ""

    @property
    def flops(self) -> int:
        """2*m*n*k: one multiply and one add per term."""
        return 2 * self.m * self.n * self.k

    @property
    def shape(self) -> str:
        """'MxNxK', with ' A^T' / ' B^T' when an operand is read transposed."""
        s = f"{self.m}x{self.n}x{self.k}"
        if self.trans_a:
            s += " A^T"
        if self.trans_b:
            s += " B^T"
        return s

    @property
    def runs_reference(self) -> bool:
        return self.m * self.n * self.k <= REFERENCE_MAX_MNK

    @classmethod
    def square(cls, size: int) -> GemmCase:
        return cls(f"square-{size}", size, size, size, group="square", description=f"{size}^3 square")

    @classmethod
    def custom(cls, m: int, n: int, k: int, trans_a: bool = False, trans_b: bool = False) -> GemmCase:
        name = f"{m}x{n}x{k}" + ("-tA" if trans_a else "") + ("-tB" if trans_b else "")
        return cls(name, m, n, k, trans_a, trans_b)


# The four GEMMs of one training step of a 784 -> 512 -> 10 MLP at batch 128, with
# weights stored (out, in) as in torch.nn.Linear, read in the layout the layer uses:
# forward Y = X @ W.T (B transposed), input gradient dX = dY @ W, weight gradient
# dW = dY.T @ X (A transposed). fc2's backward GEMMs are tiny and left out.
MLP_CASES = (
    GemmCase("mlp-fc1-fwd", 128, 512, 784, trans_b=True, group="mlp",
             description="fc1 forward: X (128,784) @ W1.T, W1 (512,784)"),
    GemmCase("mlp-fc1-dx", 128, 784, 512, group="mlp",
             description="fc1 input gradient: dH (128,512) @ W1 (512,784)"),
    GemmCase("mlp-fc1-dw", 512, 784, 128, trans_a=True, group="mlp",
             description="fc1 weight gradient: dH.T @ X, dH (128,512), X (128,784)"),
    GemmCase("mlp-fc2-fwd", 128, 10, 512, trans_b=True, group="mlp",
             description="fc2 forward: H (128,512) @ W2.T, W2 (10,512)"),
)

CASES = tuple(GemmCase.square(s) for s in SQUARE_SIZES) + MLP_CASES
CASES_BY_NAME = {c.name: c for c in CASES}


def parse_cases(spec: str) -> list[GemmCase]:
    """Cases from a comma-separated spec: a square size ('512'), a case name
    ('mlp-fc1-fwd'), 'square' (all squares), 'mlp' (all MLP cases), 'all', or
    'MxNxK' with optional ':tA' / ':tB' / ':tAtB' (e.g. '1000x1000x1000:tB').
    Raises ValueError naming the bad item."""
    cases: list[GemmCase] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "all":
            cases.extend(CASES)
        elif item == "square":
            cases.extend(GemmCase.square(s) for s in SQUARE_SIZES)
        elif item == "mlp":
            cases.extend(MLP_CASES)
        elif item in CASES_BY_NAME:
            cases.append(CASES_BY_NAME[item])
        elif item.isdigit() and int(item) > 0:
            cases.append(GemmCase.square(int(item)))
        else:
            match = re.fullmatch(r"(\d+)x(\d+)x(\d+)(?::(tA)?(tB)?)?", item)
            if match is None or min(int(g) for g in match.groups()[:3]) < 1:
                raise ValueError(
                    f"sizes: cannot read {item!r}; expected a square size (512), MxNxK "
                    f"(128x512x784, optionally :tA, :tB or :tAtB), a case name, 'square', 'mlp' or 'all'"
                )
            m, n, k = (int(g) for g in match.groups()[:3])
            cases.append(GemmCase.custom(m, n, k, bool(match.group(4)), bool(match.group(5))))
    # Keep the first occurrence of each case, in order.
    return list(dict.fromkeys(cases))


@dataclass
class GemmInputs:
    """Random inputs of a case, stored as the kernels read them, and one output buffer.

    a is (k, m) when case.trans_a else (m, k); b is (n, k) when case.trans_b else (k, n);
    out is (m, n). Uniform in [-1, 1), float32, from a fixed seed.
    """

    case: GemmCase
    a: np.ndarray
    b: np.ndarray
    out: np.ndarray
    _oracle: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def op_a(self) -> np.ndarray:
        return self.a.T if self.case.trans_a else self.a

    @property
    def op_b(self) -> np.ndarray:
        return self.b.T if self.case.trans_b else self.b

    def oracle(self) -> tuple[np.ndarray, np.ndarray]:
        """(op(A) @ op(B), |op(A)| @ |op(B)|) in float64, computed once."""
        if self._oracle is None:
            a64 = self.op_a.astype(np.float64)
            b64 = self.op_b.astype(np.float64)
            self._oracle = (a64 @ b64, np.abs(a64) @ np.abs(b64))
        return self._oracle


def make_inputs(case: GemmCase, seed: int = 0) -> GemmInputs:
    rng = np.random.default_rng(seed)
    a_shape = (case.k, case.m) if case.trans_a else (case.m, case.k)
    b_shape = (case.n, case.k) if case.trans_b else (case.k, case.n)
    a = rng.uniform(-1.0, 1.0, a_shape).astype(np.float32)
    b = rng.uniform(-1.0, 1.0, b_shape).astype(np.float32)
    return GemmInputs(case, a, b, np.empty((case.m, case.n), dtype=np.float32))


class GemmMismatch(AssertionError):
    """A backend's result differs from the float64 oracle by more than the tolerance."""


def check_result(inputs: GemmInputs, result: np.ndarray | None = None, what: str = "result") -> float:
    """Compare ``result`` (default inputs.out) with the float64 oracle; return the largest
    error as a fraction of its tolerance (<= 1 passes), or raise GemmMismatch."""
    case = inputs.case
    result = inputs.out if result is None else result
    expected, magnitude = inputs.oracle()
    tol = 4.0 * math.sqrt(max(case.k, 1)) * _EPS32 * magnitude + 1e-30
    err = np.abs(result.astype(np.float64) - expected)
    ratio = err / tol
    worst = np.unravel_index(np.argmax(np.where(np.isnan(ratio), np.inf, ratio)), ratio.shape)
    worst_ratio = float(ratio[worst]) if not np.isnan(ratio[worst]) else math.inf
    if not worst_ratio <= 1.0:
        bad = int(np.count_nonzero(~(err <= tol)))
        raise GemmMismatch(
            f"{what} for {case.name} ({case.shape}): {bad} of {err.size} elements off; worst at "
            f"{tuple(int(i) for i in worst)}: got {float(result[worst])!r}, expected "
            f"{float(expected[worst])!r} (error {float(err[worst]):.3g} > tolerance {float(tol[worst]):.3g})"
        )
    return worst_ratio


# --- threads ---------------------------------------------------------------------------

def _threadpoolctl():
    try:
        import threadpoolctl  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return threadpoolctl


def env_blas_threads() -> int | None:
    """The BLAS thread count fixed by the environment at NumPy's import, if any."""
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(var, "").split(",")[0].strip()
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
    return None


def blas_threads_controllable() -> bool:
    """Whether NumPy's BLAS threads can be changed at run time (threadpoolctl installed
    and a BLAS library found). Otherwise only OPENBLAS_NUM_THREADS at start-up sets them."""
    tpc = _threadpoolctl()
    return tpc is not None and any(i.get("user_api") == "blas" for i in tpc.threadpool_info())


def blas_info() -> str:
    """One line describing NumPy's BLAS (library, version, threads) for a report."""
    tpc = _threadpoolctl()
    if tpc is None:
        env = env_blas_threads()
        threads_note = f"{env} threads from the environment" if env else "default threads"
        return f"numpy {np.__version__}, BLAS threads not controllable (no threadpoolctl); {threads_note}"
    libs = [i for i in tpc.threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return f"numpy {np.__version__}, no BLAS library found by threadpoolctl"
    parts = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}, "
        f"{i.get('threading_layer', '?')}, {i.get('num_threads')} threads)"
        for i in libs
    ]
    return f"numpy {np.__version__}, BLAS: " + "; ".join(parts)


@contextlib.contextmanager
def threads(n: int) -> Iterator[int | None]:
    """Run fastlayers and NumPy's BLAS with ``n`` threads inside the block; restore after.

    Yields the number of threads NumPy's BLAS will use: ``n`` when threadpoolctl could
    set it, else the count fixed by OPENBLAS_NUM_THREADS / OMP_NUM_THREADS at start-up,
    or None when unknown. Compare it with ``n`` before reporting a NumPy time.
    """
    previous = get_num_threads()
    set_num_threads(n)
    try:
        tpc = _threadpoolctl()
        if tpc is not None and blas_threads_controllable():
            with tpc.threadpool_limits(limits=n, user_api="blas"):
                yield n
        else:
            yield env_blas_threads()
    finally:
        set_num_threads(previous)
