"""[Gaussian_yolo] heads (darknet's forward_gaussian_yolo_layer + get_gaussian_yolo_detections).

Per anchor: μx σx μy σy μw σw μh σh, objectness, classes. Logistic on μx, μy (then scale_x_y), the
four σ, objectness and classes; μw, μh stay raw. x = (col + μx)·cell, w = exp(μw)·anchor (network
pixels); with yolo_point left_top / right_bottom (μx, μy) is that corner, not the centre.
Score: objectness × class × (1 − mean σ), the uncertainty-weighted score of Gaussian YOLOv3.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...model.layers.gaussian_yolo import VALUES_PER_ANCHOR, GaussianYoloSpec
from .common import Candidates, anchor_tensor, cells, corners, flat, per_anchor

POINT_SHIFT = {"center": 0.0, "left_top": 0.5, "right_bottom": -0.5}  # box centre = point + shift·size


def constants(spec: GaussianYoloSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    return anchor_tensor(spec.anchors, device, dtype)


def decode(head: Tensor, spec: GaussianYoloSpec, stride_x: float, stride_y: float,
           anchors: Tensor | None = None) -> Candidates:
    t = per_anchor(head, len(spec.anchors), VALUES_PER_ANCHOR + spec.classes)
    s = spec.scale_x_y
    mu_xy = torch.sigmoid(t[..., 0:4:2]) * s - 0.5 * (s - 1)
    sigmas = torch.sigmoid(t[..., 1:8:2])  # σx σy σw σh
    rest = torch.sigmoid(t[..., 8:])
    if anchors is None:
        anchors = constants(spec, head.device, head.dtype)
    wh = torch.exp(t[..., 4:8:2]) * anchors
    cols, rows = cells(head)
    shift = POINT_SHIFT[spec.yolo_point]
    cx = (cols + mu_xy[..., 0]) * stride_x + shift * wh[..., 0]
    cy = (rows + mu_xy[..., 1]) * stride_y + shift * wh[..., 1]
    objectness = rest[..., 0]
    certainty = 1 - sigmas.sum(-1) / 4
    scores = (objectness.unsqueeze(-1) * rest[..., 1:]) * certainty.unsqueeze(-1)
    return corners(cx, cy, wh), flat(objectness), flat(scores)
