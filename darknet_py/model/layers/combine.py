"""Layers that read other layers: [route], [shortcut], [sam], [scale_channels]."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...format.cfg import Section
from .activations import activation_from
from .registry import BuildContext, Built, Description, Layer, LayerInfo, Shape, describe_nothing, register


class Route(Layer):
    """Concatenate inputs along channels; with groups, take slice `group_id` of each input first."""

    def __init__(self, slices: list[tuple[int, int]]) -> None:
        super().__init__()
        self.slices = slices

    def forward(self, *xs: Tensor) -> Tensor:
        parts = [x if (start, stop) == (0, x.shape[1]) else x[:, start:stop] for x, (start, stop) in zip(xs, self.slices)]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def extra_repr(self) -> str:
        return f"slices={self.slices}"


def describe_route(layer: Route, info: LayerInfo) -> Description:
    return Description("       " + ", ".join(str(s) for s in info.sources), 0.0, 0)


STRIDE_RULE = "the network input size must be a multiple of the network's total stride"


@register("route", describe=describe_route)
def build_route(s: Section, ctx: BuildContext) -> Built:
    sources = ctx.resolve(s, "layers")
    groups = s.get_int("groups", 1)
    group_id = s.get_int("group_id", 0)
    if groups < 1 or not 0 <= group_id < groups:
        raise s.error(f"need groups >= 1 and 0 <= group_id < groups, found groups={groups}, group_id={group_id}", "group_id")
    shapes = [ctx.shape_of(i) for i in sources]
    first = shapes[0]
    for index, shape in zip(sources, shapes):
        if (shape.h, shape.w) != (first.h, first.w):
            joined = ", ".join(f"layer {i}: {sh}" for i, sh in zip(sources, shapes))
            raise s.error(f"cannot concatenate inputs of different sizes ({joined}); {STRIDE_RULE}")
        if shape.c % groups:
            raise s.error(f"layer {index} has {shape.c} channels, not divisible by groups={groups}", "groups")
    slices = [(group_id * sh.c // groups, (group_id + 1) * sh.c // groups) for sh in shapes]
    out_c = sum(stop - start for start, stop in slices)
    return Built(Route(slices), Shape(out_c, first.h, first.w), tuple(sources))


class Shortcut(Layer):
    """Add the `from` layers to the previous output, then activate.

    Darknet adds element by element in memory order (shortcut_multilayer_cpu: out[i] += from[i] for
    i below the from layer's size). With equal spatial sizes that is "add the overlapping channels":
    extra channels of the previous layer pass through, extra channels of a `from` layer are ignored.
    Between different spatial sizes (ResNet's downsampling blocks) it is the same flat rule.
    """

    def __init__(self, shape: Shape, from_shapes: list[Shape], activation: nn.Module) -> None:
        super().__init__()
        self.shape = shape
        self.from_shapes = from_shapes
        self.act = activation

    def forward(self, x: Tensor, *others: Tensor) -> Tensor:
        for other, shape in zip(others, self.from_shapes):
            if shape == self.shape:
                x = x + other
            elif (shape.h, shape.w) != (self.shape.h, self.shape.w):
                x = _add_flat(x, other)
            elif shape.c > self.shape.c:
                x = x + other[:, : self.shape.c]
            else:
                x = torch.cat([x[:, : shape.c] + other, x[:, shape.c :]], 1)
        return self.act(x)


def _add_flat(x: Tensor, other: Tensor) -> Tensor:
    """x + other over the first min(sizes) values of each image, in NCHW memory order."""
    flat, add = x.reshape(x.shape[0], -1), other.reshape(other.shape[0], -1)
    common = min(flat.shape[1], add.shape[1])
    if common == flat.shape[1]:
        return (flat + add[:, :common]).reshape(x.shape)
    return torch.cat([flat[:, :common] + add, flat[:, common:]], 1).reshape(x.shape)


def describe_shortcut(layer: Shortcut, info: LayerInfo) -> Description:
    out = info.out_shape  # darknet counts one add per output value and `from` layer
    return Description(describe_route(layer, info).detail, out.c * out.h * out.w * len(layer.from_shapes) / 1e9, 0)


@register("shortcut", describe=describe_shortcut)
def build_shortcut(s: Section, ctx: BuildContext) -> Built:
    weights_type = s.get_str("weights_type", "none")
    if weights_type != "none":
        raise s.error(f"weights_type={weights_type} (weighted shortcut) is not supported by darknet_py", "weights_type")
    froms = ctx.resolve(s, "from")
    prev = ctx.prev_shape
    for index in froms:
        other = ctx.shape_of(index)
        if (other.h, other.w) != (prev.h, prev.w):
            ctx.notice("shortcut-size", f"{s.where('from')}: from layer {index} is {other} but the previous layer is "
                                        f"{prev}; darknet's Makefile build stops at this layer (an assert in "
                                        "parse_shortcut), its release builds add the two outputs element by element "
                                        "in memory order, and so does darknet_py")
    module = Shortcut(prev, [ctx.shape_of(i) for i in froms], activation_from(s, "linear"))
    return Built(module, ctx.prev_shape, (ctx.prev,) + tuple(froms))


class Multiply(Layer):
    """[sam] and [scale_channels]: product of two inputs (broadcast), then activation."""

    def __init__(self, activation: nn.Module) -> None:
        super().__init__()
        self.act = activation

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        return self.act(x * other)


@register("sam", describe=describe_nothing)
def build_sam(s: Section, ctx: BuildContext) -> Built:
    (source,) = _single_from(s, ctx)
    prev, other = ctx.prev_shape, ctx.shape_of(source)
    if prev != other:
        raise s.error(f"[sam] multiplies equal shapes, but the previous layer is {prev} and layer {source} is {other}", "from")
    return Built(Multiply(activation_from(s, "linear")), prev, (ctx.prev, source))


@register("scale_channels", describe=describe_nothing)
def build_scale_channels(s: Section, ctx: BuildContext) -> Built:
    (source,) = _single_from(s, ctx)
    prev, other = ctx.prev_shape, ctx.shape_of(source)
    if s.get_int("scale_wh", 0):
        if prev.c != 1 or (prev.h, prev.w) != (other.h, other.w):
            raise s.error(f"scale_wh=1 needs a 1-channel scale of {other.w}x{other.h}, found {prev}", "scale_wh")
    elif (prev.h, prev.w) != (1, 1) or prev.c != other.c:
        raise s.error(f"needs a 1x1x{other.c} scale from the previous layer, found {prev}", "from")
    return Built(Multiply(activation_from(s, "linear")), other, (ctx.prev, source))


def _single_from(s: Section, ctx: BuildContext) -> list[int]:
    sources = ctx.resolve(s, "from")
    if len(sources) != 1:
        raise s.error(f"'from' takes exactly one layer here, found {len(sources)}", "from")
    return sources
