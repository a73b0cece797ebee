"""Run benchmark cases: validate every backend against the reference, then time the
validated ones interleaved, and return one record per case x backend.

Record schema (``fastlayers bench --json`` writes ``{"schema": SCHEMA, "header": {...},
"results": [record, ...]}``; ``--csv`` writes the same records, one row each, with
``speedup_vs`` flattened into ``speedup_vs_<backend>`` columns and ``times_ms`` joined
by spaces):

- ``case`` (str), ``family`` (str), ``shape`` (str), ``backend`` (str), ``threads`` (int)
- ``status`` (str): "ok", "failed" (result did not match the reference, or the backend
  raised) or "skipped" (peer not installed, or no such formulation for this case)
- ``reason`` (str or null): why failed / skipped
- ``median_ms`` (float or null), ``spread_pct`` (float or null): median of the timed
  repeats and (max - min) / median in percent
- ``times_ms`` (list of float): every timed repeat
- ``rate`` (float or null) in ``rate_unit`` ("GFLOP/s" or "GB/s")
- ``pct_peak`` (float or null): rate as a percentage of machine.peak_gflops(threads)
  (GFLOP/s) or machine.bandwidth_gbs(threads) (GB/s)
- ``speedup_vs_reference`` (float or null): reference median / this median
- ``speedup_vs`` (dict str -> float): the same against every other timed backend
"""

from __future__ import annotations

import contextlib
import statistics
from typing import Callable, Iterable

from fastlayers import machine
from fastlayers.bench import gemm as _gemm
from fastlayers.bench.cases import Case, Mismatch, torch_available

__all__ = ["SCHEMA", "RECORD_KEYS", "run_cases"]

SCHEMA = "fastlayers-bench/1"
RECORD_KEYS = ("case", "family", "shape", "backend", "threads", "status", "reason", "median_ms", "spread_pct",
               "times_ms", "rate", "rate_unit", "pct_peak", "speedup_vs_reference", "speedup_vs")


@contextlib.contextmanager
def _threads(n: int, use_torch: bool):
    with _gemm.threads(n):
        if not use_torch:
            yield
            return
        import torch  # noqa: PLC0415

        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _record(case: Case, backend: str, threads: int, status: str, reason: str | None = None) -> dict:
    return {"case": case.name, "family": case.family, "shape": case.shape, "backend": backend,
            "threads": threads, "status": status, "reason": reason, "median_ms": None, "spread_pct": None,
            "times_ms": [], "rate": None, "rate_unit": "GFLOP/s" if case.flops else "GB/s", "pct_peak": None,
            "speedup_vs_reference": None, "speedup_vs": {}}


def _validated(case: Case, backend: str, inputs) -> Callable[[], object]:
    run = case.runners[backend](inputs)
    result = run()
    case.check(inputs, result if result is not None else case.result(inputs))
    return run


def run_cases(cases: Iterable[Case], backends: Iterable[str], threads: int, repeat: int = 5,
              min_time: float = 0.02, progress: Callable[[str], None] | None = None) -> list[dict]:
    backends = list(backends)
    have_torch = "torch" in backends and torch_available()
    records: list[dict] = []
    with _threads(threads, have_torch):
        for case in cases:
            if progress:
                progress(case.id)
            inputs = case.make_inputs()
            runs: dict[str, Callable[[], object]] = {}
            recs: dict[str, dict] = {}
            for b in backends:
                if b not in case.runners:
                    recs[b] = _record(case, b, threads, "skipped", f"no {b} formulation of this case")
                elif b == "torch" and not have_torch:
                    recs[b] = _record(case, b, threads, "skipped", "torch not installed")
                else:
                    try:
                        runs[b] = _validated(case, b, inputs)
                        recs[b] = _record(case, b, threads, "ok")
                    except Mismatch as e:
                        recs[b] = _record(case, b, threads, "failed", f"validation: {e}")
                    except Exception as e:  # a backend that raises is a failed case too
                        recs[b] = _record(case, b, threads, "failed", f"{type(e).__name__}: {e}")
            if runs:
                times = machine.time_interleaved(runs, repeat=repeat, min_time=min_time, settle=threads > 1)
                medians = {b: statistics.median(t) for b, t in times.items()}
                for b, t in times.items():
                    r, med = recs[b], medians[b]
                    r["times_ms"] = [s * 1e3 for s in t]
                    r["median_ms"] = med * 1e3
                    r["spread_pct"] = (max(t) - min(t)) / med * 100 if med > 0 else None
                    if case.flops:
                        r["rate"] = case.flops / med * 1e-9
                        r["pct_peak"] = r["rate"] / machine.peak_gflops(threads) * 100
                    elif case.nbytes:
                        r["rate"] = case.nbytes / med * 1e-9
                        r["pct_peak"] = r["rate"] / machine.bandwidth_gbs(threads) * 100
                    r["speedup_vs"] = {o: medians[o] / med for o in medians if o != b}
                    r["speedup_vs_reference"] = r["speedup_vs"].get("reference")
            records.extend(recs[b] for b in backends)
    return records
