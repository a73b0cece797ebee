"""`fastlayers info | bench | train` (bench and train arrive with their issues)."""

from __future__ import annotations

import argparse
import json
import sys


def _print_info(as_json: bool) -> int:
    import fastlayers

    d = fastlayers.info()
    if as_json:
        print(json.dumps(d, indent=2))
        return 0
    feats = " ".join(k for k, v in d["cpu"]["features"].items() if v) or "(none)"
    gb = d["gemm_blocking"]
    cuda = d["cuda"]
    lines = [
        f"fastlayers {d['version']}  (python {d['python']}, numpy {d['numpy']}, {d['compiler']})",
        f"cpu          {d['cpu']['brand'] or d['machine']} [{d['cpu']['vendor']}]",
        f"features     {feats}",
        f"simd path    {d['simd_path']}  ({d['simd_reason']}); supported: "
        + ", ".join(d["simd_paths_supported"]),
        f"threads      {d['num_threads']}",
        f"gemm         {gb['isa']} micro-kernel MR={gb['MR']} NR={gb['NR']}, "
        f"blocks KC={gb['KC']} MC={gb['MC']} NC={gb['NC']}",
    ]
    if cuda["built"]:
        archs = ",".join(cuda["architectures"]) or "?"
        lines.append(f"cuda module  built for sm_{{{archs}}}")
        if cuda["gpu_usable"]:
            for dev in cuda["devices"]:
                cc = ".".join(str(x) for x in dev["compute_capability"])
                gib = dev["total_memory"] / 2**30
                lines.append(f"gpu {dev['index']}        {dev['name']} (sm {cc}, {gib:.1f} GiB)")
        else:
            lines.append(f"gpu          {cuda['reason']}")
    else:
        lines.append(f"cuda module  not built: {cuda['reason']}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastlayers",
        description="Neural-network kernels in C++/CUDA: information, benchmarks, training.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="build, CPU/SIMD and GPU information")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    from fastlayers.cli import train as _train

    _train.add_parser(sub)
    from fastlayers.cli import bench as _bench

    _bench.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return _print_info(args.json)
    if args.command == "train":
        from fastlayers.cli import train as _train

        return _train.run(args, parser)
    if args.command == "bench":
        from fastlayers.cli import bench as _bench

        return _bench.run(args, parser)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
