"""[region] heads (YOLOv2), as `darknet detector test` decodes them: forward_region_layer, then
get_region_boxes through custom_get_region_detections (src/network.c).

x = (col + σ(tx))·cell, w = exp(tw)·anchor·cell (anchors in grid cells); objectness σ(to).
Classes: softmax, then score = objectness × probability. With a tree (YOLO9000): a softmax per
group of siblings, each class's probability times its parent's (hierarchy_predictions), and the
one class kept is the deepest-numbered whose probability is above 0.5, scored by that probability
alone (not times objectness); objectness only gates the box.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...format.softmax_tree import SoftmaxTree
from ...model.layers.region import COORDS, RegionSpec
from .common import Candidates, anchor_tensor, cells, corners, flat, per_anchor

TREE_KEEP = 0.5  # get_region_boxes keeps the last class with hierarchical probability above .5
CLASSFIX_FLOOR = 0.5  # classfix=-1: objectness below this counts as 0


@dataclass
class TreeIndex:
    """Index tensors for a softmax tree, made once per device.

    Groups are gathered into a few buckets of similar size (padded to the bucket's widest group with
    −inf, which the softmax turns into 0), so each group's softmax subtracts its own maximum as
    darknet's does, with static shapes that trace to plain ONNX Gather/Softmax.
    """

    buckets: list[Tensor]  # (groups, width) class indices; index C is the −inf padding
    back: Tensor  # (C,) where each class lands in the concatenated bucket outputs
    parents: Tensor  # (C,) parent index + 1 into [1, P_0 .. P_C−1]; 0 for roots
    depth: int
    classes: Tensor  # arange(C)

    @classmethod
    def make(cls, tree: SoftmaxTree, device: torch.device) -> "TreeIndex":
        n = len(tree.parents)
        by_width: dict[int, list[tuple[int, int]]] = {}
        for start, size in tree.groups:
            by_width.setdefault(1 << (size - 1).bit_length(), []).append((start, size))
        buckets, order = [], []
        for width in sorted(by_width):
            rows = [list(range(start, start + size)) + [n] * (width - size) for start, size in by_width[width]]
            buckets.append(torch.tensor(rows, dtype=torch.long, device=device))
            order.extend(c for row in rows for c in row)
        position = {c: i for i, c in enumerate(order) if c < n}
        back = torch.tensor([position[c] for c in range(n)], dtype=torch.long, device=device)
        parents = torch.tensor([p + 1 for p in tree.parents], dtype=torch.long, device=device)
        return cls(buckets, back, parents, tree.depth, torch.arange(n, device=device))

    def probabilities(self, logits: Tensor) -> Tensor:
        """(…, C) class scores → absolute class probabilities (softmax_tree + hierarchy_predictions)."""
        padded = torch.cat([logits, torch.full_like(logits[..., :1], float("-inf"))], -1)
        parts = [torch.softmax(padded[..., bucket], -1).flatten(-2) for bucket in self.buckets]
        p = torch.cat(parts, -1)[..., self.back]
        absolute = p
        ones = torch.ones_like(p[..., :1])
        for _ in range(self.depth):  # after k rounds every class of depth < k holds p · P(parent)
            absolute = p * torch.cat([ones, absolute], -1)[..., self.parents]
        return absolute

    def keep_one(self, absolute: Tensor) -> Tensor:
        """Zero every class but the highest-numbered one above TREE_KEEP (none if no class is)."""
        chosen = torch.where(absolute > TREE_KEEP, self.classes, -1).amax(-1, keepdim=True)
        return torch.where(self.classes == chosen, absolute, torch.zeros_like(absolute))


@dataclass
class RegionConstants:
    anchors: Tensor
    tree: TreeIndex | None


def constants(spec: RegionSpec, device: torch.device, dtype: torch.dtype = torch.float32) -> RegionConstants:
    tree = spec.softmax_tree
    return RegionConstants(anchor_tensor(spec.anchors, device, dtype), TreeIndex.make(tree, device) if tree else None)


def decode(head: Tensor, spec: RegionSpec, stride_x: float, stride_y: float,
           consts: RegionConstants | None = None) -> Candidates:
    consts = consts or constants(spec, head.device, head.dtype)
    t = per_anchor(head, len(spec.anchors), COORDS + 1 + spec.classes)
    xy = torch.sigmoid(t[..., 0:2])
    cols, rows = cells(head)
    cells_wh = torch.exp(t[..., 2:4]) * consts.anchors
    wh = torch.stack([cells_wh[..., 0] * stride_x, cells_wh[..., 1] * stride_y], -1)
    boxes = corners((cols + xy[..., 0]) * stride_x, (rows + xy[..., 1]) * stride_y, wh)
    objectness = torch.sigmoid(t[..., 4])
    if spec.classfix == -1:
        objectness = torch.where(objectness < CLASSFIX_FLOOR, torch.zeros_like(objectness), objectness)
    logits = t[..., 5:]
    if consts.tree is not None:
        scores = consts.tree.keep_one(consts.tree.probabilities(logits))
        return boxes, flat(objectness), flat(scores)
    if spec.softmax:
        return boxes, flat(objectness), flat(objectness.unsqueeze(-1) * torch.softmax(logits, -1))
    # without softmax darknet uses the raw scores and gates only on objectness × score
    return boxes, torch.ones_like(flat(objectness)), flat(objectness.unsqueeze(-1) * logits)
