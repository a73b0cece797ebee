"""What a benchmark case is made of, and how a backend gets its inputs and runs it.

One :class:`Case` is one operation at one size (``conv2d/vgg_3x3-bwd-weight``). It holds

- ``make_inputs()``: a tuple of NumPy arrays and scalars from a fixed seed;
- one *formulation* per kind of implementation, each a factory that receives its own
  copy of the inputs (already on its device) and returns a zero-argument callable
  computing the case once:

  ========== ======================================= ======================================
  formulation signature                               backends it serves
  ========== ======================================= ======================================
  ``fl``     ``fl(inputs, backend)``, backend None     ``fastlayers`` (None), ``reference``
             or "reference" (fastlayers.ops)            ("reference"), ``cuda`` (None, on
                                                        CuPy arrays)
  ``np``     ``np(xp, inputs)``, xp = numpy or cupy    ``numpy``, ``cupy``
  ``torch``  ``torch(torch, inputs, device)``,         ``torch`` ("cpu"), ``torch-cuda``
             inputs as tensors                          ("cuda")
  ========== ======================================= ======================================

- ``expected(inputs)``: the float64 oracle of the result; ``view(result)`` picks the
  part of a backend's result that the oracle covers (a few images of a big batch);
  ``compare(got, expected, what)`` raises :class:`Mismatch` (default: :func:`allclose`
  with the case's ``rtol``).
- ``flops`` (work per call, for GFLOP/s) or else ``nbytes`` (minimum memory traffic per
  call, for GB/s).

Every backend gets a fresh copy of the inputs, so in-place cases (optimiser steps) start
from the same state everywhere. GPU runners synchronise the device after each call, so
a timed call includes the kernel, not just its launch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from fastlayers.ops._device import cuda_unavailable, cupy_unavailable, move

__all__ = [
    "ALL_BACKENDS",
    "CPU_BACKENDS",
    "CUDA_FAMILIES",
    "Case",
    "GPU_BACKENDS",
    "Mismatch",
    "Unavailable",
    "allclose",
    "backend_status",
    "prepare",
    "to_numpy",
    "unavailable",
    "validate",
]

CPU_BACKENDS = ("fastlayers", "numpy", "reference", "torch")
GPU_BACKENDS = ("cuda", "cupy", "torch-cuda")
ALL_BACKENDS = CPU_BACKENDS + GPU_BACKENDS

# Families whose fastlayers.ops functions run CUDA kernels on CuPy arrays (all of them
# now); the "cuda" backend is skipped for any family missing here.
CUDA_FAMILIES: frozenset[str] = frozenset(
    {"gemm", "conv2d", "pool", "activation", "loss", "norm", "linear", "optim", "train"})


class Mismatch(AssertionError):
    """A backend's result differs from the reference beyond the tolerance."""


class Unavailable(Exception):
    """This backend cannot run here (peer not installed, no GPU): the case is skipped."""


@dataclass
class Case:
    """One benchmark case; see the module docstring."""

    family: str
    name: str
    shape: str
    make_inputs: Callable[[], tuple]
    expected: Callable[[tuple], Any]
    fl: Callable[[tuple, str | None], Callable[[], Any]] | None = None
    np: Callable[[Any, tuple], Callable[[], Any]] | None = None
    torch: Callable[[Any, tuple, str], Callable[[], Any]] | None = None
    flops: float = 0.0
    nbytes: float = 0.0
    quick: bool = False
    rtol: float = 1e-4
    view: Callable[[Any], Any] = field(default=lambda result: result)
    compare: Callable[[Any, Any, str], None] | None = None
    reference: bool = True  # False where the NumPy reference is too slow to time
    cpu: bool = True  # False: a size meant for GPUs only

    @property
    def id(self) -> str:
        """'family/name', what --filter searches."""
        return f"{self.family}/{self.name}"

    @property
    def rate_unit(self) -> str:
        return "GFLOP/s" if self.flops else "GB/s"

    def formulation(self, backend: str):
        """The factory serving ``backend``, or None when the case has no such formulation."""
        if backend in ("fastlayers", "cuda"):
            return self.fl
        if backend == "reference":
            return self.fl if self.reference else None
        if backend in ("numpy", "cupy"):
            return self.np
        if backend in ("torch", "torch-cuda"):
            return self.torch
        raise ValueError(f"backend: expected one of {ALL_BACKENDS}, got {backend!r}")

    def check(self, result, expected) -> None:
        """Compare a backend's result (on the host) with ``expected(inputs)``; raise Mismatch."""
        compare = self.compare or functools.partial(allclose, rtol=self.rtol)
        compare(self.view(result), expected, self.id)


# --- comparing results -----------------------------------------------------------------

def allclose(got, expected, what: str, rtol: float = 1e-4) -> None:
    """``|got - expected| <= rtol * (|expected| + max|expected|)`` element-wise, over
    arrays or tuples of arrays; raise Mismatch naming the first offending element."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            raise Mismatch(f"{what}: expected {len(expected)} results, got {type(got).__name__}")
        for i, (g, e) in enumerate(zip(got, expected)):
            allclose(g, e, f"{what} result {i}", rtol)
        return
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise Mismatch(f"{what}: shape {got.shape}, expected {expected.shape}")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    err = np.abs(got - expected)
    tol = rtol * (np.abs(expected) + max(scale, 1e-30))
    bad = ~(err <= tol)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), err.shape) if err.ndim else ()
        raise Mismatch(f"{what}: {int(bad.sum())} of {err.size} elements off; e.g. at {tuple(int(j) for j in i)} "
                       f"got {float(got[i])!r}, expected {float(expected[i])!r}")


# --- backends: availability, device transfers ------------------------------------------

def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


@functools.lru_cache(maxsize=None)
def backend_status(backend: str) -> str | None:
    """None when ``backend`` can run in this process, else why not (a skip reason)."""
    if backend in ("fastlayers", "numpy", "reference"):
        return None
    if backend in ("torch", "torch-cuda"):
        torch = _import("torch")
        if torch is None:
            return "torch not installed"
        if backend == "torch-cuda":
            if not torch.cuda.is_available():
                return "torch has no usable CUDA device"
            fp32_only(torch)
        return None
    if backend == "cupy":
        return cupy_unavailable()
    if backend == "cuda":
        return cuda_unavailable()
    raise ValueError(f"backend: expected one of {ALL_BACKENDS}, got {backend!r}")


def fp32_only(torch) -> None:
    """Make torch compute in FP32 on the GPU, as fastlayers and CuPy do.

    cuDNN convolutions default to TF32 tensor cores on Ampere and later (10-bit mantissa
    products): faster, and not the arithmetic being compared (nor within the float32
    tolerances the results are validated with). CuPy uses TF32 only when CUPY_TF32=1,
    which the header reports."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _map(fn, tree):
    if isinstance(tree, tuple):
        return tuple(_map(fn, t) for t in tree)
    if isinstance(tree, list):
        return [_map(fn, t) for t in tree]
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    return fn(tree)


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def _to_device(backend: str, inputs: tuple) -> tuple:
    """Each backend's own copy of the inputs, on its device, as its library's arrays."""
    if backend in ("cupy", "cuda"):
        return _map(lambda a: move(a, "cuda") if isinstance(a, np.ndarray) else a, inputs)
    if backend in ("torch", "torch-cuda"):
        import torch  # noqa: PLC0415

        device = "cuda" if backend == "torch-cuda" else "cpu"
        return _map(lambda a: torch.from_numpy(a.copy()).to(device) if isinstance(a, np.ndarray) else a, inputs)
    return _map(_copy, inputs)


def to_numpy(result):
    """A backend's result on the host as NumPy arrays (tuples kept, scalars as float64)."""
    def one(r):
        if r is None or isinstance(r, np.ndarray):
            return r
        if hasattr(r, "detach"):  # torch.Tensor
            return r.detach().cpu().numpy()
        if hasattr(r, "__cuda_array_interface__"):
            return r.get()
        if isinstance(r, (int, float, np.generic)):
            return np.float64(r)
        return np.asarray(r)

    return _map(one, result)


def _synchronizer(backend: str) -> Callable[[], None] | None:
    if backend in ("cupy", "cuda"):
        import cupy  # noqa: PLC0415

        return lambda: cupy.cuda.get_current_stream().synchronize()
    if backend == "torch-cuda":
        import torch  # noqa: PLC0415

        return torch.cuda.synchronize
    return None


def unavailable(case: Case, backend: str) -> str | None:
    """Why ``backend`` cannot run ``case`` here (a skip reason), or None."""
    if case.formulation(backend) is None:
        return f"no {backend} formulation of this case"
    if not case.cpu and backend not in GPU_BACKENDS:
        return "a size for GPUs only"
    why = backend_status(backend)
    if why is not None:
        return why
    if backend == "cuda" and case.family not in CUDA_FAMILIES:
        return f"no fastlayers CUDA kernel for {case.family} yet"
    return None


def prepare(case: Case, backend: str, inputs: tuple) -> Callable[[], Any]:
    """A callable computing ``case`` once with ``backend``, on its own copy of ``inputs``.

    Raises Unavailable when the backend cannot run the case here (the reason says why).
    The callable returns the backend's result (device arrays for GPU backends) and, on a
    GPU, waits for the device before it returns.
    """
    why = unavailable(case, backend)
    if why is not None:
        raise Unavailable(why)
    factory = case.formulation(backend)
    own = _to_device(backend, inputs)
    if backend in ("fastlayers", "cuda"):
        run = factory(own, None)
    elif backend == "reference":
        run = factory(own, "reference")
    elif backend in ("numpy", "cupy"):
        run = factory(np if backend == "numpy" else _import("cupy"), own)
    else:
        run = factory(_import("torch"), own, "cuda" if backend == "torch-cuda" else "cpu")
    sync = _synchronizer(backend)
    if sync is None:
        return run

    def synced():
        r = run()
        sync()
        return r

    return synced


def validate(case: Case, run: Callable[[], Any], expected) -> None:
    """Run once and compare the result with ``expected = case.expected(inputs)`` (raises
    Mismatch). The call also warms the backend up."""
    case.check(to_numpy(run()), expected)


def conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def geomean(values) -> float:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan
