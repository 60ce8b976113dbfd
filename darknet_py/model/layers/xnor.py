"""[convolutional] with xnor=1: XNOR-net binary convolution, as darknet's CPU inference computes it.

Darknet binarises both operands (src/convolutional_layer.c): each filter's weights become
sign(w)·mean|w| (binarize_weights: w > 0 → +mean, else −mean) and the inputs sign(x) (x > 0 → +1,
else −1). `detector test` first folds batch norm into the weights (fuse_conv_batchnorm), then
packs both into bits (calculate_binary_weights) and counts agreeing bits: each output is
(2·agreements − K)·mean, an integer times the filter's mean, which is what `convolve` computes
(±1 products summed exactly, one multiplication). A padded position is a 0 bit there, i.e. −1,
as every other non-positive input.

Folding batch norm first changes nothing in exact arithmetic (sign and mean scale with γ/σ), so
the folded (`fast`) and plain paths agree. Groups are off for xnor layers (darknet sets groups=1).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...format.cfg import Section
from .activations import Activation
from .conv import ConvLayer, conv_variant
from .registry import BuildContext, LayerInfo

PAD_INPUT = -1.0  # the padded border, as darknet's bit-packed path reads it (a 0 bit)
BIN_OUTPUT_KEEPERS = ("route", "shortcut", "sam", "scale_channels")


def binarize_input(x: Tensor) -> Tensor:
    return torch.where(x > 0, 1.0, -1.0).to(x.dtype)


def xnor_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, conv: nn.Conv2d) -> Tensor:
    """conv's geometry with binarised input and weights: sign(x) ⊛ sign(w) · mean|w| + bias."""
    ph, pw = conv.padding  # type: ignore[misc]
    signs = binarize_input(x)
    if ph or pw:
        signs = F.pad(signs, (pw, pw, ph, ph), value=PAD_INPUT)
    mean = weight.abs().mean(dim=(1, 2, 3))
    counts = F.conv2d(signs, torch.where(weight > 0, 1.0, -1.0).to(weight.dtype), None, conv.stride, 0)
    out = counts * mean.view(1, -1, 1, 1)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class XnorConv2d(nn.Conv2d):
    """nn.Conv2d that binarises: the unfolded ConvLayer path calls it as `conv`."""

    def forward(self, x: Tensor) -> Tensor:
        return xnor_conv2d(x, self.weight, self.bias, self)


@conv_variant("xnor")
class XnorConvLayer(ConvLayer):
    conv_module = XnorConv2d
    grouped = False
    bflops_divisor = 32  # darknet: l.bflops / 32 for xnor layers
    detail_suffix = " xnor"
    bin_output = False  # set from the cfg in configure()

    def configure(self, s: Section, ctx: BuildContext) -> None:
        # darknet's binary path reads neither (it runs im2col without dilation, with one stride)
        if self.conv.dilation != (1, 1):
            raise s.error("dilation with xnor=1 is not supported (darknet's binary path ignores it)", "dilation")
        if self.conv.stride[0] != self.conv.stride[1]:
            raise s.error("xnor=1 needs stride_x == stride_y (darknet's binary path has one stride)", "xnor")
        self.bin_output = s.get_int("bin_output", 0) != 0
        same_size_3x3 = self.conv.kernel_size == (3, 3) and self.conv.stride == (1, 1) and self.conv.padding == (1, 1)
        if self.conv.in_channels % 32 and not same_size_3x3:
            ctx.notice("xnor-cpu", f"{s.where('xnor')}: darknet's CPU build has no binary path for an xnor layer with "
                                   f"{self.conv.in_channels} input channels (not a multiple of 32) unless it is a 3x3, "
                                   "stride 1, pad 1 convolution: it prints 'is no non-optimized version' and its output "
                                   "is meaningless; darknet_py computes the binary convolution")

    def after_build(self, index: int, infos: Sequence[LayerInfo]) -> None:
        """bin_output=1: darknet runs the layer with a linear activation (calculate_binary_weights), unless
        a [route], [shortcut], [sam] or [scale_channels] reads it (its parser clears use_bin_output then)."""
        if self.bin_output and not any(index in info.sources and info.type in BIN_OUTPUT_KEEPERS for info in infos):
            self.act = Activation("linear")

    def convolve(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return xnor_conv2d(x, weight, bias, self.conv)
