"""`fastlayers bench`: end to end on --quick, the JSON/CSV schema, usage errors, and a
planted wrong kernel result caught by validation."""

import csv
import json

import numpy as np
import pytest

from fastlayers.bench import cases as bench_cases
from fastlayers.bench.runner import RECORD_KEYS, SCHEMA
from fastlayers.cli.main import main


@pytest.fixture(autouse=True)
def _fixed_peaks(monkeypatch):
    # Skip the peak / bandwidth probes: the tests check the plumbing, not the machine.
    monkeypatch.setenv("FASTLAYERS_PEAK_GFLOPS", "1000")
    monkeypatch.setenv("FASTLAYERS_PEAK_GBS", "50")


def _bench(*args):
    return main(["bench", "--quick", "--repeat", "1", "--threads", "1", *args])


def test_quick_gemm_end_to_end(capsys):
    assert _bench("--filter", "gemm") == 0
    out = capsys.readouterr().out
    assert "simd" in out and "BLAS" in out or "blas" in out.lower()
    assert "median ms" in out and "% peak" in out
    assert "gemm/square-256" in out and "gemm/mlp-fc1-fwd" in out
    for backend in ("fastlayers", "numpy", "reference"):
        assert backend in out
    assert "FAILED" not in out


def test_json_schema(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert _bench("--filter", "gemm/square|relu", "--json", str(path)) == 0
    d = json.loads(path.read_text())
    assert d["schema"] == SCHEMA
    for key in ("fastlayers", "numpy", "cpu", "simd_path", "blas", "threads", "torch"):
        assert key in d["header"]
    recs = d["results"]
    assert {(r["family"], r["case"]) for r in recs} == {("gemm", "square-256"), ("activation", "relu-64k")}
    assert len(recs) == 2 * 4  # one record per case x backend
    for r in recs:
        assert tuple(r) == RECORD_KEYS
        assert r["status"] in ("ok", "skipped")
        assert isinstance(r["threads"], int) and r["threads"] == 1
        assert isinstance(r["speedup_vs"], dict) and isinstance(r["times_ms"], list)
        assert r["rate_unit"] in ("GFLOP/s", "GB/s")
        if r["status"] == "ok":
            for k in ("median_ms", "spread_pct", "rate", "pct_peak"):
                assert isinstance(r[k], float) and r[k] >= 0, k
            assert len(r["times_ms"]) == 1
            if r["backend"] != "reference":
                assert isinstance(r["speedup_vs_reference"], float)
        else:
            assert isinstance(r["reason"], str) and r["median_ms"] is None
    gemm_fl = next(r for r in recs if r["case"] == "square-256" and r["backend"] == "fastlayers")
    assert gemm_fl["rate_unit"] == "GFLOP/s" and "numpy" in gemm_fl["speedup_vs"]
    relu_np = next(r for r in recs if r["case"] == "relu-64k" and r["backend"] == "numpy")
    assert relu_np["rate_unit"] == "GB/s"


def test_csv_header(tmp_path, capsys):
    path = tmp_path / "r.csv"
    assert _bench("--filter", "pool", "--backend", "fastlayers,reference", "--csv", str(path)) == 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [k for k in RECORD_KEYS if k != "speedup_vs"] + ["speedup_vs_fastlayers"]
    assert list(rows[0]) == expected
    assert [r["backend"] for r in rows] == ["fastlayers", "reference"]
    assert float(rows[0]["speedup_vs_reference"]) > 0


def test_missing_peer_is_skipped_not_an_error(monkeypatch, capsys):
    monkeypatch.setattr("fastlayers.bench.runner.torch_available", lambda: False)
    assert _bench("--filter", "loss", "--backend", "fastlayers,torch") == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "torch not installed" in out


@pytest.mark.parametrize("bad", [
    ["--backend", "fastlayers,cupyx"],
    ["--backend", ""],
    ["--filter", "gemm("],
    ["--repeat", "0"],
    ["--threads", "-1"],
    ["--filter", "no-such-case"],
])
def test_bad_arguments_are_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--quick", *bad])
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_planted_wrong_result_fails_validation(monkeypatch, capsys):
    real = bench_cases._gemm_runner

    def planted(backend):
        factory = real(backend)
        if backend != "fastlayers":
            return factory

        def wrong(inputs):
            run = factory(inputs)

            def garbage():
                run()
                inputs.out[0, 0] += 1.0  # one wrong element
            return garbage
        return wrong

    monkeypatch.setattr(bench_cases, "_gemm_runner", planted)
    status = _bench("--filter", "gemm/square")
    captured = capsys.readouterr()
    assert status == 1
    assert "FAILED" in captured.out  # the table row
    assert "gemm/square-256 [fastlayers]: validation:" in captured.err
    assert "square-256" in captured.err and "numpy" not in captured.err.split("FAILED")[-1]
