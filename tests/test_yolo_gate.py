"""The CPU's [yolo] decoding of only the candidates above the objectness threshold (darknet_py.pipeline.yolo_gate,
its C kernel _yolo_gate.c) and the numpy thresholds after it, against darknet's own [yolo] layer and against the
tensor path they stand in for.

- darknet (dump_layers, the reference build) runs yolov4-tiny on a photo; the kernel, given darknet's own head
  inputs, must pick darknet's boxes (objectness > threshold), give darknet's class scores (objectness ×
  probability, as get_yolo_detections computes them) within 8 float32 ulps (darknet is built with -Ofast, whose
  exponential rounds differently: torch's tensor path is as far from it) and boxes within 1e-3 px of darknet's
  get_yolo_box.
- Against the tensor path (decode + gate): the same rows, scores within 8 float32 ulps (torch's vectorised
  exponential and libm's differ in the last bits), boxes within 1e-5 of their largest coordinate, on photos
  and on random heads with NaN and infinite values, new_coords and other scale_x_y.
- detect() with the kernel, the numpy thresholds and the C NMS against detect() with none: the same detections
  (classes exact, scores within 8 ulps, boxes within 1e-3 px), with class_scores, a classes filter, one
  label per box and map's 0.005 threshold.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py.pipeline import detect as detect_module
from darknet_py.pipeline import nms, yolo_gate
from darknet_py.pipeline.backend import gate
from darknet_py.pipeline.decode import decode
from darknet_py.pipeline.preprocess import prepare
from tests.conftest import IMAGES, official, shared_path

PHOTOS = ("dog.jpg", "horses.jpg", "giraffe.jpg")
SCORE_ULPS = 8
BOX_RELATIVE = 1e-5


def test_the_kernel_is_built() -> None:
    """setup.py compiles it wherever the package installs with a C compiler, as here: without it detect() would
    quietly take the tensor path (the same rows, more slowly)."""
    assert yolo_gate._kernel is not None


def test_darknets_boxes_and_scores_from_darknets_heads(darknet_ref, tmp_path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, size=416)
    pixels, _ = prepare(cv2.imread(str(shared_path(IMAGES / "dog.jpg"))), 416, 416, False)
    dumps = darknet_ref.layers(cfg, weights, pixels, tmp_path / "darknet", detector=True)
    yolo_layers = [d for d in dumps if d.type == "yolo"]
    assert len(yolo_layers) == len(model.heads) == 2
    thresh = 0.005  # darknet's map threshold: a few hundred boxes
    for layer, spec in zip(yolo_layers, model.heads):
        values, anchors = 5 + spec.classes, len(spec.anchors)
        head = dumps[layer.index - 1].output.reshape(1, anchors * values, layer.h, layer.w)
        ours = yolo_gate.gate_heads([torch.from_numpy(head)], [spec], 416, 416, thresh)
        out = layer.output.reshape(anchors, values, layer.h, layer.w)  # after darknet's logistic and scale_x_y
        objectness = out[:, 4]
        picked = np.flatnonzero(objectness.reshape(-1) > np.float32(thresh))
        assert len(picked) >= 20
        np.testing.assert_array_equal(ours.box_idx.numpy(), picked)
        a, cell = np.divmod(picked, layer.h * layer.w)
        row, col = np.divmod(cell, layer.w)
        probabilities = out[a, 5:, row, col]  # (B, classes)
        np.testing.assert_array_max_ulp(ours.scores.numpy(), objectness[a, row, col][:, None] * probabilities, SCORE_ULPS)
        # get_yolo_box (in double) in network pixels
        anchor = np.asarray(spec.anchors, np.float64)[a]
        cx = (col + out[a, 0, row, col].astype(np.float64)) / layer.w * 416
        cy = (row + out[a, 1, row, col].astype(np.float64)) / layer.h * 416
        w = np.exp(out[a, 2, row, col].astype(np.float64)) * anchor[:, 0]
        h = np.exp(out[a, 3, row, col].astype(np.float64)) * anchor[:, 1]
        theirs = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        assert np.abs(ours.boxes.numpy() - theirs).max() < 1e-3


def _assert_same_rows(tensors, kernel) -> None:
    assert torch.equal(tensors.image_idx, kernel.image_idx) and torch.equal(tensors.box_idx, kernel.box_idx)
    np.testing.assert_array_max_ulp(tensors.scores.numpy(), kernel.scores.numpy(), SCORE_ULPS)
    a, b = tensors.boxes.numpy(), kernel.boxes.numpy()
    finite = np.isfinite(a).all(1)
    np.testing.assert_array_equal(a[~finite], b[~finite])  # NaN and infinite boxes alike
    scale = np.maximum(np.abs(a[finite]).max(1, keepdims=True), 1)
    assert (np.abs(a[finite] - b[finite]) <= BOX_RELATIVE * scale).all()


def test_kernel_equals_the_tensor_path_on_photos() -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    images = [cv2.imread(str(shared_path(IMAGES / name))) for name in PHOTOS]
    pixels = np.stack([prepare(image, 416, 416, False)[0] for image in images])
    with torch.inference_mode():
        heads = model.runner().network(torch.from_numpy(pixels))
    for thresh in (0.005, 0.25, 0.5):
        kernel = yolo_gate.gate_heads(heads, model.heads, 416, 416, thresh)
        assert len(kernel.box_idx) > 3 and set(kernel.image_idx.tolist()) == {0, 1, 2}
        _assert_same_rows(gate(decode(heads, model.heads, 416, 416), thresh), kernel)


@pytest.mark.parametrize("variant", ["cfg", "scale_x_y=1", "new_coords"])
def test_kernel_equals_the_tensor_path_on_random_heads(variant: str) -> None:
    model = darknet_py.load(official("yolov4-tiny")[0], size=416)
    specs = list(model.heads)
    if variant == "scale_x_y=1":
        specs = [dataclasses.replace(s, scale_x_y=1.0) for s in specs]
    if variant == "new_coords":  # the layer's outputs are logistic already: values in [0, 1]
        specs = [dataclasses.replace(s, new_coords=True, scale_x_y=2.0) for s in specs]
    generator = torch.Generator().manual_seed(7)
    for spread in (0.5, 3.0, 8.0):
        heads = [torch.randn(2, 255, side, side, generator=generator) * spread for side in (13, 26)]
        if variant == "new_coords":
            heads = [torch.sigmoid(h) for h in heads]
        heads[0][0, 4, 0, 0] = float("nan")  # an objectness
        heads[0][1, 0, 1, 1], heads[1][1, 2, 3, 3], heads[1][0, 3, 4, 4] = float("inf"), float("nan"), float("-inf")
        for thresh in (0.005, 0.25, 0.9):
            _assert_same_rows(gate(decode(heads, specs, 416, 416), thresh),
                              yolo_gate.gate_heads(heads, specs, 416, 416, thresh))


def test_heads_the_kernel_does_not_take_go_the_tensor_way(darknet_ref) -> None:
    model = darknet_py.load(official("yolov4-tiny")[0], size=416)
    heads = [torch.randn(1, 255, side, side) for side in (13, 26)]
    assert yolo_gate.applies(heads, model.heads)
    assert not yolo_gate.applies([h.half() for h in heads], model.heads)
    assert not yolo_gate.applies(heads[:1], model.heads)
    region = darknet_py.load(darknet_ref.folder / "cfg" / "yolov2-tiny.cfg", size=416)  # a [region] head
    assert not yolo_gate.applies(heads[:1], region.heads)


@pytest.mark.parametrize("options", [{}, {"conf_thresh": 0.005}, {"class_scores": True, "classes": (16, 1, 2)},
                                     {"multi_label": False}])
def test_detect_equals_detect_without_the_cpu_shortcuts(options: dict, monkeypatch) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    images = [cv2.imread(str(shared_path(IMAGES / name))) for name in PHOTOS]
    fast = model.detect(images, **options)
    monkeypatch.setattr(yolo_gate, "use_kernel", False)
    monkeypatch.setattr(detect_module, "_rows_on_host", lambda gated: False)
    monkeypatch.setattr(nms, "use_kernel", False)
    slow = model.detect(images, **options)
    assert sum(len(d) for d in fast) >= 3
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_array_equal(a.box_ids, b.box_ids)
        np.testing.assert_array_max_ulp(a.scores, b.scores, SCORE_ULPS)
        assert np.abs(a.boxes - b.boxes).max(initial=0) < 1e-3
        if options.get("class_scores"):
            np.testing.assert_array_max_ulp(a.class_scores, b.class_scores, SCORE_ULPS)
            assert set(np.flatnonzero(a.class_scores.any(0))) <= {16, 1, 2}
