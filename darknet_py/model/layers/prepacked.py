"""A convolution on oneDNN's pre-packed weights, its activation fused: what torch.compile's frozen CPU graphs run,
without compiling (issue 29).

Eager `F.conv2d` on the CPU hands oneDNN weights in torch's layout on every call, and the activation runs as a
second pass over the output. Here the weights are reordered once into the blocked layout oneDNN's kernel reads
(`mkldnn._reorder_convolution_weight`, for the input shape it will see, redone whenever the weights or that
shape change) and leaky / ReLU run as the kernel's
post-op (`mkldnn._convolution_pointwise`, the op inductor emits). Both compute the same products in the same
kind of kernel, and a post-op leaky is one multiply like torch's: on a 2-core AMD EPYC yolov4-tiny's and
yolov4-csp's outputs equal eager's bit for bit; the tests hold them to 1e-5 of the largest output on any CPU
(tests/test_speed_paths.py). The time it saves: benchmarks/results/prepacked.md.

Used only where it changes nothing else: float32 CPU tensors with autograd off (detect(), inference_mode), outside
tracing, compiling and exporting (those see the plain F.conv2d), and only if this torch build has the ops. The
activation is the kernel's post-op where oneDNN computes it as torch does (FUSED: leaky, relu, linear); any other
runs on the kernel's output (oneDNN's own mish does not exist, its swish and logistic are not torch's to the bit):
mish by layers/mish_kernel.py and swish in place. Packed, yolov4-csp 512 (mish) ran 529 ms instead of 582 and
yolov4-csp-swish 415 instead of 443 on a 2-core AMD EPYC, outputs bit-identical (benchmarks/results/prepacked.md).
The packed weights are opaque oneDNN tensors that cannot be pickled or deep-copied, so they are kept
beside the layer (a weak-keyed table), never in it: a layer still pickles for Ray and copies as before.
"""
from __future__ import annotations

import functools
import weakref

import torch
from torch import Tensor, nn

# darknet activation → (oneDNN post-op, its scalars): the activations oneDNN computes exactly as torch does
FUSED = {"leaky": ("leaky_relu", [0.1]), "relu": ("relu", []), "linear": ("none", [])}

# layer → (source weight, (its version, its data pointer), input shape → packed weight)
_packed: "weakref.WeakKeyDictionary[nn.Module, tuple[Tensor, tuple[int, int], dict[torch.Size, Tensor]]]" = (
    weakref.WeakKeyDictionary())


enabled = True  # False: every convolution takes the plain F.conv2d path (tests and benchmarks compare the two)


@functools.cache
def available() -> bool:
    """Whether this torch build has oneDNN and the two ops (CPU wheels of torch ≥ 2.0 do)."""
    mkldnn = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn, "_convolution_pointwise")
            and hasattr(mkldnn, "_reorder_convolution_weight"))


def applies(x: Tensor) -> bool:
    """Whether a call with input `x` may take the pre-packed path (see the module docstring)."""
    return (enabled and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and not torch.is_grad_enabled()
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and not torch.compiler.is_exporting() and available())


def convolve(layer: nn.Module, conv: nn.Conv2d, x: Tensor, weight: Tensor, bias: Tensor | None,
             activation: str) -> Tensor:
    """The activated `conv2d(x, weight, bias)` with `conv`'s geometry, on weights packed once per change.

    Args:
        layer (nn.Module): the layer the packed weights belong to (the key of the table).
        conv (nn.Conv2d): its convolution (stride, padding, dilation, groups).
        x (Tensor[N, C, H, W]): float32 CPU input, any memory format.
        weight (Tensor), bias (Tensor, optional): the kernel to run (batch norm folded in, or the conv's own).
        activation (str): the darknet activation's name, one of FUSED.

    Returns:
        Tensor: the activated output, in the input's memory format.
    """
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    # the source tensor itself (held, so its id cannot be reused), its in-place change counter and its memory
    version = (-1 if weight.is_inference() else weight._version, weight.data_ptr())
    entry = _packed.get(layer)
    if entry is None or entry[0] is not weight or entry[1] != version:
        entry = _packed[layer] = (weight, version, {})
    by_shape = entry[2]
    packed = by_shape.get(x.shape)
    if packed is None:  # packed for this input shape: without it oneDNN picks a 1x1 kernel up to 8x slower
        packed = by_shape[x.shape] = torch.ops.mkldnn._reorder_convolution_weight(weight, *geometry, list(x.shape))
    post_op, scalars = FUSED[activation]
    return torch.ops.mkldnn._convolution_pointwise(x, packed, bias, *geometry, post_op, scalars, "")
