"""Argument validation shared by every op at the Python boundary.

Policy (the same for every op):
- Arrays must be ``numpy.ndarray`` of dtype float32. Other dtypes are refused with a
  TypeError rather than converted: a silent float64 -> float32 copy would hide both a
  precision change and a full extra pass over memory. Convert with ``x.astype(np.float32)``.
- Inputs may be any strided view (transposed, sliced, negative strides); an op either
  reads the strides directly or makes one contiguous copy. Outputs passed as ``out=``
  must be C-contiguous, writeable, of the exact shape and dtype.
- Messages name the argument and give the expected and the actual value.
"""

from __future__ import annotations

import numbers

import numpy as np

from fastlayers.ops._device import is_device_array

BACKENDS = ("cpu", "reference")


def check_array(x, name: str, *, ndim: int | None = None, min_ndim: int | None = None,
                device: bool = False) -> np.ndarray:
    """A float32 array of the given rank, or a TypeError/ValueError naming ``name``.
    ``device=True``: a GPU array (``__cuda_array_interface__``) is accepted too, for the
    ops that have CUDA kernels (see fastlayers.ops._device)."""
    if not isinstance(x, np.ndarray):
        if is_device_array(x):
            if not device:
                raise TypeError(f"{name}: this op has no CUDA kernel in this build of fastlayers; "
                                f"pass a numpy.ndarray")
        else:
            raise TypeError(f"{name}: expected a numpy.ndarray of dtype float32, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(
            f"{name}: expected dtype float32, got {x.dtype} (convert with {name}.astype(np.float32))"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {x.shape}")
    return x


def readable_strides(x: np.ndarray) -> np.ndarray:
    """x itself when its strides are whole float32 elements, else a C-contiguous copy."""
    for s in x.strides:
        if s % 4:
            return np.ascontiguousarray(x)
    return x


def check_out(out, name: str, shape: tuple[int, ...], device: bool = False) -> np.ndarray:
    """Validate an ``out=`` array: float32 ndarray (or GPU array when ``device``), exact
    shape, C-contiguous, writeable."""
    out = check_array(out, name, device=device)
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array (got strides {out.strides})")
    if not getattr(out.flags, "writeable", True):
        raise ValueError(f"{name}: array is read-only")
    return out


def check_scalar(x, name: str) -> float:
    """A real Python/NumPy number (not a bool) as a float."""
    if type(x) is not float and (isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real)):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    try:
        return float(x)
    except OverflowError:
        raise ValueError(f"{name}: {x} is too large for a float") from None


def check_flag(x, name: str) -> bool:
    if x is True or x is False:
        return x
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(x).__name__}")
    return bool(x)


def check_backend(backend) -> str:
    """Resolve ``backend``: None means the arrays' own device (the CPU for NumPy)."""
    if backend is None:
        return "cpu"
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS} or None, got {backend!r}")
    return backend
