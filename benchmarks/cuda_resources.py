"""Registers, spills and shared memory of every CUDA kernel, as ptxas reports them.

The one performance signal there is without a GPU: a kernel that spills registers to
local memory, or needs so many that few blocks fit on an SM, shows here. Needs nvcc
(not a GPU)::

    python benchmarks/cuda_resources.py               # sm_90, every csrc/cuda/*.cu
    python benchmarks/cuda_resources.py --arch 80 gemm.cu
    python benchmarks/cuda_resources.py --spills      # only the kernels that spill

Compiles each file on its own (-O3, as the build does) with ``-Xptxas -v`` and prints one
row per kernel: registers per thread, spill stores/loads in bytes, static shared memory,
and about how many 256-thread blocks the registers let an SM hold (65536 registers per SM;
allocation granularity ignored).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"Compiling entry function '(?P<name>[^']+)' for 'sm_(?P<arch>\d+)'")
PROPS = re.compile(r"(?P<stack>\d+) bytes stack frame, (?P<st>\d+) bytes spill stores, (?P<ld>\d+) bytes spill loads")
USED = re.compile(r"Used (?P<regs>\d+) registers(?:.*?(?P<smem>\d+) bytes smem)?")


def demangle(names: list[str]) -> list[str]:
    """Readable kernel names through c++filt where installed (shortened)."""
    tool = shutil.which("c++filt")
    if tool is None:
        return names
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    short = []
    for full in out:
        full = re.sub(r"fastlayers::cuda::|\(anonymous namespace\)::|_GLOBAL__N_\w+::", "", full)
        short.append(re.sub(r"\(.*\)$", "", full))  # drop the parameter list
    return short if len(short) == len(names) else names


def resources(source: pathlib.Path, arch: str, nvcc: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc, "-O3", "-std=c++17", f"-arch=sm_{arch}", f"-I{ROOT / 'csrc'}", "-Xptxas", "-v", "-c",
               str(source), "-o", str(pathlib.Path(tmp) / "k.o")]
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{source.name}: nvcc failed\n{r.stderr[-3000:]}")
    rows, cur = [], None
    for line in r.stderr.splitlines():
        if m := ENTRY.search(line):
            cur = {"file": source.name, "kernel": m["name"], "regs": 0, "spill_st": 0, "spill_ld": 0, "smem": 0}
            rows.append(cur)
        elif cur is not None and (m := PROPS.search(line)):
            cur["spill_st"], cur["spill_ld"] = int(m["st"]), int(m["ld"])
        elif cur is not None and (m := USED.search(line)):
            cur["regs"] = int(m["regs"])
            cur["smem"] = int(m["smem"] or 0)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help="files under csrc/cuda (default: all *.cu)")
    p.add_argument("--arch", default="90", help="compute capability without the dot (default 90)")
    p.add_argument("--spills", action="store_true", help="show only kernels that spill")
    args = p.parse_args(argv)
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not pathlib.Path(nvcc).exists():
        print("nvcc not found: this report needs the CUDA compiler (not a GPU)", file=sys.stderr)
        return 2
    files = [ROOT / "csrc" / "cuda" / f for f in args.files] or sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
    rows = [row for f in files for row in resources(f, args.arch, nvcc)]
    for row, name in zip(rows, demangle([r["kernel"] for r in rows])):
        row["kernel"] = name
    if args.spills:
        rows = [r for r in rows if r["spill_st"] or r["spill_ld"]]
    print(f"sm_{args.arch}: {len(rows)} kernels")
    print(f"{'file':<16} {'regs':>5} {'spill st/ld B':>14} {'smem B':>7} {'blocks/SM@256':>14}  kernel")
    for r in rows:
        per_sm = 65536 // max(1, r["regs"] * 256)
        print(f"{r['file']:<16} {r['regs']:>5} {r['spill_st']:>6}/{r['spill_ld']:<7} {r['smem']:>7} "
              f"{per_sm:>14}  {r['kernel'][:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
