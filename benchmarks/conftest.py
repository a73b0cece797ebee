"""pytest configuration of the benchmark suites: a report header saying what is measured."""

from __future__ import annotations

import os


def pytest_report_header(config):
    import fastlayers
    from fastlayers import machine
    from fastlayers.bench import gemm as gemm_cases

    info = fastlayers.info()
    load = os.getloadavg()[0]
    lines = [
        f"fastlayers {info['version']}: simd path {info['simd_path']}, cpu "
        f"{info['cpu']['brand'] or info['machine']} ({machine.cpu_count()} cpus)",
        gemm_cases.blas_info(),
        f"load average {load:.2f}",
    ]
    if load > 0.5 * machine.cpu_count():
        lines.append("warning: the machine is busy: expect noisy numbers, multi-threaded ones most")
    return lines
