"""`fastlayers bench`: time every kernel against the NumPy reference and its peers.

    fastlayers bench [--quick] [--filter REGEX] [--gemm SPEC] [--backend LIST] [--threads N]
                     [--repeat N] [--peak-gflops X] [--peak-gbs X] [--json FILE] [--csv FILE]
                     [--plot FILE.png] [--compare OLD.json] [--long] [--list]

Runs the named cases of fastlayers.bench.cases, grouped by op family: GEMM, conv2d
forward / backward-data / backward-weight, pooling, activations, losses, normalisation,
linear layers, optimiser steps and whole training steps. Each backend's result is
validated against the reference before it is timed; the backends of a case are timed
interleaved (medians of --repeat rounds). A row per case shows fastlayers' time, rate
and % of peak, and its speed-up against every other backend (> 1: fastlayers faster);
a per-family summary follows. Exit status: 0; 1 when a case failed validation (or its
backend raised); 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys


def _backends(s: str) -> list[str]:
    from fastlayers.bench.core import ALL_BACKENDS

    names = [b.strip() for b in s.split(",") if b.strip()]
    bad = [b for b in names if b not in ALL_BACKENDS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(ALL_BACKENDS)}, got {s!r}")
    return list(dict.fromkeys(names))


def _regex(s: str) -> re.Pattern:
    try:
        return re.compile(s)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {s!r}: {e}") from None


def _gemm_shapes(s: str) -> list:
    from fastlayers.bench.gemm import parse_cases

    try:
        shapes = parse_cases(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not shapes:
        raise argparse.ArgumentTypeError(f"expected at least one GEMM shape, got {s!r}")
    return shapes


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        v = 0.0
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="benchmark the kernels against the reference and peers",
                       description=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds in all (what CI runs)")
    p.add_argument("--filter", type=_regex, default=None, metavar="REGEX",
                   help="run the cases whose 'family/name' matches REGEX (re.search); see --list")
    p.add_argument("--gemm", type=_gemm_shapes, default=None, metavar="SPEC",
                   help="run these GEMM shapes instead of the named cases: comma-separated MxNxK with "
                        "optional :tA / :tB / :tAtB, square sizes, or square / mlp / all")
    p.add_argument("--backend", type=_backends, default=None, metavar="LIST",
                   help="comma-separated backends of fastlayers,numpy,reference,torch,cuda,cupy,torch-cuda "
                        "(default: the first four, and the GPU ones too when a GPU is usable); those that "
                        "cannot run here are listed as skipped")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads for fastlayers, NumPy's BLAS and torch (default: fastlayers' current count)")
    p.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                   help="timed rounds per backend (default 7; 3 with --quick)")
    p.add_argument("--peak-gflops", type=_positive_float, default=None, metavar="X",
                   help="FP32 peak of the threads used, GFLOP/s (default: a built-in FMA probe)")
    p.add_argument("--peak-gbs", type=_positive_float, default=None, metavar="X",
                   help="memory bandwidth, GB/s (default: a built-in STREAM-triad probe)")
    p.add_argument("--json", metavar="FILE", help="write the header and every record as JSON")
    p.add_argument("--csv", metavar="FILE", help="write every record as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of the speed-ups per case, log scale (matplotlib)")
    p.add_argument("--compare", metavar="OLD.json", help="compare with an earlier --json run; flag regressions")
    p.add_argument("--tolerance", type=_positive_float, default=10.0, metavar="PCT",
                   help="--compare: smallest change in percent counted as a regression (default 10)")
    p.add_argument("--long", action="store_true", help="one row per case and backend")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    return p


def header(threads: int, peaks) -> dict:
    import fastlayers
    from fastlayers.bench import gemm

    d = fastlayers.info()
    with gemm.threads(threads):  # the BLAS threads in force during the run
        blas = gemm.blas_info()
    h = {"fastlayers": d["version"], "python": d["python"], "numpy": d["numpy"], "torch": None, "cupy": None,
         "cpu": d["cpu"]["brand"] or d["machine"], "features": [k for k, v in d["cpu"]["features"].items() if v],
         "simd_path": d["simd_path"], "threads": threads, "blas": blas,
         "gpu": ", ".join(dev["name"] for dev in d["cuda"]["devices"]) or None,
         "gpu_note": None if d["cuda"]["gpu_usable"] else d["cuda"]["reason"],
         "peak_gflops": peaks.cpu_gflops, "peak_gbs": peaks.cpu_gbs,
         "gpu_peak_gflops": peaks.gpu_gflops, "gpu_peak_gbs": peaks.gpu_gbs,
         # torch-cuda runs with TF32 off (bench.core.fp32_only); CuPy follows CUPY_TF32
         "gpu_math": "fp32 (torch TF32 off" + ("; CUPY_TF32=1: cupy uses TF32)"
                                              if os.environ.get("CUPY_TF32", "0") not in ("", "0") else ")")}
    for name in ("torch", "cupy"):
        try:
            h[name] = __import__(name).__version__
        except ImportError:
            pass
    return h


def _print_header(h: dict, args, n_cases: int, backends: list[str], repeat: int) -> None:
    print(f"fastlayers {h['fastlayers']}  python {h['python']}  numpy {h['numpy']}  "
          f"torch {h['torch'] or 'not installed'}  cupy {h['cupy'] or 'not installed'}")
    print(f"cpu {h['cpu']}  [{' '.join(h['features'])}]")
    print(f"simd {h['simd_path']}  threads {h['threads']}  {h['blas']}")
    print(f"gpu {h['gpu'] or 'none'}" + (f" ({h['gpu_note']})" if h["gpu_note"] else f"  math {h['gpu_math']}"))
    src = lambda given: "given" if given is not None else "probe"  # noqa: E731
    line = (f"peak {h['peak_gflops']:.1f} GFLOP/s ({src(args.peak_gflops)}), "
            f"{h['peak_gbs']:.1f} GB/s ({src(args.peak_gbs)}) at {h['threads']} thread(s)")
    if h["gpu_peak_gflops"]:
        line += f"; gpu nominal {h['gpu_peak_gflops']:.0f} GFLOP/s, {h['gpu_peak_gbs'] or 0:.0f} GB/s"
    print(line)
    print(f"{n_cases} cases x {len(backends)} backends, median of {repeat} interleaved rounds; ± = half the "
          "spread (max-min)/median; vs X = X's time / this time (> 1: faster than X)\n")


def _select(args, parser, backends: list[str]):
    from fastlayers.bench.cases import all_cases
    from fastlayers.bench.core import GPU_BACKENDS, backend_status

    gpu_ok = any(b in GPU_BACKENDS and backend_status(b) is None for b in backends)
    if args.gemm:
        from fastlayers.bench.cases.gemm import gemm_case

        cases = [gemm_case(shape) for shape in args.gemm]
    else:
        cases = [c for c in all_cases() if c.quick == args.quick and (c.cpu or gpu_ok)]
    if args.filter is not None:
        cases = [c for c in cases if args.filter.search(c.id)]
    if not cases:
        parser.error(f"--filter {args.filter.pattern!r} matches no case (see fastlayers bench --list)")
    return cases


def run(args, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from fastlayers.bench import report
    from fastlayers.bench.core import CPU_BACKENDS, GPU_BACKENDS, backend_status
    from fastlayers.bench.runner import SCHEMA, Peaks, _threads, run_case
    from fastlayers.runtime import get_num_threads

    # By default the GPU backends join only where one of them can run.
    gpu = [b for b in GPU_BACKENDS if backend_status(b) is None]
    backends = args.backend or list(CPU_BACKENDS) + (list(GPU_BACKENDS) if gpu else [])
    old = None
    if args.compare:
        try:
            old = report.load_run(args.compare)
        except ValueError as e:
            parser.error(f"--compare: {e}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error('--plot needs matplotlib, which is not installed: pip install "fastlayers[bench]"')
        if "fastlayers" not in backends and "cuda" not in backends:
            parser.error("--plot shows fastlayers' speed-ups: --backend must include fastlayers or cuda")
    cases = _select(args, parser, backends)
    if args.list:
        for c in cases:
            print(f"{c.id:45s} {c.shape}")
        return 0
    threads = args.threads or get_num_threads()
    repeat = args.repeat or (3 if args.quick else 7)
    min_time = 0.005 if args.quick else 0.05

    records: list[dict] = []
    table = report.Table.for_cases(cases, backends)
    with _threads(threads):
        peaks = Peaks.measure(threads, args.peak_gflops, args.peak_gbs)
        h = header(threads, peaks)
        _print_header(h, args, len(cases), backends, repeat)
        print(table.head(), flush=True)
        with tqdm(cases, desc="bench", unit="case", file=sys.stderr, leave=False, disable=None) as bar:
            for case in bar:
                bar.set_postfix_str(case.id, refresh=True)
                recs = run_case(case, backends, threads, peaks, repeat, min_time)
                records += recs
                if not args.long:
                    for row in table.rows(recs):
                        tqdm.write(row, file=sys.stdout)
    if args.long:
        print(report.format_long(records))
    print()
    print(report.format_summary(records, backends))

    doc = {"schema": SCHEMA, "header": h, "results": records}
    if old is not None:
        rows = report.compare_runs(old["results"], records, args.tolerance)
        doc["compare"] = {"file": args.compare, "tolerance_pct": args.tolerance, "rows": rows}
        print(f"\ncompared with {args.compare} ({old['header'].get('cpu')}, {old['header'].get('threads')} threads)")
        print(report.format_compare(rows, backends))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if args.csv:
        report.write_csv(args.csv, records, backends)
    if args.plot:
        from fastlayers.plots import plot_speedups

        primary = report.primaries(backends)[0]
        try:
            plot_speedups(records, args.plot, primary=primary)
            print(f"\nplot: {args.plot}")
        except ValueError as e:
            print(f"\nno plot: {e}", file=sys.stderr)
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        print(f"\n{len(failed)} FAILED:", file=sys.stderr)
        for r in failed:
            print(f"  {r['family']}/{r['case']} [{r['backend']}]: {r['reason']}", file=sys.stderr)
        return 1
    return 0
