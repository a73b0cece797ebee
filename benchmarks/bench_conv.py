"""Convolution benchmarks: fastlayers vs the NumPy im2col reference vs PyTorch CPU.

The issue's layer set (forward, and forward + backward; the first layer of a network
needs no input gradient, so its backward is weight-only, as PyTorch does when the input
does not require grad). GFLOP/s counts the forward's 2*N*K*P*Q*C/groups*R*S per pass.

pytest-benchmark (not collected by the default `pytest`, which only looks in tests/):

    pytest benchmarks/bench_conv.py --benchmark-only [-k resnet]

A plain table, fastlayers vs torch at 1 thread, interleaved runs, medians (for pasting):

    python benchmarks/bench_conv.py --table [--threads 1 2] [--repeat 7] [--reference] [--cpu-clock]

--cpu-clock times 1-thread runs by the thread's CPU time, which other processes taking
the core do not inflate (both libraries compute on the calling thread at 1 thread).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import NamedTuple

import numpy as np
import pytest

import fastlayers as fl
from fastlayers import _cpu, ops, reference


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
    first: bool  # first layer of its network: backward is weight-only

    def out_size(self):
        p = (self.h + 2 * self.pad - self.r) // self.stride + 1
        q = (self.w + 2 * self.pad - self.r) // self.stride + 1
        return p, q

    def flops(self):
        p, q = self.out_size()
        return 2.0 * self.n * self.k * p * q * self.c * self.r * self.r


LAYERS = [
    Layer("lenet5_conv1", 128, 1, 32, 32, 6, 5, 1, 0, True),
    Layer("lenet5_conv2", 128, 6, 14, 14, 16, 5, 1, 0, False),
    Layer("fashion_conv1", 128, 1, 28, 28, 32, 5, 1, 2, True),
    Layer("fashion_conv2", 128, 32, 14, 14, 64, 5, 1, 2, False),
    Layer("vgg_3x3", 32, 64, 56, 56, 64, 3, 1, 1, False),
    Layer("resnet_3x3", 32, 128, 28, 28, 128, 3, 1, 1, False),
    Layer("alexnet_conv1", 16, 3, 227, 227, 96, 11, 4, 0, True),
]

def make_inputs(layer: Layer, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((layer.n, layer.c, layer.h, layer.w), dtype=np.float32)
    w = (rng.standard_normal((layer.k, layer.c, layer.r, layer.r), dtype=np.float32)
         / np.float32(np.sqrt(layer.c * layer.r * layer.r)))
    b = rng.standard_normal(layer.k, dtype=np.float32)
    p, q = layer.out_size()
    dout = rng.standard_normal((layer.n, layer.k, p, q), dtype=np.float32)
    return x, w, b, dout


# --------------------------------------------------------------------------------------
# The timed functions, one pair per backend.
# --------------------------------------------------------------------------------------


def fl_fns(layer, x, w, b, dout, backend=None):
    def fwd():
        return ops.conv2d(x, w, b, layer.stride, layer.pad, backend=backend)

    def fwd_bwd():
        _, cache = ops.conv2d_forward(x, w, b, layer.stride, layer.pad, backend=backend)
        return ops.conv2d_backward(dout, cache, need_dx=not layer.first)

    return fwd, fwd_bwd


def torch_fns(layer, x, w, b, dout):
    import torch

    tx = torch.from_numpy(x).requires_grad_(not layer.first)
    tw = torch.from_numpy(w.copy()).requires_grad_(True)
    tb = torch.from_numpy(b.copy()).requires_grad_(True)
    tdout = torch.from_numpy(dout)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, layer.stride, layer.pad)

    def fwd_bwd():
        tx.grad = tw.grad = tb.grad = None
        out = torch.nn.functional.conv2d(tx, tw, tb, layer.stride, layer.pad)
        out.backward(tdout)

    return fwd, fwd_bwd


def validate(layer, x, w, b, dout):
    """fastlayers against the float64 reference before anything is timed. The reference
    runs on the first two images (quick); the full batch goes through the kernels'
    batch-blocked path, so its output and dx are compared on those two images, and its
    dw with the NCHW path's (itself checked against the reference by tests/test_conv.py)."""
    n = min(layer.n, 2)
    out, cache = ops.conv2d_forward(x, w, b, layer.stride, layer.pad)
    dx, dw, _ = ops.conv2d_backward(dout, cache, need_dx=not layer.first, need_db=False)
    _cpu._conv2d_force_path(1)
    try:
        _, dw_nchw, _ = ops.conv2d_backward(dout, ops.conv2d_forward(x, w, b, layer.stride, layer.pad)[1],
                                            need_dx=False, need_db=False)
    finally:
        _cpu._conv2d_force_path(0)
    np.testing.assert_allclose(dw, dw_nchw, rtol=1e-3, atol=1e-4 * float(np.abs(dw_nchw).max()))
    rout, rcache = reference.conv2d_forward(x[:n].astype(np.float64), w, b, layer.stride, layer.pad)
    rdx, rdw, rdb = reference.conv2d_backward(dout[:n].astype(np.float64), rcache)
    scale = float(np.abs(rout).max())
    np.testing.assert_allclose(out[:n], rout, rtol=1e-4, atol=1e-4 * scale)
    if dx is not None:
        np.testing.assert_allclose(dx[:n], rdx, rtol=1e-4, atol=1e-4 * float(np.abs(rdx).max()))
    _, c2 = ops.conv2d_forward(np.ascontiguousarray(x[:n]), w, b, layer.stride, layer.pad)
    _, dw2, db2 = ops.conv2d_backward(np.ascontiguousarray(dout[:n]), c2, need_dx=False)
    np.testing.assert_allclose(dw2, rdw, rtol=1e-4, atol=1e-4 * float(np.abs(rdw).max()))
    np.testing.assert_allclose(db2, rdb, rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------------------
# pytest-benchmark cases
# --------------------------------------------------------------------------------------

_IDS = [layer.name for layer in LAYERS]


def _run(benchmark, layer, fn, passes, rounds):
    benchmark.extra_info["layer"] = layer.name
    benchmark.extra_info["forward_gflop"] = layer.flops() / 1e9
    result = benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1)
    mean = benchmark.stats.stats.mean if benchmark.stats else None
    if mean:
        benchmark.extra_info["gflops"] = passes * layer.flops() / mean / 1e9
    return result


def _passes(layer, fwd_bwd):
    # forward = 1 pass; backward: dw (+ dx unless the first layer) = 1 or 2 more passes
    return (3 if not layer.first else 2) if fwd_bwd else 1


@pytest.mark.parametrize("layer", LAYERS, ids=_IDS)
@pytest.mark.parametrize("mode", ["forward", "fwd_bwd"])
def test_fastlayers(benchmark, layer, mode):
    x, w, b, dout = make_inputs(layer)
    validate(layer, x, w, b, dout)
    fwd, fwd_bwd = fl_fns(layer, x, w, b, dout)
    benchmark.group = f"conv {layer.name} {mode}"
    _run(benchmark, layer, fwd if mode == "forward" else fwd_bwd, _passes(layer, mode == "fwd_bwd"), 10)


@pytest.mark.parametrize("layer", LAYERS, ids=_IDS)
@pytest.mark.parametrize("mode", ["forward", "fwd_bwd"])
def test_reference(benchmark, layer, mode):
    x, w, b, dout = make_inputs(layer)
    fwd, fwd_bwd = fl_fns(layer, x, w, b, dout, backend="reference")
    benchmark.group = f"conv {layer.name} {mode}"
    _run(benchmark, layer, fwd if mode == "forward" else fwd_bwd, _passes(layer, mode == "fwd_bwd"), 2)


@pytest.mark.parametrize("layer", LAYERS, ids=_IDS)
@pytest.mark.parametrize("mode", ["forward", "fwd_bwd"])
def test_torch(benchmark, layer, mode):
    pytest.importorskip("torch")
    x, w, b, dout = make_inputs(layer)
    fwd, fwd_bwd = torch_fns(layer, x, w, b, dout)
    benchmark.group = f"conv {layer.name} {mode}"
    _run(benchmark, layer, fwd if mode == "forward" else fwd_bwd, _passes(layer, mode == "fwd_bwd"), 10)


# --------------------------------------------------------------------------------------
# Table mode
# --------------------------------------------------------------------------------------


def _time(fn, clock=time.perf_counter):
    t0 = clock()
    fn()
    return (clock() - t0) * 1e3


def table(threads=(1,), repeat=7, with_reference=False, only=None, cpu_clock=False, file=sys.stdout):
    try:
        import torch
    except ImportError:
        torch = None
    saved_threads = fl.get_num_threads() if hasattr(fl, "get_num_threads") else None
    layers = [layer for layer in LAYERS if not only or any(o in layer.name for o in only)]
    for nt in threads:
        fl.set_num_threads(nt)
        if torch is not None:
            torch.set_num_threads(nt)
        # With one thread, both libraries compute on the calling thread: its CPU time
        # is immune to other processes taking the core (wall time is not).
        clock = time.thread_time if (cpu_clock and nt == 1) else time.perf_counter
        print(f"\nconv2d, {nt} thread(s), median of {repeat} interleaved runs, ms "
              f"({'thread CPU time' if clock is time.thread_time else 'wall time'}; "
              f"fwd+bwd: weight-only backward for first layers *)", file=file)
        head = f"{'layer':16s} {'fl fwd':>8s} {'GF/s':>6s} {'fl f+b':>8s} {'GF/s':>6s}"
        if torch is not None:
            head += f" {'th fwd':>8s} {'th f+b':>8s} {'fwd x':>6s} {'f+b x':>6s}"
        if with_reference:
            head += f" {'ref fwd':>8s} {'ref f+b':>8s} {'vs ref':>7s}"
        print(head, file=file)
        ratios = []
        for layer in layers:
            x, w, b, dout = make_inputs(layer)
            validate(layer, x, w, b, dout)
            fns = {"fl": fl_fns(layer, x, w, b, dout)}
            if torch is not None:
                fns["th"] = torch_fns(layer, x, w, b, dout)
            for f, fb in fns.values():  # warm-up (workspace, oneDNN primitive caches)
                f()
                fb()
            times = {key: ([], []) for key in fns}
            for _ in range(repeat):
                for key, (f, fb) in fns.items():
                    times[key][0].append(_time(f, clock))
                    times[key][1].append(_time(fb, clock))
            med = {key: (statistics.median(a), statistics.median(bb)) for key, (a, bb) in times.items()}
            passes = _passes(layer, True)
            flf, flfb = med["fl"]
            line = (f"{layer.name + (' *' if layer.first else ''):16s} {flf:8.2f} "
                    f"{layer.flops() / flf / 1e6:6.1f} {flfb:8.2f} {passes * layer.flops() / flfb / 1e6:6.1f}")
            if torch is not None:
                thf, thfb = med["th"]
                ratios.append(thfb / flfb)
                line += f" {thf:8.2f} {thfb:8.2f} {thf / flf:6.2f} {thfb / flfb:6.2f}"
            if with_reference:
                rf, rfb = fl_fns(layer, x, w, b, dout, backend="reference")
                tr, trb = _time(rf), _time(rfb)
                line += f" {tr:8.1f} {trb:8.1f} {trb / flfb:7.1f}"
            print(line, file=file, flush=True)
        if ratios:
            gm = float(np.exp(np.mean(np.log(ratios))))
            print(f"geometric mean of torch/fastlayers (fwd+bwd): {gm:.2f}x (> 1: fastlayers faster)", file=file)
    if saved_threads is not None:
        fl.set_num_threads(saved_threads)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", action="store_true", help="print the fastlayers vs torch table")
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--reference", action="store_true", help="also time the NumPy reference once")
    ap.add_argument("--only", nargs="*", help="substrings of layer names to run")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="time 1-thread runs by the thread's CPU time (robust on a busy machine)")
    args = ap.parse_args(argv)
    if not args.table:
        ap.print_help()
        return 0
    table(tuple(args.threads), args.repeat, args.reference, args.only, args.cpu_clock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
