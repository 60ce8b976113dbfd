"""What CPU this is: its model name and the vector ISA flags that decide which kernels the runtimes pick.

Every benchmark results file names its CPU (sessions get different ones, and the ratios differ between them), and
`load(..., backend="auto")` remembers the fastest runtime per CPU (darknet_py.backends.fastest)."""
from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name as lscpu prints it ("Model name"), read from /proc/cpuinfo.

    Returns:
        str: e.g. "Intel(R) Xeon(R) Processor"; platform's processor or machine name where /proc has none.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags() -> list[str]:
    """The vector ISA flags of /proc/cpuinfo that decide which kernels oneDNN, OpenVINO and OpenCV pick.

    Returns:
        list[str]: those of ISA_FLAGS the CPU reports, in that order (empty where /proc has none).
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in ISA_FLAGS if flag in present]
    except OSError:
        pass
    return []
