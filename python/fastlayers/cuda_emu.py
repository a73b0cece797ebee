"""Device arrays and settings of the CUDA emulator (``fastlayers._cuda_emu``), for tests.

``fastlayers._cuda_emu`` is the CUDA module compiled by the host compiler against an
emulator of the CUDA execution model: the same kernels, run on the CPU, one block at a
time, each CUDA thread a fiber. Its bindings take device arrays exactly as ``_cuda`` takes
CuPy arrays; :class:`EmuArray` is such an array, living in emulated device memory.

>>> import numpy as np
>>> from fastlayers import cuda_emu
>>> x = cuda_emu.asarray(np.arange(4, dtype=np.float32))
>>> x.shape, x.dtype, x.get()
((4,), dtype('float32'), array([0., 1., 2., 3.], dtype=float32))
>>> with cuda_emu.schedule("greedy"):
...     pass  # launches in here resume the lowest runnable thread first

New allocations are filled with 0xFF bytes (NaN as float32) so that reads of memory a
kernel never wrote show up; ``empty`` keeps that fill, ``zeros`` clears it.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from typing import Iterator

import numpy as np

from fastlayers import _cuda_emu

__all__ = [
    "SCHEDULES",
    "EmuArray",
    "asarray",
    "ascontiguousarray",
    "check_writers",
    "empty",
    "engine",
    "live_allocations",
    "schedule",
    "set_engine",
    "zeros",
]

#: Thread schedules of the fiber engine. "round-robin" (the default): after a thread
#: blocks, the next runnable thread in ascending order resumes; "greedy": the lowest
#: runnable thread resumes, so low threads run ahead; "ascending": the same order as
#: "round-robin"; "descending": round-robin from the highest thread down; "random": a
#: seeded random runnable thread (per block).
SCHEDULES: tuple[str, ...] = tuple(_cuda_emu.schedules())


class _Allocation:
    """One emulated device allocation, freed when the last array using it goes away."""

    __slots__ = ("ptr", "nbytes", "__weakref__")

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = _cuda_emu.malloc(nbytes)
        weakref.finalize(self, _cuda_emu.free, self.ptr)


class _Flags:
    """What ``x.flags`` tells fastlayers.ops about an EmuArray: always C-contiguous and
    writeable (there are no strided EmuArray views)."""

    c_contiguous = True
    writeable = True


class EmuArray:
    """A C-contiguous array in emulated device memory, with ``__cuda_array_interface__``.

    Create one with :func:`asarray`, :func:`empty` or :func:`zeros`; read it back with
    :meth:`get`. The memory is freed when the array (and every view of it) is garbage.
    """

    __slots__ = ("_alloc", "_offset", "shape", "dtype", "__weakref__")

    def __init__(self, shape, dtype=np.float32, *, _alloc: _Allocation | None = None, _offset: int = 0) -> None:
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"shape: expected non-negative dimensions, got {shape}")
        self.shape: tuple[int, ...] = shape
        self.dtype: np.dtype = np.dtype(dtype)
        if _alloc is None:
            _alloc = _Allocation(self.nbytes)
        self._alloc = _alloc
        self._offset = _offset

    # --- construction -----------------------------------------------------------------
    @classmethod
    def asarray(cls, a) -> "EmuArray":
        """A device copy of a numpy array (or anything ``np.asarray`` accepts)."""
        host = np.asarray(a, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        out = cls(host.shape, host.dtype)
        if host.nbytes:
            _cuda_emu.memcpy_htod(out.ptr, host)
        return out

    @classmethod
    def empty(cls, shape, dtype=np.float32) -> "EmuArray":
        """An uninitialised array: every byte 0xFF (NaN as float32, -1 as int)."""
        return cls(shape, dtype)

    @classmethod
    def zeros(cls, shape, dtype=np.float32) -> "EmuArray":
        out = cls(shape, dtype)
        if out.nbytes:
            _cuda_emu.memset(out.ptr, 0, out.nbytes)
        return out

    # --- properties -------------------------------------------------------------------
    @property
    def ptr(self) -> int:
        """The device pointer of the first element."""
        return self._alloc.ptr + self._offset

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    flags = _Flags()

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(int(np.prod(self.shape[i + 1:], dtype=np.int64)) * self.dtype.itemsize
                     for i in range(self.ndim))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def __cuda_array_interface__(self) -> dict:
        return {
            "version": 3,
            "shape": self.shape,
            "typestr": self.dtype.str,
            "data": (self.ptr, False),
            "strides": None,
        }

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d EmuArray")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"EmuArray(shape={self.shape}, dtype={self.dtype}, ptr=0x{self.ptr:x})"

    # --- data -------------------------------------------------------------------------
    def get(self) -> np.ndarray:
        """A numpy copy of the contents (as ``cupy.ndarray.get``)."""
        host = np.empty(self.shape, self.dtype)
        if host.nbytes:
            _cuda_emu.memcpy_dtoh(host, self.ptr)
        return host

    def item(self):
        """The one element as a Python scalar (as ``cupy.ndarray.item``)."""
        if self.size != 1:
            raise ValueError(f"item: expected an array of one element, got shape {self.shape}")
        return self.get().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def set(self, a) -> None:
        """Copy a numpy array of the same shape into this array."""
        host = np.ascontiguousarray(a, dtype=self.dtype)
        if host.shape != self.shape:
            raise ValueError(f"a: expected shape {self.shape}, got {host.shape}")
        if host.nbytes:
            _cuda_emu.memcpy_htod(self.ptr, host)

    def reshape(self, *shape) -> "EmuArray":
        """A view of the same memory with another shape (one dimension may be -1)."""
        if len(shape) == 1 and not np.isscalar(shape[0]):
            shape = tuple(shape[0])
        shape = np.empty(self.size, dtype=np.uint8)[: self.size].reshape(shape).shape  # numpy's rules
        return EmuArray(shape, self.dtype, _alloc=self._alloc, _offset=self._offset)

    def copy(self) -> "EmuArray":
        return EmuArray.asarray(self.get())


def ascontiguousarray(a) -> EmuArray:
    """An EmuArray is always C-contiguous: ``a`` itself (a numpy array is copied over)."""
    return asarray(a)


def asarray(a) -> EmuArray:
    """A device copy of a numpy array (an EmuArray is returned as is)."""
    if isinstance(a, EmuArray):
        return a
    return EmuArray.asarray(a)


def empty(shape, dtype=np.float32) -> EmuArray:
    """An uninitialised device array (every byte 0xFF: NaN as float32)."""
    return EmuArray.empty(shape, dtype)


def zeros(shape, dtype=np.float32) -> EmuArray:
    """A zero-filled device array."""
    return EmuArray.zeros(shape, dtype)


@contextlib.contextmanager
def schedule(name: str, seed: int = 0) -> Iterator[None]:
    """Run the launches of the ``with`` body under thread schedule ``name`` (see SCHEDULES)."""
    if name not in SCHEDULES:
        raise ValueError(f"name: expected one of {', '.join(SCHEDULES)}, got {name!r}")
    previous = _cuda_emu.schedule()
    _cuda_emu.set_schedule(name, seed)
    try:
        yield
    finally:
        _cuda_emu.set_schedule(*previous)


@contextlib.contextmanager
def check_writers(on: bool) -> Iterator[None]:
    """Run the ``with`` body with the one-writer check on or off (it is on by default: a
    byte written by two blocks of one launch, not by atomics, fails the launch)."""
    previous = _cuda_emu.set_check_writers(bool(on))
    try:
        yield
    finally:
        _cuda_emu.set_check_writers(previous)


def set_engine(name: str) -> None:
    """'fibers' (default) or 'threads' (one OS thread per CUDA thread, for ThreadSanitizer)."""
    _cuda_emu.set_engine(name)


def engine() -> str:
    return _cuda_emu.engine()


def live_allocations() -> list[tuple[int, int]]:
    """(pointer, bytes) of every live emulated allocation: a leak check for tests."""
    return _cuda_emu.live_allocations()
