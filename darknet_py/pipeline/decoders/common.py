"""What the head decoders share: the grid, corner boxes, the anchors as a tensor.

A decoder maps one head tensor (N, A·V, H, W) to candidates: boxes xyxy (N, A·H·W, 4) in network
pixels, the objectness that gates them (N, A·H·W) and class scores (N, A·H·W, C), the score darknet
compares with the threshold. Grid and batch sizes come from the tensor, so an ONNX trace stays
correct at any input size.
"""
from __future__ import annotations

import torch
from torch import Tensor

Candidates = tuple[Tensor, Tensor, Tensor]  # boxes (N, M, 4), objectness (N, M), scores (N, M, C)


def per_anchor(head: Tensor, anchors: int, values: int) -> Tensor:
    """(N, A·V, H, W) → (N, A, H, W, V): darknet keeps each anchor's V values as consecutive planes."""
    n, _, h, w = head.shape
    return head.view(n, anchors, values, h, w).permute(0, 1, 3, 4, 2)


def cells(head: Tensor) -> tuple[Tensor, Tensor]:
    """Column and row indices broadcastable against (N, A, H, W)."""
    _, _, h, w = head.shape
    cols = torch.arange(w, device=head.device, dtype=head.dtype).view(1, 1, 1, w)
    rows = torch.arange(h, device=head.device, dtype=head.dtype).view(1, 1, h, 1)
    return cols, rows


def corners(cx: Tensor, cy: Tensor, wh: Tensor) -> Tensor:
    """Centre and size (…, 2) → (N, M, 4) xyxy."""
    boxes = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)
    return boxes.reshape(boxes.shape[0], -1, 4)


def anchor_tensor(anchors: tuple[tuple[float, float], ...], device: torch.device,
                  dtype: torch.dtype = torch.float32) -> Tensor:
    """(1, A, 1, 1, 2), broadcastable against per-cell (w, h)."""
    return torch.tensor(anchors, device=device, dtype=dtype).view(1, len(anchors), 1, 1, 2)


def flat(t: Tensor) -> Tensor:
    """(N, A, H, W[, C]) → (N, A·H·W[, C])."""
    return t.reshape(t.shape[0], -1, *t.shape[4:])
