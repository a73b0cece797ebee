"""Linear layers of the MNIST MLP 784 -> 512 -> 10 at batch 128: GFLOP/s of the fastlayers
CPU kernels vs the NumPy reference and PyTorch CPU, forward and forward+backward, one
thread.

    pytest benchmarks/bench_linear.py --benchmark-columns=median,rounds

Cases: each layer alone (784->512 with the fused ReLU, 512->10 without) and the whole
two-layer MLP. Forward counts 2*N*in*out flops per layer, forward+backward three times
that (dx = dz @ w and dw = dz^T @ x are GEMMs of the same size; the first layer's dx
is skipped, need_dx=False, as torch skips it for an input without requires_grad).
Every case is validated against the reference before it is timed.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import ops

BATCH = 128
LAYERS = {"784-512-relu": (784, 512, "relu"), "512-10": (512, 10, None)}
CASES = ["784-512-relu", "512-10", "mlp"]
IMPLS = ["fastlayers", "reference", "torch"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = fl.get_num_threads()
    fl.set_num_threads(1)
    yield
    fl.set_num_threads(n)


def _params(names):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, LAYERS[names[0]][0]), dtype=np.float32)
    layers = []
    for name in names:
        fan_in, fan_out, act = LAYERS[name]
        w = (rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32)
        b = rng.standard_normal(fan_out).astype(np.float32)
        layers.append((w, b, act))
    return x, layers


def _flops(names, train):
    fwd = sum(2 * BATCH * LAYERS[n][0] * LAYERS[n][1] for n in names)
    if not train:
        return fwd
    # backward: dw for every layer, dx for all but the first
    bwd = sum(2 * BATCH * LAYERS[n][0] * LAYERS[n][1] * (1 if i == 0 else 2) for i, n in enumerate(names))
    return fwd + bwd


def _ops_step(x, layers, dout, backend, train):
    """Forward (and backward) through the layers with fastlayers.ops; returns the
    output and the gradients [(dw, db), ...] from the last layer back."""
    caches, h = [], x
    for w, b, act in layers:
        h, c = ops.linear_forward(h, w, b, act, backend=backend)
        caches.append(c)
    if not train:
        return h, []
    grads, g = [], dout
    for i in reversed(range(len(layers))):
        dx, dw, db = ops.linear_backward(g, caches[i], need_dx=i > 0)
        grads.append((dw, db))
        g = dx
    return h, grads


def _torch_step(torch, tx, tlayers, tdout, train):
    F = torch.nn.functional
    if not train:
        with torch.no_grad():
            h = tx
            for w, b, act in tlayers:
                h = F.linear(h, w, b)
                h = torch.relu(h) if act == "relu" else h
            return h, []
    for w, b, _ in tlayers:
        w.grad = None
        b.grad = None
    h = tx
    for w, b, act in tlayers:
        h = F.linear(h, w, b)
        h = torch.relu(h) if act == "relu" else h
    h.backward(tdout)
    return h, [(w.grad, b.grad) for w, b, _ in reversed(tlayers)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("train", [False, True], ids=["forward", "forward+backward"])
@pytest.mark.parametrize("case", CASES)
def test_linear(benchmark, case, train, impl):
    names = list(LAYERS) if case == "mlp" else [case]
    x, layers = _params(names)
    dout = np.random.default_rng(1).standard_normal((BATCH, LAYERS[names[-1]][1]), dtype=np.float32)
    y_ref, g_ref = _ops_step(x, layers, dout, "reference", train)

    if impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
        tx = torch.from_numpy(x)
        tlayers = [(torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_(), a) for w, b, a in layers]
        tdout = torch.from_numpy(dout)
        y, g = _torch_step(torch, tx, tlayers, tdout, train)
        y, g = y.detach().numpy(), [(dw.numpy(), db.numpy()) for dw, db in g]
        run = lambda: _torch_step(torch, tx, tlayers, tdout, train)  # noqa: E731
    else:
        backend = "cpu" if impl == "fastlayers" else "reference"
        y, g = _ops_step(x, layers, dout, backend, train)
        run = lambda: _ops_step(x, layers, dout, backend, train)  # noqa: E731
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    for (dw, db), (dw_r, db_r) in zip(g, g_ref):
        np.testing.assert_allclose(dw, dw_r, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(db, db_r, rtol=1e-4, atol=1e-3)

    benchmark.group = f"linear {case} {'forward+backward' if train else 'forward'}"
    benchmark.pedantic(run, rounds=15, iterations=1, warmup_rounds=2)
    benchmark.extra_info["GFLOP/s"] = round(_flops(names, train) / benchmark.stats.stats.median / 1e9, 1)
