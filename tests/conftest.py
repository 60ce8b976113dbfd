"""Shared fixtures. ../shared (official cfgs, weights, photos) must exist: tests fail, never skip, without it."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DARKNET_PY_SHARED", REPO.parent / "shared"))
ZOO_CFG = SHARED / "zoo" / "cfg"
ZOO_WEIGHTS = SHARED / "zoo" / "weights"
IMAGES = SHARED / "data" / "images"
COCO = SHARED / "data" / "coco-val2017-subset"
VIDEO = SHARED / "data" / "video"


def shared_path(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"required shared data is missing: {path} (tests read ../shared; see README)")
    return path


def zoo_cfgs() -> list[Path]:
    cfgs = sorted(shared_path(ZOO_CFG).glob("*.cfg"))
    if not cfgs:
        pytest.fail(f"no cfgs in {ZOO_CFG}")
    return cfgs


def official(name: str) -> tuple[Path, Path]:
    return shared_path(ZOO_CFG / f"{name}.cfg"), shared_path(ZOO_WEIGHTS / f"{name}.weights")


def photos() -> list[Path]:
    found = sorted(shared_path(IMAGES).glob("*.jpg"))
    if not found:
        pytest.fail(f"no photos in {IMAGES}")
    return found


@pytest.fixture(autouse=True)
def _quiet_known_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        yield
