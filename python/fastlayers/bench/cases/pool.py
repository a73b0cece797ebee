"""Pooling cases: max and average pooling forward and backward, max pooling for inference,
and global average pooling, on the 2x2/2 poolings of the Fashion-MNIST convnet and VGG,
the ResNet stem's 3x3/2 pad 1, and two global average pools.

Ops (suffix of the case name):

- ``max-fwd``: ``max_pool2d_forward``, out and the argmax kept for backward
  (PyTorch: ``max_pool2d_with_indices``); ``max-infer``: ``max_pool2d``, out only;
  ``max-bwd``: ``max_pool2d_backward`` (PyTorch: ``aten.max_pool2d_with_indices_backward``);
- ``avg-fwd`` / ``avg-bwd``: ``avg_pool2d_forward`` / ``avg_pool2d_backward``;
- ``gap-fwd`` / ``gap-bwd``: ``global_avg_pool2d_forward`` / ``_backward``.

Bytes (GB/s) are what the op must read and write once, as fastlayers moves them: input
read + output written, plus the int32 argmax written by max-fwd and read by max-bwd.
The same count is used for every backend (PyTorch moves more: int64 indices). Working
sets under the last-level cache (the fashion case) can run above DRAM bandwidth.

Plain NumPy formulations (written against ``xp``, so CuPy runs them) exist for the
forward passes and for average-pool backward: a maximum or sum over the k*k strided
slices of the padded input. Max-pool backward has none (it needs the argmax).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case, conv_out


class Pool(NamedTuple):
    name: str
    shape: tuple[int, int, int, int]  # N, C, H, W
    kernel: int = 2
    stride: int = 2
    padding: int = 0
    global_pool: bool = False
    quick: bool = False

    @property
    def out_shape(self) -> tuple[int, ...]:
        n, c, h, w = self.shape
        if self.global_pool:
            return (n, c)
        return (n, c, conv_out(h, self.kernel, self.stride, self.padding),
                conv_out(w, self.kernel, self.stride, self.padding))

    @property
    def label(self) -> str:
        dims = "x".join(map(str, self.shape))
        if self.global_pool:
            return f"{dims} global"
        p = f" p{self.padding}" if self.padding else ""
        return f"{dims} {self.kernel}x{self.kernel}/{self.stride}{p}"

    @property
    def args(self) -> tuple[int, int, int]:
        return self.kernel, self.stride, self.padding


POOLS = (
    Pool("small", (8, 16, 28, 28), quick=True),
    Pool("small", (8, 64, 7, 7), global_pool=True, quick=True),
    Pool("fashion", (128, 32, 28, 28)),
    Pool("vgg", (32, 64, 56, 56)),
    Pool("stem", (8, 64, 112, 112), kernel=3, stride=2, padding=1),
    Pool("resnet", (128, 512, 7, 7), global_pool=True),
    Pool("big", (32, 64, 56, 56), global_pool=True),
)


def _inputs(pool: Pool):
    def make():
        rng = np.random.default_rng(0)
        x = rng.standard_normal(pool.shape, dtype=np.float32)
        dout = rng.standard_normal(pool.out_shape, dtype=np.float32)
        return x, dout
    return make


def _window_slices(pool: Pool):
    oh, ow = pool.out_shape[2:]
    s = pool.stride
    for i in range(pool.kernel):
        for j in range(pool.kernel):
            yield (slice(None), slice(None), slice(i, i + s * (oh - 1) + 1, s), slice(j, j + s * (ow - 1) + 1, s))


def _padded(xp, x, pool: Pool, value: float):
    p = pool.padding
    return xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=value) if p else x


def _np(pool: Pool, op: str):
    """The plain NumPy formulation of ``op``, or None."""
    k2 = pool.kernel * pool.kernel

    def factory(xp, inputs):
        x, dout = inputs
        if op == "gap-fwd":
            return lambda: x.mean(axis=(2, 3))
        if op == "gap-bwd":
            hw = pool.shape[2] * pool.shape[3]
            return lambda: xp.broadcast_to((dout / hw)[:, :, None, None], pool.shape).copy()
        if op in ("max-fwd", "max-infer"):
            def run():
                xpad = _padded(xp, x, pool, -np.inf)
                slices = _window_slices(pool)
                out = xpad[next(slices)].copy()
                for sl in slices:
                    xp.maximum(out, xpad[sl], out=out)
                return out
            return run
        if op == "avg-fwd":  # padding counts in the divisor (count_include_pad)
            def run():
                xpad = _padded(xp, x, pool, 0.0)
                slices = _window_slices(pool)
                out = xpad[next(slices)].copy()
                for sl in slices:
                    out += xpad[sl]
                out /= k2
                return out
            return run
        if op == "avg-bwd":
            n, c, h, w = pool.shape
            p = pool.padding

            def run():
                dxp = xp.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dout.dtype)
                g = dout / k2
                for sl in _window_slices(pool):
                    dxp[sl] += g
                return dxp[:, :, p:p + h, p:p + w]
            return run
        raise AssertionError(op)

    return None if op == "max-bwd" else factory


def _fl(pool: Pool, op: str):
    def factory(inputs, backend):
        x, dout = inputs
        if op == "gap-fwd":
            return lambda: ops.global_avg_pool2d(x, backend=backend)
        if op == "gap-bwd":
            cache = ops.global_avg_pool2d_forward(x, backend=backend)[1]
            return lambda: ops.global_avg_pool2d_backward(dout, cache)[0]
        if op == "max-fwd":
            return lambda: ops.max_pool2d_forward(x, *pool.args, backend=backend)[0]
        if op == "max-infer":
            return lambda: ops.max_pool2d(x, *pool.args, backend=backend)
        if op == "max-bwd":
            cache = ops.max_pool2d_forward(x, *pool.args, backend=backend)[1]
            return lambda: ops.max_pool2d_backward(dout, cache)[0]
        if op == "avg-fwd":
            return lambda: ops.avg_pool2d_forward(x, *pool.args, backend=backend)[0]
        cache = ops.avg_pool2d_forward(x, *pool.args, backend=backend)[1]
        return lambda: ops.avg_pool2d_backward(dout, cache)[0]
    return factory


def _torch(pool: Pool, op: str):
    def factory(torch, inputs, device):
        x, dout = inputs
        F, aten = torch.nn.functional, torch.ops.aten
        k, s, p = pool.args

        def no_grad(fn):
            def run():
                with torch.no_grad():
                    return fn()
            return run

        if op == "gap-fwd":
            return no_grad(lambda: F.adaptive_avg_pool2d(x, 1).flatten(1))
        if op == "gap-bwd":
            x4 = torch.empty_like(x)
            d4 = dout[:, :, None, None].contiguous()
            return no_grad(lambda: aten._adaptive_avg_pool2d_backward(d4, x4))
        if op == "max-fwd":
            return no_grad(lambda: F.max_pool2d(x, k, s, p, return_indices=True)[0])
        if op == "max-infer":
            return no_grad(lambda: F.max_pool2d(x, k, s, p))
        if op == "max-bwd":
            with torch.no_grad():
                _, idx = F.max_pool2d(x, k, s, p, return_indices=True)
            return no_grad(lambda: aten.max_pool2d_with_indices_backward(dout, x, [k, k], [s, s], [p, p], [1, 1],
                                                                        False, idx))
        if op == "avg-fwd":
            return no_grad(lambda: F.avg_pool2d(x, k, s, p))
        return no_grad(lambda: aten.avg_pool2d_backward(dout, x, [k, k], [s, s], [p, p], False, True, None))
    return factory


def _expected(pool: Pool, op: str):
    def expected(inputs):
        x, dout = (a.astype(np.float64) for a in inputs)
        if op.startswith("gap"):
            out, cache = reference.global_avg_pool2d_forward(x)
            return out if op == "gap-fwd" else reference.global_avg_pool2d_backward(dout, cache)[0]
        fwd = reference.max_pool2d_forward if op.startswith("max") else reference.avg_pool2d_forward
        bwd = reference.max_pool2d_backward if op.startswith("max") else reference.avg_pool2d_backward
        out, cache = fwd(x, *pool.args)
        return bwd(dout, cache)[0] if op.endswith("bwd") else out
    return expected


def _nbytes(pool: Pool, op: str) -> float:
    x = 4 * math.prod(pool.shape)
    out = 4 * math.prod(pool.out_shape)
    return float(x + out + (out if op in ("max-fwd", "max-bwd") else 0))


def _case(pool: Pool, op: str) -> Case:
    # Max pooling selects an element: exact, but overlapping windows (the stem) sum
    # several gradients into one dx. Averages: float32 sums of k*k or H*W terms.
    rtol = {"max-fwd": 0.0, "max-infer": 0.0, "max-bwd": 1e-6}.get(op, 1e-5)
    return Case(family="pool", name=f"{op}-{pool.name}", shape=pool.label, make_inputs=_inputs(pool),
                expected=_expected(pool, op), fl=_fl(pool, op), np=_np(pool, op), torch=_torch(pool, op),
                nbytes=_nbytes(pool, op), quick=pool.quick, rtol=rtol)


QUICK_OPS = ("max-fwd", "max-bwd", "gap-fwd")  # what --quick runs of the quick sizes


def cases() -> list[Case]:
    out = []
    for pool in POOLS:
        names = ("gap-fwd", "gap-bwd") if pool.global_pool else (
            "max-fwd", "max-infer", "max-bwd", "avg-fwd", "avg-bwd")
        out += [_case(pool, op) for op in names if not pool.quick or op in QUICK_OPS]
    return out
