"""The distribution: `darknet-engine` (the name `darknet-py` on the package index is someone else's), version
from darknet_py/core/version.py, a wheel that holds every module, its package data and the compiled resize kernel, and that — installed
into a clean virtual environment, away from this checkout — runs the main command."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from darknet_py.core.version import __version__
from tests.conftest import IMAGES, REPO, shared_path

pytestmark = pytest.mark.timeout(900)
DISTRIBUTION = "darknet-engine"
TORCH = "torch==2.13.0"  # the CPU build the test command pins (tests/run.sh)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(folder)], check=True,
                   capture_output=True, timeout=600)
    (built,) = folder.glob("*.whl")
    return built


def test_the_wheel_holds_every_module_and_its_data(wheel: Path) -> None:
    # a platform wheel: it carries the C kernels compiled (setup.py) for this Python and machine
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.startswith(f"darknet_engine-{__version__}-{tag}-{tag}-") and wheel.name.endswith(".whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kernel in ("pipeline/_darknet_resize", "pipeline/_yolo_gate", "pipeline/_greedy_nms", "model/layers/_mish"):
        assert any(n.startswith(f"darknet_py/{kernel}.") and n.endswith((".so", ".pyd")) for n in names), kernel
    sources = {str(p.relative_to(REPO)) for top in ("darknet_py", "weights_tools") for p in (REPO / top).rglob("*.py")}
    assert sources - names == set()
    assert {"darknet_py/live/page.html", "darknet_py/live/detect_page.html"} <= names
    assert f"darknet_engine-{__version__}.data/data/share/darknet_py/zoo.json" in names
    metadata = zipfile.ZipFile(wheel).read(f"darknet_engine-{__version__}.dist-info/METADATA").decode()
    assert f"Name: {DISTRIBUTION}\n" in metadata and f"Version: {__version__}\n" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"darknet_engine-{__version__}.dist-info/entry_points.txt").decode()
    assert "darknet-py = darknet_py.cli:run_program" in entry_points


def test_the_wheel_installed_in_a_clean_venv_runs_detect(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH], check=True, capture_output=True, timeout=600)
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"  # not the checkout: the installed package and its data only
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["DARKNET_PY_ZOO"] = str(REPO.parent / "shared" / "zoo")
    result = subprocess.run([str(venv / "bin" / "darknet-py"), "detect", str(shared_path(IMAGES / "dog.jpg")), "--ext-output",
                             "--output", "out"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "without its C kernel" not in result.stderr  # the wheel's kernel loads where it is installed
    assert "dog: 84%" in result.stdout and (elsewhere / "out" / "dog.jpg").is_file()
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import darknet_py; print(darknet_py.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.startswith(str(venv))
