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
mish by layers/mish_kernel.py and swish in place. Packed, yolov4-csp 512's forward (mish) took 436.89 ms instead of
467.79 and yolov4-csp-swish's 398.17 instead of 439.09 on a 2-core AMD EPYC, outputs bit-identical
(benchmarks/results/prepacked.md).
The packed weights are opaque oneDNN tensors that cannot be pickled or deep-copied, so they are kept
beside the layer (a weak-keyed table), never in it: a layer still pickles for Ray and copies as before.
"""
from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from .graph_capture import capturing

# darknet activation → (oneDNN post-op, its scalars): the activations oneDNN computes exactly as torch does
FUSED = {"leaky": ("leaky_relu", [0.1]), "relu": ("relu", []), "linear": ("none", [])}


@dataclasses.dataclass
class _Packed:
    """One layer's packed kernels, and what they were made from."""
    sources: tuple[weakref.ref, ...]  # the layer's own tensors (weakly: an entry never keeps replaced weights alive)
    stamp: tuple[int, ...]  # their sources_stamp when packed
    bias: Tensor | None  # the kernel's bias (batch norm folded in)
    by_shape: dict[torch.Size, Tensor]  # input shape → packed weight

    def made_from(self, sources: Sequence[Tensor]) -> bool:
        return (len(sources) == len(self.sources) and all(ref() is t for ref, t in zip(self.sources, sources))
                and self.stamp == sources_stamp(sources))


_packed: "weakref.WeakKeyDictionary[nn.Module, _Packed]" = weakref.WeakKeyDictionary()

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
            and not capturing() and available())


def convolve(layer: nn.Module, conv: nn.Conv2d, x: Tensor, sources: Sequence[Tensor],
             kernel: Callable[[], tuple[Tensor, Tensor | None]], activation: str) -> Tensor:
    """The activated `conv2d(x, weight, bias)` with `conv`'s geometry, on weights packed once per change.

    Only the packed copy is kept: `kernel` is called when the layer's tensors changed or a new input shape comes,
    and what it returns is dropped once packed, so a layer holds its darknet tensors and the packed kernel, not
    also a folded copy (yolov4-p7: 1.1 GB each).

    Args:
        layer (nn.Module): the layer the packed weights belong to (the key of the table).
        conv (nn.Conv2d): its convolution (stride, padding, dilation, groups).
        x (Tensor[N, C, H, W]): float32 CPU input, any memory format.
        sources (Sequence[Tensor]): the tensors the kernel is made from; packed again when one of them is
            replaced or changed in place (loading weights, .to()).
        kernel (callable): () → (weight, bias), the kernel to run (batch norm folded in, or the conv's own).
        activation (str): the post-op, a darknet activation's name in FUSED.

    Returns:
        Tensor: the activated output, in the input's memory format.
    """
    geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    entry = _packed.get(layer)
    weight = None
    if entry is None or not entry.made_from(sources):
        weight, bias = kernel()
        entry = _packed[layer] = _Packed(tuple(weakref.ref(t) for t in sources), sources_stamp(sources), bias, {})
    packed = entry.by_shape.get(x.shape)
    if packed is None:  # packed for this input shape: without it oneDNN picks a 1x1 kernel up to 8x slower
        if weight is None:
            weight = kernel()[0]
        packed = entry.by_shape[x.shape] = torch.ops.mkldnn._reorder_convolution_weight(weight, *geometry, list(x.shape))
    post_op, scalars = FUSED[activation]
    return torch.ops.mkldnn._convolution_pointwise(x, packed, entry.bias, *geometry, post_op, scalars, "")


def sources_stamp(sources: Sequence[Tensor]) -> tuple[int, ...]:
    """What changes when a tensor is changed in place (its version counter) or given other memory (`param.data = …`,
    `.to()`: its data pointer); what a kernel made from `sources` (folded, packed) is checked against.

    Args:
        sources (Sequence[Tensor]): the tensors.

    Returns:
        tuple[int, ...]: their versions, then their data pointers.
    """
    return tuple(tensor_version(t) for t in sources) + tuple(t.data_ptr() for t in sources)


def tensor_version(t: Tensor) -> int:
    """The in-place change counter of a tensor (−1 for inference tensors, which have none)."""
    try:
        return t._version
    except RuntimeError:  # inference tensors have no version counter; their data pointer still tells
        return -1
