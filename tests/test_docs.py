"""The README's commands and Python example run as written (from the repository root, as the README says).

Each fenced block is taken from README.md itself, so the README cannot drift from what works. The
two set-up commands are what CI runs (`.ci/run` → tests/run.sh), and `--serve … --keep-serving`
serves until Ctrl-C (tests/test_live.py covers the page); every other block runs here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
NOT_RUN_HERE = ("python3 -m venv", "bash tests/run.sh", "--keep-serving")  # set-up (CI runs it), a server


def readme_blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # darknet-py of the venv running the tests
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "DARKNET_PY_ZOO": str(REPO.parent / "shared" / "zoo")}


def runnable_blocks() -> list[str]:
    return [b for b in readme_blocks("bash") if not any(marker in b for marker in NOT_RUN_HERE)]


def test_the_readme_has_the_blocks_this_test_runs():
    bash = readme_blocks("bash")
    left_out = [b for b in bash if b not in runnable_blocks()]
    assert len(left_out) == 3, f"only the two set-up commands and the server are left out, not:\n{left_out}"
    assert any("darknet-py detect" in b for b in runnable_blocks())
    assert any("darknet-py classify" in b for b in runnable_blocks())
    assert len(readme_blocks("python")) == 1


@pytest.mark.timeout(900)
@pytest.mark.parametrize("index", range(len(runnable_blocks())))
def test_readme_commands_run(index, darknet_ref):
    """darknet_ref: the classify example reads darknet's cfgs from .darknet-ref, which the suite builds."""
    block = runnable_blocks()[index]
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=REPO, env=_env(), capture_output=True,
                            text=True, timeout=800)
    assert result.returncode == 0, f"README block {index} failed:\n{block}\n--- stderr ---\n{result.stderr[-3000:]}"


@pytest.mark.timeout(300)
def test_readme_python_example_runs():
    (example,) = readme_blocks("python")
    script = example + "\nassert 'dog' in dets.labels and len(heads) == 2 and annotated.shape == image.shape\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(), capture_output=True, text=True,
                            timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
