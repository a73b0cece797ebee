"""Loss-family cases: softmax, log_softmax, softmax cross-entropy, MSE and binary
cross-entropy with logits, forward and backward as separate cases, in GB/s.

    fastlayers bench --filter 'loss/softmax_cross_entropy'
    python -m pytest benchmarks/bench_loss.py --benchmark-only -k "cross_entropy and 1024"

Shapes (N, C): (128, 10) (an MNIST batch), (128, 1000) (an ImageNet batch) and
(1024, 10000) (40 MB of logits: from memory), for every op; softmax and log_softmax run
along C, MSE and BCE take (N, C) as N*C independent elements. ``--quick`` runs the
softmax cross-entropy forward and backward at (128, 10), which are quick cases only.
Inputs: x = 3 N(0, 1) (logits, predictions), dy = N(0, 1), labels uniform in [0, C),
MSE targets N(0, 1), BCE targets uniform in [0, 1), float32.

What is timed: a ``-fwd`` case one ``<op>_forward``, a ``-bwd`` case one
``<op>_backward`` only (the forward runs once, untimed, when the case is prepared). The
losses are means, their backward gets dout = 1 and, for MSE and BCE, skips the target's
gradient (``need_dtarget(s)=False``, as for a target without requires_grad). PyTorch runs
its ATen kernels directly, without autograd, so the comparison is kernel against kernel:
``_softmax`` / ``_softmax_backward_data``, ``_log_softmax`` / ``_log_softmax_backward_data``,
cross-entropy as ``_log_softmax`` + ``nll_loss_forward`` (forward) and ``nll_loss_backward``
+ ``_log_softmax_backward_data`` (backward), ``mse_loss`` / ``mse_loss_backward``,
``binary_cross_entropy_with_logits``; BCE's backward has no ATen kernel of its own in
torch 2.x, so it is ``torch.autograd.grad`` of the loss (retain_graph: the graph is
built once, untimed).

Bytes (``nbytes``, the same for every backend, so GB/s compare like for like) are the
minimum traffic of the fused algorithm: softmax and log_softmax forward read x and write
y (8 B/element), backward reads dy and y and writes dx (12 B/element); cross-entropy
forward reads the logits and labels (4 B/element + 8 B/row), backward reads them and
writes dlogits (8 B/element + 8 B/row); MSE and BCE forward read both inputs (8
B/element), backward reads both and writes one gradient (12 B/element). The earlier
benchmarks/bench_loss.py timed forward+backward together (softmax 5 x.nbytes,
cross-entropy 3 x.nbytes: the same counts, without the labels). STREAM triad on one core
here: about 20 GB/s; cache-resident shapes can exceed it.

Validation: against fastlayers.reference in float64 on float64 copies of the inputs;
the losses are scalars (NumPy floats). Tolerance ``rtol * (|expected| + max|expected|)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case

SHAPES = [(128, 10), (128, 1000), (1024, 10000)]
QUICK = {("softmax_cross_entropy", (128, 10))}  # these shapes are quick cases only


def _make_inputs(op: str, shape, backward: bool):
    """Per op: softmax/log_softmax (x[, dy]), cross-entropy (logits, labels),
    MSE (pred, target), BCE (logits, targets)."""
    def make_inputs():
        rng = np.random.default_rng(0)
        x = (3 * rng.standard_normal(shape)).astype(np.float32)
        if op in ("softmax", "log_softmax"):
            return (x, rng.standard_normal(shape).astype(np.float32)) if backward else (x,)
        if op == "softmax_cross_entropy":
            return x, rng.integers(0, shape[1], shape[0])
        if op == "mse_loss":
            return x, rng.standard_normal(shape).astype(np.float32)
        return x, rng.random(shape, dtype=np.float32)  # BCE: soft targets in [0, 1)
    return make_inputs


def _f64(inputs):
    return tuple(a.astype(np.float64) if a.dtype == np.float32 else a for a in inputs)


# --- the five ops, one formulation each ------------------------------------------------

@dataclass(frozen=True)
class LossOp:
    """fwd/bwd formulations of one op. fl_fwd(inputs, backend) -> (result, cache);
    fl_bwd(inputs, cache) -> result; np_fwd(xp, inputs) -> result; np_bwd(xp, inputs)
    -> zero-argument callable (its forward done); torch_fwd(torch, inputs, device) ->
    callable; torch_bwd likewise; ref_fwd/ref_bwd on float64."""

    name: str
    fl_fwd: Callable
    fl_bwd: Callable
    np_fwd: Callable
    np_bwd: Callable
    torch_fwd: Callable
    torch_bwd: Callable
    ref_fwd: Callable
    ref_bwd: Callable
    bytes_fwd: Callable  # (n, c) -> bytes
    bytes_bwd: Callable
    # (fwd, bwd). softmax over 10000 columns: fastlayers and torch 1.1e-6 forward, 2.4e-6
    # backward observed (float32 row sums); NumPy's pairwise sums 1.5e-7.
    rtol: tuple = (1e-5, 1e-5)


def _softmax_op(log: bool) -> LossOp:
    name = "log_softmax" if log else "softmax"
    fwd, bwd = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    ref_fwd, ref_bwd = getattr(reference, f"{name}_forward"), getattr(reference, f"{name}_backward")

    def np_forward(xp, x):
        s = x - x.max(axis=1, keepdims=True)
        if log:
            return s - xp.log(xp.exp(s).sum(axis=1, keepdims=True))
        e = xp.exp(s)
        return e / e.sum(axis=1, keepdims=True)

    def np_bwd(xp, inputs):
        x, dy = inputs
        y = np_forward(xp, x)
        if log:
            return lambda: dy - xp.exp(y) * dy.sum(axis=1, keepdims=True)
        return lambda: y * (dy - (dy * y).sum(axis=1, keepdims=True))

    def torch_fwd(torch, inputs, device):
        x, = inputs
        f = torch._log_softmax if log else torch._softmax
        return lambda: f(x, 1, False)

    def torch_bwd(torch, inputs, device):
        x, dy = inputs
        if log:
            y = torch._log_softmax(x, 1, False)
            return lambda: torch._log_softmax_backward_data(dy, y, 1, torch.float32)
        y = torch._softmax(x, 1, False)
        return lambda: torch._softmax_backward_data(dy, y, 1, torch.float32)

    return LossOp(
        name,
        fl_fwd=lambda inputs, backend: fwd(inputs[0], backend=backend),
        fl_bwd=lambda inputs, cache: bwd(inputs[1], cache)[0],
        np_fwd=lambda xp, inputs: np_forward(xp, inputs[0]),
        np_bwd=np_bwd, torch_fwd=torch_fwd, torch_bwd=torch_bwd,
        ref_fwd=lambda inputs: ref_fwd(inputs[0]),
        ref_bwd=lambda inputs, cache: ref_bwd(inputs[1], cache)[0],
        bytes_fwd=lambda n, c: 8.0 * n * c, bytes_bwd=lambda n, c: 12.0 * n * c,
    )


def _np_softmax(xp, x):
    e = xp.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sce_op() -> LossOp:
    def np_fwd(xp, inputs):
        x, labels = inputs
        s = x - x.max(axis=1, keepdims=True)
        lse = xp.log(xp.exp(s).sum(axis=1))
        return (lse - s[xp.arange(x.shape[0]), labels]).mean()

    def np_bwd(xp, inputs):
        x, labels = inputs
        rows = xp.arange(x.shape[0])

        def run():
            p = _np_softmax(xp, x)
            p[rows, labels] -= 1
            p *= 1 / x.shape[0]
            return p
        return run

    def torch_fwd(torch, inputs, device):
        x, labels = inputs
        aten = torch.ops.aten

        def run():
            logp = torch._log_softmax(x, 1, False)
            return aten.nll_loss_forward(logp, labels, None, 1, -100)[0]  # 1: mean
        return run

    def torch_bwd(torch, inputs, device):
        x, labels = inputs
        aten = torch.ops.aten
        logp = torch._log_softmax(x, 1, False)
        _, total_weight = aten.nll_loss_forward(logp, labels, None, 1, -100)
        one = torch.tensor(1.0, device=device)

        def run():
            g = aten.nll_loss_backward(one, logp, labels, None, 1, -100, total_weight)
            return torch._log_softmax_backward_data(g, logp, 1, torch.float32)
        return run

    return LossOp(
        "softmax_cross_entropy",
        fl_fwd=lambda inputs, backend: ops.softmax_cross_entropy_forward(*inputs, backend=backend),
        fl_bwd=lambda inputs, cache: ops.softmax_cross_entropy_backward(1.0, cache)[0],
        np_fwd=np_fwd, np_bwd=np_bwd, torch_fwd=torch_fwd, torch_bwd=torch_bwd,
        ref_fwd=lambda inputs: reference.softmax_cross_entropy_forward(*inputs),
        ref_bwd=lambda inputs, cache: reference.softmax_cross_entropy_backward(1.0, cache)[0],
        bytes_fwd=lambda n, c: 4.0 * n * c + 8.0 * n, bytes_bwd=lambda n, c: 8.0 * n * c + 8.0 * n,
        rtol=(1e-6, 1e-5),  # observed: 5e-8 (a mean in double), 1e-6 (1024x10000 backward)
    )


def _mse_op() -> LossOp:
    def np_fwd(xp, inputs):
        p, t = inputs
        d = p - t
        return (d * d).mean()

    def np_bwd(xp, inputs):
        p, t = inputs
        return lambda: (p - t) * (2 / p.size)

    def torch_fwd(torch, inputs, device):
        p, t = inputs
        return lambda: torch.ops.aten.mse_loss(p, t, 1)

    def torch_bwd(torch, inputs, device):
        p, t = inputs
        one = torch.tensor(1.0, device=device)
        return lambda: torch.ops.aten.mse_loss_backward(one, p, t, 1)

    return LossOp(
        "mse_loss",
        fl_fwd=lambda inputs, backend: ops.mse_loss_forward(*inputs, backend=backend),
        fl_bwd=lambda inputs, cache: ops.mse_loss_backward(1.0, cache, need_dtarget=False)[0],
        np_fwd=np_fwd, np_bwd=np_bwd, torch_fwd=torch_fwd, torch_bwd=torch_bwd,
        ref_fwd=lambda inputs: reference.mse_loss_forward(*inputs),
        ref_bwd=lambda inputs, cache: reference.mse_loss_backward(1.0, cache, need_dtarget=False)[0],
        bytes_fwd=lambda n, c: 8.0 * n * c, bytes_bwd=lambda n, c: 12.0 * n * c,
        rtol=(1e-6, 1e-6),  # observed: 8e-8, 6e-8
    )


def _bce_op() -> LossOp:
    def np_fwd(xp, inputs):
        x, t = inputs
        return (xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))).mean()

    def np_bwd(xp, inputs):
        x, t = inputs
        return lambda: (1 / (1 + xp.exp(-x)) - t) * (1 / x.size)

    def torch_fwd(torch, inputs, device):
        x, t = inputs
        return lambda: torch.ops.aten.binary_cross_entropy_with_logits(x, t, None, None, 1)

    def torch_bwd(torch, inputs, device):
        x, t = inputs
        x = x.detach().requires_grad_()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x, t)
        return lambda: torch.autograd.grad(loss, x, retain_graph=True)[0]

    name = "binary_cross_entropy_with_logits"
    return LossOp(
        name,
        fl_fwd=lambda inputs, backend: ops.binary_cross_entropy_with_logits_forward(*inputs, backend=backend),
        fl_bwd=lambda inputs, cache: ops.binary_cross_entropy_with_logits_backward(
            1.0, cache, need_dtargets=False)[0],
        np_fwd=np_fwd, np_bwd=np_bwd, torch_fwd=torch_fwd, torch_bwd=torch_bwd,
        ref_fwd=lambda inputs: reference.binary_cross_entropy_with_logits_forward(*inputs),
        ref_bwd=lambda inputs, cache: reference.binary_cross_entropy_with_logits_backward(
            1.0, cache, need_dtargets=False)[0],
        bytes_fwd=lambda n, c: 8.0 * n * c, bytes_bwd=lambda n, c: 12.0 * n * c,
        rtol=(1e-6, 1e-6),  # observed: 4e-8, 1.4e-7
    )


OPS = [_softmax_op(False), _softmax_op(True), _sce_op(), _mse_op(), _bce_op()]
SCALAR = {"softmax_cross_entropy", "mse_loss", "binary_cross_entropy_with_logits"}


def _scalar(r):
    return np.float64(r) if isinstance(r, float) else r


def _case(op: LossOp, direction: str, shape) -> Case:
    n, c = shape
    backward = direction == "bwd"
    scalar = op.name in SCALAR and not backward

    def fl(inputs, backend):
        if not backward:
            return lambda: _scalar(op.fl_fwd(inputs, backend)[0])
        _, cache = op.fl_fwd(inputs, backend)  # untimed
        return lambda: op.fl_bwd(inputs, cache)

    def np_(xp, inputs):
        if backward:
            return op.np_bwd(xp, inputs)
        return lambda: op.np_fwd(xp, inputs)

    def torch_(torch, inputs, device):
        return (op.torch_bwd if backward else op.torch_fwd)(torch, inputs, device)

    def expected(inputs):
        inputs = _f64(inputs)
        out, cache = op.ref_fwd(inputs)
        if not backward:
            return np.float64(out) if scalar else out
        return op.ref_bwd(inputs, cache)

    return Case(family="loss", name=f"{op.name}-{direction}-{n}x{c}", shape=f"N{n} C{c}",
                make_inputs=_make_inputs(op.name, shape, backward), expected=expected, fl=fl, np=np_,
                torch=torch_, nbytes=(op.bytes_bwd if backward else op.bytes_fwd)(n, c),
                quick=(op.name, shape) in QUICK, rtol=op.rtol[backward])


def cases() -> list[Case]:
    out = [_case(op, d, shape) for op in OPS for shape in SHAPES for d in ("fwd", "bwd")
           if (op.name, shape) in QUICK]
    out += [_case(op, d, shape) for op in OPS for shape in SHAPES for d in ("fwd", "bwd")
            if (op.name, shape) not in QUICK]
    return out
