"""[region]: YOLOv2's detection head (also tiny-yolo and YOLO9000 with a class tree).

Its input holds, per anchor, tx ty tw th, objectness and the class scores (darknet's
`coords + 1 + classes` channels). Decoding (darknet_py.pipeline.decoders.region) follows darknet's
`get_region_boxes` as `detector test` calls it: logistic x, y; exp(tw)·anchor in grid cells;
logistic objectness; softmax over the classes, or a softmax per tree group with `tree=`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ...core.errors import CfgError
from ...format.cfg import Section
from ...format.softmax_tree import SoftmaxTree, read_tree, resolve_tree_path
from .head import DetectionHead, describe_head, head_spec
from .registry import BuildContext, Built, register
from .yolo import anchor_values

COORDS = 4  # darknet's detection code (get_region_boxes) reads 4 box values per anchor, whatever coords= says


@head_spec("region")
@dataclass(frozen=True)
class RegionSpec:
    anchors: tuple[tuple[float, float], ...]  # in grid cells (darknet multiplies by the cell size)
    classes: int
    softmax: bool  # False: class scores are used as they come (darknet applies no activation)
    tree: tuple[int, ...] | None = None  # per class its parent (softmax_tree / hierarchy_predictions)
    classfix: int = 0  # −1: objectness below 0.5 counts as 0 (get_region_boxes)
    nms_kind: str = "default"  # darknet's [region] has no nms_kind: detector test uses do_nms_sort (IoU)
    beta_nms: float = 0.6

    @property
    def softmax_tree(self) -> SoftmaxTree | None:
        return SoftmaxTree(self.tree) if self.tree is not None else None


class RegionHead(DetectionHead):
    spec: RegionSpec

    @property
    def detail_suffix(self) -> str:
        return ", tree" if self.spec.tree else ""


@register("region", describe=describe_head)
def build_region(s: Section, ctx: BuildContext) -> Built:
    classes = s.get_int("classes", 20)
    num = s.get_int("num", 1)
    coords = s.get_int("coords", 4)
    if classes < 1:
        raise s.error(f"classes must be at least 1, found {classes}", "classes")
    if num < 1:
        raise s.error(f"num must be at least 1, found {num}", "num")
    if coords != COORDS:
        raise s.error(f"coords={coords} is not supported: darknet's detection code reads {COORDS} box values", "coords")
    if s.get_int("background", 0):
        raise s.error("background=1 is not supported by darknet_py", "background")
    values = anchor_values(s, ctx, num) if s.has("anchors") else []
    # darknet starts every anchor at 0.5 and reads at most num pairs from the list
    values = (values + [0.5] * (2 * num))[: 2 * num]
    prev = ctx.prev_shape
    expected = num * (classes + coords + 1)
    if prev.c != expected:
        raise s.error(
            f"the layer before it has {prev.c} channels, but num={num} and classes={classes} need "
            f"filters={expected} ({num} × ({classes} + {coords} + 1))"
        )
    tree = _tree(s) if s.has("tree") else None
    if tree is not None and len(tree.parents) != classes:
        raise s.error(f"the tree file lists {len(tree.parents)} classes, but classes={classes}", "tree")
    spec = RegionSpec(
        anchors=tuple((values[2 * i], values[2 * i + 1]) for i in range(num)),
        classes=classes,
        softmax=s.get_int("softmax", 0) != 0,
        tree=tree.parents if tree is not None else None,
        classfix=s.get_int("classfix", 0),
    )
    return Built(RegionHead(spec), prev, (ctx.prev,))


def _tree(s: Section) -> SoftmaxTree:
    value = s.get_str("tree")
    places = resolve_tree_path(value, s.path)
    for place in places:
        if os.path.isfile(place):
            return read_tree(place, s.where("tree"))
    raise CfgError(f"{s.where('tree')}: tree file '{value}' not found (looked in: {', '.join(places)}); "
                   "darknet opens it relative to the working directory, e.g. data/9k.tree in the darknet folder")
