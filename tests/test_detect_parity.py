"""Detections equal OpenCV 4.x's DetectionModel on every shared photo (official weights).

OpenCV's DetectionModel resizes with cv2.resize, keeps one class per box and suppresses with plain
IoU per class, so the comparison asks our pipeline for the same (resize="opencv", multi_label=False,
nms_kind="iou"): the mode for people coming from OpenCV DNN. The defaults (darknet's resize, every
class, the cfg's NMS) are checked against darknet itself in test_darknet_detect.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from tests.conftest import official, photos

THRESH, NMS = 0.25, 0.45


@pytest.fixture(scope="module", params=["yolov4-tiny", "yolov3-tiny"])
def pair(request):
    cfg, weights = official(request.param)
    model = darknet_py.load(cfg, weights)
    peer = cv2.dnn_DetectionModel(str(cfg), str(weights))
    peer.setInputParams(scale=1 / 255, size=(416, 416), swapRB=True, crop=False)
    return model, peer


def _same_box(ours, theirs) -> bool:
    """Corners within 2.5 px. OpenCV clips a box's left/top edge to 0 but keeps its width/height,
    so where its edge sits at 0 the opposite edge is only an upper bound for ours."""
    for near, far in ((0, 2), (1, 3)):
        if abs(ours[near] - theirs[near]) > 2.5:
            return False
        clipped = theirs[near] == 0 and ours[near] <= 2.5
        if clipped and ours[far] > theirs[far] + 2.5 or not clipped and abs(ours[far] - theirs[far]) > 2.5:
            return False
    return True


def _unmatched(a, b, ours_first: bool, margin=0.01):
    """Detections of `a` (class, score, xyxy) with no partner in `b` (same class, score ±0.01, same box)."""
    missing = []
    for cls, score, box in a:
        if abs(score - THRESH) <= margin:
            continue  # threshold-borderline detections may fall either side
        if not any(c == cls and abs(s - score) <= 0.01 and (_same_box(box, bx) if ours_first else _same_box(bx, box))
                   for c, s, bx in b):
            missing.append((cls, round(score, 3), np.round(box, 1).tolist()))
    return missing


@pytest.mark.parametrize("photo", photos(), ids=lambda p: p.name)
def test_same_detections_as_opencv_detection_model(pair, photo: Path) -> None:
    model, peer = pair
    image = cv2.imread(str(photo))
    ours = model.detect(image, THRESH, NMS, nms_kind="iou", resize="opencv", multi_label=False)[0]
    classes, scores, rects = peer.detect(image, THRESH, NMS)
    height, width = image.shape[:2]
    theirs = [(int(c), float(s), np.minimum([x, y, x + w, y + h], [width, height, width, height]).tolist())
              for c, s, (x, y, w, h) in zip(np.ravel(classes), np.ravel(scores), rects)]
    mine = [(int(c), float(s), b.tolist()) for c, s, b in zip(ours.class_ids, ours.scores, ours.boxes)]
    assert _unmatched(mine, theirs, ours_first=True) == [], "detections OpenCV does not have"
    assert _unmatched(theirs, mine, ours_first=False) == [], "OpenCV detections we miss"


def test_dog_gives_dog_bicycle_truck() -> None:
    cfg, weights = official("yolov4-tiny")
    found = set(darknet_py.load(cfg, weights).detect(str(photos()[0].parent / "dog.jpg"))[0].labels)
    assert {"dog", "bicycle", "truck"} <= found
