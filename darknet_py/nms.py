"""Per-class greedy NMS as darknet does it, without Python loops over boxes.

Overlap kinds (darknet src/box.c): "iou" (do_nms_sort, no nms_kind), "diou" with β:
IoU − (d²/c²)^β — greedynms uses β=0.6 (box_diou), diounms uses the cfg's beta_nms.
A box is suppressed when a *kept* higher-scoring box overlaps it by more than the
threshold. The kept set is the unique fixed point of that rule; iterating it from
"keep all" reaches it in a few matrix steps (Cluster-NMS), identical to the
box-by-box greedy loop.
"""
from __future__ import annotations

import torch
from torch import Tensor

GREEDY_DIOU_BETA = 0.6  # darknet box_diou's exponent


def pairwise_overlap(boxes: Tensor, kind: str = "iou", beta: float = GREEDY_DIOU_BETA) -> Tensor:
    """boxes (K, 4) xyxy → (K, K) IoU, or DIoU when kind == "diou"."""
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    iw = (torch.min(x2[:, None], x2[None]) - torch.max(x1[:, None], x1[None])).clamp(min=0)
    ih = (torch.min(y2[:, None], y2[None]) - torch.max(y1[:, None], y1[None])).clamp(min=0)
    inter = iw * ih
    union = area[:, None] + area[None] - inter
    iou = torch.where((inter > 0) & (union > 0), inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    if kind != "diou":
        return iou
    cw = torch.max(x2[:, None], x2[None]) - torch.min(x1[:, None], x1[None])
    ch = torch.max(y2[:, None], y2[None]) - torch.min(y1[:, None], y1[None])
    c = cw * cw + ch * ch
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    d = (cx[:, None] - cx[None]) ** 2 + (cy[:, None] - cy[None]) ** 2
    penalty = torch.where(c > 0, (d / c.clamp(min=1e-12)).pow(beta), torch.zeros_like(c))
    return iou - penalty


BLOCK = 4096  # boxes per overlap matrix: 64 MiB of float32, whatever the candidate count


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str = "iou",
                beta: float = GREEDY_DIOU_BETA) -> Tensor:
    """Indices of kept boxes, highest score first. Boxes only suppress boxes of their own group.

    Groups never interact, so candidates are sorted by group and whole groups are packed into
    blocks of at most BLOCK boxes (a larger group gets a block of its own): memory stays
    bounded at darknet's `map` threshold (0.005), where there are tens of thousands of boxes.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if len(boxes) <= BLOCK:
        return _nms_block(boxes, scores, groups, threshold, kind, beta)
    by_group = groups.argsort(stable=True)
    counts = torch.unique_consecutive(groups[by_group], return_counts=True)[1].tolist()
    kept, start, end = [], 0, 0
    for count in counts + [None]:
        if count is not None and (end - start + count <= BLOCK or end == start):
            end += count
            continue
        block = by_group[start:end]
        kept.append(block[_nms_block(boxes[block], scores[block], groups[block], threshold, kind, beta)])
        start = end
        if count is not None:
            end += count
    keep = torch.cat(kept)
    return keep[scores[keep].argsort(descending=True)]


def _nms_block(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str, beta: float) -> Tensor:
    order = scores.argsort(descending=True)
    boxes, groups = boxes[order], groups[order]
    same_group = groups[:, None] == groups[None]
    suppresses = (pairwise_overlap(boxes, kind, beta) > threshold) & same_group
    suppresses = suppresses.triu(1)  # only higher-scoring boxes suppress
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for _ in range(len(order)):  # converges in a handful of steps; bounded for safety
        updated = ~(suppresses & keep[:, None]).any(0)
        if torch.equal(updated, keep):
            break
        keep = updated
    return order[keep]
