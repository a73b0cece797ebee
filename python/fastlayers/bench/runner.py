"""Run benchmark cases: validate every backend against the reference, then time the
validated ones interleaved, and return one record per case x backend.

Record schema (``fastlayers bench --json`` writes ``{"schema": SCHEMA, "header": {...},
"results": [record, ...]}``; ``--csv`` writes the same records, one row each, with
``speedup_vs`` flattened into ``speedup_vs_<backend>`` columns and ``times_ms`` joined
by spaces):

- ``case`` (str), ``family`` (str), ``shape`` (str), ``backend`` (str), ``threads`` (int)
- ``status`` (str): "ok", "failed" (result did not match the reference, or the backend
  raised) or "skipped" (peer not installed, no GPU, or no such formulation for this case)
- ``reason`` (str or null): why failed / skipped
- ``median_ms`` (float or null), ``spread_pct`` (float or null): median of the timed
  repeats and (max - min) / median in percent
- ``times_ms`` (list of float): every timed repeat
- ``rate`` (float or null) in ``rate_unit`` ("GFLOP/s" or "GB/s")
- ``pct_peak`` (float or null): rate as a percentage of the peak of the device it ran
  on: for CPU backends the FP32 FMA peak (GFLOP/s) or STREAM-triad bandwidth (GB/s) at
  ``threads`` threads (:class:`Peaks`); for GPU backends the GPU's nominal peaks, or null
  when they are unknown
- ``speedup_vs_reference`` (float or null): reference median / this median
- ``speedup_vs`` (dict str -> float): the same against every other timed backend
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass
from typing import Callable, Iterable

from fastlayers import machine
from fastlayers.bench import core
from fastlayers.bench import gemm as _gemm
from fastlayers.bench.core import GPU_BACKENDS, Case, Mismatch, Unavailable

__all__ = ["RECORD_KEYS", "SCHEMA", "Peaks", "gpu_peaks", "nominal_gpu_peaks", "run_case", "run_cases"]

SCHEMA = "fastlayers-bench/1"
RECORD_KEYS = ("case", "family", "shape", "backend", "threads", "status", "reason", "median_ms", "spread_pct",
               "times_ms", "rate", "rate_unit", "pct_peak", "speedup_vs_reference", "speedup_vs")


@dataclass
class Peaks:
    """The yardsticks of "% of peak": CPU GFLOP/s and GB/s at the run's thread count
    (measured by the probes of fastlayers.machine unless given), GPU ones when known."""

    cpu_gflops: float
    cpu_gbs: float
    gpu_gflops: float | None = None
    gpu_gbs: float | None = None

    @classmethod
    def measure(cls, threads: int, gflops: float | None = None, gbs: float | None = None) -> "Peaks":
        g = gpu_peaks() if any(core.backend_status(b) is None for b in GPU_BACKENDS) else (None, None)
        return cls(gflops if gflops is not None else machine.peak_gflops(threads),
                   gbs if gbs is not None else machine.bandwidth_gbs(threads), *g)

    def of(self, backend: str, rate_unit: str) -> float | None:
        gpu = backend in GPU_BACKENDS
        if rate_unit == "GFLOP/s":
            return self.gpu_gflops if gpu else self.cpu_gflops
        return self.gpu_gbs if gpu else self.cpu_gbs


# FP32 lanes per streaming multiprocessor by compute capability major.minor (the CUDA
# programming guide's arithmetic-throughput table); an unlisted one counts 128.
_FP32_LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64}


def nominal_gpu_peaks(attrs: dict, capability: tuple[int, int]) -> tuple[float | None, float | None]:
    """(FP32 GFLOP/s, memory GB/s) from device attributes as CuPy names them:
    MultiProcessorCount, ClockRate and MemoryClockRate (kHz), GlobalMemoryBusWidth (bits).
    An FMA counts 2 flops; DDR memory moves data on both clock edges."""
    sms, clock = attrs.get("MultiProcessorCount"), attrs.get("ClockRate")
    mem_clock, bus = attrs.get("MemoryClockRate"), attrs.get("GlobalMemoryBusWidth")
    gflops = sms * _FP32_LANES.get(tuple(capability), 128) * 2 * clock * 1e-6 if sms and clock else None
    gbs = 2 * mem_clock * 1e3 * bus / 8 * 1e-9 if mem_clock and bus else None
    return gflops, gbs


def gpu_peaks() -> tuple[float | None, float | None]:
    """The current GPU's nominal peaks (see nominal_gpu_peaks), or (None, None)."""
    try:
        import cupy  # noqa: PLC0415

        dev = cupy.cuda.Device()
        return nominal_gpu_peaks(dev.attributes, tuple(int(d) for d in dev.compute_capability))
    except Exception:  # no cupy, no device: % of peak stays unknown for GPU rows
        return None, None


@contextlib.contextmanager
def _threads(n: int):
    """fastlayers, NumPy's BLAS and torch all at ``n`` threads inside the block."""
    with _gemm.threads(n):
        if core.backend_status("torch") is not None:
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
            "times_ms": [], "rate": None, "rate_unit": case.rate_unit, "pct_peak": None,
            "speedup_vs_reference": None, "speedup_vs": {}}


def run_case(case: Case, backends: list[str], threads: int, peaks: Peaks, repeat: int = 5,
             min_time: float = 0.02) -> list[dict]:
    """Validate then time ``case`` on each backend (call inside the thread setting of
    run_cases); one record per backend, in the order given."""
    recs: dict[str, dict] = {}
    for b in backends:
        why = core.unavailable(case, b)
        if why is not None:
            recs[b] = _record(case, b, threads, "skipped", why)
    runs: dict[str, Callable[[], object]] = {}
    inputs = case.make_inputs() if len(recs) < len(backends) else None
    expected = None
    for b in backends:
        if b in recs:
            continue
        try:
            run = core.prepare(case, b, inputs)
            if expected is None:
                expected = case.expected(inputs)
            core.validate(case, run, expected)
            runs[b] = run
            recs[b] = _record(case, b, threads, "ok")
        except Unavailable as e:
            recs[b] = _record(case, b, threads, "skipped", str(e))
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
            work = case.flops or case.nbytes
            if work and med > 0:
                r["rate"] = work / med * 1e-9
                peak = peaks.of(b, case.rate_unit)
                r["pct_peak"] = r["rate"] / peak * 100 if peak else None
            r["speedup_vs"] = {o: medians[o] / med for o in medians if o != b}
            r["speedup_vs_reference"] = r["speedup_vs"].get("reference")
    return [recs[b] for b in backends]


def run_cases(cases: Iterable[Case], backends: Iterable[str], threads: int, repeat: int = 5,
              min_time: float = 0.02, peaks: Peaks | None = None,
              on_case: Callable[[Case, list[dict]], None] | None = None) -> list[dict]:
    """run_case over ``cases`` with fastlayers, NumPy's BLAS and torch at ``threads``
    threads; ``on_case(case, records)`` is called as each case finishes."""
    backends = list(backends)
    records: list[dict] = []
    with _threads(threads):
        peaks = peaks or Peaks.measure(threads)
        for case in cases:
            recs = run_case(case, backends, threads, peaks, repeat, min_time)
            if on_case:
                on_case(case, recs)
            records += recs
    return records
