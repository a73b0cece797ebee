"""`fastlayers bench`: end to end on --quick, the JSON/CSV schema, --compare flagging a
planted regression, --plot, usage errors, and a planted wrong kernel result caught by
validation."""

import csv
import json

import numpy as np
import pytest

from fastlayers.bench import cases as bench_cases
from fastlayers.bench import core
from fastlayers.bench.report import compare_runs
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
    assert _bench("--filter", "gemm", "--backend", "fastlayers,numpy,reference") == 0
    out = capsys.readouterr().out
    assert "simd" in out and "BLAS" in out and "peak" in out and "gpu" in out
    assert "median ms" in out and "% peak" in out and "vs numpy" in out and "vs reference" in out
    rows = [line for line in out.splitlines() if line.startswith("gemm/")]
    assert [r.split()[0] for r in rows] == ["gemm/square-256", "gemm/mlp-fc1-fwd"]
    assert all("fastlayers" in r and r.rstrip().endswith("x") for r in rows)
    assert "geometric-mean speed-up per family" in out
    assert "FAILED" not in out


def test_quick_conv_and_pool_with_torch(capsys):
    pytest.importorskip("torch", reason="optional peer torch not installed")
    assert _bench("--filter", "conv2d|pool") == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("conv2d/", "pool/"))]
    assert len(rows) == sum(1 for c in bench_cases.all_cases(("conv2d", "pool")) if c.quick)
    assert all("x" in r.split("fastlayers")[1] for r in rows)


def test_json_schema(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert _bench("--filter", "gemm/square|relu-fwd", "--json", str(path)) == 0
    d = json.loads(path.read_text())
    assert d["schema"] == SCHEMA
    for key in ("fastlayers", "numpy", "torch", "cupy", "cpu", "features", "simd_path", "blas", "threads",
                "gpu", "peak_gflops", "peak_gbs"):
        assert key in d["header"], key
    assert d["header"]["peak_gflops"] == pytest.approx(1000 / core_count()) and d["header"]["peak_gbs"] == 50
    recs = d["results"]
    assert {r["family"] for r in recs} == {"gemm", "activation"}
    assert len(recs) % 4 == 0  # one record per case x backend (no GPU: the four CPU backends)
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
    assert gemm_fl["pct_peak"] == pytest.approx(gemm_fl["rate"] / d["header"]["peak_gflops"] * 100)
    relu = next(r for r in recs if r["family"] == "activation" and r["backend"] == "fastlayers")
    assert relu["rate_unit"] == "GB/s" and relu["pct_peak"] == pytest.approx(relu["rate"] / 50 * 100)


def core_count():
    from fastlayers.machine import cpu_count

    return cpu_count()


def test_csv_header(tmp_path, capsys):
    path = tmp_path / "r.csv"
    assert _bench("--filter", "pool/max-fwd", "--backend", "fastlayers,reference", "--csv", str(path)) == 0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [k for k in RECORD_KEYS if k != "speedup_vs"] + ["speedup_vs_fastlayers"]
    assert list(rows[0]) == expected
    assert [r["backend"] for r in rows] == ["fastlayers", "reference"]
    assert float(rows[0]["speedup_vs_reference"]) > 0


def test_long_table_and_missing_peer_is_skipped_not_an_error(monkeypatch, capsys):
    real = core.backend_status
    monkeypatch.setattr(core, "backend_status", lambda b: "torch not installed" if b == "torch" else real(b))
    assert _bench("--filter", "loss", "--backend", "fastlayers,torch", "--long") == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "torch not installed" in out


def test_explicit_gpu_backend_without_gpu_is_skipped(capsys):
    if core.backend_status("cuda") is None:
        pytest.skip("a GPU is usable here")
    assert _bench("--filter", "gemm/square", "--backend", "fastlayers,cuda,cupy") == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "vs cupy" in out


def test_list(capsys):
    assert _bench("--list", "--filter", "conv2d") == 0
    out = capsys.readouterr().out.splitlines()
    assert out and all(line.startswith("conv2d/") for line in out)
    assert any("-bwd-weight" in line for line in out)


@pytest.mark.parametrize("bad", [
    ["--backend", "fastlayers,cupyx"],
    ["--backend", ""],
    ["--filter", "gemm("],
    ["--repeat", "0"],
    ["--threads", "-1"],
    ["--filter", "no-such-case"],
    ["--peak-gflops", "0"],
    ["--peak-gbs", "fast"],
    ["--compare", "/nonexistent/old.json"],
    ["--plot", "p.png", "--backend", "numpy,torch"],
])
def test_bad_arguments_are_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--quick", *bad])
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_compare_rejects_a_file_that_is_not_a_bench_run(tmp_path, capsys):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"results": []}))
    with pytest.raises(SystemExit) as e:
        _bench("--compare", str(path))
    assert e.value.code == 2 and "not a `fastlayers bench --json` file" in capsys.readouterr().err


def test_plot_without_matplotlib_is_a_usage_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import fails
    with pytest.raises(SystemExit) as e:
        _bench("--filter", "gemm/square", "--plot", str(tmp_path / "p.png"))
    assert e.value.code == 2 and "matplotlib" in capsys.readouterr().err


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="optional package matplotlib not installed")
    path = tmp_path / "p.png"
    assert _bench("--filter", "gemm", "--backend", "fastlayers,numpy,reference", "--plot", str(path)) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_flags_a_planted_regression(tmp_path, capsys):
    first = tmp_path / "old.json"
    args = ("--filter", "gemm|pool/max-fwd", "--backend", "fastlayers,numpy")
    assert _bench(*args, "--json", str(first)) == 0
    d = json.loads(first.read_text())
    planted = ("pool", "max-fwd-small")
    for r in d["results"]:
        if r["status"] == "ok":
            # the planted case was 100x faster before: a regression now; all others 100x
            # slower before: improvements, far outside any noise of these runs.
            r["median_ms"] *= 0.01 if (r["family"], r["case"]) == planted else 100.0
    first.write_text(json.dumps(d))
    capsys.readouterr()
    second = tmp_path / "new.json"
    assert _bench(*args, "--compare", str(first), "--json", str(second)) == 0  # a regression is no error
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if "REGRESSED" in line]
    assert len(flagged) == 1 and flagged[0].startswith("pool/max-fwd-small") and "fastlayers" in flagged[0]
    assert "1 regression(s) beyond the noise, 2 improvement(s)" in out
    rows = json.loads(second.read_text())["compare"]["rows"]
    verdicts = {(c["case"], c["backend"]): c["verdict"] for c in rows}
    assert verdicts[("max-fwd-small", "fastlayers")] == "regressed"
    assert verdicts[("max-fwd-small", "numpy")] == "regressed"
    assert verdicts[("square-256", "fastlayers")] == "improved"


def test_compare_runs_noise_band():
    def rec(case, ms, spread, backend="fastlayers", status="ok"):
        return {"family": "f", "case": case, "backend": backend, "threads": 1, "status": status,
                "median_ms": ms, "spread_pct": spread}

    old = [rec("a", 1.0, 4.0), rec("b", 1.0, 40.0), rec("c", 1.0, 2.0), rec("d", 1.0, 2.0, status="failed"),
           rec("e", 1.0, 2.0)]
    new = [rec("a", 1.2, 4.0), rec("b", 1.2, 40.0), rec("c", 0.8, 2.0), rec("d", 5.0, 2.0), rec("e", 1.05, 2.0),
           rec("new", 1.0, 1.0)]
    got = {c["case"]: c for c in compare_runs(old, new, tolerance=10.0)}
    assert set(got) == {"a", "b", "c", "e"}  # failed before, or not run before: not compared
    assert got["a"]["verdict"] == "regressed" and got["a"]["change"] == pytest.approx(1 / 1.2)
    assert got["b"]["verdict"] == "same" and got["b"]["noise_pct"] == pytest.approx(40.0)  # inside its noise
    assert got["c"]["verdict"] == "improved"
    assert got["e"]["verdict"] == "same"


def test_planted_wrong_result_fails_validation(monkeypatch, capsys):
    real_all = bench_cases.all_cases

    def planted_all(families=None):
        out = real_all(families)
        for case in out:
            if case.id == "gemm/square-256":
                real = case.fl

                def wrong(inputs, backend, real=real):
                    run = real(inputs, backend)

                    def garbage():
                        out = run()
                        out[0, 0] += 1.0  # one wrong element
                        return out
                    return garbage if backend is None else run
                case.fl = wrong
        return out

    monkeypatch.setattr(bench_cases, "all_cases", planted_all)
    status = _bench("--filter", "gemm/square", "--backend", "fastlayers,numpy,reference")
    captured = capsys.readouterr()
    assert status == 1
    assert "FAILED" in captured.out  # the table row
    assert "gemm/square-256 [fastlayers]: validation:" in captured.err
    assert "numpy]" not in captured.err and "reference]" not in captured.err


def test_custom_gemm_shapes(capsys):
    assert _bench("--gemm", "33x17x9:tB,64", "--backend", "fastlayers,numpy") == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("gemm/")]
    assert rows == ["gemm/33x17x9-tB", "gemm/square-64"]


def test_custom_gemm_shape_that_cannot_be_read_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        _bench("--gemm", "12x0x3")
    assert e.value.code == 2 and "cannot read '12x0x3'" in capsys.readouterr().err
