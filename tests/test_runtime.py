"""Runtime and CLI: fastlayers.info(), thread/SIMD settings, and `fastlayers info`.

Nothing here assumes what the machine has: the CPU features, the SIMD paths and whether a
GPU is usable are read from info() and checked for consistency, so the same tests pass
on a CPU-only CI runner and on a GPU machine. The CLI runs in a subprocess through the
`fastlayers` console script when one is installed next to the interpreter or on PATH,
and through `python -m fastlayers.cli.main` otherwise (and always, in one test).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys

import pytest

import fastlayers

ALL_PATHS = {"avx512", "avx2", "scalar"}

# (key path into info(), expected type)
INFO_TYPES = [
    (("version",), str),
    (("compiler",), str),
    (("python",), str),
    (("numpy",), str),
    (("machine",), str),
    (("cpu", "vendor"), str),
    (("cpu", "brand"), str),
    (("cpu", "features"), dict),
    (("simd_path",), str),
    (("simd_reason",), str),
    (("simd_paths_supported",), list),
    (("num_threads",), int),
    (("gemm_blocking",), dict),
    (("gemm_blocking", "isa"), str),
    (("cuda",), dict),
    (("cuda", "built"), bool),
    (("cuda", "architectures"), list),
    (("cuda", "gpu_usable"), bool),
    (("cuda", "reason"), str),
    (("cuda", "devices"), list),
]


def _get(d, path):
    for key in path:
        d = d[key]
    return d


@pytest.mark.parametrize("path, typ", INFO_TYPES, ids=[".".join(p) for p, _ in INFO_TYPES])
def test_info_key_types(path, typ):
    assert isinstance(_get(fastlayers.info(), path), typ)


def test_info_version_matches_package():
    version = fastlayers.info()["version"]
    assert version == fastlayers.__version__ == importlib.metadata.version("fastlayers")


def test_info_is_json_serialisable():
    assert json.loads(json.dumps(fastlayers.info()))["version"] == fastlayers.__version__


def test_info_cpu_features_are_flags():
    features = fastlayers.info()["cpu"]["features"]
    assert {"sse2", "avx2", "fma", "avx512f"} <= set(features)
    assert all(isinstance(v, bool) for v in features.values())


def test_info_simd_paths_consistent():
    d = fastlayers.info()
    supported = d["simd_paths_supported"]
    assert "scalar" in supported and set(supported) <= ALL_PATHS
    assert d["simd_path"] in supported
    assert d["simd_path"] == fastlayers.get_simd_path()
    assert d["simd_reason"]


@pytest.mark.parametrize("key", ["MR", "NR", "KC", "MC", "NC"])
def test_info_gemm_blocking(key):
    gb = fastlayers.info()["gemm_blocking"]
    assert isinstance(gb[key], int) and gb[key] > 0
    assert gb["isa"] == fastlayers.get_simd_path()


def test_info_cuda_consistent():
    cuda = fastlayers.info()["cuda"]
    if cuda["gpu_usable"]:
        assert cuda["built"] and cuda["devices"]
        assert {"name", "compute_capability", "total_memory"} <= set(cuda["devices"][0])
    else:
        assert cuda["reason"].strip(), "no usable GPU must come with a reason"
        assert cuda["devices"] == []
    if not cuda["built"]:
        assert cuda["architectures"] == [] and not cuda["gpu_usable"]


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_num_threads_round_trip(n):
    fastlayers.set_num_threads(n)
    assert fastlayers.get_num_threads() == n == fastlayers.info()["num_threads"]


@pytest.mark.parametrize("bad, exc, match", [
    ("sse", ValueError, r"^path: .*'sse'"),
    ("AVX2", ValueError, r"^path: .*'AVX2'"),
    (2, TypeError, r"^path: expected a str"),
    (None, TypeError, r"^path: expected a str"),
])
def test_set_simd_path_refuses(bad, exc, match):
    before = fastlayers.get_simd_path()
    with pytest.raises(exc, match=match):
        fastlayers.set_simd_path(bad)
    assert fastlayers.get_simd_path() == before


def _python(code, **env_changes):
    """Runs code in a fresh interpreter; env_changes maps names to values (None: unset)."""
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_default_simd_path_is_best_supported():
    out = _python("import fastlayers; print(fastlayers.get_simd_path())", FASTLAYERS_SIMD=None)
    assert out == fastlayers.info()["simd_paths_supported"][0]


def test_empty_fastlayers_simd_means_default():
    out = _python("import fastlayers; print(fastlayers.get_simd_path())", FASTLAYERS_SIMD="")
    assert out == fastlayers.info()["simd_paths_supported"][0]


def test_omp_num_threads_sets_default_thread_count():
    assert _python("import fastlayers; print(fastlayers.get_num_threads())", OMP_NUM_THREADS="3") == "3"


# --- command line ---------------------------------------------------------------------------

MODULE_CLI = [sys.executable, "-m", "fastlayers.cli.main"]


def _cli_command():
    """The `fastlayers` script of this interpreter's environment (or PATH), else the -m form."""
    script = shutil.which("fastlayers", path=os.path.dirname(sys.executable)) or shutil.which("fastlayers")
    return [script] if script else MODULE_CLI


def _cli(*args, prefix=None):
    cmd = (prefix or _cli_command()) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("prefix", [None, MODULE_CLI], ids=["console_script", "python_-m"])
def test_cli_info(prefix):
    proc = _cli("info", prefix=prefix)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"fastlayers {fastlayers.__version__}")
    for label in ("simd path", "threads", "gemm", "cpu"):
        assert label in proc.stdout


def test_cli_info_json():
    proc = _cli("info", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert set(d) == set(fastlayers.info())
    assert d["version"] == fastlayers.__version__
    assert d["simd_path"] in d["simd_paths_supported"]


def test_cli_help():
    proc = _cli("--help")
    assert proc.returncode == 0 and "info" in proc.stdout


@pytest.mark.parametrize("args", [("frobnicate",), ()], ids=["unknown_subcommand", "no_subcommand"])
def test_cli_without_valid_command_fails(args):
    proc = _cli(*args)
    assert proc.returncode != 0
    assert "usage: fastlayers" in proc.stderr
