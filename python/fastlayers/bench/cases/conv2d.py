"""Convolution cases: forward, backward-data and backward-weight of the layer set of
LeNet-5, the Fashion-MNIST convnet, VGG-, ResNet- and AlexNet-style networks.

Each pass does the forward's work, 2*N*K*P*Q*C*R*S flops, and is timed alone:

- ``-fwd``: out = conv2d(x, w, b);
- ``-bwd-data``: dx from dout (a first layer of a network, C = 1 or 3, needs no dx and
  has no such case);
- ``-bwd-weight``: dw and db from dout and x.

Backends: fastlayers (``ops.conv2d_forward`` / ``conv2d_backward`` with need_* flags,
the cache of an untimed forward), the NumPy reference, PyTorch (``F.conv2d`` under
no_grad; ``aten.convolution_backward`` with an output mask for one gradient), and a plain
NumPy/BLAS formulation: im2col by R*S strided slices + one matmul (col2im by the same
slices for dx), written against ``xp`` so that CuPy runs it too.

Oracles in float64 from fastlayers.reference: out and dx on the first two images (the
full batch would take long), dw and db on the whole batch, a few images at a time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case, conv_out


class Layer(NamedTuple):
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    stride: int
    pad: int
    first: bool  # the first layer of its network: no input gradient needed
    quick: bool = False

    @property
    def out_hw(self) -> tuple[int, int]:
        return conv_out(self.h, self.r, self.stride, self.pad), conv_out(self.w, self.r, self.stride, self.pad)

    @property
    def flops(self) -> float:
        p, q = self.out_hw
        return 2.0 * self.n * self.k * p * q * self.c * self.r * self.r

    @property
    def shape(self) -> str:
        return f"N{self.n} C{self.c} {self.h}x{self.w} K{self.k} {self.r}x{self.r} s{self.stride} p{self.pad}"


LAYERS = (
    Layer("lenet5_conv2-b8", 8, 6, 14, 14, 16, 5, 1, 0, False, quick=True),
    Layer("lenet5_conv1", 128, 1, 32, 32, 6, 5, 1, 0, True),
    Layer("lenet5_conv2", 128, 6, 14, 14, 16, 5, 1, 0, False),
    Layer("fashion_conv1", 128, 1, 28, 28, 32, 5, 1, 2, True),
    Layer("fashion_conv2", 128, 32, 14, 14, 64, 5, 1, 2, False),
    Layer("vgg_3x3", 32, 64, 56, 56, 64, 3, 1, 1, False),
    Layer("resnet_3x3", 32, 128, 28, 28, 128, 3, 1, 1, False),
    Layer("alexnet_conv1", 16, 3, 227, 227, 96, 11, 4, 0, True),
)

CHECK_IMAGES = 2  # out and dx are checked on this many images
_DW_CHUNK = 4  # images per float64 reference call for dw


def _inputs(layer: Layer):
    def make():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((layer.n, layer.c, layer.h, layer.w), dtype=np.float32)
        w = rng.standard_normal((layer.k, layer.c, layer.r, layer.r), dtype=np.float32)
        w /= np.float32(math.sqrt(layer.c * layer.r * layer.r))
        b = rng.standard_normal(layer.k, dtype=np.float32)
        dout = rng.standard_normal((layer.n, layer.k, *layer.out_hw), dtype=np.float32)
        return x, w, b, dout
    return make


# --- the plain NumPy / BLAS formulation ------------------------------------------------

def _slices(layer: Layer):
    p, q = layer.out_hw
    s = layer.stride
    for i in range(layer.r):
        for j in range(layer.r):
            yield i, j, (slice(None), slice(None), slice(i, i + s * (p - 1) + 1, s), slice(j, j + s * (q - 1) + 1, s))


def _im2col(xp, x, layer: Layer):
    """(C*R*S, N*P*Q) columns: row (c, i, j) holds x_pad[n, c, i + s*p, j + s*q]."""
    n, c = x.shape[:2]
    p, q = layer.out_hw
    xpad = xp.pad(x, ((0, 0), (0, 0), (layer.pad,) * 2, (layer.pad,) * 2)) if layer.pad else x
    cols = xp.empty((c, layer.r, layer.r, n, p, q), dtype=x.dtype)
    for i, j, sl in _slices(layer):
        cols[:, i, j] = xpad[sl].transpose(1, 0, 2, 3)
    return cols.reshape(c * layer.r * layer.r, n * p * q)


def _np_fwd(layer: Layer):
    def factory(xp, inputs):
        x, w, b = inputs[:3]
        wm = w.reshape(layer.k, -1)
        p, q = layer.out_hw

        def run():
            out = (wm @ _im2col(xp, x, layer)).reshape(layer.k, layer.n, p, q)
            out += b[:, None, None, None]
            return out.transpose(1, 0, 2, 3)
        return run
    return factory


def _np_bwd_data(layer: Layer):
    def factory(xp, inputs):
        x, w, _, dout = inputs
        wm = w.reshape(layer.k, -1)
        p, q = layer.out_hw
        hp, wp = layer.h + 2 * layer.pad, layer.w + 2 * layer.pad

        def run():
            d2 = dout.transpose(1, 0, 2, 3).reshape(layer.k, -1)
            dcols = (wm.T @ d2).reshape(layer.c, layer.r, layer.r, layer.n, p, q)
            dxp = xp.zeros((layer.n, layer.c, hp, wp), dtype=x.dtype)
            for i, j, sl in _slices(layer):
                dxp[sl] += dcols[:, i, j].transpose(1, 0, 2, 3)
            return dxp[:, :, layer.pad:layer.pad + layer.h, layer.pad:layer.pad + layer.w]
        return run
    return factory


def _np_bwd_weight(layer: Layer):
    def factory(xp, inputs):
        x, w, _, dout = inputs

        def run():
            d2 = dout.transpose(1, 0, 2, 3).reshape(layer.k, -1)
            dw = (d2 @ _im2col(xp, x, layer).T).reshape(w.shape)
            return dw, d2.sum(axis=1)
        return run
    return factory


# --- fastlayers and torch --------------------------------------------------------------

def _fl(layer: Layer, mode: str):
    def factory(inputs, backend):
        x, w, b, dout = inputs
        if mode == "fwd":
            return lambda: ops.conv2d(x, w, b, layer.stride, layer.pad, backend=backend)
        _, cache = ops.conv2d_forward(x, w, b, layer.stride, layer.pad, backend=backend)
        if mode == "bwd-data":
            return lambda: ops.conv2d_backward(dout, cache, need_dx=True, need_dw=False, need_db=False)[0]
        return lambda: ops.conv2d_backward(dout, cache, need_dx=False, need_dw=True, need_db=True)[1:]
    return factory


def _torch(layer: Layer, mode: str):
    def factory(torch, inputs, device):
        x, w, b, dout = inputs
        st, pd = [layer.stride] * 2, [layer.pad] * 2
        if mode == "fwd":
            def run():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(x, w, b, layer.stride, layer.pad)
            return run
        backward = torch.ops.aten.convolution_backward
        mask = [True, False, False] if mode == "bwd-data" else [False, True, True]

        def run():
            dx, dw, db = backward(dout, x, w, [layer.k], st, pd, [1, 1], False, [0, 0], 1, mask)
            return dx if mode == "bwd-data" else (dw, db)
        return run
    return factory


def _expected(layer: Layer, mode: str):
    def expected(inputs):
        x, w, b, dout = (a.astype(np.float64) for a in inputs)
        if mode in ("fwd", "bwd-data"):
            m = min(layer.n, CHECK_IMAGES)
            out, cache = reference.conv2d_forward(x[:m], w, b, layer.stride, layer.pad)
            if mode == "fwd":
                return out
            return reference.conv2d_backward(dout[:m], cache, need_dw=False, need_db=False)[0]
        dw, db = np.zeros_like(w), np.zeros_like(b)
        for i in range(0, layer.n, _DW_CHUNK):
            _, cache = reference.conv2d_forward(x[i:i + _DW_CHUNK], w, b, layer.stride, layer.pad)
            _, cdw, cdb = reference.conv2d_backward(dout[i:i + _DW_CHUNK], cache, need_dx=False)
            dw += cdw
            db += cdb
        return dw, db
    return expected


def _case(layer: Layer, mode: str) -> Case:
    np_factory = {"fwd": _np_fwd, "bwd-data": _np_bwd_data, "bwd-weight": _np_bwd_weight}[mode](layer)
    view = (lambda r: r[:CHECK_IMAGES]) if mode != "bwd-weight" else (lambda r: r)
    return Case(family="conv2d", name=f"{layer.name}-{mode}", shape=layer.shape, make_inputs=_inputs(layer),
                expected=_expected(layer, mode), fl=_fl(layer, mode), np=np_factory, torch=_torch(layer, mode),
                flops=layer.flops, quick=layer.quick, rtol=1e-4, view=view)


def cases() -> list[Case]:
    return [_case(layer, mode) for layer in LAYERS for mode in ("fwd", "bwd-data", "bwd-weight")
            if not (mode == "bwd-data" and layer.first)]
