"""[yolo]: the detection head. At forward time it passes its input through unchanged;
decoding (logistic, scale_x_y, anchors) lives in darknet_py.decode so the same head
tensors serve torch, ONNX and parity tests.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..cfg import Section
from .registry import Built, BuildContext, register

NMS_KINDS = ("default", "greedynms", "diounms", "cornersnms")


class DarknetWarning(UserWarning):
    """A cfg quirk the engine works around (shown once per place in a file)."""


@dataclass(frozen=True)
class YoloSpec:
    anchors: tuple[tuple[float, float], ...]  # the masked anchors, in network-input pixels
    classes: int
    scale_x_y: float
    new_coords: bool
    nms_kind: str
    beta_nms: float


class YoloHead(nn.Module):
    def __init__(self, spec: YoloSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, x: Tensor) -> Tensor:
        return x

    def extra_repr(self) -> str:
        return f"classes={self.spec.classes}, anchors={list(self.spec.anchors)}"


@register("yolo")
def build_yolo(s: Section, ctx: BuildContext) -> Built:
    classes = s.get_int("classes", 20)
    num = s.get_int("num", 1)
    if classes < 1:
        raise s.error(f"classes must be at least 1, found {classes}", "classes")
    values = s.get_floats("anchors")
    if len(values) % 2:
        raise s.error(f"anchors must be width,height pairs; found {len(values)} numbers", "anchors")
    listed = len(values) // 2
    if num != listed:
        ctx.notice("anchor-count", f"{s.where('num')}: num={num} but {listed} anchors are listed; using the {listed} listed anchors")
    # darknet's default mask is 0..num-1; past the listed anchors the check below reports it
    mask = s.get_ints("mask") if s.has("mask") else list(range(min(max(num, 0), listed + 1)))
    for m in mask:
        if not 0 <= m < listed:
            raise s.error(f"mask index {m} is outside the {listed} listed anchors", "mask")
    prev = ctx.prev_shape
    expected = len(mask) * (classes + 5)
    if prev.c != expected:
        raise s.error(
            f"the [convolutional] layer before it has filters={prev.c}, but mask has {len(mask)} anchors and "
            f"classes={classes}, which needs filters={expected} ({len(mask)} × ({classes} + 5))"
        )
    nms_kind = s.get_str("nms_kind", "default")
    if nms_kind not in NMS_KINDS:
        nms_kind = "default"  # darknet falls back the same way
    spec = YoloSpec(
        anchors=tuple((values[2 * m], values[2 * m + 1]) for m in mask),
        classes=classes,
        scale_x_y=s.get_float("scale_x_y", 1.0),
        new_coords=s.get_int("new_coords", 0) != 0,
        nms_kind=nms_kind,
        beta_nms=s.get_float("beta_nms", 0.6),
    )
    return Built(YoloHead(spec), prev, (ctx.prev,))
