"""[Gaussian_yolo]: Gaussian YOLOv3's head (Choi et al., ICCV 2019), as darknet implements it.

Per anchor 9 + classes channels: μx σx μy σy μw σw μh σh, objectness, class scores. Decoding
(darknet_py.pipeline.decoders.gaussian) follows darknet's forward_gaussian_yolo_layer and
get_gaussian_yolo_detections: logistic μx, μy (then scale_x_y), logistic σs, objectness and
classes; w, h = exp(μ)·anchor; score = objectness · class · (1 − mean σ).
"""
from __future__ import annotations

from dataclasses import dataclass

from ...format.cfg import Section
from .head import DetectionHead, describe_head, head_spec
from .registry import BuildContext, Built, register
from .yolo import NMS_KINDS, masked_anchors

YOLO_POINTS = ("center", "left_top", "right_bottom")  # where (μx, μy) sits in the box
VALUES_PER_ANCHOR = 9  # 4 means, 4 sigmas, objectness


@head_spec("gaussian_yolo")
@dataclass(frozen=True)
class GaussianYoloSpec:
    anchors: tuple[tuple[float, float], ...]  # the masked anchors, in network-input pixels
    classes: int
    scale_x_y: float
    yolo_point: str
    nms_kind: str
    beta_nms: float


class GaussianYoloHead(DetectionHead):
    spec: GaussianYoloSpec


@register("Gaussian_yolo", describe=describe_head)
def build_gaussian_yolo(s: Section, ctx: BuildContext) -> Built:
    classes, anchors = masked_anchors(s, ctx, VALUES_PER_ANCHOR)
    prev = ctx.prev_shape
    point = s.get_str("yolo_point", "center")
    nms_kind = s.get_str("nms_kind", "default")
    spec = GaussianYoloSpec(
        anchors=anchors,
        classes=classes,
        scale_x_y=s.get_float("scale_x_y", 1.0),
        yolo_point=point if point in YOLO_POINTS else "center",  # darknet's fallback
        nms_kind=nms_kind if nms_kind in NMS_KINDS else "default",
        beta_nms=s.get_float("beta_nms", 0.6),
    )
    return Built(GaussianYoloHead(spec), prev, (ctx.prev,))
