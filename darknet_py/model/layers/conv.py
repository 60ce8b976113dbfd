"""[convolutional]: conv → optional batch norm → activation, with darknet's options."""
from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...format.cfg import Section
from . import prepacked
from .activations import Activation, activation_from
from .prepacked import sources_stamp
from .registry import (
    BuildContext,
    Built,
    Description,
    Layer,
    LayerInfo,
    Shape,
    register,
    reject_enabled,
    require_positive,
    weights_module,
)

BN_EPSILON = 0.00001  # darknet src/blas.c normalize_cpu
MAX_LAYER_WEIGHTS = 1 << 29  # 2 GiB of float32 in one layer: refuse before allocating

_UNSUPPORTED = {
    "binary": "binary weights",
    "antialiasing": "anti-aliased stride",
    "sway": "deformable convolution",
    "rotate": "deformable convolution",
    "stretch": "deformable convolution",
    "stretch_sway": "deformable convolution",
    "coordconv": "coordinate channels",
    "assisted_excitation": "assisted excitation",
}


class ConvLayer(Layer):
    """Darknet convolution. Weight file order: bias, [scale, mean, variance], kernel.
    Variants (xnor=1, layers/xnor.py) subclass it and override `convolve`."""

    conv_module: type[nn.Conv2d] = nn.Conv2d  # what `conv` is (a variant's own, so hooks on it still see every call)
    grouped = True  # False: the variant ignores groups= (darknet: xnor disables groups)
    bflops_divisor: ClassVar[int] = 1  # darknet's table counts a variant's operations this many times fewer (xnor: 32)
    detail_suffix: ClassVar[str] = ""  # the variant's word in the table (" xnor")

    def __init__(
        self,
        in_channels: int,
        filters: int,
        size: int,
        stride: tuple[int, int],
        padding: int,
        dilation: int,
        groups: int,
        batch_normalize: bool,
        activation: Activation,
    ) -> None:
        super().__init__()
        self.conv = weights_module(
            self.conv_module, in_channels, filters, size, stride, padding * dilation, dilation, groups,
            bias=not batch_normalize,
        )
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPSILON) if batch_normalize else None
        self.act = activation
        self.fold = False  # Darknet.fold_batchnorm() turns it on
        self.register_buffer("folded_weight", None, persistent=False)
        self.register_buffer("folded_bias", None, persistent=False)
        self._folded_from: tuple[int, ...] = ()
        self.shares_weights = False  # share_index: the tensors are another layer's
        # oneDNN's pre-packed kernel, the activation its post-op where oneDNN computes it as torch does (leaky, relu,
        # linear), else run on the kernel's output (mish in place); variants (xnor) convolve their own way.
        self._prepacked = type(self).convolve is ConvLayer.convolve

    def forward(self, x: Tensor) -> Tensor:
        if self.fold and self._prepacked and prepacked.applies(x):
            post_op = self.act.name if self.act.name in prepacked.FUSED else "linear"
            out = prepacked.convolve(self, self.conv, x, self.darknet_tensors(), self._kernel, post_op)
            return out if post_op == self.act.name else self.act(out, fresh=True)
        if self.bn is None:
            return self.act(self.conv(x))  # not fresh: a forward hook on self.conv may hold its output
        if self.fold:
            weight, bias = self.folded()
            return self.act(self.convolve(x, weight, bias), fresh=True)
        bn = self.bn  # inference statistics always, whatever train()/eval() says
        x = F.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return self.act(x, fresh=True)

    def configure(self, s: Section, ctx: BuildContext) -> None:
        """A variant reads its own options here, and refuses those it cannot honour (s.error)."""

    def convolve(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """This layer's convolution with the given kernel (its own, or batch norm folded into it)."""
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding, self.conv.dilation, self.conv.groups)

    def folded(self) -> tuple[Tensor, Tensor]:
        """Batch norm folded into the kernel: w·γ/σ and β − μ·γ/σ, refreshed whenever a source tensor
        changed in place (loading weights, .to(), .half()), so the fold can never go stale."""
        if self.folded_weight is not None and torch.compiler.is_compiling():
            return self.folded_weight, self.folded_bias  # TorchRunner.refresh() re-folds before compiled code runs
        stamp = sources_stamp(self.darknet_tensors())
        if stamp != self._folded_from or self.folded_weight is None:
            self.folded_weight, self.folded_bias = self._fold()
            self._folded_from = stamp
        return self.folded_weight, self.folded_bias

    def _fold(self) -> tuple[Tensor, Tensor]:
        bn = self.bn
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            return self.conv.weight * scale.view(-1, 1, 1, 1), bn.bias - bn.running_mean * scale

    def _kernel(self) -> tuple[Tensor, Tensor | None]:
        """The kernel the pre-packed path packs: folded, but not kept beside the packed copy."""
        return self._fold() if self.bn is not None else (self.conv.weight, self.conv.bias)

    def darknet_tensors(self) -> list[Tensor]:
        if self.bn is None:
            return [self.conv.bias, self.conv.weight]
        return [self.bn.bias, self.bn.weight, self.bn.running_mean, self.bn.running_var, self.conv.weight]


def _conv_out(size_in: int, pad: int, size: int, stride: int) -> int:
    return (size_in + 2 * pad - size) // stride + 1


_VARIANTS: dict[str, type[ConvLayer]] = {}  # option=1 → the ConvLayer subclass that serves it


def conv_variant(option: str):
    """Register a ConvLayer subclass for a [convolutional] option (e.g. xnor=1)."""

    def decorate(cls: type[ConvLayer]) -> type[ConvLayer]:
        _VARIANTS[option] = cls
        return cls

    return decorate


def trainable_params(weight: Tensor, batch_normalize: bool) -> int:
    """Kernel or matrix weights, biases (or BN shifts) and BN scales of a layer with `weight` (outputs first)."""
    return weight.numel() + weight.shape[0] * (2 if batch_normalize else 1)


def conv_bflops(layer: ConvLayer, out: Shape) -> float:
    """darknet's count: 2 × kernel weights × output positions."""
    return 2.0 * layer.conv.weight.numel() * out.h * out.w / 1e9


def describe_conv(layer: ConvLayer, info: LayerInfo) -> Description:
    conv = layer.conv
    kh, kw = conv.kernel_size
    groups = f" /g{conv.groups}" if conv.groups > 1 else ""
    stride = f"{conv.stride[1]}x{conv.stride[0]}" if conv.stride[0] != conv.stride[1] else str(conv.stride[0])
    shared = " (shared)" if layer.shares_weights else ""
    detail = f"{conv.out_channels:5d}  {kw} x {kh}/{stride}{groups} {layer.act.name}{shared}{layer.detail_suffix}"
    params = 0 if layer.shares_weights else trainable_params(conv.weight, layer.bn is not None)
    return Description(detail, conv_bflops(layer, info.out_shape) / layer.bflops_divisor, params)


@register("convolutional", "conv", describe=describe_conv)
def build_convolutional(s: Section, ctx: BuildContext) -> Built:
    reject_enabled(s, _UNSUPPORTED)
    layer_class = next((cls for option, cls in _VARIANTS.items() if s.get_int(option, 0)), ConvLayer)
    c, h, w = ctx.prev_shape
    filters = s.get_int("filters", 1)
    size = s.get_int("size", 1)
    stride = s.get_int("stride", 1)
    stride_x = s.get_int("stride_x", -1)
    stride_y = s.get_int("stride_y", -1)
    stride_x = stride if stride_x < 1 else stride_x
    stride_y = stride if stride_y < 1 else stride_y
    groups = max(1, s.get_int("groups", 1)) if layer_class.grouped else 1
    dilation = 1 if size == 1 else s.get_int("dilation", 1)
    padding = s.get_int("padding", 0)
    if s.get_int("pad", 0):
        padding = size // 2  # pad=1 wins over padding=
    batch_normalize = s.get_int("batch_normalize", 0) != 0 or s.get_int("cbn", 0) != 0
    activation = activation_from(s, "logistic")  # darknet's default when absent

    require_positive(s, filters=filters, size=size, stride_x=stride_x, stride_y=stride_y, dilation=dilation)
    if padding < 0:
        raise s.error(f"padding must not be negative, found {padding}", "padding")
    if c % groups or filters % groups:
        raise s.error(f"groups={groups} must divide both the input channels ({c}) and filters ({filters})", "groups")
    n_weights = filters * (c // groups) * size * size
    if n_weights > MAX_LAYER_WEIGHTS:
        raise s.error(f"{n_weights:,} weights in one layer is beyond any real network (limit {MAX_LAYER_WEIGHTS:,})")
    out_h, out_w = _conv_out(h, padding, size, stride_y), _conv_out(w, padding, size, stride_x)
    # cuDNN (and so darknet on GPU) pads by pad*dilation; the sizes must agree with darknet's formula.
    span = dilation * (size - 1) + 1
    if dilation > 1 and (_conv_out(h, padding * dilation, span, stride_y), _conv_out(w, padding * dilation, span, stride_x)) != (out_h, out_w):
        raise s.error(f"dilation={dilation} with size={size} and padding={padding} changes the output size; use pad=1", "dilation")
    if out_h < 1 or out_w < 1:
        raise s.error(f"input {w}x{h} is too small for a {size}x{size} convolution with stride {stride_x}x{stride_y}")
    module = layer_class(c, filters, size, (stride_y, stride_x), padding, dilation, groups, batch_normalize, activation)
    module.configure(s, ctx)
    if s.has("share_index"):
        module = _shared_with(s, ctx, module)
    return Built(module, Shape(filters, out_h, out_w), (ctx.prev,))


def _shared_with(s: Section, ctx: BuildContext, layer: ConvLayer) -> ConvLayer:
    """share_index=N: this layer convolves with layer N's kernel, biases and batch norm (darknet
    points at the other layer's arrays; the .weights file holds them once, at layer N). Its own
    geometry and activation stay: resnet152_trident runs one kernel at dilations 1, 2 and 3."""
    ref = s.get_int("share_index")
    index = ref if ref >= 0 else ctx.index + ref
    if not 0 <= index < ctx.index:
        raise s.error(f"share_index={ref} points to layer {index}; it must be an earlier layer (0..{ctx.index - 1})",
                      "share_index")
    source = ctx.modules[index]
    if not isinstance(source, ConvLayer):
        raise s.error(f"share_index={ref} points to layer {index}, a [{type(source).__name__}], not a [convolutional]",
                      "share_index")
    mine, theirs = layer.conv, source.conv
    if (mine.weight.shape, mine.groups) != (theirs.weight.shape, theirs.groups):
        raise s.error(f"share_index={ref}: layer {index}'s kernel is {tuple(theirs.weight.shape)} (groups={theirs.groups}), "
                      f"this layer's would be {tuple(mine.weight.shape)} (groups={mine.groups}); they must match",
                      "share_index")
    layer.conv.weight, layer.conv.bias, layer.bn = theirs.weight, theirs.bias, source.bn
    layer.shares_weights = True  # its tensors belong to layer `index`: not in the .weights file twice
    return layer
