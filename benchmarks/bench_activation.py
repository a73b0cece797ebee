"""Element-wise kernels (activations, residual add, dropout): GB/s of the fastlayers CPU
kernels vs the NumPy reference and PyTorch CPU, forward and backward, one thread.

    pytest benchmarks/bench_activation.py --benchmark-columns=median,rounds
    pytest benchmarks/bench_activation.py -k "relu and 16M"

Sizes: a conv activation map (128, 32, 28, 28) = 3.2 M elements, and 16 M elements (64 MB
per array: well beyond the caches). Bytes counted are the bytes an op must move: forward
reads x and writes y (8 B/element; relu also writes its 1-bit mask), backward reads dout
and what the cache keeps (x or y: 4 B, or the relu mask: 1/8 B) and writes dx. Outputs
are freshly allocated by every call, as in a network (the first touch of a new 64 MB
array costs page faults, for torch too). Every case is validated against the reference
before it is timed. Compare the GB/s with the machine's STREAM bandwidth (~20 GB/s on
one core here; the issue's target is >= 70% of it).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import ops
from fastlayers import reference as ref

SHAPES = {"128x32x28x28": (128, 32, 28, 28), "16M": (16 * 1024 * 1024,)}

# name: (fastlayers op, kwargs, torch forward, torch backward(grad, x, y), bwd reads mask?)
OPS = {
    "relu": ("relu", {}, lambda F, t, x: t.relu(x),
             lambda t, g, x, y: t.ops.aten.threshold_backward(g, y, 0), True),
    "leaky_relu": ("leaky_relu", {}, lambda F, t, x: F.leaky_relu(x, 0.01),
                   lambda t, g, x, y: t.ops.aten.leaky_relu_backward(g, x, 0.01, False), True),
    "sigmoid": ("sigmoid", {}, lambda F, t, x: t.sigmoid(x),
                lambda t, g, x, y: t.ops.aten.sigmoid_backward(g, y), False),
    "tanh": ("tanh", {}, lambda F, t, x: t.tanh(x), lambda t, g, x, y: t.ops.aten.tanh_backward(g, y), False),
    "gelu": ("gelu", {}, lambda F, t, x: F.gelu(x), lambda t, g, x, y: t.ops.aten.gelu_backward(g, x), False),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}, lambda F, t, x: F.gelu(x, approximate="tanh"),
                  lambda t, g, x, y: t.ops.aten.gelu_backward(g, x, approximate="tanh"), False),
    "softplus": ("softplus", {}, lambda F, t, x: F.softplus(x),
                 lambda t, g, x, y: t.ops.aten.softplus_backward(g, x, 1.0, 20.0), False),
    "elu": ("elu", {}, lambda F, t, x: F.elu(x),
            lambda t, g, x, y: t.ops.aten.elu_backward(g, 1.0, 1.0, 1.0, False, x), False),
}

IMPLS = ["fastlayers", "reference", "torch"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = fl.get_num_threads()
    fl.set_num_threads(1)
    yield
    fl.set_num_threads(n)


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _inputs(shape):
    rng = np.random.default_rng(0)
    return (3 * rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32))


def _rounds(impl, n):
    return 3 if impl == "reference" and n > 4_000_000 else 7


def _close(a, b, atol=2e-6):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=2e-5, atol=atol)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("op", list(OPS))
def test_activation(benchmark, op, shape_name, direction, impl):
    name, kw, t_fwd, t_bwd, masked = OPS[op]
    x, dout = _inputs(SHAPES[shape_name])
    n = x.size
    fwd = getattr(ops, f"{name}_forward")
    bwd = getattr(ops, f"{name}_backward")
    y_ref, cache_ref = fwd(x, **kw, backend="reference")
    dx_ref = bwd(dout, cache_ref)[0]

    if impl == "torch":
        torch = _torch()
        F = torch.nn.functional
        tx, tg = torch.from_numpy(x), torch.from_numpy(dout)
        ty = t_fwd(F, torch, tx)
        # torch's tanh-GELU loses its left tail to cancellation (1 + tanh(u) near 0): 1e-5
        _close(ty.numpy(), y_ref, atol=1e-5)
        _close(t_bwd(torch, tg, tx, ty).numpy(), dx_ref, atol=1e-5)
        run = (lambda: t_fwd(F, torch, tx)) if direction == "forward" else (lambda: t_bwd(torch, tg, tx, ty))
    else:
        backend = "cpu" if impl == "fastlayers" else "reference"
        y, cache = fwd(x, **kw, backend=backend)
        _close(y, y_ref)
        _close(bwd(dout, cache)[0], dx_ref)
        run = (lambda: fwd(x, **kw, backend=backend)) if direction == "forward" else (lambda: bwd(dout, cache))

    mask_bytes = n / 8 if masked and impl == "fastlayers" else 0  # fastlayers' 1-bit relu mask
    if direction == "forward":
        nbytes = 8 * n + mask_bytes
    else:
        nbytes = 8 * n + (mask_bytes or 4 * n)
    benchmark.group = f"{op} {shape_name} {direction}"
    benchmark.pedantic(run, rounds=_rounds(impl, n), iterations=1, warmup_rounds=1)
    benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.median / 1e9, 2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_add(benchmark, shape_name, impl):
    a, b = _inputs(SHAPES[shape_name])
    expected = a + b
    if impl == "torch":
        torch = _torch()
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        np.testing.assert_array_equal(torch.add(ta, tb).numpy(), expected)
        run = lambda: torch.add(ta, tb)  # noqa: E731
    else:
        backend = "cpu" if impl == "fastlayers" else "reference"
        np.testing.assert_array_equal(ops.add(a, b, backend=backend), expected)
        run = lambda: ops.add(a, b, backend=backend)  # noqa: E731
    benchmark.group = f"add {shape_name}"
    benchmark.pedantic(run, rounds=_rounds(impl, a.size), iterations=1, warmup_rounds=1)
    benchmark.extra_info["GB/s"] = round(12 * a.size / benchmark.stats.stats.median / 1e9, 2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_dropout(benchmark, shape_name, direction, impl):
    """Dropout p=0.5. torch draws a Bernoulli mask (forward) and multiplies by the saved
    mask (backward); fastlayers hashes (seed, index) in both directions."""
    x, dout = _inputs(SHAPES[shape_name])
    y_ref, cache_ref = ops.dropout_forward(x, 0.5, seed=1, backend="reference")
    if impl == "torch":
        torch = _torch()
        tx, tg = torch.from_numpy(x), torch.from_numpy(dout)
        ty, tmask = torch.ops.aten.native_dropout(tx, 0.5, True)
        assert abs(float(tmask.float().mean()) - 0.5) < 0.01
        run = ((lambda: torch.ops.aten.native_dropout(tx, 0.5, True)) if direction == "forward"
               else (lambda: torch.ops.aten.native_dropout_backward(tg, tmask, 2.0)))
    else:
        backend = "cpu" if impl == "fastlayers" else "reference"
        y, cache = ops.dropout_forward(x, 0.5, seed=1, backend=backend)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(ops.dropout_backward(dout, cache)[0], ops.dropout_backward(dout, cache_ref)[0])
        run = ((lambda: ops.dropout_forward(x, 0.5, seed=1, backend=backend)) if direction == "forward"
               else (lambda: ops.dropout_backward(dout, cache)))
    benchmark.group = f"dropout {shape_name} {direction}"
    benchmark.pedantic(run, rounds=_rounds(impl, x.size), iterations=1, warmup_rounds=1)
    benchmark.extra_info["GB/s"] = round(8 * x.size / benchmark.stats.stats.median / 1e9, 2)
