"""[local]: the locally connected layer of YOLOv1's cfgs (yolo.cfg, yolo-coco.cfg; src/local_layer.c): a
convolution whose kernels are not shared — every output position has its own `filters` kernels.

darknet's forward (forward_local_layer): the input unrolled by im2col (`pad` pixels of zeros on each side,
not size/2 as in [convolutional]), then per output position j a matrix product of that position's
kernels with its column, plus one bias per output value (filters × positions of them), then the
activation (default logistic). The output size is darknet's own, (h − size)/stride + 1 without padding and
(h − 1)/stride + 1 with any; where that differs from the grid im2col fills ((h + 2·pad − size)/stride + 1),
darknet reads its columns at the wrong offsets (and past its buffer), so such a cfg is refused. Weight file
order: the biases (filter-major: filter i's value at position j is bias[i·positions + j]), then the kernels,
position by position, filter by filter, each c·size·size values as im2col orders them (channel, row, column).
Its weights fix the input size (an ONNX export cannot take --dynamic-size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...format.cfg import Section
from .activations import activation_from
from .conv import MAX_LAYER_WEIGHTS
from .registry import BuildContext, Built, Description, Layer, LayerInfo, Shape, register, require_positive


class LocalLayer(Layer):
    """Locally connected: weight (positions, filters, c·size·size), bias (filters, out_h, out_w)."""

    fixed_size = True  # one kernel set per output position: the input size is the cfg's

    def __init__(self, c: int, filters: int, size: int, stride: int, pad: int, out_h: int, out_w: int,
                 activation: nn.Module) -> None:
        super().__init__()
        self.size, self.stride, self.pad = size, stride, pad
        self.weight = nn.Parameter(torch.zeros(out_h * out_w, filters, c * size * size))
        self.bias = nn.Parameter(torch.zeros(filters, out_h, out_w))
        self.act = activation

    def forward(self, x: Tensor) -> Tensor:
        columns = F.unfold(x, self.size, padding=self.pad, stride=self.stride)  # (N, c·size², positions)
        # position by position: (positions, filters, K) @ (positions, K, N) → (positions, filters, N)
        out = torch.bmm(self.weight, columns.permute(2, 1, 0).to(self.weight.dtype))
        out = out.permute(2, 1, 0).reshape(x.shape[0], *self.bias.shape) + self.bias
        return self.act(out)

    def darknet_tensors(self) -> list[Tensor]:
        return [self.bias, self.weight]


def local_output_side(side: int, size: int, stride: int, pad: int) -> int:
    """darknet's local_out_height / local_out_width (C division: toward zero)."""
    span = side - (1 if pad else size)
    return int(span / stride) + 1


def describe_local(layer: LocalLayer, info: LayerInfo) -> Description:
    """Its filters, kernel and stride; BFLOPs as a convolution of the same shape counts them (2 × weights ×
    positions — each position its own kernels, so 2 × all weights), which darknet's own total leaves out."""
    positions, filters, _ = layer.weight.shape
    detail = f"{filters:5d}  {layer.size} x {layer.size}/{layer.stride} local {layer.act.name}"
    return Description(detail, 2.0 * layer.weight.numel() / 1e9, layer.weight.numel() + layer.bias.numel())


@register("local", describe=describe_local)
def build_local(s: Section, ctx: BuildContext) -> Built:
    c, h, w = ctx.prev_shape
    filters, size, stride, pad = (s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1),
                                  s.get_int("pad", 0))
    require_positive(s, filters=filters, size=size, stride=stride)
    if pad < 0:
        raise s.error(f"pad={pad}: give the padding in pixels, 0 or more", "pad")
    out_h, out_w = local_output_side(h, size, stride, pad), local_output_side(w, size, stride, pad)
    grid = ((h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1)
    if min(out_h, out_w) < 1:
        raise s.error(f"its {w}x{h} input is smaller than its {size}x{size} kernel", "size")
    if (out_h, out_w) != grid:
        raise s.error(f"size={size} pad={pad}: darknet sizes this [local] output {out_w}x{out_h} but unrolls its "
                      f"input into a {grid[1]}x{grid[0]} grid and reads it at the wrong places; darknet_py runs "
                      "[local] where the two agree (pad=0, or size = 2·pad + 1 as in YOLOv1's size=3 pad=1)", "pad")
    weights = out_h * out_w * filters * c * size * size
    if weights > MAX_LAYER_WEIGHTS:
        raise s.error(f"{weights:,} weights (each of {out_w}x{out_h} positions has its own kernels) is beyond any "
                      f"real network (limit {MAX_LAYER_WEIGHTS:,}); check the input size", "filters")
    module = LocalLayer(c, filters, size, stride, pad, out_h, out_w, activation_from(s, "logistic"))
    return Built(module, Shape(filters, out_h, out_w), (ctx.prev,))
