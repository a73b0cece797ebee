"""CUDA dropout kernels (csrc/cuda/dropout.cu): the keep-mask equals the CPU kernel's and
the NumPy reference's bit for bit for the same (seed, p), and the outputs equal the CPU's.

Runs on the emulator (fastlayers._cuda_emu on EmuArrays) under two schedules and two
launch shapes, and on a real GPU through fastlayers._cuda and CuPy where one is usable
(marked ``gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers import _cpu
from fastlayers import reference as ref

from cuda_backends import Emu, Offset, backend_fixture, emu, emu_backend, gpu_backend  # noqa: F401 (emu: a fixture)

# Partial generator blocks of 64, a prime, and more than one block of 256 threads x 256
# elements (8 work items of 8 elements per block of 64).
SIZES = [1, 5, 63, 64, 65, 200, 1031, 16411]
SEEDS = [0, 1, 12345, 2**63 + 7, 2**64 - 1]
PS = [0.0, 1e-9, 0.1, 0.5, 0.9, 1.0]


# --- devices -----------------------------------------------------------------------

# The emulator under two schedules and launch shapes (the default; 40-thread blocks, at
# most 3: partial warps, several grid-stride rounds), one under the threads engine; the GPU.
dev = backend_fixture(Emu("round-robin", launch=(256, 4096)), Emu("descending", launch=(40, 3)))


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- tests --------------------------------------------------------------------------

def test_mask_equals_cpu_and_reference_bit_for_bit(dev):
    for n in SIZES:
        for seed in SEEDS:
            for p in PS:
                keep = dev.empty((n,), np.uint8)
                dev.mod.dropout_mask(keep, seed, p)
                got = dev.get(keep)
                cpu = np.empty(n, np.uint8)
                _cpu.dropout_mask(cpu, seed, p)
                np.testing.assert_array_equal(got, cpu, err_msg=f"n={n} seed={seed} p={p}")
                if n <= 1031:  # the reference is slower; the CPU kernel covers the rest
                    want = ref.dropout_mask((n,), p, seed).astype(np.uint8)
                    np.testing.assert_array_equal(got, want, err_msg=f"n={n} seed={seed} p={p}")


def test_apply_equals_cpu_bit_for_bit(dev):
    """Forward (and backward, the same map on dout): y = x * scale where kept, else 0."""
    for n in SIZES:
        for seed in SEEDS[:3]:
            for p in PS:
                x = _x((n,), seed=n)
                if n >= 3:
                    x[:3] = [np.nan, np.inf, -0.0]  # a dropped NaN or inf becomes 0
                y = dev.empty((n,))
                dev.mod.dropout_apply(y, dev.asarray(x), seed, p)
                cpu = np.empty_like(x)
                _cpu.dropout_apply(cpu, x, seed, p)
                np.testing.assert_array_equal(dev.get(y), cpu, err_msg=f"n={n} seed={seed} p={p}")


def test_apply_vs_reference(dev):
    x = _x((3, 7, 29))
    seed, p = 987654321, 0.3
    y = dev.empty(x.shape)
    dev.mod.dropout_apply(y, dev.asarray(x), seed, p)
    want, (keep, scale) = ref.dropout_forward(x.astype(np.float64), p, True, seed)
    np.testing.assert_allclose(dev.get(y), want, rtol=1e-7, atol=0)
    # backward: the same map applied to dout
    dout = _x(x.shape, seed=5)
    dx = dev.empty(x.shape)
    dev.mod.dropout_apply(dx, dev.asarray(dout), seed, p)
    (want_dx,) = ref.dropout_backward(dout.astype(np.float64), (keep, scale))
    np.testing.assert_allclose(dev.get(dx), want_dx, rtol=1e-7, atol=0)


def test_unaligned_and_in_place(dev):
    n, seed, p = 201, 42, 0.5
    x = _x((n,))
    cpu = np.empty_like(x)
    _cpu.dropout_apply(cpu, x, seed, p)
    base = dev.asarray(np.concatenate([np.zeros(3, np.float32), x]))
    view = Offset(base, 3, n)
    dev.mod.dropout_apply(view, view, seed, p)  # out is x, at a 12-byte offset
    np.testing.assert_array_equal(dev.get(base)[3:], cpu)


def test_empty(dev):
    dev.mod.dropout_apply(dev.empty((0,)), dev.empty((0,)), 1, 0.5)
    dev.mod.dropout_mask(dev.empty((0,), np.uint8), 1, 0.5)


def test_bad_input(emu):
    m = emu.mod
    x = emu.asarray(_x((10,)))
    with pytest.raises(TypeError, match="x: expected a GPU array"):
        m.dropout_apply(emu.empty((10,)), _x((10,)), 1, 0.5)
    with pytest.raises(TypeError, match="x: expected dtype <f4"):
        m.dropout_apply(emu.empty((10,)), emu.asarray(np.zeros(10)), 1, 0.5)
    with pytest.raises(ValueError, match="out: expected 10 elements, got 9"):
        m.dropout_apply(emu.empty((9,)), x, 1, 0.5)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got 1.5"):
        m.dropout_apply(emu.empty((10,)), x, 1, 1.5)
    with pytest.raises(TypeError, match="keep: expected dtype |u1"):
        m.dropout_mask(emu.empty((10,)), 1, 0.5)
    with pytest.raises(TypeError, match="keep: expected a GPU array"):
        m.dropout_mask(np.zeros(10, np.uint8), 1, 0.5)
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got -0.1"):
        m.dropout_mask(emu.empty((10,), np.uint8), 1, -0.1)
    with pytest.raises(TypeError):  # seed outside uint64: pybind11 refuses the conversion
        m.dropout_mask(emu.empty((10,), np.uint8), -1, 0.5)


def test_launch_failure_names_op_and_sizes(emu):
    """A host buffer passed off as a device array: RuntimeError naming the op and sizes."""
    host = np.zeros(10, np.uint8)

    class HostMemory:
        __cuda_array_interface__ = {"shape": (10,), "typestr": "|u1", "strides": None, "version": 3,
                                    "data": (host.ctypes.data, False)}

    with pytest.raises(RuntimeError, match=r"dropout_mask \(n=10, seed=3, p=0.5"):
        emu.mod.dropout_mask(HostMemory(), 3, 0.5)


@pytest.mark.gpu
def test_gpu_matches_emulator():
    """The real GPU against the emulated run: mask and output bit for bit."""
    gpu, emu = gpu_backend(), emu_backend()
    n, seed, p = 100_003, 2**64 - 3, 0.25
    x = _x((n,), seed=9)
    out = {}
    for d in (gpu, emu):
        keep, y = d.empty((n,), np.uint8), d.empty((n,))
        d.mod.dropout_mask(keep, seed, p)
        d.mod.dropout_apply(y, d.asarray(x), seed, p)
        out[d.name] = (d.get(keep), d.get(y))
    np.testing.assert_array_equal(out["gpu"][0], out["emu"][0])
    np.testing.assert_array_equal(out["gpu"][1], out["emu"][1])
