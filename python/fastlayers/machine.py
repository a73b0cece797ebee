"""What this machine can do, for "% of peak" in benchmarks, and a shared timer.

``peak_gflops(threads)`` is the float32 FMA peak and ``bandwidth_gbs(threads)`` the
STREAM-triad memory bandwidth, both measured once per thread count by C++ probes
(csrc/common/peak.cpp) and cached for the life of the process:

- the peak runs independent FMA chains on every thread, on the SIMD path the kernels use
  (``fastlayers.get_simd_path()``), for about 0.2 s; 1 FMA = 2 flops;
- the bandwidth is the best of 5 triads ``a = b + s * c`` over three 64 MB float32
  arrays, counting 12 bytes per element (the STREAM convention: write-allocate traffic
  is not counted).

Overrides, for machines where measuring is unwanted or unreliable (a loaded CI box):

- ``FASTLAYERS_PEAK_GFLOPS``: the float32 peak of the *whole machine* (all cores) in
  GFLOP/s. ``peak_gflops(threads)`` then returns that value times
  ``min(threads, cores) / cores`` (compute scales with the cores used).
- ``FASTLAYERS_PEAK_GBS``: the memory bandwidth of the whole machine in GB/s, returned
  as is for every thread count (bandwidth is shared by all cores).

``time_callable`` and ``time_interleaved`` (with ``calibrate_number`` and
``wait_until_idle``) are the timers that the benchmarks and ``fastlayers bench`` share.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import time
from typing import Callable

from fastlayers import _cpu
from fastlayers.runtime import get_num_threads, get_simd_path

__all__ = [
    "bandwidth_gbs",
    "calibrate_number",
    "cpu_count",
    "peak_gflops",
    "time_callable",
    "time_interleaved",
    "wait_until_idle",
]

PEAK_ENV = "FASTLAYERS_PEAK_GFLOPS"
BANDWIDTH_ENV = "FASTLAYERS_PEAK_GBS"
PEAK_SECONDS = 0.2  # time the peak probe spends per thread count
BANDWIDTH_MEGABYTES = 64  # size of each of the three triad arrays


def cpu_count() -> int:
    """Number of CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_threads(threads) -> int:
    if threads is None:
        return get_num_threads()
    if isinstance(threads, bool):
        raise TypeError("threads: expected an integer >= 1 or None, got bool")
    try:
        threads = operator.index(threads)
    except TypeError:
        raise TypeError(f"threads: expected an integer >= 1 or None, got {type(threads).__name__}") from None
    if threads < 1:
        raise ValueError(f"threads: expected an integer >= 1 or None, got {threads}")
    return threads


def _env_value(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number, got {raw!r}")
    return value


# Measurements are cached per (threads, SIMD path): set_simd_path changes the peak.
@functools.lru_cache(maxsize=None)
def _measured_peak(threads: int, simd_path: str) -> float:
    return _cpu.measure_peak_gflops(threads, PEAK_SECONDS)


@functools.lru_cache(maxsize=None)
def _measured_bandwidth(threads: int) -> float:
    return _cpu.measure_bandwidth_gbs(threads, BANDWIDTH_MEGABYTES)


def peak_gflops(threads: int | None = None) -> float:
    """float32 FMA peak in GFLOP/s with ``threads`` threads (default: get_num_threads()).

    Measured on first use for each thread count (~0.2 s) and cached. With
    FASTLAYERS_PEAK_GFLOPS set (the whole machine's peak), returns that value scaled by
    ``min(threads, cpu_count()) / cpu_count()`` and measures nothing.
    """
    threads = _check_threads(threads)
    override = _env_value(PEAK_ENV)
    if override is not None:
        cores = cpu_count()
        return override * min(threads, cores) / cores
    return _measured_peak(threads, get_simd_path())


def bandwidth_gbs(threads: int | None = None) -> float:
    """STREAM-triad memory bandwidth in GB/s with ``threads`` threads (default: get_num_threads()).

    Measured on first use for each thread count (~0.1-0.3 s, 192 MB of buffers) and
    cached. With FASTLAYERS_PEAK_GBS set (the whole machine's bandwidth), returns it for
    every thread count and measures nothing.
    """
    threads = _check_threads(threads)
    override = _env_value(BANDWIDTH_ENV)
    if override is not None:
        return override
    return _measured_bandwidth(threads)


def time_callable(
    fn: Callable[[], object],
    repeat: int = 5,
    warmup: int = 1,
    min_time: float = 0.0,
    *,
    number: int | None = None,
) -> list[float]:
    """Seconds per call of ``fn()``, one entry per repeat (take the median or the min).

    ``warmup`` untimed calls come first (at least one when ``number`` must be
    calibrated). Each repeat then times ``number`` back-to-back calls with
    time.perf_counter and divides, so a fast ``fn`` is timed over at least ``min_time``
    seconds per repeat: ``number`` defaults to ceil(min_time / fastest warm-up call).
    Pass ``number`` to fix it (e.g. to time several callables interleaved, each with its
    own calibrated count; see :func:`calibrate_number`).
    """
    repeat = operator.index(repeat)
    warmup = operator.index(warmup)
    if repeat < 1:
        raise ValueError(f"repeat: expected an integer >= 1, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup: expected an integer >= 0, got {warmup}")
    if not (min_time >= 0 and math.isfinite(min_time)):
        raise ValueError(f"min_time: expected a finite number of seconds >= 0, got {min_time}")
    if number is None:
        number = calibrate_number(fn, min_time, warmup=warmup)
    else:
        number = operator.index(number)
        if number < 1:
            raise ValueError(f"number: expected an integer >= 1, got {number}")
        for _ in range(warmup):
            fn()
    perf_counter = time.perf_counter
    times = []
    for _ in range(repeat):
        t0 = perf_counter()
        for _ in range(number):
            fn()
        times.append((perf_counter() - t0) / number)
    return times


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    repeat: int = 7,
    min_time: float = 0.02,
    *,
    settle: bool = False,
) -> dict[str, list[float]]:
    """Seconds per call of each callable, timed side by side: ``repeat`` rounds, each
    timing every callable once (a window of at least ``min_time``), in an order rotated
    per round, so drifts in clock speed or machine load hit all of them alike.

    Each callable gets its own call count per window, calibrated once after one warm-up
    call. ``settle=True`` waits before each window until the previous callable's thread
    pool stops spinning (:func:`wait_until_idle`); use it when they run several threads.
    Returns {name: [seconds per call, one per round]}.
    """
    if repeat < 1:
        raise ValueError(f"repeat: expected an integer >= 1, got {repeat}")
    names = list(fns)
    numbers = {}
    for name in names:
        if settle:
            wait_until_idle()
        numbers[name] = calibrate_number(fns[name], min_time, warmup=1)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeat):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if settle:
                wait_until_idle()
            times[name] += time_callable(fns[name], repeat=1, warmup=0, number=numbers[name])
    return times


def wait_until_idle(max_wait: float = 0.5, poll: float = 0.01) -> float:
    """Sleep until this process's other threads stop using the CPU; return the seconds waited.

    Thread pools spin-wait after a parallel call before they sleep (OpenBLAS for ~0.1 s,
    GNU OpenMP for a few ms). When two multi-threaded backends are timed one after the
    other, the spinning pool of the first steals cores from the second; call this
    between them. It polls the process CPU time every ``poll`` seconds and returns once
    a poll interval burnt less than 10% of one core, or after ``max_wait`` seconds.
    """
    waited = 0.0
    while waited < max_wait:
        c0 = time.process_time()  # CPU time of all of this process's threads
        t0 = time.perf_counter()
        time.sleep(poll)
        elapsed = time.perf_counter() - t0
        waited += elapsed
        if time.process_time() - c0 < 0.1 * elapsed:
            break
    return waited


def calibrate_number(fn: Callable[[], object], min_time: float, warmup: int = 1) -> int:
    """Calls of ``fn`` that fill ``min_time`` seconds: estimated from the fastest of
    ``max(warmup, 1)`` timed warm-up calls, then checked by timing that many calls and
    rescaled (up to 3 times) while they take under half of min_time — a slow first
    call must not leave a fast function timed over a too-short window. Returns 1 when
    min_time is 0 (after ``warmup`` untimed calls)."""
    perf_counter = time.perf_counter
    fastest = math.inf
    for _ in range(max(warmup, 1) if min_time > 0 else warmup):
        t0 = perf_counter()
        fn()
        fastest = min(fastest, perf_counter() - t0)
    if min_time <= 0:
        return 1
    number = max(1, math.ceil(min_time / max(fastest, 1e-9)))
    for _ in range(3 if number > 1 else 0):  # one call already fills the window
        t0 = perf_counter()
        for _ in range(number):
            fn()
        elapsed = perf_counter() - t0
        if elapsed >= 0.5 * min_time:
            break
        number = max(number + 1, math.ceil(number * min_time / max(elapsed, 1e-9)))
    return number
