"""[yolo] heads (darknet's get_yolo_detections).

x, y: logistic (or already logistic with new_coords), then ·scale_x_y − (scale_x_y−1)/2, plus the
cell index, times the cell size. w, h: exp(t)·anchor, or (2t)²·anchor with new_coords; anchors in
network pixels. Score: objectness × class probability.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...model.layers.yolo import YoloSpec
from .common import Candidates, anchor_tensor, cells, corners, flat, per_anchor


def constants(spec: YoloSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    return anchor_tensor(spec.anchors, device, dtype)


def decode(head: Tensor, spec: YoloSpec, stride_x: float, stride_y: float, anchors: Tensor | None = None) -> Candidates:
    t = per_anchor(head, len(spec.anchors), 5 + spec.classes)
    if spec.new_coords:
        xy, twh, rest = t[..., 0:2], t[..., 2:4], t[..., 4:]
        wh_factor = 4 * twh * twh
    else:
        xy, rest = torch.sigmoid(t[..., 0:2]), torch.sigmoid(t[..., 4:])
        wh_factor = torch.exp(t[..., 2:4])
    s = spec.scale_x_y
    xy = xy * s - 0.5 * (s - 1)
    cols, rows = cells(head)
    if anchors is None:
        anchors = constants(spec, head.device, head.dtype)
    boxes = corners((cols + xy[..., 0]) * stride_x, (rows + xy[..., 1]) * stride_y, wh_factor * anchors)
    objectness = flat(rest[..., 0])
    return boxes, objectness, objectness.unsqueeze(-1) * flat(rest[..., 1:])
