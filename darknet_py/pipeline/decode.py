"""Head tensors → candidates, with the decoder each head's spec calls for (darknet_py.pipeline.decoders).

Every decoder returns boxes xyxy (N, M, 4) in network pixels, the objectness that gates a box
(darknet drops a box whose objectness is not above the threshold) (N, M), and class scores
(N, M, C), the numbers darknet compares with the threshold and prints. Batched tensor code with
shapes from the input, so ONNX traces and CUDA graphs of it stay valid.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import Tensor

from ..model.layers.gaussian_yolo import GaussianYoloSpec
from ..model.layers.head import HeadSpec
from ..model.layers.region import RegionSpec
from ..model.layers.yolo import YoloSpec
from .decoders import gaussian, region, yolo
from .decoders.common import Candidates


class Decoder(NamedTuple):
    constants: Callable[..., Any]  # (spec, device[, dtype]) → tensors made once per device (anchors, indices)
    decode: Callable[..., Candidates]  # (head, spec, stride_x, stride_y, constants or None)


DECODERS: dict[type, Decoder] = {
    YoloSpec: Decoder(yolo.constants, yolo.decode),
    RegionSpec: Decoder(region.constants, region.decode),
    GaussianYoloSpec: Decoder(gaussian.constants, gaussian.decode),
}


def decoder_for(spec: HeadSpec) -> Decoder:
    try:
        return DECODERS[type(spec)]
    except KeyError:
        raise TypeError(f"no decoder for head spec {type(spec).__name__}") from None


def head_constants(spec: HeadSpec, device: torch.device) -> Any:
    """What decode_head needs besides the tensor, made on `device` ahead of time: a CUDA graph capture
    forbids the host-to-device copies that making them inside would take."""
    return decoder_for(spec).constants(spec, device)


def decode_head(head: Tensor, spec: HeadSpec, stride_x: float, stride_y: float, constants: Any = None) -> Candidates:
    """head (N, A·V, H, W) → boxes (N, A·H·W, 4), objectness (N, A·H·W), scores (N, A·H·W, C).
    stride: network pixels per grid cell (darknet: net_w / W)."""
    return decoder_for(spec).decode(head, spec, stride_x, stride_y, constants)


def decode(heads: Sequence[Tensor], specs: Sequence[HeadSpec], net_w: int, net_h: int,
           constants: Sequence[Any] | None = None) -> Candidates:
    """All heads concatenated: boxes (N, M, 4), objectness (N, M), scores (N, M, C)."""
    per_head = constants or [None] * len(specs)
    parts = [decode_head(h, s, net_w / h.shape[3], net_h / h.shape[2], c) for h, s, c in zip(heads, specs, per_head)]
    return tuple(torch.cat(p, 1) for p in zip(*parts))  # type: ignore[return-value]
