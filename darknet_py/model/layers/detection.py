"""[detection]: YOLOv1's output layer (src/detection_layer.c), after a [connected] layer.

Its input is side × side cells of `classes` probabilities, then per cell `num` confidences, then
per cell `num` boxes of `coords` numbers. At inference darknet passes it through, with an optional
softmax over each cell's classes (softmax=1). forward_heads returns its input, as for [yolo].
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...format.cfg import Section
from .registry import BuildContext, Built, Layer, describe_nothing, register, require_positive


class DetectionLayer(Layer):
    detection_layer = True  # the model returns this layer's input from forward_heads

    def __init__(self, side: int, classes: int, softmax: bool) -> None:
        super().__init__()
        self.side, self.classes, self.softmax = side, classes, softmax

    def forward(self, x: Tensor) -> Tensor:
        if not self.softmax:
            return x
        flat = x.reshape(x.shape[0], -1)
        cells = self.side * self.side * self.classes
        probs = torch.softmax(flat[:, :cells].reshape(x.shape[0], -1, self.classes), -1).reshape(x.shape[0], -1)
        return torch.cat([probs, flat[:, cells:]], 1).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"side={self.side}, classes={self.classes}, softmax={self.softmax}"


@register("detection", describe=describe_nothing)
def build_detection(s: Section, ctx: BuildContext) -> Built:
    classes, coords, num, side = (s.get_int("classes", 1), s.get_int("coords", 1), s.get_int("num", 1),
                                  s.get_int("side", 7))
    require_positive(s, classes=classes, coords=coords, num=num, side=side)
    prev = ctx.prev_shape
    inputs = prev.c * prev.h * prev.w
    expected = side * side * ((1 + coords) * num + classes)
    if inputs != expected:
        raise s.error(f"the layer before gives {inputs} values, but side={side}, num={num}, coords={coords} and "
                      f"classes={classes} need side² × ((1 + coords) × num + classes) = {expected}")
    return Built(DetectionLayer(side, classes, s.get_int("softmax", 0) != 0), prev, (ctx.prev,))
