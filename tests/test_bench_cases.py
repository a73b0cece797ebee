"""The benchmark cases (fastlayers.bench): every quick case validates on every CPU backend,
every case's check catches a planted wrong result, and the pieces of the core."""

import math

import numpy as np
import pytest

from fastlayers.bench import core
from fastlayers.bench.cases import FAMILIES, all_cases
from fastlayers.bench.runner import Peaks, nominal_gpu_peaks, run_case

CASES = all_cases()
QUICK = [c for c in CASES if c.quick]


def _quick_params():
    for case in QUICK:
        for backend in core.CPU_BACKENDS:
            if case.formulation(backend) is not None:
                yield pytest.param(case, backend, id=f"{case.id}-{backend}")


def _prepare(case, backend, inputs):
    try:
        return core.prepare(case, backend, inputs)
    except core.Unavailable as e:
        if backend == "torch":
            pytest.skip(f"optional peer: {e}")
        raise


def test_case_table():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert {c.family for c in CASES} == set(FAMILIES)
    assert {c.family for c in QUICK} == set(FAMILIES), "every family needs a --quick case"
    for c in CASES:
        assert c.fl is not None, c.id
        assert (c.flops > 0) != (c.nbytes > 0), f"{c.id}: exactly one of flops / nbytes"
        assert c.rate_unit == ("GFLOP/s" if c.flops else "GB/s")
    assert len(QUICK) <= 40, "--quick must stay a few seconds"


@pytest.mark.parametrize(("case", "backend"), list(_quick_params()))
def test_quick_case_validates(case, backend):
    inputs = case.make_inputs()
    run = _prepare(case, backend, inputs)
    core.validate(case, run, case.expected(inputs))


def _perturbed(result):
    """The result with one element (or the scalar) moved well beyond any tolerance."""
    if isinstance(result, tuple):
        return (_perturbed(result[0]),) + result[1:]
    a = np.array(result, dtype=np.float64, copy=True)
    flat = a.reshape(-1)
    flat[0] += 0.05 * (np.abs(flat).max() + 1.0)  # the first element: inside every view
    return a if a.ndim else np.float64(a)


@pytest.mark.parametrize("case", QUICK, ids=lambda c: c.id)
def test_check_catches_a_planted_wrong_result(case):
    inputs = case.make_inputs()
    run = core.prepare(case, "fastlayers", inputs)
    good = core.to_numpy(run())
    expected = case.expected(inputs)
    case.check(good, expected)
    with pytest.raises(core.Mismatch):
        case.check(_perturbed(good), expected)


def test_run_case_marks_a_planted_bug_failed_and_times_the_rest(monkeypatch):
    case = next(c for c in QUICK if c.id == "gemm/square-256")
    real = case.fl

    def planted(inputs, backend):
        run = real(inputs, backend)
        return (lambda: run() * np.float32(1.001)) if backend is None else run

    monkeypatch.setattr(case, "fl", planted)
    recs = {r["backend"]: r for r in run_case(case, ["fastlayers", "numpy"], 1, Peaks(100.0, 10.0), repeat=1,
                                              min_time=0.001)}
    assert recs["fastlayers"]["status"] == "failed" and "validation" in recs["fastlayers"]["reason"]
    assert recs["numpy"]["status"] == "ok" and recs["numpy"]["median_ms"] > 0
    assert recs["numpy"]["pct_peak"] == pytest.approx(recs["numpy"]["rate"] / 100.0 * 100)


def test_gpu_backends_are_skipped_with_a_reason_without_a_gpu():
    reason = core.backend_status("cupy")
    if reason is None:
        pytest.skip("a GPU is usable here")
    case = QUICK[0]
    with pytest.raises(core.Unavailable, match="cupy|GPU"):
        core.prepare(case, "cupy", case.make_inputs())
    recs = run_case(case, ["cuda", "torch-cuda"], 1, Peaks(100.0, 10.0), repeat=1, min_time=0.001)
    assert [r["status"] for r in recs] == ["skipped", "skipped"]
    assert all(r["reason"] for r in recs)


def test_cuda_backend_only_for_families_with_kernels(monkeypatch):
    monkeypatch.setattr(core, "backend_status", lambda b: None)  # pretend a GPU is there
    monkeypatch.setattr(core, "CUDA_FAMILIES", frozenset(c.family for c in QUICK) - {"pool"})
    case = next(c for c in QUICK if c.family == "pool")
    with pytest.raises(core.Unavailable, match=f"no fastlayers CUDA kernel for {case.family}"):
        core.prepare(case, "cuda", case.make_inputs())


def test_gpu_only_sizes_skip_cpu_backends():
    case = next(c for c in CASES if not c.cpu)
    recs = run_case(case, ["fastlayers"], 1, Peaks(100.0, 10.0), repeat=1)
    assert recs[0]["status"] == "skipped" and "GPU" in recs[0]["reason"]


def test_every_backend_gets_its_own_inputs():
    case = next(c for c in QUICK if c.family == "optim")  # steps update their state in place
    inputs = case.make_inputs()
    before = [a.copy() for a in inputs if isinstance(a, np.ndarray)]
    run = core.prepare(case, "fastlayers", inputs)
    run()
    run()
    after = [a for a in inputs if isinstance(a, np.ndarray)]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_allclose():
    core.allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-6]), "x", rtol=1e-5)
    with pytest.raises(core.Mismatch, match=r"x: 1 of 2 elements off; e.g. at \(1,\)"):
        core.allclose(np.array([1.0, 2.1]), np.array([1.0, 2.0]), "x", rtol=1e-3)
    with pytest.raises(core.Mismatch, match="shape"):
        core.allclose(np.zeros(3), np.zeros(4), "x")
    with pytest.raises(core.Mismatch, match="result 1"):
        core.allclose((np.zeros(2), np.ones(2)), (np.zeros(2), np.zeros(2)), "x")
    with pytest.raises(core.Mismatch):
        core.allclose(np.array([np.nan]), np.array([1.0]), "x")


def test_formulation_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend: expected one of"):
        QUICK[0].formulation("tpu")
    with pytest.raises(ValueError, match="backend: expected one of"):
        core.backend_status("tpu")


def test_nominal_gpu_peaks():
    # An H100 SXM as CUDA reports it: 132 SMs at 1.98 GHz, HBM3 at 2.619 GHz on 5120 bits.
    attrs = {"MultiProcessorCount": 132, "ClockRate": 1_980_000, "MemoryClockRate": 2_619_000,
             "GlobalMemoryBusWidth": 5120}
    gflops, gbs = nominal_gpu_peaks(attrs, (9, 0))
    assert gflops == pytest.approx(132 * 128 * 2 * 1.98e9 / 1e9)
    assert gbs == pytest.approx(2 * 2.619e9 * 640 / 1e9)
    assert nominal_gpu_peaks(attrs, (8, 0))[0] == pytest.approx(gflops / 2)  # A100: 64 FP32 lanes per SM
    assert nominal_gpu_peaks({}, (9, 0)) == (None, None)


def test_geomean():
    assert core.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert core.geomean([None, 4.0]) == pytest.approx(4.0)
    assert math.isnan(core.geomean([]))
