"""The named cases of ``fastlayers bench``, grouped by op family.

A :class:`Case` holds a way to make its inputs, one runner factory per backend and a
check against the reference. ``Case.runners[backend](inputs)`` returns a zero-argument
callable computing the case; its return value (or, when it returns None, the array
``Case.result(inputs)``) is what :meth:`Case.check` compares with the reference oracle.

Families in this first cut: ``gemm`` (the shapes of :mod:`fastlayers.bench.gemm`),
``conv2d`` (forward), ``pool`` (max_pool2d), ``activation`` (relu) and ``loss``
(softmax_cross_entropy). Each case is ``quick`` (small, what ``--quick`` runs) or full.
Backends: ``fastlayers`` (the C++ kernels), ``numpy`` (a plain NumPy/BLAS formulation,
where one exists), ``reference`` (``fastlayers.reference``) and ``torch`` (PyTorch CPU,
when importable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench import gemm as _gemm

__all__ = ["ALL_BACKENDS", "Case", "Mismatch", "all_cases", "torch_available"]

ALL_BACKENDS = ("fastlayers", "numpy", "reference", "torch")


class Mismatch(AssertionError):
    """A backend's result differs from the reference beyond the tolerance."""


def torch_available() -> bool:
    try:
        import torch  # noqa: F401, PLC0415 - optional peer
    except ImportError:
        return False
    return True


@dataclass
class Case:
    """One benchmark case. ``flops`` (work, for GFLOP/s) or else ``nbytes`` (memory
    traffic, for GB/s) sets the rate reported."""

    name: str
    family: str
    shape: str
    make_inputs: Callable[[], Any]
    runners: dict[str, Callable[[Any], Callable[[], Any]]]
    check: Callable[[Any, Any], None]  # (inputs, result) -> None or raise Mismatch
    flops: float = 0.0
    nbytes: float = 0.0
    quick: bool = False
    result: Callable[[Any], Any] = field(default=lambda inputs: None)

    @property
    def id(self) -> str:
        """'family/name', what --filter searches."""
        return f"{self.family}/{self.name}"


def _allclose(got, expected, what: str, rtol: float = 1e-4) -> None:
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise Mismatch(f"{what}: shape {got.shape}, expected {expected.shape}")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    err = np.abs(got - expected)
    tol = rtol * np.abs(expected) + rtol * max(scale, 1e-30)
    bad = ~(err <= tol)
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.where(bad, 1, 0))), err.shape) if err.ndim else ()
        raise Mismatch(f"{what}: {int(bad.sum())} of {err.size} elements off; e.g. at {tuple(int(j) for j in i)} "
                       f"got {float(got[i])!r}, expected {float(expected[i])!r}")


def _torch_threads_note():  # torch is imported lazily, only when its runner is made
    import torch  # noqa: PLC0415

    return torch


# --- gemm ------------------------------------------------------------------------------

def _gemm_runner(backend: str):
    def factory(inputs: _gemm.GemmInputs):
        if backend == "torch":
            torch = _torch_threads_note()
            ta, tb = torch.from_numpy(inputs.a), torch.from_numpy(inputs.b)
            opa = ta.T if inputs.case.trans_a else ta
            opb = tb.T if inputs.case.trans_b else tb
            tout = torch.from_numpy(inputs.out)

            def run():
                torch.matmul(opa, opb, out=tout)
        else:
            run = _gemm.make_runner(backend, inputs)
        inputs.out.fill(np.nan)  # the validation call must write every element
        return run

    return factory


def _gemm_check(inputs: _gemm.GemmInputs, result) -> None:
    try:
        _gemm.check_result(inputs, inputs.out if result is None else result)
    except _gemm.GemmMismatch as e:
        raise Mismatch(str(e)) from None


def _gemm_cases() -> list[Case]:
    quick = {"square-256", "mlp-fc1-fwd"}
    out = []
    for c in _gemm.CASES:
        backends = list(c.backends()) + ["torch"]
        out.append(Case(
            name=c.name, family="gemm", shape=c.shape,
            make_inputs=lambda c=c: _gemm.make_inputs(c),
            runners={b: _gemm_runner(b) for b in backends},
            check=_gemm_check, flops=float(c.flops), quick=c.name in quick,
        ))
    return out


# --- conv2d forward --------------------------------------------------------------------

# (name, n, c, h, w, k, r, stride, pad, quick): layers of benchmarks/bench_conv.py, and
# a batch-8 LeNet layer for --quick.
_CONV = [
    ("lenet5_conv2-b8", 8, 6, 14, 14, 16, 5, 1, 0, True),
    ("lenet5_conv2", 128, 6, 14, 14, 16, 5, 1, 0, False),
    ("fashion_conv2", 128, 32, 14, 14, 64, 5, 1, 2, False),
    ("resnet_3x3", 32, 128, 28, 28, 128, 3, 1, 1, False),
]
_CONV_CHECK_IMAGES = 2  # the float64 reference runs on the first images only


def _conv_case(name, n, c, h, w, k, r, stride, pad, quick) -> Case:
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - r) // stride + 1

    def make_inputs():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        wt = rng.standard_normal((k, c, r, r), dtype=np.float32) / np.float32(math.sqrt(c * r * r))
        b = rng.standard_normal(k, dtype=np.float32)
        return x, wt, b

    def fl(backend):
        def factory(inp):
            x, wt, b = inp
            return lambda: ops.conv2d(x, wt, b, stride, pad, backend=backend)
        return factory

    def torch_factory(inp):
        torch = _torch_threads_note()
        tx, tw, tb = (torch.from_numpy(a) for a in inp)
        f = torch.nn.functional.conv2d

        def run():
            with torch.no_grad():
                return f(tx, tw, tb, stride, pad).numpy()
        return run

    def check(inp, result):
        x, wt, b = inp
        m = min(n, _CONV_CHECK_IMAGES)
        expected = reference.conv2d(x[:m].astype(np.float64), wt.astype(np.float64), b.astype(np.float64),
                                    stride, pad)
        _allclose(np.asarray(result)[:m], expected, f"conv2d {name}")

    return Case(name=name, family="conv2d", shape=f"N{n} C{c} {h}x{w} K{k} {r}x{r} s{stride} p{pad}",
                make_inputs=make_inputs,
                runners={"fastlayers": fl(None), "reference": fl("reference"), "torch": torch_factory},
                check=check, flops=2.0 * n * k * p * q * c * r * r, quick=quick)


# --- max_pool2d, relu, softmax_cross_entropy ------------------------------------------

def _pool_case(name, n, c, h, w, quick) -> Case:
    def make_inputs():
        return (np.random.default_rng(0).standard_normal((n, c, h, w), dtype=np.float32),)

    def fl(backend):
        return lambda inp: (lambda: ops.max_pool2d(inp[0], 2, 2, backend=backend))

    def torch_factory(inp):
        torch = _torch_threads_note()
        tx = torch.from_numpy(inp[0])
        f = torch.nn.functional.max_pool2d

        def run():
            with torch.no_grad():
                return f(tx, 2, 2).numpy()
        return run

    def numpy_factory(inp):
        x = inp[0]
        v = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
        return lambda: v.max(axis=(3, 5))

    def check(inp, result):
        _allclose(result, reference.max_pool2d(inp[0], 2, 2), f"max_pool2d {name}", rtol=0.0)

    nbytes = 4.0 * n * c * (h * w + (h // 2) * (w // 2))
    return Case(name=name, family="pool", shape=f"N{n} C{c} {h}x{w} k2 s2", make_inputs=make_inputs,
                runners={"fastlayers": fl(None), "numpy": numpy_factory, "reference": fl("reference"),
                         "torch": torch_factory},
                check=check, nbytes=nbytes, quick=quick)


def _relu_case(name, size, quick) -> Case:
    def make_inputs():
        return (np.random.default_rng(0).standard_normal(size, dtype=np.float32),)

    def fl(backend):
        return lambda inp: (lambda: ops.relu(inp[0], backend=backend))

    def numpy_factory(inp):
        x = inp[0]
        out = np.empty_like(x)
        return lambda: np.maximum(x, np.float32(0), out=out)

    def torch_factory(inp):
        torch = _torch_threads_note()
        tx = torch.from_numpy(inp[0])
        return lambda: torch.relu(tx).numpy()

    def check(inp, result):
        _allclose(result, np.maximum(inp[0], 0), f"relu {name}", rtol=0.0)

    return Case(name=name, family="activation", shape=f"{size} floats", make_inputs=make_inputs,
                runners={"fastlayers": fl(None), "numpy": numpy_factory, "reference": fl("reference"),
                         "torch": torch_factory},
                check=check, nbytes=8.0 * size, quick=quick)


def _sce_case(name, n, c, quick) -> Case:
    def make_inputs():
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, n, dtype=np.int64)

    def fl(backend):
        def factory(inp):
            logits, labels = inp
            return lambda: np.float64(ops.softmax_cross_entropy(logits, labels, backend=backend))
        return factory

    def torch_factory(inp):
        torch = _torch_threads_note()
        tl, ty = torch.from_numpy(inp[0]), torch.from_numpy(inp[1])
        f = torch.nn.functional.cross_entropy

        def run():
            with torch.no_grad():
                return np.float64(f(tl, ty).item())
        return run

    def check(inp, result):
        logits, labels = inp
        l64 = logits.astype(np.float64)
        mx = l64.max(axis=1, keepdims=True)
        lse = np.log(np.exp(l64 - mx).sum(axis=1)) + mx[:, 0]
        _allclose(result, (lse - l64[np.arange(n), labels]).mean(), f"softmax_cross_entropy {name}")

    return Case(name=name, family="loss", shape=f"N{n} C{c}", make_inputs=make_inputs,
                runners={"fastlayers": fl(None), "reference": fl("reference"), "torch": torch_factory},
                check=check, nbytes=4.0 * n * c + 8.0 * n, quick=quick)


def all_cases() -> list[Case]:
    """Every case, in report order (families, then sizes)."""
    cases = _gemm_cases()
    cases += [_conv_case(*spec) for spec in _CONV]
    cases += [_pool_case("max_pool2d-small", 8, 16, 28, 28, True),
              _pool_case("max_pool2d-vgg", 32, 64, 112, 112, False)]
    cases += [_relu_case("relu-64k", 1 << 16, True), _relu_case("relu-16m", 1 << 24, False)]
    cases += [_sce_case("softmax_ce-128x10", 128, 10, True), _sce_case("softmax_ce-1024x1000", 1024, 1000, False)]
    return cases
