"""CUDA activation kernels (csrc/cuda/activation.cu) vs the NumPy reference in float64.

Every test body runs on the emulator (fastlayers._cuda_emu on EmuArrays) under two
schedules and two launch shapes (the default, and 40-thread blocks with at most 3 blocks,
so partial warps and several grid-stride rounds run), and on a real GPU through
fastlayers._cuda and CuPy where one is usable (marked ``gpu``).
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlayers import _cpu
from fastlayers import reference as ref

from cuda_backends import Emu, Offset, backend_fixture, emu, emu_backend, gpu_backend  # noqa: F401 (emu: a fixture)

# Kernel ids: fastlayers::Activation (csrc/cpu/activation.h).
RELU, LEAKY_RELU, SIGMOID, TANH, GELU, GELU_TANH, SOFTPLUS, ELU = range(8)
MASKED = (RELU, LEAKY_RELU)
FROM_OUTPUT = (SIGMOID, TANH)

# (reference name, reference kwargs, kind, (alpha, beta, threshold)).
OPS = [
    ("relu", {}, RELU, (0.0, 1.0, 20.0)),
    ("leaky_relu", {"negative_slope": 0.2}, LEAKY_RELU, (0.2, 1.0, 20.0)),
    ("leaky_relu", {"negative_slope": -0.5}, LEAKY_RELU, (-0.5, 1.0, 20.0)),
    ("sigmoid", {}, SIGMOID, (0.0, 1.0, 20.0)),
    ("tanh", {}, TANH, (0.0, 1.0, 20.0)),
    ("gelu", {}, GELU, (0.0, 1.0, 20.0)),
    ("gelu", {"approximate": "tanh"}, GELU_TANH, (0.0, 1.0, 20.0)),
    ("softplus", {}, SOFTPLUS, (0.0, 1.0, 20.0)),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, SOFTPLUS, (0.0, 2.0, 5.0)),
    ("elu", {"alpha": 0.3}, ELU, (0.3, 1.0, 20.0)),
]
OP_IDS = [f"{name}{''.join(f'-{k}={v}' for k, v in kw.items())}" for name, kw, _, _ in OPS]

# 1, a partial mask byte, a prime, a 2-D prime, more than one 256-thread block of 4 (or
# 8) elements; the small launch shape makes every one but the first a multi-round loop.
SHAPES = [(1,), (13,), (3, 67), (2113,)]

# float32 kernels vs float64 values: |out - ref| <= ATOL + RTOL |ref| (as tests/test_activation.py).
RTOL, ATOL = 2e-5, 1e-6


# --- devices -----------------------------------------------------------------------

# The emulator under two schedules and launch shapes (the default; 40-thread blocks, at
# most 3: partial warps, several grid-stride rounds), one under the threads engine; the GPU.
dev = backend_fixture(Emu("round-robin", launch=(256, 4096)), Emu("greedy", launch=(40, 3)))


# --- helpers ------------------------------------------------------------------------

def _x(shape, seed=0, scale=3.0):
    return np.asarray(scale * np.random.default_rng(seed).standard_normal(shape), dtype=np.float32)


def _reference64(name, kw, x, dout, saved):
    """Reference forward in float64 on x, and backward on dout; for sigmoid / tanh from
    the kernel's own saved output (what the CUDA backward is given)."""
    y, cache = getattr(ref, f"{name}_forward")(x.astype(np.float64), **kw)
    if name in ("sigmoid", "tanh"):
        cache = saved.astype(np.float64)
    (dx,) = getattr(ref, f"{name}_backward")(dout.astype(np.float64), cache)
    return y, dx


def _run(d, kind, params, x, dout):
    """(y, mask or None, dx) from the device kernels."""
    n = x.size
    xd = d.asarray(x)
    yd = d.empty(x.shape)
    maskd = d.empty(((n + 7) // 8,), np.uint8) if kind in MASKED else None
    d.mod.activation_forward(yd, maskd, xd, kind, *params)
    saved = yd if kind in FROM_OUTPUT else (None if kind in MASKED else xd)
    dxd = d.empty(x.shape)
    d.mod.activation_backward(dxd, d.asarray(dout), saved, maskd, kind, *params)
    return d.get(yd), None if maskd is None else d.get(maskd), d.get(dxd)


def _check(d, name, kw, kind, params, x):
    dout = _x(x.shape, seed=1, scale=1.0)
    y, mask, dx = _run(d, kind, params, x, dout)
    y64, dx64 = _reference64(name, kw, x, dout, y)
    np.testing.assert_allclose(y, y64, rtol=RTOL, atol=ATOL, err_msg=f"{d.name} {name} forward")
    np.testing.assert_allclose(dx, dx64, rtol=RTOL, atol=ATOL, err_msg=f"{d.name} {name} backward")
    if mask is not None:  # bit for bit the CPU's packed mask
        np.testing.assert_array_equal(mask, np.packbits(x.reshape(-1) > 0, bitorder="little"))


# --- tests --------------------------------------------------------------------------

@pytest.mark.parametrize("name,kw,kind,params", OPS, ids=OP_IDS)
def test_forward_backward_vs_reference(dev, name, kw, kind, params):
    for shape in SHAPES:
        _check(dev, name, kw, kind, params, _x(shape))


@pytest.mark.parametrize("name,kw,kind,params", OPS, ids=OP_IDS)
def test_extreme_inputs(dev, name, kw, kind, params):
    """No overflow to inf/NaN at any magnitude; the float64 limits are reached."""
    v = [1e-30, 1e-7, 0.5, 5.0, 15.0, 19.99, 20.01, 30.0, 87.0, 89.0, 100.0, 1e4, 1e30]
    x = np.array([0.0] + v + [-t for t in v], dtype=np.float32)
    dout = np.ones_like(x)
    y, _, dx = _run(dev, kind, params, x, dout)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx)), f"{y}, {dx}"
    y64, dx64 = _reference64(name, kw, x, dout, y)
    np.testing.assert_allclose(y, y64, rtol=RTOL, atol=ATOL, err_msg="forward")
    np.testing.assert_allclose(dx, dx64, rtol=RTOL, atol=ATOL, err_msg="backward")


@pytest.mark.parametrize("name,kw,kind,params", OPS, ids=OP_IDS)
def test_matches_cpu_kernel(dev, name, kw, kind, params):
    """Same outputs as the _cpu kernel (to float rounding); the mask bit for bit."""
    x = _x((5, 41))
    x[0, :3] = [0.0, -0.0, np.nan]  # the kinks and NaN: mask bits 0, relu keeps NaN
    y_cpu = np.empty_like(x)
    mask_cpu = np.empty((x.size + 7) // 8, np.uint8)
    _cpu.activation_forward(y_cpu, mask_cpu, x, kind, *params)
    dout = _x(x.shape, seed=2, scale=1.0)
    y, mask, dx = _run(dev, kind, params, x, dout)
    np.testing.assert_allclose(y, y_cpu, rtol=RTOL, atol=ATOL)
    if mask is not None:
        np.testing.assert_array_equal(mask, mask_cpu)
    saved = y_cpu if kind in FROM_OUTPUT else x
    dx_cpu = np.empty_like(x)
    _cpu.activation_backward(dx_cpu, dout, saved, mask_cpu if kind in MASKED else None, kind, *params)
    np.testing.assert_allclose(dx, dx_cpu, rtol=RTOL, atol=ATOL)


def _at_offset(d, a, k=1):
    """(base, view): a copy of a on the device starting k elements into its allocation."""
    base = d.asarray(np.concatenate([np.zeros(k, np.float32), a.reshape(-1)]))
    return base, Offset(base, k, a.size)


@pytest.mark.parametrize("name,kw,kind,params", OPS, ids=OP_IDS)
def test_unaligned_pointers_take_the_scalar_path(dev, name, kw, kind, params):
    n = 37
    x, dout = _x((n,)), _x((n,), seed=1, scale=1.0)
    (_, xd), (_, doutd) = _at_offset(dev, x), _at_offset(dev, dout)
    (yb, yd), (dxb, dxd) = _at_offset(dev, np.zeros(n, np.float32)), _at_offset(dev, np.zeros(n, np.float32))
    maskd = dev.empty(((n + 7) // 8,), np.uint8) if kind in MASKED else None
    dev.mod.activation_forward(yd, maskd, xd, kind, *params)
    saved = yd if kind in FROM_OUTPUT else (None if kind in MASKED else xd)
    dev.mod.activation_backward(dxd, doutd, saved, maskd, kind, *params)
    y, dx = dev.get(yb)[1:], dev.get(dxb)[1:]
    y64, dx64 = _reference64(name, kw, x, dout, y)
    np.testing.assert_allclose(y, y64, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx, dx64, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", [RELU, GELU, ELU])
def test_in_place(dev, kind):
    """out may be x, and dx may be dout (the CPU contract)."""
    x = _x((3, 45))
    params = (0.1, 1.0, 20.0)
    xd = dev.asarray(x)
    ref_y = dev.empty(x.shape)
    dev.mod.activation_forward(ref_y, None, xd, kind, *params)
    yd = dev.asarray(x)
    dev.mod.activation_forward(yd, None, yd, kind, *params)
    np.testing.assert_array_equal(dev.get(yd), dev.get(ref_y))


def test_add_forward(dev):
    for shape in SHAPES + [(4, 5, 7)]:
        a, b = _x(shape), _x(shape, seed=1)
        out = dev.empty(shape)
        dev.mod.add_forward(out, dev.asarray(a), dev.asarray(b))
        np.testing.assert_allclose(dev.get(out), ref.add(a.astype(np.float64), b.astype(np.float64)),
                                   rtol=1e-7, atol=0)
    # unaligned, and in place (out is a)
    a, b = _x((29,)), _x((29,), seed=3)
    (ab, av), (_, bv) = _at_offset(dev, a, 1), _at_offset(dev, b, 2)
    dev.mod.add_forward(av, av, bv)
    np.testing.assert_array_equal(dev.get(ab)[1:], a + b)


def test_empty_arrays(dev):
    x = dev.empty((0,))
    dev.mod.activation_forward(dev.empty((0,)), dev.empty((0,), np.uint8), x, RELU, 0.0, 1.0, 20.0)
    dev.mod.activation_backward(dev.empty((0,)), x, x, None, SIGMOID, 0.0, 1.0, 20.0)
    dev.mod.add_forward(dev.empty((0,)), x, x)


# --- bad input ----------------------------------------------------------------------

def test_bad_input(emu):
    m = emu.mod
    x = emu.asarray(_x((10,)))
    out = emu.empty((10,))
    mask = emu.empty((2,), np.uint8)
    p = (0.0, 1.0, 20.0)
    with pytest.raises(TypeError, match="x: expected a GPU array"):
        m.activation_forward(out, mask, _x((10,)), RELU, *p)  # a numpy array
    with pytest.raises(TypeError, match="x: expected dtype <f4"):
        m.activation_forward(out, mask, emu.asarray(np.zeros(10)), RELU, *p)
    with pytest.raises(ValueError, match="out: expected 10 elements, got 9"):
        m.activation_forward(emu.empty((9,)), mask, x, RELU, *p)
    with pytest.raises(ValueError, match="mask: expected at least 2 bytes, got 1"):
        m.activation_forward(out, emu.empty((1,), np.uint8), x, RELU, *p)
    with pytest.raises(TypeError, match="mask: expected dtype |u1"):
        m.activation_forward(out, emu.empty((2,)), x, RELU, *p)
    with pytest.raises(ValueError, match="kind: unknown activation 8"):
        m.activation_forward(out, mask, x, 8, *p)
    with pytest.raises(ValueError, match="mask: this activation needs a mask array"):
        m.activation_backward(out, x, None, None, RELU, *p)
    with pytest.raises(ValueError, match="saved: this activation needs the saved input or output"):
        m.activation_backward(out, x, None, None, SIGMOID, *p)
    with pytest.raises(ValueError, match="saved: expected 10 elements, got 9"):
        m.activation_backward(out, x, emu.empty((9,)), None, GELU, *p)
    with pytest.raises(TypeError, match="dout: expected a GPU array"):
        m.activation_backward(out, _x((10,)), x, None, GELU, *p)
    with pytest.raises(ValueError, match="b: expected 10 elements, got 11"):
        m.add_forward(out, x, emu.empty((11,)))
    with pytest.raises(TypeError, match="a: expected dtype <f4"):
        m.add_forward(out, emu.asarray(np.zeros(10, np.int32)), x)
    with pytest.raises(ValueError, match="threads: expected 1..1024"):
        m.set_eltwise_launch(2048, 1)


class _HostMemory:
    """A host numpy buffer passed off as a device array: the launch must fail cleanly."""

    def __init__(self, a):
        self._a = a
        self.__cuda_array_interface__ = {"shape": a.shape, "typestr": a.dtype.str, "strides": None,
                                         "version": 3, "data": (a.ctypes.data, False)}


def test_launch_failure_names_op_and_sizes(emu):
    """A pointer outside every device allocation: the emulator refuses the launch, and
    check_launch turns it into a RuntimeError naming the op and the sizes."""
    out = emu.empty((10,))
    with pytest.raises(RuntimeError, match=r"activation_forward \(n=10, kind=gelu\)"):
        emu.mod.activation_forward(out, None, _HostMemory(_x((10,))), GELU, 0.0, 1.0, 20.0)
    with pytest.raises(RuntimeError, match=r"add_forward \(n=10\)"):
        emu.mod.add_forward(out, emu.asarray(_x((10,))), _HostMemory(_x((10,))))


@pytest.mark.gpu
@pytest.mark.parametrize("name,kw,kind,params", OPS, ids=OP_IDS)
def test_gpu_matches_emulator(name, kw, kind, params):
    """The real GPU against the emulated run of the same kernels: masks bit for bit,
    values to float rounding (nvcc contracts to FMA, the host compiler may not)."""
    gpu, emu = gpu_backend(), emu_backend()
    x = _x((3, 2113), seed=4)
    dout = _x(x.shape, seed=5, scale=1.0)
    y_g, mask_g, dx_g = _run(gpu, kind, params, x, dout)
    y_e, mask_e, dx_e = _run(emu, kind, params, x, dout)
    np.testing.assert_allclose(y_g, y_e, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(dx_g, dx_e, rtol=RTOL, atol=ATOL)
    if mask_g is not None:
        np.testing.assert_array_equal(mask_g, mask_e)
