"""What machine a benchmark ran on: every results file names its CPU (sessions get different ones, and the
ratios differ between them)."""
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
