"""Side-by-side GEMM table: fastlayers vs NumPy/OpenBLAS vs the NumPy reference.

    python benchmarks/gemm_table.py                      # all cases, 1 thread, 7 repeats
    python benchmarks/gemm_table.py --threads 1,2 --sizes 512,1024,mlp
    python benchmarks/gemm_table.py --sizes 1000x1000x1000,128x512x784:tB --repeat 11

For each case and thread count: every backend is validated against a float64 oracle
(a mismatch is reported and makes the exit status 1), then timed interleaved — each
repeat times every backend once, in an order rotated per repeat, so slow drifts (clock,
other load) hit all of them alike. A timed window repeats the call until it lasts at
least --min-time; the table shows medians over --repeat windows.

Columns: fastlayers ms per call and GFLOP/s; noise = median absolute deviation of its
times / median; % of peak = GFLOP/s / fastlayers.machine.peak_gflops(threads); NumPy
GFLOP/s; fl/np = NumPy time / fastlayers time (> 1: fastlayers faster); the same for
the naive reference (run only where m*n*k <= 512^3: it is k rank-1 updates in NumPy).

With more than one thread, each window waits until the previous backend's thread pool
stops spinning (OpenBLAS spins ~0.1 s after a call), or it would steal the cores.
NumPy's BLAS threads are set with threadpoolctl; without it this script re-runs itself
once per thread count with OPENBLAS_NUM_THREADS set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import fastlayers
from fastlayers import machine
from fastlayers.bench import gemm as cases


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _case_list(text: str) -> list[cases.GemmCase]:
    try:
        found = cases.parse_cases(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not found:
        raise argparse.ArgumentTypeError("no cases selected")
    return found


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=_int_list, default=[1], help="thread counts, e.g. 1,2 (default 1)")
    p.add_argument("--repeat", type=int, default=7, help="timed windows per backend (default 7)")
    p.add_argument("--min-time", type=float, default=0.02,
                   help="seconds per timed window, looping fast calls (default 0.02)")
    p.add_argument("--sizes", type=_case_list, default=list(cases.CASES),
                   help="comma-separated: square sizes (512), MxNxK[:tA][:tB], case names, "
                        "'square', 'mlp' or 'all' (default all)")
    p.add_argument("--backends", default=",".join(cases.BACKENDS),
                   help="comma-separated subset of fastlayers,numpy,reference (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)  # re-run children
    return p


COLUMNS = [  # (title, width)
    ("case", 12), ("shape", 22), ("thr", 3), ("fl ms", 9), ("GFLOP/s", 8), ("noise", 6),
    ("%peak", 6), ("np GF/s", 8), ("fl/np", 6), ("ref GF/s", 8), ("fl/ref", 7),
]


def _row(values: list[str]) -> str:
    out = []
    for (title, width), v in zip(COLUMNS, values):
        out.append(v.ljust(width) if title in ("case", "shape") else v.rjust(width))
    return "  ".join(out)


def _header(args, threads_list: list[int]) -> str:
    info = fastlayers.info()
    gb = info["gemm_blocking"]
    lines = [
        f"fastlayers {info['version']} ({info['compiler']}), numpy {info['numpy']}",
        f"cpu: {info['cpu']['brand'] or info['machine']}, {machine.cpu_count()} cpus, "
        f"simd path {info['simd_path']}, gemm {gb['isa']} MR={gb['MR']} NR={gb['NR']} "
        f"KC={gb['KC']} MC={gb['MC']} NC={gb['NC']}",
        cases.blas_info(),
        "peak (FP32 FMA): " + ", ".join(f"{machine.peak_gflops(t):.1f} GFLOP/s @ {t} thr" for t in threads_list),
        f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeat} interleaved windows of "
        f">= {args.min_time * 1e3:.0f} ms; fl/np, fl/ref: speed ratios (> 1 = fastlayers faster)",
    ]
    load = os.getloadavg()[0]
    if load > 0.5 * machine.cpu_count():
        lines.append(f"# warning: the machine is busy (load {load:.1f} on {machine.cpu_count()} cpus): "
                     "expect noisy numbers, and a peak that may be measured low (%peak > 100)")
    lines += [
        "",
        _row([t for t, _ in COLUMNS]),
    ]
    return "\n".join(lines)


def _median_and_noise(times: list[float]) -> tuple[float, float]:
    med = statistics.median(times)
    mad = statistics.median(abs(t - med) for t in times)
    return med, mad / med


def run_case(case: cases.GemmCase, threads: int, args, backends: list[str]) -> tuple[str, bool]:
    """Validate and time one case at one thread count; return its table row and success."""
    inputs = cases.make_inputs(case, seed=args.seed)
    active = [b for b in backends if b in case.backends()]
    runners = {}
    failures = []
    for b in active:
        try:
            runners[b] = cases.prepare(case, b, inputs)
        except cases.GemmMismatch as exc:
            failures.append(str(exc))
    if failures:
        return "\n".join(f"{case.name:<12}  MISMATCH: {msg}" for msg in failures), False

    # Only multi-threaded pools spin after a call and need the settle wait.
    times = machine.time_interleaved(runners, repeat=args.repeat, min_time=args.min_time,
                                     settle=threads > 1)
    med = {b: _median_and_noise(times[b])[0] for b in active}
    fl = med.get("fastlayers")
    peak = machine.peak_gflops(threads)

    def gf(b):
        return f"{cases.gflops(case, med[b]):.1f}" if b in med else "-"

    def ratio(b):
        return f"{med[b] / fl:.2f}" if b in med and fl else "-"

    row = [
        case.name, case.shape, str(threads),
        f"{fl * 1e3:.3f}" if fl else "-",
        gf("fastlayers"),
        f"{100 * _median_and_noise(times['fastlayers'])[1]:.1f}%" if fl else "-",
        f"{100 * cases.gflops(case, fl) / peak:.0f}%" if fl else "-",
        gf("numpy"), ratio("numpy"), gf("reference"), ratio("reference"),
    ]
    return _row(row), True


def _rerun_per_thread_count(argv: list[str], threads_list: list[int]) -> int:
    """Without threadpoolctl NumPy's BLAS threads are fixed at start-up: one child per count."""
    status = 0
    for t in threads_list:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
        child = [sys.executable, os.path.abspath(__file__), *argv, "--threads", str(t), "--no-header"]
        status |= subprocess.run(child, env=env, check=False).returncode
    return status


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(cases.BACKENDS))
    if unknown:
        print(f"--backends: unknown {unknown}; expected some of {list(cases.BACKENDS)}", file=sys.stderr)
        return 2
    if args.repeat < 1 or args.min_time < 0:
        print("--repeat must be >= 1 and --min-time >= 0", file=sys.stderr)
        return 2

    if not args.no_header:
        print(_header(args, args.threads), flush=True)
    if "numpy" in backends and not cases.blas_threads_controllable():
        fixed = [t for t in args.threads if t != cases.env_blas_threads()]
        if fixed:
            # Drop our own --threads: each child gets one count.
            child_argv = []
            skip = False
            for a in argv:
                if skip:
                    skip = False
                elif a == "--threads":
                    skip = True
                elif not a.startswith("--threads=") and a != "--no-header":
                    child_argv.append(a)
            return _rerun_per_thread_count(child_argv, args.threads)

    start = time.perf_counter()
    ok = True
    for t in args.threads:
        with cases.threads(t) as blas_threads:
            if "numpy" in backends and blas_threads != t:
                print(f"# warning: NumPy's BLAS runs {blas_threads} threads, not {t}", flush=True)
            for case in args.sizes:
                row, good = run_case(case, t, args, backends)
                ok &= good
                print(row, flush=True)
    if not args.no_header:
        print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
