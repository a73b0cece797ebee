"""Linear-layer cases: the layers of the MNIST MLP 784 -> 512 -> 10 at batch 128, forward
and backward as separate cases, in GFLOP/s.

    fastlayers bench --filter 'linear/'
    python -m pytest benchmarks/bench_linear.py --benchmark-only -k "mlp and t1"

Cases: each layer alone (784->512 with the fused ReLU, 512->10 without) and the whole
two-layer MLP; ``--quick`` runs a small 128->64 ReLU layer at batch 32, forward and
backward. Inputs: x = N(0, 1), w = N(0, 1) / sqrt(in), b = N(0, 1), dout = N(0, 1),
float32.

What is timed: a ``-fwd`` case the forward through the layers (``linear_forward``,
returning the last output), a ``-bwd`` case the backward only (the forward runs once,
untimed, when the case is prepared), returning the parameter gradients (dw, db) of
every layer in forward order. The first layer's dx is skipped (need_dx=False), as
torch skips it for an input without requires_grad. PyTorch: ``F.linear`` (+
``torch.relu``) under no_grad forward; backward is ``torch.autograd.grad`` of the output
with respect to the weights and biases, on the graph built (untimed) in preparation
(retain_graph).

FLOPs (``flops``, the same for every backend): 2*N*in*out per GEMM. Forward: one GEMM per
layer; backward: dw = dz^T @ x for every layer and dx = dz @ w for all but the first
(so a layer alone is one GEMM each way, the MLP's backward three). The bias add, db and
the ReLU mask are not counted.

Validation: against fastlayers.reference in float64 on float64 copies of the inputs;
tolerance ``rtol * (|expected| + max|expected|)`` per result.
"""

from __future__ import annotations

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case

BATCH = 128
LAYERS = {"784-512-relu": (784, 512, "relu"), "512-10": (512, 10, None), "128-64-relu": (128, 64, "relu")}
# name: (layers, batch, quick)
CASES = {
    "784-512-relu": (["784-512-relu"], BATCH, False),
    "512-10": (["512-10"], BATCH, False),
    "mlp-784-512-10": (["784-512-relu", "512-10"], BATCH, False),
    "128-64-relu-b32": (["128-64-relu"], 32, True),
}
# Observed: at most 4e-7 (float32 GEMMs of depth <= 784); a dropped bias or ReLU mask
# is off by O(1).
RTOL = 4e-6


def _make_inputs(names, batch, backward):
    """(x, w1, b1, w2, b2, ...[, dout])."""
    def make_inputs():
        rng = np.random.default_rng(0)
        out = [rng.standard_normal((batch, LAYERS[names[0]][0]), dtype=np.float32)]
        for name in names:
            fan_in, fan_out, _ = LAYERS[name]
            out.append((rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32))
            out.append(rng.standard_normal(fan_out).astype(np.float32))
        if backward:
            out.append(np.random.default_rng(1).standard_normal((batch, LAYERS[names[-1]][1]), dtype=np.float32))
        return tuple(out)
    return make_inputs


def _layers(names, inputs):
    """[(w, b, activation), ...] from the inputs tuple."""
    return [(inputs[1 + 2 * i], inputs[2 + 2 * i], LAYERS[n][2]) for i, n in enumerate(names)]


def _flops(names, batch, backward) -> float:
    gemm = [2.0 * batch * LAYERS[n][0] * LAYERS[n][1] for n in names]
    if not backward:
        return sum(gemm)
    return sum(g * (1 if i == 0 else 2) for i, g in enumerate(gemm))


def _forward(linear_forward, x, layers, **kw):
    caches, h = [], x
    for w, b, act in layers:
        h, c = linear_forward(h, w, b, act, **kw)
        caches.append(c)
    return h, caches


def _backward(linear_backward, dout, caches):
    """(dw1, db1, dw2, db2, ...) in forward order."""
    grads, g = [], dout
    for i in reversed(range(len(caches))):
        dx, dw, db = linear_backward(g, caches[i], need_dx=i > 0)
        grads[:0] = [dw, db]
        g = dx
    return tuple(grads)


def _np_forward(xp, x, layers):
    """Forward in plain NumPy (xp): (output, [(input, output) per layer])."""
    saved, h = [], x
    for w, b, act in layers:
        y = h @ w.T + b
        if act == "relu":
            y = xp.maximum(y, 0)
        saved.append((h, y))
        h = y
    return h, saved


def _case(name: str) -> list[Case]:
    names, batch, quick = CASES[name]

    def make(direction):
        backward = direction == "bwd"

        def fl(inputs, backend):
            x, layers = inputs[0], _layers(names, inputs)
            if not backward:
                return lambda: _forward(ops.linear_forward, x, layers, backend=backend)[0]
            _, caches = _forward(ops.linear_forward, x, layers, backend=backend)
            dout = inputs[-1]
            return lambda: _backward(ops.linear_backward, dout, caches)

        def np_(xp, inputs):
            x, layers = inputs[0], _layers(names, inputs)
            if not backward:
                return lambda: _np_forward(xp, x, layers)[0]
            _, saved = _np_forward(xp, x, layers)
            dout = inputs[-1]

            def run():
                grads, g = [], dout
                for i in reversed(range(len(layers))):
                    w, _, act = layers[i]
                    h, y = saved[i]
                    dz = g * (y > 0) if act == "relu" else g
                    grads[:0] = [dz.T @ h, dz.sum(axis=0)]
                    if i > 0:
                        g = dz @ w
                return tuple(grads)
            return run

        def torch_(torch, inputs, device):
            F = torch.nn.functional
            x, layers = inputs[0], _layers(names, inputs)

            def forward(layers):
                h = x
                for w, b, act in layers:
                    h = F.linear(h, w, b)
                    h = torch.relu(h) if act == "relu" else h
                return h

            if not backward:
                def run():
                    with torch.no_grad():
                        return forward(layers)
                return run
            layers = [(w.requires_grad_(), b.requires_grad_(), act) for w, b, act in layers]
            params = [p for w, b, _ in layers for p in (w, b)]
            out = forward(layers)
            dout = inputs[-1]
            return lambda: torch.autograd.grad(out, params, dout, retain_graph=True)

        def expected(inputs):
            inputs = tuple(a.astype(np.float64) for a in inputs)
            out, caches = _forward(reference.linear_forward, inputs[0], _layers(names, inputs))
            if not backward:
                return out
            return _backward(reference.linear_backward, inputs[-1], caches)

        shape = f"N{batch} " + " -> ".join([str(LAYERS[names[0]][0])] + [
            f"{LAYERS[n][1]}{' relu' if LAYERS[n][2] else ''}" for n in names])
        return Case(family="linear", name=f"{name}-{direction}", shape=shape,
                    make_inputs=_make_inputs(names, batch, backward), expected=expected, fl=fl, np=np_,
                    torch=torch_, flops=_flops(names, batch, backward), quick=quick, rtol=RTOL)

    return [make("fwd"), make("bwd")]


def cases() -> list[Case]:
    order = sorted(CASES, key=lambda n: not CASES[n][2])  # the quick case first
    return [c for name in order for c in _case(name)]
