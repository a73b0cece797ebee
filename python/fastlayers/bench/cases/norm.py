"""Normalisation cases: training-mode batch norm and layer norm, forward and backward as
separate cases, in GB/s.

    fastlayers bench --filter 'norm/batch_norm-bwd'
    python -m pytest benchmarks/bench_norm.py --benchmark-only -k "t1 and bwd"

Shapes: batch norm on (128, 32, 28, 28) and (32, 64, 56, 56) (per channel) and
(128, 512) (per feature); layer norm over the last dim of (128, 512). ``--quick`` runs
batch norm forward and backward on (8, 16, 14, 14). Inputs: x = 2 N(0, 1) + 0.5,
dout, gamma, beta = N(0, 1), running_mean = 0, running_var = 1, float32; momentum 0.1,
eps 1e-5.

What is timed: a ``-fwd`` case one ``<op>_forward`` (batch norm in training mode: batch
statistics, and the running statistics updated in place; the callable returns
(out, running_mean, running_var), so the first call's update is validated too, like an
optimiser step's), a ``-bwd`` case one ``<op>_backward`` only, returning
(dx, dgamma, dbeta) (the forward runs once, untimed, when the case is prepared). PyTorch: ``F.batch_norm(training=True)`` /
``F.layer_norm`` under no_grad forward; backward is ``torch.autograd.grad`` of the output
on the graph built (untimed) in preparation (retain_graph), so torch runs the backward
kernel its autograd picks (native_batch_norm_backward on the CPU, cuDNN's on a GPU).

Bytes (``nbytes``, the same for every backend) count the minimum memory passes over the
activation: forward reads x for the statistics, then reads x and writes out = 3 passes
(12 B/element); backward reads x and dout for the two per-channel sums, reads them
again and writes dx = 5 passes (20 B/element); the per-channel vectors are negligible.
Compare with the STREAM-triad bandwidth (fastlayers.machine.bandwidth_gbs).

Every call allocates its outputs (out, dx), as a training loop does. For the large
activations that costs first-touch page faults on top of the kernel: glibc hands a
freed 25 MB block back to the OS and maps a fresh one on the next call (measured: the
(32, 64, 56, 56) forward+backward takes ~15 ms instead of the kernels' ~9.5 ms). PyTorch
pays the same in the same process. To time the kernels without it, keep freed memory in
the heap: MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=2147483648.

Validation: against fastlayers.reference in float64 on float64 copies of the inputs;
tolerance ``rtol * (|expected| + max|expected|)`` per result.
"""

from __future__ import annotations

import math

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case

MOMENTUM, EPS = 0.1, 1e-5
BATCH_NORM = [(128, 32, 28, 28), (32, 64, 56, 56), (128, 512)]
LAYER_NORM = [(128, 512)]
QUICK = (8, 16, 14, 14)  # batch norm, forward and backward
# Observed: at most 3e-7 (NumPy's and torch's float32 sums). eps 1e-4 instead of 1e-5
# moves batch norm's out by ~1e-5 relative (var ~ 4); M instead of M - 1 in the running
# variance fails at M = 128 (128, 512) and M = 1568 (the quick shape), not at the
# M = 100352 of the 4-D shapes (1.5e-6 of max|running_var| there).
RTOL = 2e-6


def _label(shape) -> str:
    return "x".join(map(str, shape))


def _make_inputs(op: str, shape, backward: bool):
    """batch_norm: (x, gamma, beta, running_mean, running_var[, dout]);
    layer_norm: (x, weight, bias[, dout])."""
    def make_inputs():
        rng = np.random.default_rng(0)
        c = shape[1] if op == "batch_norm" else shape[-1]
        x = (rng.standard_normal(shape) * 2 + 0.5).astype(np.float32)
        dout = rng.standard_normal(shape).astype(np.float32)
        gamma = rng.standard_normal(c).astype(np.float32)
        beta = rng.standard_normal(c).astype(np.float32)
        out = (x, gamma, beta)
        if op == "batch_norm":
            out += (np.zeros(c, np.float32), np.ones(c, np.float32))
        return out + (dout,) if backward else out
    return make_inputs


def _f64(inputs):
    return tuple(a.astype(np.float64) for a in inputs)


# --- batch norm -----------------------------------------------------------------------

def _bn_axes(shape):
    return ((0,), (1, shape[1])) if len(shape) == 2 else ((0, 2, 3), (1, shape[1], 1, 1))


def _np_bn_forward(xp, x, gamma, beta, rm, rv):
    """Training-mode batch norm in plain NumPy (xp): (out, xhat, invstd), running stats updated."""
    axes, bshape = _bn_axes(x.shape)
    m = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    xc = x - mean.reshape(bshape)
    var = (xc * xc).mean(axis=axes)
    invstd = 1 / xp.sqrt(var + EPS)
    xhat = xc * invstd.reshape(bshape)
    out = xhat * gamma.reshape(bshape) + beta.reshape(bshape)
    rm *= 1 - MOMENTUM
    rm += MOMENTUM * mean
    rv *= 1 - MOMENTUM
    rv += (MOMENTUM * m / (m - 1)) * var
    return out, xhat, invstd


def _batch_norm(shape, direction: str, quick: bool = False) -> Case:
    backward = direction == "bwd"
    axes, bshape = _bn_axes(shape)
    m = math.prod(shape) // shape[1]

    def fl(inputs, backend):
        x, gamma, beta, rm, rv = inputs[:5]
        if not backward:
            def run():
                out, _ = ops.batch_norm_forward(x, gamma, beta, rm, rv, True, MOMENTUM, EPS, backend=backend)
                return out, rm, rv
            return run
        _, cache = ops.batch_norm_forward(x, gamma, beta, rm, rv, True, MOMENTUM, EPS, backend=backend)
        dout = inputs[5]
        return lambda: ops.batch_norm_backward(dout, cache)

    def np_(xp, inputs):
        x, gamma, beta, rm, rv = inputs[:5]
        if not backward:
            return lambda: (_np_bn_forward(xp, x, gamma, beta, rm, rv)[0], rm, rv)
        _, xhat, invstd = _np_bn_forward(xp, x, gamma, beta, rm, rv)
        dout = inputs[5]
        k = (gamma * invstd / m).reshape(bshape)

        def run():
            dbeta = dout.sum(axis=axes)
            dgamma = (dout * xhat).sum(axis=axes)
            dx = k * (m * dout - dbeta.reshape(bshape) - xhat * dgamma.reshape(bshape))
            return dx, dgamma, dbeta
        return run

    def torch_(torch, inputs, device):
        F = torch.nn.functional
        x, gamma, beta, rm, rv = inputs[:5]
        if not backward:
            def run():
                with torch.no_grad():
                    out = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=MOMENTUM, eps=EPS)
                return out, rm, rv
            return run
        x, gamma, beta = (t.detach().requires_grad_() for t in (x, gamma, beta))
        out = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=MOMENTUM, eps=EPS)
        dout = inputs[5]
        return lambda: torch.autograd.grad(out, (x, gamma, beta), dout, retain_graph=True)

    def expected(inputs):
        x, gamma, beta, rm, rv = _f64(inputs[:5])
        out, cache = reference.batch_norm_forward(x, gamma, beta, rm, rv, True, MOMENTUM, EPS)
        if not backward:
            return out, rm, rv
        return reference.batch_norm_backward(inputs[5].astype(np.float64), cache)

    n = math.prod(shape)
    what = "per channel" if len(shape) == 4 else "per feature"
    return Case(family="norm", name=f"batch_norm-{direction}-{_label(shape)}", shape=f"{_label(shape)} {what}",
                make_inputs=_make_inputs("batch_norm", shape, backward), expected=expected, fl=fl, np=np_,
                torch=torch_, nbytes=(20.0 if backward else 12.0) * n, quick=quick,
                rtol=RTOL)


# --- layer norm -----------------------------------------------------------------------

def _layer_norm(shape, direction: str) -> Case:
    backward = direction == "bwd"
    d = shape[-1]

    def fl(inputs, backend):
        x, w, b = inputs[:3]
        if not backward:
            return lambda: ops.layer_norm_forward(x, d, w, b, EPS, backend=backend)[0]
        _, cache = ops.layer_norm_forward(x, d, w, b, EPS, backend=backend)
        dout = inputs[3]
        return lambda: ops.layer_norm_backward(dout, cache)

    def np_forward(xp, x, w, b):
        mean = x.mean(axis=-1, keepdims=True)
        xc = x - mean
        invstd = 1 / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + EPS)
        xhat = xc * invstd
        return xhat * w + b, xhat, invstd

    def np_(xp, inputs):
        x, w, b = inputs[:3]
        if not backward:
            return lambda: np_forward(xp, x, w, b)[0]
        _, xhat, invstd = np_forward(xp, x, w, b)
        dout = inputs[3]

        def run():
            g = dout * w
            dx = (invstd / d) * (d * g - g.sum(axis=-1, keepdims=True)
                                 - xhat * (g * xhat).sum(axis=-1, keepdims=True))
            return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
        return run

    def torch_(torch, inputs, device):
        F = torch.nn.functional
        x, w, b = inputs[:3]
        if not backward:
            def run():
                with torch.no_grad():
                    return F.layer_norm(x, (d,), w, b, eps=EPS)
            return run
        x, w, b = (t.detach().requires_grad_() for t in (x, w, b))
        out = F.layer_norm(x, (d,), w, b, eps=EPS)
        dout = inputs[3]
        return lambda: torch.autograd.grad(out, (x, w, b), dout, retain_graph=True)

    def expected(inputs):
        x, w, b = _f64(inputs[:3])
        out, cache = reference.layer_norm_forward(x, (d,), w, b, EPS)
        if not backward:
            return out
        return reference.layer_norm_backward(inputs[3].astype(np.float64), cache)

    n = math.prod(shape)
    return Case(family="norm", name=f"layer_norm-{direction}-{_label(shape)}", shape=f"{_label(shape)} over {d}",
                make_inputs=_make_inputs("layer_norm", shape, backward), expected=expected, fl=fl, np=np_,
                torch=torch_, nbytes=(20.0 if backward else 12.0) * n, rtol=RTOL)


def cases() -> list[Case]:
    out = [_batch_norm(QUICK, d, quick=True) for d in ("fwd", "bwd")]
    out += [_batch_norm(s, d) for s in BATCH_NORM for d in ("fwd", "bwd")]
    out += [_layer_norm(s, d) for s in LAYER_NORM for d in ("fwd", "bwd")]
    return out
