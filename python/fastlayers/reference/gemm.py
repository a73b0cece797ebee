"""Reference GEMM: the BLAS sgemm contract, written as a sum of rank-1 updates."""

from __future__ import annotations

import numpy as np

__all__ = ["gemm", "matmul"]


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """C = alpha * op(A) @ op(B) + beta * C, with op(X) = X.T when trans_x else X.

    op(A) is (m, k) and op(B) is (k, n); C is (m, n). Literally

        C[i, j] = alpha * sum_p op(A)[i, p] * op(B)[p, j] + beta * C[i, j]

    computed as k rank-1 updates. As in BLAS, when beta == 0 C's old contents are
    ignored (NaN in ``out`` does not propagate), and when alpha == 0 A and B are not
    read (NaN/Inf in them does not propagate). The result is returned in a new array of
    the inputs' dtype; ``out`` is only read (for the beta term), never written.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    m, k = opa.shape
    k2, n = opb.shape
    if k != k2:
        raise ValueError(f"b: op(b) has {k2} rows, expected {k} to match op(a)")
    dtype = np.result_type(a.dtype, b.dtype)
    acc = np.zeros((m, n), dtype=dtype)
    for p in range(k if alpha != 0.0 else 0):
        acc += np.multiply.outer(opa[:, p], opb[p, :])
    result = dtype.type(alpha) * acc
    if beta != 0.0:
        if out is None:
            raise ValueError("out: required when beta != 0")
        result = result + dtype.type(beta) * np.asarray(out, dtype=dtype)
    return result


def matmul(a, b):
    """A @ B for 2-D arrays (gemm with alpha=1, beta=0)."""
    return gemm(a, b)
