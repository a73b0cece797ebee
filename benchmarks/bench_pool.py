"""Pooling benchmarks: fastlayers vs the NumPy reference vs PyTorch CPU (NCHW and channels-last).

    python -m pytest benchmarks/bench_pool.py --benchmark-only            # pytest-benchmark
    python -m pytest benchmarks/bench_pool.py --benchmark-only -k "max_fwd and not ref"
    python benchmarks/bench_pool.py --table                               # interleaved table
    python benchmarks/bench_pool.py --table --threads 1,2 --rounds 31

Cases (the issue's two 2x2/2 poolings, plus the ResNet stem's 3x3/2 pad 1 and two global
average pools), each op timed for every contender:

    max_fwd    max_pool2d_forward: out + argmax for backward (PyTorch: return_indices=True)
    max_infer  max_pool2d: out only (PyTorch: F.max_pool2d under no_grad)
    max_bwd    max_pool2d_backward (PyTorch: aten.max_pool2d_with_indices_backward)
    avg_fwd    avg_pool2d_forward            avg_bwd   avg_pool2d_backward
    gap_fwd    global_avg_pool2d_forward     gap_bwd   global_avg_pool2d_backward

Bandwidth: bytes = the arrays the op must read and write once, counted as fastlayers moves
them: input read + output written (+ the int32 argmax written by max_fwd / read by
max_bwd). The same byte count is used for every contender, so GB/s compares times; note
that PyTorch moves more (int64 indices). Write-allocate reads of the outputs are not
counted. The yardstick is a rough probe, not STREAM: a 1-thread NumPy copy (np.copyto,
read + write counted). The table times one per row, of the op's own byte count and in
the same interleaved rounds ("copy GB/s", so it sees the same cache residency and the
same neighbours' load; "% copy" = fastlayers' GB/s / copy's), and prints a 64 MiB copy at
the start; pytest mode puts the 64 MiB figure in extra_info (probe_gbs, pct_probe). The
issue's STREAM triad figure for this machine is about 20 GB/s on one core and 27 on two.
Working sets under the 32 MiB L3 (the (128, 32, 28, 28) case) can run above DRAM rate.

Every contender is validated against the NumPy reference before it is timed. The table
times interleaved rounds (each round runs every contender once, in a rotated order, so
drift and other load hit all alike) and prints medians; the reference, being slow, runs
in the first --ref-rounds rounds only. Thread counts are set for fastlayers and PyTorch
alike (default 1: the machine is shared; 2-thread timings collapse when another process
holds a core).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from dataclasses import dataclass

# Script mode measures one thread: keep NumPy's OpenBLAS from starting threads that spin
# on the other core (set before NumPy loads; no effect under pytest, which loaded it).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fastlayers as fl  # noqa: E402
from fastlayers import ops, reference as ref  # noqa: E402

try:  # optional: PyTorch is a comparison, not a dependency
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple  # (N, C, H, W)
    kernel: int = 2
    stride: int = 2
    padding: int = 0
    global_pool: bool = False

    @property
    def out_shape(self):
        n, c, h, w = self.shape
        if self.global_pool:
            return (n, c)
        oh = (h + 2 * self.padding - self.kernel) // self.stride + 1
        ow = (w + 2 * self.padding - self.kernel) // self.stride + 1
        return (n, c, oh, ow)

    @property
    def ops(self):
        return ("gap_fwd", "gap_bwd") if self.global_pool else (
            "max_fwd", "max_infer", "max_bwd", "avg_fwd", "avg_bwd")

    def bytes(self, op: str) -> int:
        x = 4 * int(np.prod(self.shape))
        out = 4 * int(np.prod(self.out_shape))
        idx = out if op in ("max_fwd", "max_bwd") else 0  # int32 argmax
        return x + out + idx

    def label(self):
        if self.global_pool:
            return f"{self.name} {self.shape}"
        k, s, p = self.kernel, self.stride, self.padding
        return f"{self.name} {k}x{k}/{s}" + (f" p{p}" if p else "") + f" {self.shape}"


CASES = [
    Case("fashion", (128, 32, 28, 28)),
    Case("vgg", (32, 64, 56, 56)),
    Case("stem", (8, 64, 112, 112), kernel=3, stride=2, padding=1),
    Case("gap-resnet", (128, 512, 7, 7), global_pool=True),
    Case("gap-big", (32, 64, 56, 56), global_pool=True),
]

# fastlayers: the functional API (fastlayers.ops); fl_kernel: its C++ kernel alone, on
# preallocated outputs; reference: the NumPy reference; torch / torch_cl: PyTorch CPU on
# NCHW / channels-last (torch.channels_last) tensors.
CONTENDERS = ("fastlayers", "fl_kernel", "reference", "torch", "torch_cl")


@functools.lru_cache(maxsize=2)
def _data(case: Case):
    """Input, upstream gradient and the reference's outputs for a case (validated once)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.shape).astype(np.float32)
    dout = rng.standard_normal(case.out_shape).astype(np.float32)
    expect = {}
    if case.global_pool:
        out, cache = ref.global_avg_pool2d_forward(x)
        expect["gap_fwd"] = out
        expect["gap_bwd"] = ref.global_avg_pool2d_backward(dout, cache)[0]
    else:
        args = (case.kernel, case.stride, case.padding)
        out, cache = ref.max_pool2d_forward(x, *args)
        expect["max_fwd"] = expect["max_infer"] = out
        expect["max_bwd"] = ref.max_pool2d_backward(dout, cache)[0]
        out, cache = ref.avg_pool2d_forward(x, *args)
        expect["avg_fwd"] = out
        expect["avg_bwd"] = ref.avg_pool2d_backward(dout, cache)[0]
    return x, dout, expect


def _fastlayers(case: Case, op: str, x, dout, backend=None):
    """A no-argument callable running `op` on fastlayers (or its reference backend)."""
    a = (case.kernel, case.stride, case.padding)
    if op == "max_fwd":
        return lambda: ops.max_pool2d_forward(x, *a, backend=backend)[0]
    if op == "max_infer":
        return lambda: ops.max_pool2d(x, *a, backend=backend)
    if op == "max_bwd":
        cache = ops.max_pool2d_forward(x, *a, backend=backend)[1]
        return lambda: ops.max_pool2d_backward(dout, cache)[0]
    if op == "avg_fwd":
        return lambda: ops.avg_pool2d_forward(x, *a, backend=backend)[0]
    if op == "avg_bwd":
        cache = ops.avg_pool2d_forward(x, *a, backend=backend)[1]
        return lambda: ops.avg_pool2d_backward(dout, cache)[0]
    if op == "gap_fwd":
        return lambda: ops.global_avg_pool2d_forward(x, backend=backend)[0]
    if op == "gap_bwd":
        cache = ops.global_avg_pool2d_forward(x, backend=backend)[1]
        return lambda: ops.global_avg_pool2d_backward(dout, cache)[0]
    raise ValueError(op)


def _kernel(case: Case, op: str, x, dout):
    """The C++ kernel alone (fastlayers._cpu, outputs allocated once): what the functional
    API costs beyond it is validation and a fresh output array per call."""
    from fastlayers import _cpu

    g = (case.kernel, case.kernel, case.stride, case.stride, case.padding, case.padding)
    out = np.empty(case.out_shape, np.float32)
    dx = np.empty(case.shape, np.float32)
    if op in ("max_fwd", "max_infer", "max_bwd"):
        argmax = np.empty(case.out_shape, np.int32)
        _cpu.max_pool2d_forward(out, argmax, x, *g)
    if op == "max_fwd":
        return lambda: (_cpu.max_pool2d_forward(out, argmax, x, *g), out)[1]
    if op == "max_infer":
        return lambda: (_cpu.max_pool2d_forward(out, None, x, *g), out)[1]
    if op == "max_bwd":
        return lambda: (_cpu.max_pool2d_backward(dx, dout, argmax, *g), dx)[1]
    if op == "avg_fwd":
        return lambda: (_cpu.avg_pool2d_forward(out, x, *g), out)[1]
    if op == "avg_bwd":
        return lambda: (_cpu.avg_pool2d_backward(dx, dout, *g), dx)[1]
    if op == "gap_fwd":
        return lambda: (_cpu.global_avg_pool2d_forward(out, x), out)[1]
    if op == "gap_bwd":
        return lambda: (_cpu.global_avg_pool2d_backward(dx, dout), dx)[1]
    raise ValueError(op)


def _torch(case: Case, op: str, x, dout, channels_last: bool):
    """PyTorch's CPU kernels for `op`, NCHW or channels-last; returns a callable giving NCHW numpy."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    tx = torch.from_numpy(x).contiguous(memory_format=fmt)
    k, s, p = [case.kernel] * 2, [case.stride] * 2, [case.padding] * 2
    if case.global_pool:
        tg = torch.from_numpy(dout)[:, :, None, None].contiguous(memory_format=fmt)
    else:
        tg = torch.from_numpy(dout).contiguous(memory_format=fmt)
    aten = torch.ops.aten

    def result(t):
        return lambda: t().contiguous().numpy()

    if op == "max_fwd":
        return result(lambda: F.max_pool2d(tx, k, s, p, return_indices=True)[0])
    if op == "max_infer":
        return result(lambda: F.max_pool2d(tx, k, s, p))
    if op == "max_bwd":
        idx = F.max_pool2d(tx, k, s, p, return_indices=True)[1]
        return result(lambda: aten.max_pool2d_with_indices_backward(tg, tx, k, s, p, [1, 1], False, idx))
    if op == "avg_fwd":
        return result(lambda: F.avg_pool2d(tx, k, s, p))
    if op == "avg_bwd":
        return result(lambda: aten.avg_pool2d_backward(tg, tx, k, s, p, False, True, None))
    if op == "gap_fwd":
        return result(lambda: F.adaptive_avg_pool2d(tx, 1)[:, :, 0, 0])
    if op == "gap_bwd":
        return result(lambda: aten._adaptive_avg_pool2d_backward(tg, tx))
    raise ValueError(op)


def make_runner(case: Case, op: str, contender: str):
    """A validated no-argument callable for one (case, op, contender); the result it
    returns is ignored when timing. Raises AssertionError on a mismatch."""
    x, dout, expect = _data(case)
    if contender == "fastlayers":
        run = _fastlayers(case, op, x, dout)
    elif contender == "fl_kernel":
        run = _kernel(case, op, x, dout)
    elif contender == "reference":
        run = _fastlayers(case, op, x, dout, backend="reference")
    elif contender in ("torch", "torch_cl"):
        if torch is None:
            raise ModuleNotFoundError("torch is not installed")
        run = _torch(case, op, x, dout, channels_last=contender == "torch_cl")
    else:
        raise ValueError(contender)
    got = run()
    np.testing.assert_allclose(got, expect[op], rtol=1e-5, atol=1e-6, err_msg=f"{case.label()} {op} {contender}")
    return run


def set_threads(n: int) -> None:
    fl.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def bandwidth_probe(mib: int = 64, repeat: int = 7) -> float:
    """GB/s of np.copyto between two `mib` MiB arrays (read + write counted); a rough
    single-threaded probe of the memory bandwidth, not STREAM."""
    src = np.ones(mib * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / statistics.median(times) / 1e9


# ---------------------------------------------------------------------------
# pytest-benchmark
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _probe() -> float:
    return bandwidth_probe()


@pytest.mark.parametrize(
    ("case", "op", "contender"),
    [pytest.param(case, op, c, id=f"{case.name}-{op}-{c}") for case in CASES for op in case.ops for c in CONTENDERS],
)
def test_pool(benchmark, case, op, contender):
    if contender.startswith("torch"):
        pytest.importorskip("torch", reason="PyTorch is an optional comparison")
    set_threads(1)
    run = make_runner(case, op, contender)  # validated against the reference first
    benchmark.group = f"{case.label()} {op}"
    benchmark.extra_info.update(case=case.label(), op=op, contender=contender, threads=1, bytes=case.bytes(op))
    if contender == "reference":
        benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)  # slow: a few rounds
    else:
        benchmark(run)
    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if stats is not None:
        gbs = case.bytes(op) / stats.stats.median / 1e9
        benchmark.extra_info.update(gbs=gbs, probe_gbs=_probe(), pct_probe=100 * gbs / _probe())


# ---------------------------------------------------------------------------
# --table: interleaved medians
# ---------------------------------------------------------------------------


def time_interleaved(runners: dict, rounds: int, ref_rounds: int) -> dict:
    """Median seconds per call of each runner over interleaved rounds (rotated order)."""
    names = list(runners)
    times = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            if n == "reference" and r >= ref_rounds:
                continue
            t0 = time.perf_counter()
            runners[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items() if t}


def table(threads_list, rounds, ref_rounds, with_reference, case_names):
    probe = bandwidth_probe()
    print(f"fastlayers {fl.__version__}, SIMD {fl.get_simd_path()}; torch "
          f"{torch.__version__ if torch is not None else 'not installed'}")
    print(f"bandwidth probe at start (np.copyto of 64 MiB, read+write, 1 thread): {probe:.1f} GB/s; "
          f"medians of {rounds} interleaved rounds (reference: {ref_rounds})\n")
    contenders = [c for c in CONTENDERS if (c != "reference" or with_reference)
                  and (not c.startswith("torch") or torch is not None)]
    head = f"{'case':34} {'op':9} {'thr':>3} " + " ".join(f"{c + ' ms':>14}" for c in contenders)
    head += f" {'fl GB/s':>8} {'kern GB/s':>9} {'copy GB/s':>9} {'% copy':>6} {'kern %':>6} "
    head += " ".join(f"{'x ' + c:>12}" for c in contenders if c != "fastlayers")
    print(head)
    print("-" * len(head))
    for threads in threads_list:
        set_threads(threads)
        for case in CASES:
            if case_names and case.name not in case_names:
                continue
            for op in case.ops:
                runners = {c: make_runner(case, op, c) for c in contenders}
                # The bandwidth yardstick, timed in the same rounds: a 1-thread NumPy copy
                # moving the op's byte count (half read, half written).
                src = np.ones(case.bytes(op) // 8, np.float32)
                dst = np.empty_like(src)
                runners["copy"] = functools.partial(np.copyto, dst, src)
                for run in runners.values():  # warm-up (page faults, thread pools)
                    run()
                med = time_interleaved(runners, rounds, ref_rounds)
                fl_t = med["fastlayers"]
                gbs = case.bytes(op) / fl_t / 1e9
                copy_gbs = 2 * src.nbytes / med["copy"] / 1e9
                line = f"{case.label():34} {op:9} {threads:>3} "
                line += " ".join(f"{1e3 * med[c]:>14.3f}" for c in contenders)
                kgbs = case.bytes(op) / med["fl_kernel"] / 1e9
                line += f" {gbs:>8.1f} {kgbs:>9.1f} {copy_gbs:>9.1f} {100 * gbs / copy_gbs:>6.0f} {100 * kgbs / copy_gbs:>6.0f} "
                line += " ".join(f"{med[c] / fl_t:>12.2f}" for c in contenders if c != "fastlayers")
                print(line, flush=True)
        _data.cache_clear()
    print("\nx <contender> = contender's time / fastlayers' time (> 1: fastlayers is faster). "
          "GB/s counts input + output (+ int32 argmax) bytes once;\ncopy GB/s: a NumPy copy of "
          "the same byte count timed in the same rounds; % copy = fl GB/s / copy GB/s (the "
          "functional API),\nkern % = the same for the kernel alone (fl_kernel: preallocated "
          "outputs, no validation).")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", action="store_true", help="print the interleaved median table")
    p.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    p.add_argument("--rounds", type=int, default=21, help="interleaved rounds per op (default 21)")
    p.add_argument("--ref-rounds", type=int, default=3, help="rounds that include the reference (default 3)")
    p.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    p.add_argument("--cases", default="", help="comma-separated case names (default all: "
                   + ",".join(c.name for c in CASES) + ")")
    args = p.parse_args(argv)
    if not args.table:
        p.print_help()
        return 0
    threads = [int(t) for t in args.threads.split(",") if t]
    cases = {c for c in args.cases.split(",") if c}
    table(threads, args.rounds, args.ref_rounds, not args.no_reference, cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
