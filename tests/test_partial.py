"""`python -m weights_tools partial`: darknet's `partial` (the first N layers' weights, the start of a training run:
yolov4-tiny.conv.29), byte for byte against the real darknet's `partial` on the official weights — also with a cfg
of another class count, as darknet's README makes its .conv files — and bad requests refused in one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.oracle.darknet_reference import DarknetProgram
from tests.conftest import REPO, ZOO_CFG, official, shared_path

pytestmark = pytest.mark.timeout(300)


def _ours(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weights_tools", "partial", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=240)


def _darknets(darknet: DarknetProgram, cfg: Path, weights: Path, out: Path, layers: int) -> bytes:
    darknet.run("partial", cfg, weights, out, str(layers))
    return out.read_bytes()


@pytest.mark.parametrize("model, layers", [("yolov4-tiny", 29), ("yolov3-tiny", 15), ("yolov4-tiny", 1),
                                           ("yolov3-tiny", 500)])
def test_the_file_is_darknets_partial_byte_for_byte(darknet_ref, tmp_path: Path, model: str, layers: int) -> None:
    cfg, weights = official(model)
    done = _ours(str(cfg), str(weights), str(tmp_path / "ours"), str(layers))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    expected = _darknets(darknet_ref, cfg, weights, tmp_path / "theirs", layers)
    assert (tmp_path / "ours").read_bytes() == expected
    assert done.stdout.startswith(f"wrote {tmp_path / 'ours'}: layers 0 to ")
    assert f"{(len(expected) - 20) // 4:,} floats" in done.stdout


def test_a_cfg_of_other_classes_takes_the_backbone_as_darknets_readme_does(darknet_ref, tmp_path: Path) -> None:
    """yolov4-tiny's cfg with 3 classes (the heads' filters 24) and the COCO weights: layers 0 to 28 are the same, so
    their weights are taken (with a warning that the files differ later), as darknet takes them."""
    cfg, weights = official("yolov4-tiny")
    custom = tmp_path / "yolov4-tiny-3.cfg"
    custom.write_text(cfg.read_text().replace("classes=80", "classes=3").replace("filters=255", "filters=24"))
    done = _ours(str(custom), str(weights), str(tmp_path / "ours.conv.29"), "29")
    assert done.returncode == 0
    assert done.stderr.startswith("warning: yolov4-tiny.weights holds 6,062,814 floats, yolov4-tiny-3.cfg needs ")
    assert done.stderr.count("\n") == 1
    assert (tmp_path / "ours.conv.29").read_bytes() == _darknets(darknet_ref, custom, weights, tmp_path / "t", 29)


def test_weights_of_another_network_and_bad_counts_are_one_line(tmp_path: Path) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4.cfg")
    _, tiny = official("yolov4-tiny")
    out = tmp_path / "out.conv.137"
    done = _ours(str(cfg), str(tiny), str(out), "137")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: yolov4-tiny.weights holds 6,062,814 floats; the first 137 layers of "
                                  "yolov4.cfg need ")
    assert not out.exists()
    zero = _ours(str(cfg), str(tiny), str(out), "0")
    assert zero.returncode == 2 and zero.stderr == "error: partial 0: give how many layers to keep from the first, 1 or " \
                                                   "more\n"
    out.write_bytes(b"mine")
    again = _ours(*map(str, official("yolov4-tiny")), str(out), "29")
    assert again.returncode == 2 and "exists; pass --exist-ok" in again.stderr and out.read_bytes() == b"mine"
