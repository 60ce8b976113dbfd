"""[yolo]: the detection head. At forward time it passes its input through unchanged;
decoding (logistic, scale_x_y, anchors) lives in darknet_py.pipeline.decode so the same head
tensors serve torch, ONNX and parity tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...format.cfg import Section
from .head import DetectionHead, describe_head, head_spec
from .registry import BuildContext, Built, register

NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")


@head_spec("yolo")
@dataclass(frozen=True)
class YoloSpec:
    anchors: tuple[tuple[float, float], ...]  # the masked anchors, in network-input pixels
    classes: int
    scale_x_y: float
    new_coords: bool
    nms_kind: str
    beta_nms: float


class YoloHead(DetectionHead):
    spec: YoloSpec


@register("yolo", describe=describe_head)
def build_yolo(s: Section, ctx: BuildContext) -> Built:
    classes, anchors = masked_anchors(s, ctx, 5, "[convolutional] layer", clip_default_mask=True)
    prev = ctx.prev_shape
    nms_kind = s.get_str("nms_kind", "default")
    if nms_kind not in NMS_KINDS:
        nms_kind = "default"  # darknet falls back the same way
    spec = YoloSpec(
        anchors=anchors,
        classes=classes,
        scale_x_y=s.get_float("scale_x_y", 1.0),
        new_coords=s.get_int("new_coords", 0) != 0,
        nms_kind=nms_kind,
        beta_nms=s.get_float("beta_nms", 0.6),
    )
    return Built(YoloHead(spec), prev, (ctx.prev,))


def masked_anchors(s: Section, ctx: BuildContext, values_per_anchor: int, before: str = "layer",
                   clip_default_mask: bool = False) -> tuple[int, tuple[tuple[float, float], ...]]:
    """classes= and the (w, h) anchors mask= picks, for [yolo]-style heads ([yolo], [Gaussian_yolo]),
    with darknet's defaults; the layer before must give mask × (classes + values_per_anchor) channels.
    darknet's default mask is 0..num-1; `clip_default_mask` ([yolo]) notes a num that disagrees with
    the list and stops the default one past the listed anchors, where the check reports it."""
    classes = s.get_int("classes", 20)
    num = s.get_int("num", 1)
    if classes < 1:
        raise s.error(f"classes must be at least 1, found {classes}", "classes")
    values = anchor_values(s, ctx, num)
    listed = len(values) // 2
    default_count = max(num, 0)
    if clip_default_mask:
        if num != listed:
            ctx.notice("anchor-count", f"{s.where('num')}: num={num} but {listed} anchors are listed; "
                                       f"using the {listed} listed anchors")
        default_count = min(default_count, listed + 1)
    mask = s.get_ints("mask") if s.has("mask") else list(range(default_count))
    for m in mask:
        if not 0 <= m < listed:
            raise s.error(f"mask index {m} is outside the {listed} listed anchors", "mask")
    channels, expected = ctx.prev_shape.c, len(mask) * (classes + values_per_anchor)
    if channels != expected:
        raise s.error(
            f"the {before} before it has filters={channels}, but mask has {len(mask)} anchors and "
            f"classes={classes}, which needs filters={expected} ({len(mask)} × ({classes} + {values_per_anchor}))"
        )
    return classes, tuple((values[2 * m], values[2 * m + 1]) for m in mask)


DEFAULT_ANCHOR = 0.5  # darknet fills l.biases with .5 before reading the cfg's anchors


def anchor_values(s: Section, ctx: BuildContext, num: int) -> list[float]:
    """The anchors= numbers as darknet ends up with them. An odd count (cspx-p7-mish_hp.cfg lists 31:
    '61,45    61,45' loses a comma once darknet strips the spaces, giving 4561) leaves the last
    height at darknet's default 0.5, as darknet does; a warning says so."""
    values = s.get_floats("anchors")
    if len(values) % 2:
        ctx.notice("anchor-odd", f"{s.where('anchors')}: anchors lists {len(values)} numbers, not width,height pairs "
                                 f"(a missing comma?); following darknet, the last anchor's height is its default "
                                 f"{DEFAULT_ANCHOR}")
        values = values + [DEFAULT_ANCHOR]
    if not values:
        raise s.error("anchors must list at least one width,height pair", "anchors")
    return values
