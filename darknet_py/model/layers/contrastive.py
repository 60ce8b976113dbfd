"""[contrastive]: a training loss over embeddings (yolov4-tiny_contrastive.cfg).

At inference darknet's CPU forward (forward_contrastive_layer, src/softmax_layer.c) returns at
once, so the layer's output is its zero-filled buffer; no layer reads it and it changes no
detection. (darknet's CUDA forward copies its input instead; the CPU build is the oracle here.)
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...format.cfg import Section
from .registry import BuildContext, Built, Layer, describe_nothing, register
from .yolo import YoloHead


class Contrastive(Layer):
    def forward(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)


@register("contrastive", describe=describe_nothing)
def build_contrastive(s: Section, ctx: BuildContext) -> Built:
    s.get_int("classes", 1000)  # validated; used by training only
    s.get_float("temperature", 1.0)
    ref = s.get_int("yolo_layer", 0)
    target = ctx.index + ref if ref < 0 else ref
    # darknet dereferences the layer without checking (yolo_layer=0 crashes it), then insists on a [yolo]
    if ref == 0 or not 0 <= target < ctx.index or not isinstance(ctx.modules[target], YoloHead):
        found = f"layer {target}" if 0 <= target < ctx.index else "no layer"
        raise s.error(f"yolo_layer={ref} must point to an earlier [yolo] layer, found {found}", "yolo_layer")
    return Built(Contrastive(), ctx.prev_shape, (ctx.prev,))
