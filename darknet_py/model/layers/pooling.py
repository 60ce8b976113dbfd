"""[maxpool], [local_avgpool], [avgpool].

Darknet pools windows starting at -padding/2 (top-left) and sizes the output as
(w + padding - size) / stride + 1; the default padding is size - 1, so a size=2
stride=1 maxpool keeps the spatial size. Cells outside the image never win a max and
are not counted in a local average.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...format.cfg import Section
from .registry import (
    MAX_LAYER_ELEMENTS,
    BuildContext,
    Built,
    Description,
    Layer,
    LayerInfo,
    Shape,
    describe_nothing,
    register,
    reject_enabled,
    require_positive,
)


def _pads(padding: int) -> tuple[int, int, int, int]:
    before = padding // 2
    after = padding - before
    return (before, after, before, after)  # left, right, top, bottom


class MaxPool(Layer):
    """Darknet's window placement, expressed as one plain MaxPool where that is exact.

    - even padding p ≤ size: pad p/2 on every side (implicit -inf), e.g. the SPP 5/9/13 windows;
    - 2×2/2 with padding 1 (the default): windows start at 0 and darknet's ceil(w/2) output is ceil_mode;
    - anything else: an explicit -inf pad, then an unpadded pool.
    """

    def __init__(self, size: int, stride: tuple[int, int], padding: int) -> None:
        super().__init__()
        self.size, self.stride, self.pads = size, stride, _pads(padding)
        self.implicit_pad, self.ceil_mode = 0, False
        if padding % 2 == 0 and padding // 2 <= size // 2:
            self.implicit_pad, self.pads = padding // 2, (0, 0, 0, 0)
        elif size == 2 and stride == (2, 2) and padding == 1:
            self.ceil_mode, self.pads = True, (0, 0, 0, 0)

    def forward(self, x: Tensor) -> Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride, self.implicit_pad, ceil_mode=self.ceil_mode)


class LocalAvgPool(Layer):
    def __init__(self, size: int, stride: tuple[int, int], padding: int) -> None:
        super().__init__()
        self.size, self.stride, self.pads = size, stride, _pads(padding)

    def forward(self, x: Tensor) -> Tensor:
        area = float(self.size * self.size)
        sums = F.avg_pool2d(F.pad(x, self.pads), self.size, self.stride) * area
        ones = torch.ones_like(x[:1, :1])
        counts = F.avg_pool2d(F.pad(ones, self.pads), self.size, self.stride) * area
        return sums / counts


class DepthMaxPool(Layer):
    """maxpool_depth=1: max over channels k, k+out_c, k+2·out_c, … for each output channel k."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.extra = (-channels) % out_channels  # pad channels so they split evenly

    def forward(self, x: Tensor) -> Tensor:
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra), value=float("-inf"))
        n, c, h, w = x.shape
        return x.reshape(n, c // self.out_channels, self.out_channels, h, w).amax(1)


def _window(s: Section, ctx: BuildContext) -> tuple[int, int, int, int]:
    stride = s.get_int("stride", 1)
    stride_x = s.get_int("stride_x", stride)
    stride_y = s.get_int("stride_y", stride)
    size = s.get_int("size", stride)
    padding = s.get_int("padding", size - 1)
    require_positive(s, size=size, stride_x=stride_x, stride_y=stride_y)
    if padding < 0:
        raise s.error(f"padding must not be negative, found {padding}", "padding")
    return size, stride_x, stride_y, padding


def _pooled(s: Section, ctx: BuildContext, size: int, stride_x: int, stride_y: int, padding: int) -> Shape:
    c, h, w = ctx.prev_shape
    if c * (h + padding) * (w + padding) > MAX_LAYER_ELEMENTS:  # the padded input is materialised
        raise s.error(f"a {size}x{size} window with padding={padding} on a {w}x{h} input is beyond any real network; "
                      "check size and padding", "size")
    out_h = (h + padding - size) // stride_y + 1
    out_w = (w + padding - size) // stride_x + 1
    if out_h < 1 or out_w < 1:
        raise s.error(f"input {w}x{h} is too small for a {size}x{size} window")
    return Shape(c, out_h, out_w)


def describe_pool(layer: Layer, info: LayerInfo) -> Description:
    """A window pool: size x size/stride, size² operations per output value; a depth or global pool: nothing."""
    if not isinstance(layer, (MaxPool, LocalAvgPool)):
        return describe_nothing(layer, info)
    out = info.out_shape
    return Description(f"       {layer.size} x {layer.size}/{layer.stride[0]}", layer.size ** 2 * out.c * out.h * out.w / 1e9, 0)


@register("maxpool", "max", describe=describe_pool)
def build_maxpool(s: Section, ctx: BuildContext) -> Built:
    reject_enabled(s, {"antialiasing": "anti-aliased pooling", "maxpool_zero_nonmax": "training-time zeroing"})
    size, stride_x, stride_y, padding = _window(s, ctx)
    if s.get_int("maxpool_depth", 0):
        c, h, w = ctx.prev_shape
        out_c = s.get_int("out_channels", 1)
        require_positive(s, out_channels=out_c)
        return Built(DepthMaxPool(c, out_c), Shape(out_c, h, w), (ctx.prev,))
    shape = _pooled(s, ctx, size, stride_x, stride_y, padding)
    return Built(MaxPool(size, (stride_y, stride_x), padding), shape, (ctx.prev,))


@register("local_avgpool", "local_avg", describe=describe_pool)
def build_local_avgpool(s: Section, ctx: BuildContext) -> Built:
    size, stride_x, stride_y, padding = _window(s, ctx)
    shape = _pooled(s, ctx, size, stride_x, stride_y, padding)
    return Built(LocalAvgPool(size, (stride_y, stride_x), padding), shape, (ctx.prev,))


class GlobalAvgPool(Layer):
    def forward(self, x: Tensor) -> Tensor:
        return x.mean((2, 3), keepdim=True)


@register("avgpool", "avg", describe=describe_nothing)
def build_avgpool(s: Section, ctx: BuildContext) -> Built:
    return Built(GlobalAvgPool(), Shape(ctx.prev_shape.c, 1, 1), (ctx.prev,))
