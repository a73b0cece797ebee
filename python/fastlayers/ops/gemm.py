"""GEMM: C = alpha * op(A) @ op(B) + beta * C on float32 arrays."""

from __future__ import annotations

import numpy as np

__all__ = ["gemm", "matmul"]

from fastlayers import _cpu
from fastlayers import reference as _ref
from fastlayers.ops._device import device_of
from fastlayers.ops._checks import (
    check_array,
    check_backend,
    check_flag,
    check_out,
    check_scalar,
    readable_strides,
)


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None, backend=None):
    """C = alpha * op(a) @ op(b) + beta * out — the BLAS sgemm contract.

    a, b: float32 2-D arrays, any strides (transposed or sliced views are read in place,
    without a copy). op(x) is x.T when ``trans_x`` else x; op(a) is (m, k), op(b) (k, n).
    out: optional float32 C-contiguous (m, n) array; written in place and returned. When
    beta == 0 its old contents are never read (NaN in it does not leak); a nonzero beta
    needs ``out``. Sizes of 0 are valid: k == 0 gives beta * out (zeros when beta == 0).
    backend: None or "cpu" for the C++ kernel, "reference" for the NumPy reference.
    Other dtypes raise TypeError (convert with ``x.astype(np.float32)``).
    CuPy arrays run the CUDA kernel on the current stream (non-contiguous views are copied
    first) and give a CuPy array.
    """
    a = check_array(a, "a", ndim=2, device=True)
    b = check_array(b, "b", ndim=2, device=True)
    dev = device_of(a=a, b=b, out=out)
    trans_a = check_flag(trans_a, "trans_a")
    trans_b = check_flag(trans_b, "trans_b")
    alpha = check_scalar(alpha, "alpha")
    beta = check_scalar(beta, "beta")
    backend = check_backend(backend)
    if backend == "reference" and not dev.is_cpu:
        raise TypeError(f"backend: 'reference' runs on numpy arrays, got arrays on {dev.name}")

    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if kb != k:
        what = "b.T" if trans_b else "b"
        raise ValueError(
            f"b: inner dimensions do not match: op(a) is ({m}, {k}) so {what} must have {k} rows, "
            f"got op(b) of shape ({kb}, {n})"
        )
    if out is None:
        if beta != 0.0:
            raise ValueError(f"out: beta={beta} needs an out array to scale (or use beta=0)")
        out = dev.empty((m, n))
    else:
        out = check_out(out, "out", (m, n), device=not dev.is_cpu)
        # The kernel writes C while it still reads A and B: inputs that share memory
        # with out are copied first.
        if dev.may_share_memory(a, out):
            a = dev.copy(a)
        if dev.may_share_memory(b, out):
            b = dev.copy(b)

    if backend == "reference":
        out[...] = _ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=out)
        return out
    if dev.is_cpu:
        _cpu.gemm(out, readable_strides(a), readable_strides(b), trans_a, trans_b, alpha, beta)
    else:
        dev.run("gemm", out, dev.contiguous(a), dev.contiguous(b), trans_a, trans_b, alpha, beta)
    return out


def matmul(a, b, *, backend=None):
    """a @ b for float32 2-D arrays (gemm with alpha=1, beta=0)."""
    return gemm(a, b, backend=backend)
