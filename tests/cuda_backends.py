"""The devices the CUDA kernel tests (tests/test_cuda_<family>.py) run their bodies on.

One abstraction, :class:`Backend`, for both:
- the emulator (``fastlayers._cuda_emu`` on EmuArrays) under one thread schedule, and
  optionally one launch shape of the element-wise kernels (``set_eltwise_launch``);
- a real GPU (``fastlayers._cuda`` on CuPy arrays), marked ``gpu`` and skipped with the
  reason when CuPy is missing or no GPU is usable.

A test file lists the emulator configurations its family needs and gets a parametrised
fixture::

    from cuda_backends import Emu, backend_fixture
    dev = backend_fixture(Emu("round-robin"), Emu("greedy", launch=(40, 3)))

Under the threads engine (``FASTLAYERS_EMU_ENGINE=threads``, the ThreadSanitizer run of
.ci/emu-sanitizers) schedules do not apply, so only the first configuration runs.

The emulator module is always built: it is imported here directly, so a broken build fails
every CUDA test instead of skipping them.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest

import fastlayers
from fastlayers import _cuda_emu, cuda_emu

#: True under the threads engine (one OS thread per CUDA thread; no schedules).
THREADS_ENGINE = cuda_emu.engine() == "threads"


@dataclasses.dataclass(frozen=True)
class Emu:
    """An emulator configuration: a schedule (cuda_emu.SCHEDULES), its seed (used by
    "random") and an optional element-wise launch shape (threads per block, max blocks)."""

    schedule: str = "round-robin"
    seed: int = 0
    launch: tuple[int, int] | None = None

    @property
    def id(self) -> str:
        launch = "" if self.launch is None else f"-{self.launch[0]}x{self.launch[1]}"
        return f"emu-{self.schedule}{launch}"


GPU = "gpu"


def gpu_skip_reason() -> str | None:
    """Why the GPU backend cannot run here, or None."""
    try:
        import cupy  # noqa: F401, PLC0415
    except ImportError:
        return "cupy is not installed"
    cuda = fastlayers.info().get("cuda") or {}
    if not cuda.get("gpu_usable"):
        return f"no usable GPU: {cuda.get('reason') or 'the CUDA module is not built'}"
    return None


class Backend:
    """Device arrays and the kernel module (``mod``) of one device.

    ``name`` is "emu" or "gpu". ``empty`` arrays are poisoned so that elements a kernel
    does not write show: the emulator fills every byte with 0xFF (NaN as float32, -1 as a
    signed int); on the GPU floats are NaN, signed ints -7 and unsigned ints their maximum.
    """

    def __init__(self, name: str):
        self.name = name
        if name == GPU:
            reason = gpu_skip_reason()
            if reason:
                pytest.skip(reason)
            import cupy  # noqa: PLC0415

            from fastlayers import _cuda  # noqa: PLC0415

            self.mod, self.cupy = _cuda, cupy
        else:
            self.mod, self.cupy = _cuda_emu, None

    def asarray(self, a, dtype=None):
        """A device copy of `a` (its own dtype unless `dtype` is given)."""
        host = np.ascontiguousarray(a, dtype=dtype)
        return cuda_emu.asarray(host) if self.cupy is None else self.cupy.asarray(host)

    def empty(self, shape, dtype=np.float32):
        if self.cupy is None:
            return cuda_emu.empty(shape, dtype)
        dtype = np.dtype(dtype)
        fill = np.nan if dtype.kind == "f" else -7 if dtype.kind == "i" else np.iinfo(dtype).max
        return self.cupy.full(shape, fill, dtype)

    def get(self, d) -> np.ndarray:
        """A numpy copy of the device array `d` (after the work queued on the stream)."""
        if self.cupy is None:
            return d.get()
        self.cupy.cuda.get_current_stream().synchronize()
        return self.cupy.asnumpy(d)

    def stream(self) -> int:
        """The `stream` argument of the bindings: CuPy's current stream, 0 in the emulator."""
        return 0 if self.cupy is None else self.cupy.cuda.get_current_stream().ptr


def emu_backend() -> Backend:
    """The emulator as it is set (no schedule or launch shape chosen)."""
    return Backend("emu")


def gpu_backend() -> Backend:
    """The GPU; skips the test with the reason when none is usable."""
    return Backend(GPU)


@contextlib.contextmanager
def open_backend(config):
    """The Backend for `config` (an Emu or GPU), with its schedule and launch shape set
    inside the block and restored after it."""
    backend = Backend(GPU if config == GPU else "emu")
    with contextlib.ExitStack() as stack:
        launch = getattr(config, "launch", None)
        if launch is not None:
            old = backend.mod.set_eltwise_launch(*launch)
            stack.callback(backend.mod.set_eltwise_launch, *old)
        if config != GPU:
            stack.enter_context(cuda_emu.schedule(config.schedule, seed=config.seed))
        yield backend


def backend_params(*configs: Emu) -> list:
    """pytest params: the emulator configurations (only the first under the threads
    engine), then the GPU (marked ``gpu``)."""
    if not configs:
        raise ValueError("backend_params: expected at least one emulator configuration")
    emu = configs[:1] if THREADS_ENGINE else configs
    return [pytest.param(c, id=c.id) for c in emu] + [pytest.param(GPU, id="gpu", marks=pytest.mark.gpu)]


def backend_fixture(*configs: Emu, name: str = "dev"):
    """A fixture `name` parametrised over backend_params(*configs), yielding a Backend."""

    @pytest.fixture(params=backend_params(*configs), name=name)
    def _backend(request):
        with open_backend(request.param) as backend:
            yield backend

    return _backend


class Offset:
    """`n` elements of the 1-D device array `base` starting `k` in: for k % 4 != 0 a
    pointer that is not 16-byte aligned, so the kernels take their scalar path."""

    def __init__(self, base, k, n):
        cai = base.__cuda_array_interface__
        self._base = base  # keeps the allocation alive
        self.__cuda_array_interface__ = {
            "shape": (n,), "typestr": cai["typestr"], "strides": None, "version": 3,
            "data": (cai["data"][0] + k * np.dtype(cai["typestr"]).itemsize, False),
        }


@pytest.fixture
def emu() -> Backend:
    """The emulator alone (bad-input and launch-failure tests); import it into a test file."""
    return emu_backend()


EPS32 = float(np.finfo(np.float32).eps)


def assert_close(got, ref, scale, k, name="out"):
    """|got - ref| <= 4 (sqrt(k) + 2) eps32 * scale elementwise, scale the same sum over
    absolute values (the magnitude the float32 rounding error of a k-term sum grows with)."""
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape}, expected {ref.shape}"
    tol = 4.0 * (np.sqrt(max(k, 1)) + 2.0) * EPS32 * scale + 1e-30
    bad = ~(np.abs(got - ref) <= tol)  # NaN is bad
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements off; first at {idx}: got {got[idx]!r}, "
            f"expected {ref[idx]!r} (tol {tol[idx]:.3g})"
        )
