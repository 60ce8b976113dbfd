"""[yolo] heads → the candidates above the objectness threshold, on the CPU in one pass per head (`Gated`).

darknet reads a box's class probabilities only when its objectness passes the threshold. The tensor
decoder (decoders/yolo.py) decodes every candidate and then `gate` keeps the few above it: for
yolov4-tiny at 416 that is 2,535 boxes × 80 scores made to keep a dozen rows, dozens of torch calls that
after the network, with the caches cold, took 1.0 ms of detect() on 2 cores. The C kernel
(_yolo_gate.c, built by setup.py) reads each candidate's objectness and decodes only those above the
threshold, with decoders/yolo.py's float32 steps; its logistic and exponential are libm's expf, where
torch's vectorised one can differ in the last bits (tests/test_yolo_gate.py: the same rows, scores within
8 float32 ulps of the tensor path's and boxes within 1e-5 of their scale, on photos and on random heads).

`decode_above` is what the backends call with their heads (the torch backend's network outputs, a `raw`
export's graph outputs): the kernel where it `applies` (float32 [yolo] heads on the CPU), the tensor path
(decode, then gate) for CUDA, other precisions, [region]/[Gaussian_yolo] heads and installs without the kernel.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..model.layers.head import HeadSpec
from ..model.layers.yolo import YoloSpec
from .backend import Gated, gate
from .decode import decode

try:  # built by setup.py where a compiler is; the tensor path gives the same rows without it
    from . import _yolo_gate as _kernel
except ImportError:  # pragma: no cover - depends on the install
    _kernel = None

use_kernel = True  # tests turn it off to compare with the tensor path


def decode_above(heads: Sequence[Tensor], specs: Sequence[HeadSpec], net_w: int, net_h: int, objectness_thresh: float,
                 constants: Sequence | None = None) -> Gated:
    """The candidates of these heads whose objectness exceeds the threshold: `gate_heads` where it `applies`,
    else `gate(decode(heads, specs, net_w, net_h, constants))`.

    Args:
        heads (Sequence[Tensor]): the detection heads' inputs (N, A·V, H, W), in cfg order.
        specs (Sequence[HeadSpec]): their specs.
        net_w, net_h (int): the network input size.
        objectness_thresh (float): darknet's detection threshold.
        constants (Sequence, optional): decode's per-head constants for the heads' device (decode.head_constants).

    Returns:
        Gated: in (image, candidate) order.
    """
    if applies(heads, specs):
        return gate_heads(heads, specs, net_w, net_h, objectness_thresh)
    return gate(decode(heads, specs, net_w, net_h, constants), objectness_thresh)


def applies(heads: Sequence[Tensor], specs: Sequence[HeadSpec]) -> bool:
    """Whether `gate_heads` can take these head tensors: the kernel built, every head a [yolo] one with the
    same class count, float32 on the CPU."""
    return (use_kernel and _kernel is not None and bool(specs) and len(heads) == len(specs)
            and all(type(spec) is YoloSpec for spec in specs) and len({spec.classes for spec in specs}) == 1
            and all(head.device.type == "cpu" and head.dtype == torch.float32 and head.dim() == 4 for head in heads))


def gate_heads(heads: Sequence[Tensor], specs: Sequence[HeadSpec], net_w: int, net_h: int,
               objectness_thresh: float) -> Gated:
    """`gate(decode(heads, specs, net_w, net_h), objectness_thresh)`, decoding only the rows above it.

    Args:
        heads (Sequence[Tensor]): the [yolo] heads' inputs (N, A·(5+C), H, W), float32 on the CPU (see `applies`).
        specs (Sequence[HeadSpec]): their YoloSpecs, in the same order.
        net_w, net_h (int): the network input size (a head's stride is net_w / W, as decode computes it).
        objectness_thresh (float): darknet's detection threshold.

    Returns:
        Gated: in (image, candidate) order, as `gate` orders them.
    """
    classes = specs[0].classes
    batch = heads[0].shape[0]
    per_image = sum(len(spec.anchors) * head.shape[2] * head.shape[3] for head, spec in zip(heads, specs))
    rows = batch * per_image  # room for every candidate; only the rows written are ever touched
    image_idx, box_idx = np.empty(rows, np.int64), np.empty(rows, np.int64)
    boxes, scores = np.empty((rows, 4), np.float32), np.empty((rows, classes), np.float32)
    planes = [np.ascontiguousarray(head.numpy()) for head in heads]
    written = 0
    for image in range(batch):
        offset = 0
        for head, spec in zip(planes, specs):
            written = _kernel.gate(head[image], _anchors(spec.anchors), spec.scale_x_y, spec.new_coords,
                                   net_w / head.shape[3], net_h / head.shape[2], objectness_thresh, offset, image,
                                   image_idx, box_idx, boxes, scores, written)
            offset += len(spec.anchors) * head.shape[2] * head.shape[3]
    return Gated(*(torch.from_numpy(a[:written]) for a in (image_idx, box_idx, boxes, scores)))


@functools.cache
def _anchors(anchors: tuple[tuple[float, float], ...]) -> np.ndarray:
    return np.asarray(anchors, np.float32).reshape(-1, 2)
