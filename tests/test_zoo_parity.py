"""Parity with OpenCV 4.x on every shared cfg (synthetic weights) and on the official
yolov4-tiny / yolov3-tiny weights over every shared photo."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from tests.conftest import ZOO_CFG, official, photos, shared_path, zoo_cfgs
from tests.oracle import opencv_cfg, opencv_heads, oracle_epsilon, relative_error

PARITY_SIDE = 256  # small input keeps the big cfgs (P6/P7) fast; every zoo cfg allows it
TOLERANCE = 1e-4


@pytest.mark.parametrize("cfg", zoo_cfgs(), ids=lambda p: p.stem)
def test_synthetic_weights_match_opencv(tmp_path: Path, cfg: Path, synthetic_weights) -> None:
    weights = synthetic_weights(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)  # P7's num=16 (tested below)
        model = darknet_py.load(cfg, weights, size=PARITY_SIDE)
    oracle_epsilon(model)
    blob = np.random.default_rng(1).uniform(0, 1, (1, 3, PARITY_SIDE, PARITY_SIDE)).astype(np.float32)
    with torch.no_grad():
        heads = model.forward_heads(torch.from_numpy(blob))
    reference = opencv_heads(opencv_cfg(cfg, tmp_path), weights, blob, model.head_indices)
    assert len(heads) == len(reference) > 0
    for head, expected in zip(heads, reference):
        assert relative_error(head, expected) <= TOLERANCE


@pytest.fixture(scope="module", params=["yolov4-tiny", "yolov3-tiny"])
def official_pair(request):
    cfg, weights = official(request.param)
    model = darknet_py.load(cfg, weights)
    oracle_epsilon(model)
    return model, cv2.dnn.readNetFromDarknet(str(cfg), str(weights)), cfg, weights


@pytest.mark.parametrize("photo", photos(), ids=lambda p: p.name)
def test_official_weights_match_opencv_on_photos(official_pair, photo: Path) -> None:
    model, _, cfg, weights = official_pair
    blob = cv2.dnn.blobFromImage(cv2.imread(str(photo)), 1 / 255, (416, 416), swapRB=True, crop=False)
    with torch.no_grad():
        heads = model.forward_heads(torch.from_numpy(blob))
    reference = opencv_heads(cfg, weights, blob, model.head_indices)
    for head, expected in zip(heads, reference):
        assert relative_error(head, expected) <= TOLERANCE


def test_engine_keeps_darknets_batchnorm_epsilon() -> None:
    # darknet normalises with variance + .00001f (src/blas.c, CUDA kernels); OpenCV uses 1e-6.
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    epsilons = {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert epsilons == {1e-5}
    # With darknet's epsilon the heads still sit within 2e-4 of OpenCV's on a real photo.
    blob = cv2.dnn.blobFromImage(cv2.imread(str(photos()[0])), 1 / 255, (416, 416), swapRB=True, crop=False)
    with torch.no_grad():
        heads = model(torch.from_numpy(blob))
    for head, expected in zip(heads, opencv_heads(cfg, weights, blob, model.head_indices)):
        assert 1e-7 < relative_error(head, expected) <= 2e-4


def test_p7_num_mismatch_warns_once_and_uses_listed_anchors() -> None:
    cfg = shared_path(ZOO_CFG / "cspx-p7-mish.cfg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = darknet_py.load(cfg, size=256)
    quirks = [w for w in caught if issubclass(w.category, darknet_py.DarknetWarning)]
    assert len(quirks) == 1
    assert "num=16 but 20 anchors are listed" in str(quirks[0].message)
    # The last head's mask reaches anchors 16..19, which only the listed 20 provide.
    assert len(model.heads) == 5 and model.heads[-1].anchors[-1] != (0.0, 0.0)


def test_synthetic_weights_have_the_official_layout() -> None:
    # shared/README: the official yolov4-csp.weights is 211,944,840 bytes (20-byte header).
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    assert darknet_py.load(cfg).num_weights() * 4 + 20 == 211_944_840
