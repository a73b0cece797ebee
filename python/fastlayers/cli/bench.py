"""`fastlayers bench`: time every kernel against the NumPy reference and its peers.

    fastlayers bench [--quick] [--filter REGEX] [--backend fastlayers,numpy,reference,torch]
                     [--threads N] [--repeat N] [--json FILE] [--csv FILE]

Runs the named cases of fastlayers.bench.cases (grouped by family), validates each
backend's result against the reference before timing it, times the backends of a case
interleaved and prints one row per case x backend. The JSON / CSV record schema is in
fastlayers.bench.runner. Exit status: 0, 1 when a case failed validation, 2 on a bad
argument (argparse usage error).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys


def _backends(s: str) -> list[str]:
    from fastlayers.bench.cases import ALL_BACKENDS

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


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="benchmark the kernels against the reference and peers",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds in all (what CI runs)")
    p.add_argument("--filter", type=_regex, default=None, metavar="REGEX",
                   help="run the cases whose 'family/name' matches REGEX (re.search)")
    p.add_argument("--backend", type=_backends, default=None, metavar="LIST",
                   help="comma-separated backends (default: fastlayers,numpy,reference,torch)")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads for fastlayers, NumPy's BLAS and torch (default: fastlayers' current count)")
    p.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                   help="timed repeats per backend (default 7; 3 with --quick)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    return p


def header() -> dict:
    import fastlayers
    from fastlayers.bench import gemm

    d = fastlayers.info()
    h = {"fastlayers": d["version"], "python": d["python"], "numpy": d["numpy"],
         "cpu": d["cpu"]["brand"] or d["machine"],
         "features": [k for k, v in d["cpu"]["features"].items() if v],
         "simd_path": d["simd_path"], "blas": gemm.blas_info(), "torch": None}
    try:
        import torch

        h["torch"] = torch.__version__
    except ImportError:
        pass
    return h


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def format_table(records: list[dict]) -> str:
    cols = ("case", "backend", "median ms", "spread", "rate", "% peak", "vs ref", "vs peers")
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append((f"{r['family']}/{r['case']}", r["backend"], r["status"].upper(), "", "", "", "",
                         (r["reason"] or "")[:100]))
            continue
        peers = " ".join(f"{o}:{s:.2f}x" for o, s in r["speedup_vs"].items() if o != "reference")
        rows.append((f"{r['family']}/{r['case']}", r["backend"], _fmt(r["median_ms"], ".4g"),
                     _fmt(r["spread_pct"], ".1f") + "%", _fmt(r["rate"], ".4g") + " " + r["rate_unit"],
                     _fmt(r["pct_peak"], ".1f"), _fmt(r["speedup_vs_reference"], ".2f") + "x"
                     if r["speedup_vs_reference"] is not None else "-", peers))
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = {2, 3, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _write_csv(path: str, records: list[dict], backends: list[str]) -> None:
    from fastlayers.bench.runner import RECORD_KEYS

    peers = [b for b in backends if b != "reference"]  # speedup_vs_reference is a record key already
    keys = [k for k in RECORD_KEYS if k != "speedup_vs"] + [f"speedup_vs_{b}" for b in peers]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in records:
            row = {k: r[k] for k in RECORD_KEYS if k != "speedup_vs"}
            row["times_ms"] = " ".join(f"{t:.6g}" for t in r["times_ms"])
            for b in peers:
                row[f"speedup_vs_{b}"] = r["speedup_vs"].get(b)
            w.writerow(row)


def run(args, parser: argparse.ArgumentParser) -> int:
    from fastlayers.bench.cases import ALL_BACKENDS, all_cases
    from fastlayers.bench.runner import SCHEMA, run_cases
    from fastlayers.runtime import get_num_threads

    backends = args.backend or list(ALL_BACKENDS)
    cases = [c for c in all_cases() if c.quick == args.quick]
    if args.filter is not None:
        cases = [c for c in cases if args.filter.search(c.id)]
    if not cases:
        parser.error(f"--filter {args.filter.pattern!r} matches no case")
    threads = args.threads or get_num_threads()
    repeat = args.repeat or (3 if args.quick else 7)
    min_time = 0.005 if args.quick else 0.05

    from fastlayers.bench import gemm as gemm_cases

    with gemm_cases.threads(threads):  # so the header reports the BLAS threads in force
        h = header()
    h["threads"] = threads
    print(f"fastlayers {h['fastlayers']}  python {h['python']}  numpy {h['numpy']}  torch {h['torch'] or 'not installed'}")
    print(f"cpu {h['cpu']}  simd {h['simd_path']}  threads {threads}")
    print(f"{h['blas']}")
    print(f"{len(cases)} cases x {len(backends)} backends, {repeat} repeats, medians; "
          "spread = (max-min)/median; speed-ups = other's median / this one's\n")

    def progress(name):
        if sys.stderr.isatty():
            print(f"\r  running {name} ...".ljust(60), end="", file=sys.stderr, flush=True)

    records = run_cases(cases, backends, threads, repeat=repeat, min_time=min_time, progress=progress)
    if sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    print(format_table(records))
    failed = [r for r in records if r["status"] == "failed"]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"schema": SCHEMA, "header": h, "results": records}, f, indent=1)
    if args.csv:
        _write_csv(args.csv, records, backends)
    if failed:
        print(f"\n{len(failed)} FAILED:", file=sys.stderr)
        for r in failed:
            print(f"  {r['family']}/{r['case']} [{r['backend']}]: {r['reason']}", file=sys.stderr)
        return 1
    return 0
