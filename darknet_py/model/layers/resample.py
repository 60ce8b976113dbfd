"""Layers that move values around: [upsample], [reorg], [reorg3d], [crop], [dropout]."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ...format.cfg import Section
from .registry import BuildContext, Built, Description, Layer, LayerInfo, Shape, describe_nothing, register, require_positive


class Upsample(Layer):
    """Nearest-neighbour upsampling by `stride`, times `scale`."""

    def __init__(self, stride: int, scale: float) -> None:
        super().__init__()
        self.stride, self.scale = stride, scale

    def forward(self, x: Tensor) -> Tensor:
        # integer-factor nearest copies each value exactly; exports to one ONNX Resize with scales,
        # so a dynamic-size export stays correct at every input size
        x = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        return x * self.scale if self.scale != 1 else x


class Downsample(Layer):
    """Negative stride: darknet sums each stride×stride block, times `scale`."""

    def __init__(self, stride: int, scale: float) -> None:
        super().__init__()
        self.stride, self.scale = stride, scale

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.stride) * (self.stride * self.stride * self.scale)


def describe_upsample(layer: Layer, info: LayerInfo) -> Description:
    """darknet's table shows an upsample's stride; a downsampling one (negative stride) gets no detail."""
    return Description(f"       {layer.stride}x", 0.0, 0) if isinstance(layer, Upsample) else describe_nothing(layer, info)


@register("upsample", describe=describe_upsample)
def build_upsample(s: Section, ctx: BuildContext) -> Built:
    stride = s.get_int("stride", 2)
    scale = s.get_float("scale", 1.0)
    c, h, w = ctx.prev_shape
    if stride == 0:
        raise s.error("stride must not be 0", "stride")
    if stride > 0:
        return Built(Upsample(stride, scale), Shape(c, h * stride, w * stride), (ctx.prev,))
    stride = -stride
    if h < stride or w < stride:
        raise s.error(f"input {w}x{h} is too small to downsample by {stride}")
    return Built(Downsample(stride, scale), Shape(c, h // stride, w // stride), (ctx.prev,))


class SpaceToDepth(Layer):
    """Darknet's reorg_cpu (forward=0): gather stride×stride blocks into channels.

    The input buffer is read as (N, groups, h·s, w·s) and the blocks land in channel order
    (dy, dx, group). For [reorg3d] that view is the true input shape; for the old [reorg]
    (YOLOv2) darknet reinterprets the buffer, which `view_hw` reproduces.
    """

    def __init__(self, stride: int, view: tuple[int, int, int], out: Shape) -> None:
        super().__init__()
        self.stride, self.view, self.out = stride, view, out

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        groups, h, w = self.view
        x = x.reshape(x.shape[0], groups, h, s, w, s).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(x.shape[0], *self.out)


class DepthToSpace(Layer):
    """The old [reorg] with reverse=1: reorg_cpu(forward=1) on the input's own sizes, which spreads
    channel blocks (dy, dx, group) over stride×stride pixels: a true depth-to-space."""

    def __init__(self, stride: int, out: Shape) -> None:
        super().__init__()
        self.stride, self.out = stride, out

    def forward(self, x: Tensor) -> Tensor:
        s = self.stride
        n, c, h, w = x.shape
        x = x.reshape(n, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(n, *self.out)


def _build_reorg(s: Section, ctx: BuildContext, reinterpret: bool) -> Built:
    stride = s.get_int("stride", 1)
    require_positive(s, stride=stride)
    c, h, w = ctx.prev_shape
    if s.get_int("reverse", 0):
        if not reinterpret:
            raise s.error("reverse=1 is not supported by darknet_py for [reorg3d]", "reverse")
        if c % (stride * stride):
            raise s.error(f"{c} channels are not divisible by stride²={stride * stride}", "stride")
        out = Shape(c // (stride * stride), h * stride, w * stride)
        return Built(DepthToSpace(stride, out), out, (ctx.prev,))
    if h % stride or w % stride:
        raise s.error(f"input {w}x{h} is not divisible by stride {stride}", "stride")
    out = Shape(c * stride * stride, h // stride, w // stride)
    if reinterpret:
        if c % (stride * stride):
            raise s.error(f"{c} channels are not divisible by stride²={stride * stride}", "stride")
        view = (c // (stride * stride), h, w)
    else:
        view = (c, h // stride, w // stride)
    return Built(SpaceToDepth(stride, view, out), out, (ctx.prev,))


def describe_reorg(layer: Layer, info: LayerInfo) -> Description:
    if isinstance(layer, SpaceToDepth):
        return Description(f"       /{layer.stride}", 0.0, 0)
    if isinstance(layer, DepthToSpace):
        return Description(f"       {layer.stride}x", 0.0, 0)
    return describe_nothing(layer, info)


@register("reorg", describe=describe_reorg)
def build_reorg(s: Section, ctx: BuildContext) -> Built:
    return _build_reorg(s, ctx, reinterpret=True)


@register("reorg3d", describe=describe_reorg)
def build_reorg3d(s: Section, ctx: BuildContext) -> Built:
    return _build_reorg(s, ctx, reinterpret=False)


class Identity(Layer):
    def forward(self, x: Tensor) -> Tensor:
        return x


@register("dropout", describe=describe_nothing)
def build_dropout(s: Section, ctx: BuildContext) -> Built:
    s.get_float("probability", 0.2)  # validated, unused at inference
    return Built(Identity(), ctx.prev_shape, (ctx.prev,))


class CenterCrop(Layer):
    """[crop] at inference: centred crop, then x·2−1 unless noadjust=1."""

    def __init__(self, top: int, left: int, height: int, width: int, adjust: bool) -> None:
        super().__init__()
        self.top, self.left, self.height, self.width, self.adjust = top, left, height, width, adjust

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, self.top : self.top + self.height, self.left : self.left + self.width]
        return x * 2 - 1 if self.adjust else x


@register("crop", describe=describe_nothing)
def build_crop(s: Section, ctx: BuildContext) -> Built:
    c, h, w = ctx.prev_shape
    height = s.get_int("crop_height", 1)
    width = s.get_int("crop_width", 1)
    require_positive(s, crop_height=height, crop_width=width)
    if height > h or width > w:
        raise s.error(f"crop {width}x{height} is larger than its input {w}x{h}")
    adjust = not s.get_int("noadjust", 0)
    module = CenterCrop((h - height) // 2, (w - width) // 2, height, width, adjust)
    return Built(module, Shape(c, height, width), (ctx.prev,))
