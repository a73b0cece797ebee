"""Machine probes (csrc/common/peak.cpp) and fastlayers.machine: plausible numbers,
environment overrides, argument checks, and the shared timer. Kept short (< 3 s):
tiny probe durations and sizes, no timing assertions."""

from __future__ import annotations

import math

import pytest

from fastlayers import _cpu, machine


@pytest.fixture
def fresh_machine(monkeypatch):
    """Short probes, no overrides from the caller's environment, empty caches."""
    monkeypatch.setattr(machine, "PEAK_SECONDS", 0.05)
    monkeypatch.setattr(machine, "BANDWIDTH_MEGABYTES", 8)
    monkeypatch.delenv(machine.PEAK_ENV, raising=False)
    monkeypatch.delenv(machine.BANDWIDTH_ENV, raising=False)
    machine._measured_peak.cache_clear()
    machine._measured_bandwidth.cache_clear()
    yield machine
    machine._measured_peak.cache_clear()
    machine._measured_bandwidth.cache_clear()


def test_peak_probe_is_plausible():
    gflops = _cpu.measure_peak_gflops(1, 0.05)
    assert math.isfinite(gflops) and gflops > 1.0


def test_bandwidth_probe_is_plausible():
    gbs = _cpu.measure_bandwidth_gbs(1, 8)
    assert math.isfinite(gbs) and gbs > 0.5


def test_probes_run_with_two_threads():
    # Two threads on any machine (oversubscribed on one core): still a positive number.
    assert _cpu.measure_peak_gflops(2, 0.02) > 1.0
    assert _cpu.measure_bandwidth_gbs(2, 4) > 0.5


def test_machine_measures_once_per_thread_count(fresh_machine, monkeypatch):
    calls = []
    real = _cpu.measure_peak_gflops

    def counting(threads, seconds):
        calls.append(threads)
        return real(threads, seconds)

    monkeypatch.setattr(_cpu, "measure_peak_gflops", counting)
    first = fresh_machine.peak_gflops(1)
    assert first > 1.0
    assert fresh_machine.peak_gflops(1) == first
    assert calls == [1]
    assert fresh_machine.bandwidth_gbs(1) > 0.5


def test_default_thread_count_is_the_kernels(fresh_machine, monkeypatch):
    monkeypatch.setenv(machine.PEAK_ENV, "100")
    monkeypatch.setattr(machine, "cpu_count", lambda: 4)
    monkeypatch.setattr(machine, "get_num_threads", lambda: 2)
    assert fresh_machine.peak_gflops() == pytest.approx(50.0)


def test_env_overrides_are_the_whole_machine(fresh_machine, monkeypatch):
    def refuse(*args):
        raise AssertionError("an overridden value must not be measured")

    monkeypatch.setattr(_cpu, "measure_peak_gflops", refuse)
    monkeypatch.setattr(_cpu, "measure_bandwidth_gbs", refuse)
    monkeypatch.setattr(machine, "cpu_count", lambda: 4)
    monkeypatch.setenv(machine.PEAK_ENV, "400")
    monkeypatch.setenv(machine.BANDWIDTH_ENV, " 50.5 ")
    # Compute peak scales with the cores used, capped at the machine's.
    assert fresh_machine.peak_gflops(1) == pytest.approx(100.0)
    assert fresh_machine.peak_gflops(4) == pytest.approx(400.0)
    assert fresh_machine.peak_gflops(16) == pytest.approx(400.0)
    # Bandwidth is shared: the same for every thread count.
    assert fresh_machine.bandwidth_gbs(1) == pytest.approx(50.5)
    assert fresh_machine.bandwidth_gbs(3) == pytest.approx(50.5)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf"])
def test_bad_env_values_name_the_variable(fresh_machine, monkeypatch, value):
    monkeypatch.setenv(machine.PEAK_ENV, value)
    monkeypatch.setenv(machine.BANDWIDTH_ENV, value)
    with pytest.raises(ValueError, match=machine.PEAK_ENV):
        fresh_machine.peak_gflops(1)
    with pytest.raises(ValueError, match=machine.BANDWIDTH_ENV):
        fresh_machine.bandwidth_gbs(1)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: _cpu.measure_peak_gflops(0, 0.01), "threads"),
        (lambda: _cpu.measure_peak_gflops(-2, 0.01), "threads"),
        (lambda: _cpu.measure_peak_gflops(10**6, 0.01), "threads"),
        (lambda: _cpu.measure_peak_gflops(1, 0.0), "seconds"),
        (lambda: _cpu.measure_peak_gflops(1, -1.0), "seconds"),
        (lambda: _cpu.measure_peak_gflops(1, float("nan")), "seconds"),
        (lambda: _cpu.measure_peak_gflops(1, 1e9), "seconds"),
        (lambda: _cpu.measure_bandwidth_gbs(0, 4), "threads"),
        (lambda: _cpu.measure_bandwidth_gbs(1, 0), "megabytes"),
        (lambda: _cpu.measure_bandwidth_gbs(1, -5), "megabytes"),
        (lambda: machine.peak_gflops(0), "threads"),
        (lambda: machine.bandwidth_gbs(-1), "threads"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("bad", [1.5, "2", True])
def test_non_integer_threads_raise_type_error(bad):
    with pytest.raises(TypeError, match="threads"):
        machine.peak_gflops(bad)


def test_time_callable_loops_fast_calls_to_min_time():
    calls = []

    def fn():
        calls.append(None)

    times = machine.time_callable(fn, repeat=3, warmup=1, min_time=0.002)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert len(calls) > 1 + 3 * 10  # a no-op call takes far less than 0.2 ms


def test_time_callable_with_fixed_number():
    calls = []
    times = machine.time_callable(lambda: calls.append(None), repeat=4, warmup=2, number=5)
    assert len(times) == 4
    assert len(calls) == 2 + 4 * 5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"repeat": 0}, "repeat"), ({"warmup": -1}, "warmup"), ({"min_time": -1.0}, "min_time"),
     ({"number": 0}, "number")],
)
def test_time_callable_checks_its_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        machine.time_callable(lambda: None, **kwargs)


def test_time_interleaved_rotates_the_order():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    times = machine.time_interleaved(fns, repeat=3, min_time=0.0)
    assert sorted(times) == ["a", "b", "c"]
    assert all(len(v) == 3 and all(t >= 0 for t in v) for v in times.values())
    # 3 warm-up calls, then rounds a b c / b c a / c a b.
    assert order[3:] == list("abc" "bca" "cab")


def test_calibrate_number_fills_min_time():
    calls = []
    number = machine.calibrate_number(lambda: calls.append(None), 0.002, warmup=1)
    assert number > 10 and len(calls) > number


def test_wait_until_idle_returns_the_time_waited():
    waited = machine.wait_until_idle(max_wait=0.05, poll=0.005)
    assert 0.0 < waited < 1.0
