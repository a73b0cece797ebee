"""Where an op runs: the backend follows the arrays.

- ``numpy.ndarray``: the CPU, ``fastlayers._cpu``.
- an object with ``__cuda_array_interface__`` (a CuPy array, or anything else that hands
  out device pointers): the GPU, ``fastlayers._cuda``, on CuPy's current stream; outputs
  are allocated with CuPy.
- ``fastlayers.cuda_emu.EmuArray``: the same CUDA kernels compiled for the CPU emulator of
  the CUDA execution model, ``fastlayers._cuda_emu`` (what the tests use where there is no
  GPU); outputs are EmuArrays.

The kernel modules share function names and argument order (outputs first); the GPU
ones take the stream as a last argument. An op calls ``dev.run("<kernel>", *args)``
and allocates with ``dev.empty``. Mixing devices in one call is a TypeError naming the
arguments. A family without CUDA kernels refuses device arrays with a TypeError.
"""

from __future__ import annotations

import importlib

import numpy as np

__all__ = ["CPU", "DEVICES", "Device", "cuda_unavailable", "cupy_unavailable", "device_of", "is_device_array",
           "move", "placement"]


def cupy_unavailable() -> str | None:
    """Why CuPy cannot run here (not installed, no GPU), or None."""
    try:
        import cupy  # noqa: PLC0415 - optional
    except ImportError:
        return "cupy not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "cupy sees no GPU"
    except Exception as e:  # CUDARuntimeError without a driver
        return f"cupy sees no GPU: {e}"
    return None


def cuda_unavailable() -> str | None:
    """Why fastlayers' CUDA kernels cannot run here (no cupy, no GPU, a build without
    CUDA), or None: what Module.to("cuda"), `fastlayers train --device cuda` and the
    bench's cuda backend check first."""
    why = cupy_unavailable()
    if why is not None:
        return why
    import fastlayers  # noqa: PLC0415

    cuda = fastlayers.info()["cuda"]
    if not cuda["built"]:
        return "fastlayers was built without CUDA"
    if not cuda["gpu_usable"]:
        return f"fastlayers CUDA: {cuda['reason']}"
    return None


def is_device_array(x) -> bool:
    return hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray)


class Device:
    """One place arrays live, its kernel module and how to allocate there."""

    def __init__(self, name: str, module: str, xp_name: str | None):
        self.name = name
        self._module_name = module
        self._xp_name = xp_name
        self._kernels = None
        self._xp = None

    def __repr__(self):
        return f"<fastlayers device {self.name}>"

    @property
    def is_cpu(self) -> bool:
        return self.name == "cpu"

    @property
    def kernels(self):
        if self._kernels is None:
            try:
                self._kernels = importlib.import_module(self._module_name)
            except ImportError as e:
                raise TypeError(f"GPU arrays need the CUDA module {self._module_name}, which this build of "
                                f"fastlayers lacks ({e})") from None
        return self._kernels

    @property
    def xp(self):
        """numpy, cupy or fastlayers.cuda_emu: empty/zeros/ascontiguousarray for this device."""
        if self._xp is None:
            if self._xp_name is None:
                self._xp = np
            else:
                try:
                    self._xp = importlib.import_module(self._xp_name)
                except ImportError:
                    raise TypeError(f"GPU arrays need {self._xp_name} to allocate outputs: "
                                    'pip install "fastlayers[cuda]"') from None
        return self._xp

    def empty(self, shape, dtype=np.float32):
        return self.xp.empty(_shape(shape), dtype=dtype)

    def zeros(self, shape, dtype=np.float32):
        return self.xp.zeros(_shape(shape), dtype=dtype)

    def contiguous(self, x):
        return x if x.flags.c_contiguous else self.xp.ascontiguousarray(x)

    def may_share_memory(self, a, b) -> bool:
        """Whether a and b may overlap (by address range on a GPU)."""
        if self.is_cpu:
            return bool(np.may_share_memory(a, b))
        return _overlap(a, b)

    def copy(self, x):
        """A C-contiguous copy of x on this device."""
        return np.array(x, order="C", copy=True) if self.is_cpu else self.xp.ascontiguousarray(x).copy()

    def has(self, kernel: str) -> bool:
        return hasattr(self.kernels, kernel)

    def run(self, kernel: str, *args):
        """Call the kernel binding ``kernel``; on a GPU on the current stream."""
        fn = getattr(self.kernels, kernel, None)
        if fn is None:
            raise TypeError(f"{kernel}: no {self.name} kernel in this build of fastlayers; pass numpy arrays")
        if self.name == "cuda":
            return fn(*args, self.xp.cuda.get_current_stream().ptr)
        return fn(*args)


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)


def _span(x) -> tuple[int, int]:
    cai = x.__cuda_array_interface__
    start = int(cai["data"][0])
    return start, start + int(np.prod(cai["shape"], dtype=np.int64)) * np.dtype(cai["typestr"]).itemsize


def _overlap(a, b) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1 and a1 > a0 and b1 > b0


CPU = Device("cpu", "fastlayers._cpu", None)
CUDA = Device("cuda", "fastlayers._cuda", "cupy")
CUDA_EMU = Device("cuda-emu", "fastlayers._cuda_emu", "fastlayers.cuda_emu")


def _device(x) -> Device:
    if isinstance(x, np.ndarray):
        return CPU
    if type(x).__name__ == "EmuArray" and type(x).__module__ == "fastlayers.cuda_emu":
        return CUDA_EMU
    return CUDA


def device_of(**arrays) -> Device:
    """The device of the given named arrays (None values are skipped); TypeError when they
    are on different devices, naming two of them."""
    found: dict[str, tuple[str, Device]] = {}
    for name, x in arrays.items():
        if x is None:
            continue
        dev = _device(x) if (isinstance(x, np.ndarray) or is_device_array(x)) else CPU
        found.setdefault(dev.name, (name, dev))
    if len(found) > 1:
        (n1, d1), (n2, d2) = list(found.values())[:2]
        raise TypeError(f"{n2}: is on {d2.name} but {n1} is on {d1.name}; pass arrays of one device "
                        "(move with cupy.asarray / .get())")
    return next(iter(found.values()))[1] if found else CPU


def placement(backend, **arrays) -> tuple[Device, str]:
    """(device of the arrays, checked backend name); TypeError for the NumPy reference on
    GPU arrays."""
    from fastlayers.ops._checks import check_backend  # noqa: PLC0415 - _checks is the lower layer

    backend = check_backend(backend)
    dev = device_of(**arrays)
    if backend == "reference" and not dev.is_cpu:
        raise TypeError(f"backend: 'reference' runs on numpy arrays, got arrays on {dev.name}")
    return dev, backend


DEVICES = {"cpu": CPU, "cuda": CUDA, "cuda-emu": CUDA_EMU}


def move(x, device: str):
    """``x`` (a numpy or device array) as an array of ``device`` ("cpu", "cuda",
    "cuda-emu"); returned as is when it is there already."""
    target = DEVICES[device]
    here = device_of(x=x)
    if here is target:
        return x
    host = x if here.is_cpu else x.get()
    return host if target.is_cpu else target.xp.asarray(host)
