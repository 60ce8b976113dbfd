"""[yolo] head tensors → boxes, objectness and class probabilities (darknet semantics).

x, y: logistic (or already logistic with new_coords), then ·scale_x_y − (scale_x_y−1)/2,
plus the cell index, over the grid size. w, h: exp(t)·anchor, or (2t)²·anchor with
new_coords. Anchors are in network pixels. Batched tensor code, shapes from the input.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .layers.yolo import YoloSpec


def decode_head(head: Tensor, spec: YoloSpec, stride_x: float, stride_y: float,
                anchors: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """head (N, A·(5+C), H, W) → boxes xyxy (N, A·H·W, 4) in network px, objectness (N, A·H·W), probs (N, A·H·W, C).

    stride: network pixels per grid cell (darknet: net_w / W). Grid and batch sizes come from the
    tensor, so an ONNX trace of this stays correct at any input size. `anchors` (anchor_tensors'
    tensor on the head's device) spares the host-to-device copy, which a CUDA graph capture forbids.
    """
    n, _, h, w = head.shape
    a = len(spec.anchors)
    t = head.view(n, a, 5 + spec.classes, h, w).permute(0, 1, 3, 4, 2)  # N, A, H, W, 5+C
    if spec.new_coords:
        xy, twh, rest = t[..., 0:2], t[..., 2:4], t[..., 4:]
        wh_factor = 4 * twh * twh
    else:
        xy, rest = torch.sigmoid(t[..., 0:2]), torch.sigmoid(t[..., 4:])
        wh_factor = torch.exp(t[..., 2:4])
    s = spec.scale_x_y
    xy = xy * s - 0.5 * (s - 1)
    cols = torch.arange(w, device=head.device, dtype=head.dtype).view(1, 1, 1, w)
    rows = torch.arange(h, device=head.device, dtype=head.dtype).view(1, 1, h, 1)
    cx = (cols + xy[..., 0]) * stride_x
    cy = (rows + xy[..., 1]) * stride_y
    if anchors is None:
        anchors = anchor_tensor(spec, head.device, head.dtype)
    wh = wh_factor * anchors
    boxes = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)
    return boxes.reshape(n, -1, 4), rest[..., 0].reshape(n, -1), rest[..., 1:].reshape(n, -1, spec.classes)


def anchor_tensor(spec: YoloSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.tensor(spec.anchors, device=device, dtype=dtype).view(1, len(spec.anchors), 1, 1, 2)


def decode(heads: list[Tensor], specs: list[YoloSpec], net_w: int, net_h: int,
           anchors: list[Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """All heads concatenated: boxes (N, M, 4), objectness (N, M), probs (N, M, C)."""
    per_head = anchors or [None] * len(specs)
    parts = [decode_head(h, s, net_w / h.shape[3], net_h / h.shape[2], a) for h, s, a in zip(heads, specs, per_head)]
    return tuple(torch.cat(p, 1) for p in zip(*parts))  # type: ignore[return-value]
