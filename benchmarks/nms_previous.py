"""The NMS darknet_py had before issue 17 (dense overlap tiles and a box-by-box scan), kept only for
benchmarks/nms.py to compare against. Not used by the package."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

GREEDY_DIOU_BETA = 0.6  # darknet box_diou's exponent


def pairwise_overlap(boxes: Tensor, kind: str = "iou", beta: float = GREEDY_DIOU_BETA, other: Tensor | None = None) -> Tensor:
    """boxes (K, 4) xyxy against other (L, 4), default boxes itself → (K, L) IoU, or DIoU when kind == "diou"."""
    other = boxes if other is None else other
    x1, y1, x2, y2 = (v[:, None] for v in boxes.unbind(1))
    u1, v1, u2, v2 = (v[None] for v in other.unbind(1))
    area_a = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_b = (u2 - u1).clamp(min=0) * (v2 - v1).clamp(min=0)
    iw = (torch.min(x2, u2) - torch.max(x1, u1)).clamp(min=0)
    ih = (torch.min(y2, v2) - torch.max(y1, v1)).clamp(min=0)
    inter = iw * ih
    union = area_a + area_b - inter
    iou = torch.where((inter > 0) & (union > 0), inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    if kind != "diou":
        return iou
    cw = torch.max(x2, u2) - torch.min(x1, u1)
    ch = torch.max(y2, v2) - torch.min(y1, v1)
    c = cw * cw + ch * ch
    d = ((x1 + x2) / 2 - (u1 + u2) / 2) ** 2 + ((y1 + y2) / 2 - (v1 + v2) / 2) ** 2
    penalty = torch.where(c > 0, (d / c.clamp(min=1e-12)).pow(beta), torch.zeros_like(c))
    return iou - penalty


BLOCK = 2048  # boxes per overlap tile: 16 MiB of float32, whatever the candidate count


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str = "iou",
                beta: float = GREEDY_DIOU_BETA) -> Tensor:
    """Indices of kept boxes, highest score first. Boxes only suppress boxes of their own group.

    Groups never interact, so candidates are sorted by group and whole groups are packed into
    blocks of at most BLOCK/4 boxes (a larger group is a block of its own, run in tiles of BLOCK):
    memory stays bounded at darknet's `map` threshold (0.005), where there are tens of thousands
    of boxes, and a crowded single class costs seconds, not minutes.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if len(boxes) <= BLOCK:
        return _greedy(boxes, scores, groups, threshold, kind, beta)
    by_group = groups.argsort(stable=True)
    counts = torch.unique_consecutive(groups[by_group], return_counts=True)[1].tolist()
    pack = max(1, BLOCK // 4)  # small groups share a block; pairs across groups are wasted work
    kept, start, end = [], 0, 0
    for count in counts + [None]:
        if count is not None and (end - start + count <= pack or end == start):
            end += count
            continue
        block = by_group[start:end]
        kept.append(block[_greedy(boxes[block], scores[block], groups[block], threshold, kind, beta)])
        start = end
        if count is not None:
            end += count
    keep = torch.cat(kept)
    return keep[scores[keep].argsort(descending=True)]


def _greedy(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str, beta: float) -> Tensor:
    """Darknet's greedy NMS, exactly, in tiles of BLOCK boxes by score: each tile is first checked
    against the boxes kept from earlier tiles, then resolved within itself by one scan."""
    order = scores.argsort(descending=True)
    boxes, groups = boxes[order], groups[order]
    kept: list[Tensor] = []
    for start in range(0, len(order), BLOCK):
        tile, tile_groups = boxes[start:start + BLOCK], groups[start:start + BLOCK]
        alive = torch.ones(len(tile), dtype=torch.bool, device=boxes.device)
        for done in kept:
            hits = pairwise_overlap(boxes[done], kind, beta, other=tile) > threshold
            alive &= ~(hits & (groups[done][:, None] == tile_groups[None])).any(0)
        suppresses = (pairwise_overlap(tile, kind, beta) > threshold) & (tile_groups[:, None] == tile_groups[None])
        kept.append(start + _scan(suppresses.triu(1), alive))
    return order[torch.cat(kept)]


def _scan(suppresses: Tensor, alive: Tensor) -> Tensor:
    """Walk the boxes in score order; each one still standing removes the later ones it overlaps.
    One row operation per kept box: linear in the boxes, unlike iterating matrix products."""
    rows = suppresses.cpu().numpy()
    removed = ~alive.cpu().numpy()
    for i in range(len(removed)):
        if not removed[i]:
            removed |= rows[i]
    return torch.from_numpy(np.flatnonzero(~removed)).to(suppresses.device)
