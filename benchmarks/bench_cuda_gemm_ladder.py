"""The SGEMM ladder on the GPU (csrc/cuda/gemm_ladder.cu) vs cuBLAS (cupy.matmul).

Every rung (naive -> coalesced -> shared memory -> 1-D / 2-D register tiling ->
vectorised (the promoted fastlayers gemm) -> warp tiling -> double buffered) and the
transposed variants of the promoted kernel are first validated against cuBLAS, then
timed, at 1024^3, 2048^3 and 4096^3 (FP32). extra_info: GFLOP/s and % of cuBLAS measured in the same run.

    python -m pytest benchmarks/bench_cuda_gemm_ladder.py --benchmark-only

Skips with the reason when CuPy or a usable GPU is missing. Target (issue 5): the
promoted kernel >= 80% of cuBLAS at 4096^3.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastlayers

SIZES = (1024, 2048, 4096)
RUNGS = 8


def _gpu():
    """(cupy, fastlayers._cuda), or skip with the reason."""
    try:
        import cupy
    except ImportError:
        pytest.skip("cupy is not installed")
    cuda = fastlayers.info().get("cuda") or {}
    if not cuda.get("gpu_usable"):
        pytest.skip(f"no usable GPU: {cuda.get('reason') or 'the CUDA module is not built'}")
    from fastlayers import _cuda

    return cupy, _cuda


def _operands(cp, size):
    rng = cp.random.default_rng(size)
    a = rng.standard_normal((size, size), dtype=cp.float32)
    b = rng.standard_normal((size, size), dtype=cp.float32)
    return a, b


def _seconds(cp, fn, reps):
    """Mean seconds per call over `reps` calls, measured with CUDA events on the current stream."""
    fn()  # warm-up (and module load)
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(reps):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / 1e3 / reps


_CUBLAS = {}


def _cublas_seconds(cp, size):
    if size not in _CUBLAS:
        a, b = _operands(cp, size)
        _CUBLAS[size] = _seconds(cp, lambda: cp.matmul(a, b), reps=20)
    return _CUBLAS[size]


def _validate(cp, got, a, b, what):
    expected = cp.matmul(a, b)
    k = a.shape[1]
    # Relative to the row/column magnitudes: |err| <= 4 (sqrt(k) + 2) eps32 |A| |B|.
    scale = cp.matmul(cp.abs(a), cp.abs(b))
    tol = 4 * (np.sqrt(k) + 2) * np.finfo(np.float32).eps * scale
    bad = int(cp.count_nonzero(~(cp.abs(got - expected) <= tol)))
    assert bad == 0, f"{what}: {bad} elements differ from cuBLAS beyond the tolerance"


def _record(benchmark, cp, size, seconds, name):
    flops = 2.0 * size**3
    cublas = _cublas_seconds(cp, size)
    benchmark.extra_info.update(
        kernel=name,
        size=size,
        gflops=round(flops / seconds / 1e9, 1),
        cublas_gflops=round(flops / cublas / 1e9, 1),
        percent_of_cublas=round(100.0 * cublas / seconds, 1),
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("rung", range(RUNGS))
def test_gemm_ladder(benchmark, rung, size):
    cp, cuda = _gpu()
    a, b = _operands(cp, size)
    c = cp.empty((size, size), dtype=cp.float32)
    stream = cp.cuda.get_current_stream()
    name = cuda.gemm_rungs()[rung]

    def run():
        cuda.gemm_rung(rung, c, a, b, stream.ptr)

    run()
    stream.synchronize()
    _validate(cp, c, a, b, f"rung {rung} ({name})")
    reps = 1 if rung < 2 and size >= 4096 else 3 if rung < 2 else 10

    def timed():
        for _ in range(reps):
            run()
        stream.synchronize()

    benchmark.pedantic(timed, rounds=3, iterations=1, warmup_rounds=1)
    _record(benchmark, cp, size, _seconds(cp, run, reps), f"rung {rung}: {name}")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("trans", ["NN", "TN", "NT", "TT"])
def test_gemm_promoted(benchmark, trans, size):
    """fastlayers gemm (all transposes) at alpha 1, beta 0."""
    cp, cuda = _gpu()
    a, b = _operands(cp, size)
    ta, tb = trans[0] == "T", trans[1] == "T"
    a_st, b_st = (cp.ascontiguousarray(a.T) if ta else a), (cp.ascontiguousarray(b.T) if tb else b)
    c = cp.empty((size, size), dtype=cp.float32)
    stream = cp.cuda.get_current_stream()

    def run():
        cuda.gemm(c, a_st, b_st, ta, tb, 1.0, 0.0, stream.ptr)

    run()
    stream.synchronize()
    _validate(cp, c, a, b, f"gemm {trans}")

    def timed():
        for _ in range(10):
            run()
        stream.synchronize()

    benchmark.pedantic(timed, rounds=3, iterations=1, warmup_rounds=1)
    _record(benchmark, cp, size, _seconds(cp, run, 10), f"gemm {trans}")


@pytest.mark.parametrize("size", SIZES)
def test_cublas(benchmark, size):
    """The baseline itself (cupy.matmul -> cuBLAS SGEMM)."""
    cp, _ = _gpu()
    a, b = _operands(cp, size)
    stream = cp.cuda.get_current_stream()

    def timed():
        for _ in range(10):
            cp.matmul(a, b)
        stream.synchronize()

    benchmark.pedantic(timed, rounds=3, iterations=1, warmup_rounds=1)
    _record(benchmark, cp, size, _cublas_seconds(cp, size), "cuBLAS")
