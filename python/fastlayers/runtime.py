"""Runtime settings and build information: threads, SIMD path, CUDA availability."""

from __future__ import annotations

import operator
import platform
from typing import Any

from fastlayers import _cpu


def get_num_threads() -> int:
    """Number of threads the CPU kernels use (default: OMP_NUM_THREADS or all cores)."""
    return _cpu.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads the CPU kernels use (an integer >= 1)."""
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer >= 1, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n}")
    _cpu.set_num_threads(n)


def get_simd_path() -> str:
    """The SIMD path the CPU kernels use: 'avx512', 'avx2' or 'scalar'."""
    return _cpu.get_simd_path()


def set_simd_path(path: str) -> None:
    """Force a SIMD path ('avx512', 'avx2' or 'scalar') for the rest of the process.

    The environment variable ``FASTLAYERS_SIMD`` does the same at import. Asking for a
    path this CPU cannot run raises ValueError.
    """
    if not isinstance(path, str):
        raise TypeError(f"path: expected a str, got {type(path).__name__}")
    _cpu.set_simd_path(path)


def _cuda_info() -> dict[str, Any]:
    try:
        from fastlayers import _cuda  # noqa: PLC0415 - optional module
    except ModuleNotFoundError:
        return {
            "built": False,
            "architectures": [],
            "gpu_usable": False,
            "reason": "fastlayers was built without CUDA (no CUDA compiler found at build time)",
            "devices": [],
        }
    except ImportError as exc:  # built, but cannot be loaded here
        return {
            "built": True,
            "architectures": [],
            "gpu_usable": False,
            "reason": f"the CUDA module failed to load: {exc}",
            "devices": [],
        }
    raw = _cuda.runtime_info()
    return {
        "built": True,
        "architectures": [a for a in raw["architectures"].split(",") if a],
        "gpu_usable": bool(raw["gpu_usable"]),
        "reason": raw["reason"],
        "driver_version": raw["driver_version"],
        "runtime_version": raw["runtime_version"],
        "devices": list(raw["devices"]),
    }


def info() -> dict[str, Any]:
    """Build and machine information as a dict.

    Keys: version, compiler, python, numpy, cpu (vendor, brand, features), simd_path,
    simd_reason, simd_paths_supported, num_threads, gemm_blocking, cuda (built,
    architectures, gpu_usable, reason, devices).
    """
    import numpy as np

    raw = _cpu.runtime_info()
    return {
        "version": raw["version"],
        "compiler": raw["compiler"],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": {
            "vendor": raw["cpu_vendor"],
            "brand": raw["cpu_brand"],
            "features": dict(raw["cpu_features"]),
        },
        "simd_path": raw["simd_path"],
        "simd_reason": raw["simd_reason"],
        "simd_paths_supported": list(raw["simd_paths_supported"]),
        "num_threads": raw["num_threads"],
        "gemm_blocking": dict(raw["gemm_blocking"]),
        "cuda": _cuda_info(),
    }
