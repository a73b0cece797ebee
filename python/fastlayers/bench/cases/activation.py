"""Element-wise cases: the activations (relu, leaky_relu, sigmoid, tanh, gelu with erf and
with the tanh approximation, softplus, elu), dropout and the residual add, forward and
backward as separate cases, in GB/s.

    fastlayers bench --filter 'activation/relu'
    python -m pytest benchmarks/bench_activation.py --benchmark-only -k "relu and 16M"

Sizes: a conv activation map (128, 32, 28, 28) = 3.2 M elements, and 16 M elements (64 MB
per array: well beyond the caches); ``--quick`` runs relu forward and backward and gelu
forward on 64 k elements. Inputs: x = 3 N(0, 1), dout = N(0, 1), float32.

What is timed: a ``-fwd`` case one ``<op>_forward`` (the forward that keeps what its
backward needs; fastlayers' relu and leaky_relu also write a 1-bit mask of x > 0), a
``-bwd`` case one ``<op>_backward`` only (the forward runs once, untimed, when the case is
prepared). PyTorch runs its ATen kernels directly (``torch.relu``, ``F.gelu``, ...,
``torch.ops.aten.threshold_backward``, ``gelu_backward``, ...), without autograd, so the
comparison is kernel against kernel. Outputs are freshly allocated by every call, as in
a network (the first touch of a new 64 MB array costs page faults, for every backend).

Bytes (``nbytes``, the same for every backend, so GB/s compare like for like) are the
minimum traffic of the op: forward reads x and writes y (8 B/element); backward reads
dout and what it needs of the forward and writes dx: 12 B/element where it needs x or y
(4 B), 8 B + 1 bit for relu and leaky_relu, whose backward needs only the sign of x (the
1-bit mask fastlayers keeps; torch reads y or x there, 4 B, so its GB/s is an effective
figure). The earlier benchmarks/bench_activation.py counted fastlayers' relu mask in the
forward too (8 B + 1 bit): 1.6 % more than here. Dropout (p = 0.5): 8 B/element each way
(the mask is a hash of (seed, index): nothing is stored); add (forward only: its backward
is dout itself and one copy): 12 B/element. Compare
the GB/s with the machine's STREAM bandwidth (~20 GB/s on one core here; the issue's
target is >= 70 % of it).

Validation: against float64 values computed by fastlayers.reference on float64 copies
of the inputs; the tolerance is ``rtol * (|expected| + max|expected|)``, with rtol per
op from the observed float32 error (a wrong constant or a sign slip fails). Dropout's
fastlayers and reference masks are bit-identical, so both must match exactly; torch
draws its own Bernoulli mask: its formulation returns (y, mask) and is checked for the
structure instead (y = 2 x where the mask keeps, 0 elsewhere, about half kept).
NumPy formulations exist for every activation but the erf GELU (NumPy has no erf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case, Mismatch, allclose

SIZES = {"128x32x28x28": (128, 32, 28, 28), "16M": (16 * 1024 * 1024,)}
QUICK_SIZE = ("64k", (64 * 1024,))
QUICK = {"relu-fwd", "relu-bwd", "gelu-fwd"}  # "<op>-<direction>" at QUICK_SIZE

_C = math.sqrt(2.0 / math.pi)  # tanh-GELU
_K = 0.044715


def _sigmoid(xp, x):
    return 1 / (1 + xp.exp(-x))


def _gelu_tanh_t(xp, x):
    return xp.tanh(_C * (x + _K * x * x * x))


@dataclass(frozen=True)
class Act:
    """One activation: fastlayers op, its keyword arguments, formulations of each direction."""

    name: str
    op: str
    kwargs: dict
    masked: bool  # backward needs only the sign of x (1 bit)
    torch_fwd: Callable  # (torch, F, x) -> y
    torch_bwd: Callable  # (torch, g, x, y) -> dx
    np_fwd: Callable | None = None  # (xp, x) -> y
    np_bwd: Callable | None = None  # (xp, g, x, y) -> dx
    rtol: tuple = (1e-6, 1e-6)  # (fwd, bwd); observed: at most 3e-7 (sigmoid, tanh backward)


ACTS = [
    Act("relu", "relu", {}, True,
        lambda t, F, x: t.relu(x),
        lambda t, g, x, y: t.ops.aten.threshold_backward(g, y, 0),
        lambda xp, x: xp.maximum(x, 0),
        lambda xp, g, x, y: g * (y > 0),
        rtol=(0.0, 0.0)),  # exact: no rounding anywhere
    Act("leaky_relu", "leaky_relu", {"negative_slope": 0.01}, True,
        lambda t, F, x: F.leaky_relu(x, 0.01),
        lambda t, g, x, y: t.ops.aten.leaky_relu_backward(g, x, 0.01, False),
        lambda xp, x: xp.where(x > 0, x, x * 0.01),
        lambda xp, g, x, y: xp.where(x > 0, g, g * 0.01),
        rtol=(1e-7, 1e-7)),  # one float32 rounding
    Act("sigmoid", "sigmoid", {}, False,
        lambda t, F, x: t.sigmoid(x),
        lambda t, g, x, y: t.ops.aten.sigmoid_backward(g, y),
        lambda xp, x: _sigmoid(xp, x),
        lambda xp, g, x, y: g * y * (1 - y)),
    Act("tanh", "tanh", {}, False,
        lambda t, F, x: t.tanh(x),
        lambda t, g, x, y: t.ops.aten.tanh_backward(g, y),
        lambda xp, x: xp.tanh(x),
        lambda xp, g, x, y: g * (1 - y * y)),
    Act("gelu", "gelu", {"approximate": "none"}, False,
        lambda t, F, x: F.gelu(x),
        lambda t, g, x, y: t.ops.aten.gelu_backward(g, x)),
    # torch's tanh-GELU loses its left tail to cancellation (1 + tanh(u) near 0): a few
    # 1e-6 absolute, below rtol * max|y| here.
    Act("gelu_tanh", "gelu", {"approximate": "tanh"}, False,
        lambda t, F, x: F.gelu(x, approximate="tanh"),
        lambda t, g, x, y: t.ops.aten.gelu_backward(g, x, approximate="tanh"),
        lambda xp, x: 0.5 * x * (1 + _gelu_tanh_t(xp, x)),
        lambda xp, g, x, y: g * _gelu_tanh_grad(xp, x),
        rtol=(1e-6, 4e-6)),  # backward: NumPy and torch 7e-7 observed (1 - t^2 cancels)
    Act("softplus", "softplus", {"beta": 1.0, "threshold": 20.0}, False,
        lambda t, F, x: F.softplus(x),
        lambda t, g, x, y: t.ops.aten.softplus_backward(g, x, 1.0, 20.0),
        lambda xp, x: xp.where(x > 20, x, xp.log1p(xp.exp(xp.minimum(x, 20)))),
        lambda xp, g, x, y: xp.where(x > 20, g, g * _sigmoid(xp, x))),
    Act("elu", "elu", {"alpha": 1.0}, False,
        lambda t, F, x: F.elu(x),
        lambda t, g, x, y: t.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x),
        lambda xp, x: xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0))),
        lambda xp, g, x, y: xp.where(x > 0, g, g * xp.exp(xp.minimum(x, 0)))),
]


def _gelu_tanh_grad(xp, x):
    t = _gelu_tanh_t(xp, x)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (_C * (1 + 3 * _K * x * x))


def _inputs(shape, backward: bool):
    def make_inputs():
        rng = np.random.default_rng(0)
        x = 3 * rng.standard_normal(shape, dtype=np.float32)
        if not backward:
            return (x,)
        return x, rng.standard_normal(shape, dtype=np.float32)
    return make_inputs


def _label(shape) -> str:
    return "x".join(map(str, shape)) if len(shape) > 1 else f"{shape[0]:,} elements"


# --- activations ----------------------------------------------------------------------

def _act_fwd(a: Act, size: str, shape, quick: bool) -> Case:
    fwd = getattr(ops, f"{a.op}_forward")
    ref_fwd = getattr(reference, f"{a.op}_forward")
    kw = a.kwargs

    def fl(inputs, backend):
        x, = inputs
        return lambda: fwd(x, **kw, backend=backend)[0]

    def np_(xp, inputs):
        x, = inputs
        return lambda: a.np_fwd(xp, x)

    def torch_(torch, inputs, device):
        x, = inputs
        F = torch.nn.functional
        return lambda: a.torch_fwd(torch, F, x)

    def expected(inputs):
        return ref_fwd(inputs[0].astype(np.float64), **kw)[0]

    n = math.prod(shape)
    return Case(family="activation", name=f"{a.name}-fwd-{size}", shape=_label(shape),
                make_inputs=_inputs(shape, False), expected=expected, fl=fl,
                np=np_ if a.np_fwd else None, torch=torch_, nbytes=8.0 * n, quick=quick, rtol=a.rtol[0])


def _act_bwd(a: Act, size: str, shape, quick: bool) -> Case:
    fwd = getattr(ops, f"{a.op}_forward")
    bwd = getattr(ops, f"{a.op}_backward")
    ref_fwd = getattr(reference, f"{a.op}_forward")
    ref_bwd = getattr(reference, f"{a.op}_backward")
    kw = a.kwargs

    def fl(inputs, backend):
        x, dout = inputs
        _, cache = fwd(x, **kw, backend=backend)  # untimed
        return lambda: bwd(dout, cache)[0]

    def np_(xp, inputs):
        x, dout = inputs
        y = a.np_fwd(xp, x)
        return lambda: a.np_bwd(xp, dout, x, y)

    def torch_(torch, inputs, device):
        x, dout = inputs
        y = a.torch_fwd(torch, torch.nn.functional, x)
        return lambda: a.torch_bwd(torch, dout, x, y)

    def expected(inputs):
        x, dout = (v.astype(np.float64) for v in inputs)
        return ref_bwd(dout, ref_fwd(x, **kw)[1])[0]

    n = math.prod(shape)
    nbytes = 8.0 * n + (n / 8 if a.masked else 4.0 * n)
    return Case(family="activation", name=f"{a.name}-bwd-{size}", shape=_label(shape),
                make_inputs=_inputs(shape, True), expected=expected, fl=fl,
                np=np_ if a.np_bwd else None, torch=torch_, nbytes=nbytes, quick=quick, rtol=a.rtol[1])


# --- dropout --------------------------------------------------------------------------

P, SEED = 0.5, 1


@dataclass
class _DropoutOracle:
    """The float64 result of the reference mask, and the array that was dropped out
    (x forward, dout backward) for the structural check of torch's own mask."""

    result: np.ndarray
    source: np.ndarray


def _dropout_compare(got: Any, want: _DropoutOracle, what: str) -> None:
    if not isinstance(got, tuple):  # fastlayers, reference: the same (seed, index) hash
        allclose(got, want.result, what, rtol=0.0)
        return
    y, keep = (np.asarray(v) for v in got)  # torch: (y, its own mask)
    if keep.shape != want.source.shape or y.shape != want.source.shape:
        raise Mismatch(f"{what}: shapes {y.shape} / {keep.shape}, expected {want.source.shape}")
    kept = float(keep.astype(bool).mean())
    if abs(kept - (1 - P)) > 0.01:
        raise Mismatch(f"{what}: {kept:.4f} of the elements kept, expected {1 - P} +- 0.01")
    allclose(y, np.where(keep.astype(bool), want.source / (1 - P), 0.0), f"{what} (given its mask)", rtol=0.0)


def _dropout(direction: str, size: str, shape) -> Case:
    backward = direction == "bwd"

    def fl(inputs, backend):
        x = inputs[0]
        if not backward:
            return lambda: ops.dropout_forward(x, P, seed=SEED, backend=backend)[0]
        _, cache = ops.dropout_forward(x, P, seed=SEED, backend=backend)
        dout = inputs[1]
        return lambda: ops.dropout_backward(dout, cache)[0]

    def torch_(torch, inputs, device):
        """torch.ops.aten.native_dropout draws a Bernoulli mask: returns (y, mask)."""
        aten = torch.ops.aten
        x = inputs[0]
        if not backward:
            return lambda: aten.native_dropout(x, P, True)
        _, keep = aten.native_dropout(x, P, True)
        dout = inputs[1]
        scale = 1 / (1 - P)
        return lambda: (aten.native_dropout_backward(dout, keep, scale), keep)

    def expected(inputs):
        x = inputs[0].astype(np.float64)
        y, cache = reference.dropout_forward(x, P, True, SEED)
        if not backward:
            return _DropoutOracle(y, x)
        dout = inputs[1].astype(np.float64)
        return _DropoutOracle(reference.dropout_backward(dout, cache)[0], dout)

    n = math.prod(shape)
    return Case(family="activation", name=f"dropout-{direction}-{size}", shape=f"{_label(shape)}, p={P}",
                make_inputs=_inputs(shape, backward), expected=expected, fl=fl, torch=torch_,
                nbytes=8.0 * n, rtol=0.0, compare=_dropout_compare)


# --- residual add ---------------------------------------------------------------------

def _add(size: str, shape) -> Case:
    def fl(inputs, backend):
        a, b = inputs
        return lambda: ops.add(a, b, backend=backend)

    def np_(xp, inputs):
        a, b = inputs
        return lambda: xp.add(a, b)

    def torch_(torch, inputs, device):
        a, b = inputs
        return lambda: torch.add(a, b)

    def expected(inputs):
        a, b = inputs
        return a.astype(np.float64) + b.astype(np.float64)

    n = math.prod(shape)
    return Case(family="activation", name=f"add-fwd-{size}", shape=_label(shape),
                make_inputs=_inputs(shape, True), expected=expected, fl=fl, np=np_, torch=torch_,
                nbytes=12.0 * n, rtol=1e-7)  # one float32 rounding: 2^-24 relative


def cases() -> list[Case]:
    out = []
    size, shape = QUICK_SIZE
    for a in ACTS:
        for d, make in (("fwd", _act_fwd), ("bwd", _act_bwd)):
            if f"{a.name}-{d}" in QUICK:
                out.append(make(a, size, shape, True))
    for size, shape in SIZES.items():
        for a in ACTS:
            out += [_act_fwd(a, size, shape, False), _act_bwd(a, size, shape, False)]
        out += [_dropout("fwd", size, shape), _dropout("bwd", size, shape), _add(size, shape)]
    return out
