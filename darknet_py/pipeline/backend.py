"""The one interface every backend meets, and the only one detect(), classify(), the CLI and the
Ray driver call (re-exported as `darknet_py.backends.Backend`).

It lives here, beside the pipeline that drives it, so that the pipeline can name what it needs
without importing any backend (imports go from higher roles to lower ones only).

A backend takes network-ready pixels and gives decoded candidates::

    pixels (N, C, H, W) float32 in [0, 1], RGB   ──candidates()──►   boxes (N, M, 4), objectness (N, M), scores (N, M, K)
                                                 ──candidates_above(t)──►   the rows whose objectness > t (Gated)

and declares what it is (`traits`): its name, where and in which precision it computes, how many
images one call may take, and whether it replays captured graphs. Everything around that — reading
and resizing images, thresholds, NMS, `Detections` — is `darknet_py.pipeline`'s, the same for every
backend, so every backend gives the same results for the same network outputs.

Three implement it: `Darknet` (torch; `darknet_py.backends.torch`), `OnnxDetector` (onnxruntime)
and `OpenVinoDetector` (OpenVINO). An exported classifier (`GraphClassifier`) meets the same
protocol with `is_classifier` set: it classifies, and its `detect`/`candidates` refuse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ContextManager, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..model.layers.head import HeadSpec
from .classifications import Classification
from .detections import Detections
from .preprocess import ImageLike

Candidates = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""boxes (N, M, 4) xyxy in network-input pixels, objectness (N, M), class scores (N, M, K)."""


class Gated(NamedTuple):
    """The candidates whose objectness exceeds the threshold (darknet reads a box's classes only then), flat over
    the batch in (image, candidate) order: what `Backend.candidates_above` gives and the thresholds go on with."""

    image_idx: torch.Tensor
    """(B,) int64: the image of each row."""
    box_idx: torch.Tensor
    """(B,) int64: the candidate's index among its image's M."""
    boxes: torch.Tensor
    """(B, 4) xyxy in network-input pixels."""
    scores: torch.Tensor
    """(B, K) class scores."""


def gate(candidates: Candidates, objectness_thresh: float) -> Gated:
    """The rows of decoded candidates whose objectness exceeds the threshold.

    Args:
        candidates (Candidates): boxes (N, M, 4), objectness (N, M), scores (N, M, K), as `candidates()` gives them.
        objectness_thresh (float): darknet's detection threshold.

    Returns:
        Gated: on the candidates' device.
    """
    boxes, objectness, scores = candidates
    if (objectness.device.type == "cpu" and objectness.dtype == torch.float32
            and not any(t.requires_grad for t in candidates)):
        # the same rows through numpy: a few calls of a microsecond where torch's dispatch takes tens
        above = np.nonzero(objectness.numpy() > np.float32(objectness_thresh))
        image_idx, box_idx = (torch.from_numpy(i) for i in above)
        return Gated(image_idx, box_idx, torch.from_numpy(boxes.numpy()[above]), torch.from_numpy(scores.numpy()[above]))
    image_idx, box_idx = (objectness > objectness_thresh).nonzero(as_tuple=True)
    return Gated(image_idx, box_idx, boxes[image_idx, box_idx], scores[image_idx, box_idx])


@dataclass(frozen=True)
class BackendTraits:
    """What a backend declares about itself (printed by `detect`'s log, read by the Ray driver)."""

    name: str
    """The backend's name: "torch", "onnxruntime" or "openvino"."""
    device: str
    """Where it computes, e.g. "cpu", "cuda:0"."""
    precision: str
    """"float32", "float16", "bfloat16" or "int8" (quantised weights), as far as the backend knows."""
    max_batch: int | None = None
    """Images one graph run takes at once (a fixed-batch export); None: any. Larger inputs are chunked."""
    replays_graphs: bool = False
    """CUDA graphs: candidates() returns buffers that the next call overwrites."""
    candidates: bool = True
    """False for a graph with NMS inside (an `nms` export) and for classifiers: no candidates() to call."""


@dataclass(frozen=True)
class Portable:
    """What rebuilds a backend in another process (a Ray actor): `darknet_py.backends.rebuild` takes it."""

    backend: str
    """A name of darknet_py.backends.BACKENDS."""
    payload: Any
    """The torch module itself, or an exported graph's bytes (OpenVINO IR: (xml, bin))."""
    options: dict = field(default_factory=dict)
    """Constructor keywords of a graph backend (resize, precision)."""


@runtime_checkable
class Backend(Protocol):
    """A model that darknet_py can run: what `darknet_py.load` returns, whichever runtime is behind it."""

    width: int
    """Network input width, pixels."""
    height: int
    """Network input height, pixels."""
    channels: int
    """Network input channels: 3 (colour, fed RGB), 1 (grey) or another count (arrays of that many only)."""
    letter_box: bool
    """The cfg's [net] letter_box: detect()'s default for keeping the aspect ratio."""
    resize: str
    """The image resize detect() uses: "darknet" or "opencv" (darknet_py.pipeline.preprocess)."""
    names: list[str] | None
    """Class names the model carries (exports do); None: the caller's, else COCO's."""

    @property
    def traits(self) -> BackendTraits:
        """Name, device, precision, batch limit, graph replay (see BackendTraits)."""
        ...

    @property
    def heads(self) -> list[HeadSpec]:
        """The detection layers' specs, in cfg order ([] for a classifier)."""
        ...

    @property
    def num_classes(self) -> int:
        """Classes of the first detection head, or a classifier's outputs."""
        ...

    @property
    def is_classifier(self) -> bool:
        """True for a network without detection layers: it classify()s, detect() refuses."""
        ...

    @property
    def stateful(self) -> bool:
        """Whether recurrent layers carry a state from one call to the next (see sequence())."""
        ...

    @property
    def input_device(self) -> torch.device | None:
        """Where detect() should prepare pixels: a CUDA device (uint8 up, resized there), or None for host memory."""
        ...

    def candidates(self, pixels: np.ndarray | torch.Tensor) -> Candidates:
        """Decoded candidates for network-ready pixels.

        Args:
            pixels (ndarray or Tensor[N, C, H, W]): float32 in [0, 1], RGB, `height` x `width`; a tensor
                only when it is on `input_device`.

        Returns:
            boxes (Tensor[N, M, 4]): xyxy in network-input pixels; objectness (Tensor[N, M]);
            scores (Tensor[N, M, K]): class scores, the numbers darknet compares with the threshold (for [yolo]
            heads objectness × class probability).
        """
        ...

    def candidates_above(self, pixels: np.ndarray | torch.Tensor, objectness_thresh: float) -> Gated:
        """The candidates whose objectness exceeds the threshold: what detect() runs on. `gate(candidates(pixels))`,
        or the same rows decoded alone where the backend can (the torch backend's [yolo] heads on the CPU).

        Args:
            pixels (ndarray or Tensor[N, C, H, W]): as for `candidates`.
            objectness_thresh (float): darknet's detection threshold.

        Returns:
            Gated: image and candidate indices, boxes and class scores of the rows above the threshold.
        """
        ...

    def sequence(self) -> ContextManager:
        """Inside, consecutive calls are consecutive video frames (recurrent state carries); a no-op for
        models without recurrent layers."""
        ...

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               **options) -> list[Detections]:
        """One Detections per image (darknet_py.pipeline.detect.detect's options)."""
        ...

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> list[Classification]:
        """One Classification per image (a classifier; detectors refuse)."""
        ...

    def portable(self) -> Portable:
        """What rebuilds this backend in another process."""
        ...

    def concurrent(self, calls: int) -> Backend | None:
        """A twin of this model built for *calls* detect() calls at once, from as many threads, the cores split
        between them: more images per second than one call on all cores, where a runtime's threads wait for each
        other at every layer (on a small CPU). This model is left as it was (a runtime instance of its own for
        onnxruntime and OpenVINO; for torch the same network, each calling thread on its share of the threads).

        Args:
            calls (int): calls the twin will run at once (2 or more).

        Returns:
            Backend or None: the twin, safe to call from *calls* threads at once; None where the backend has none
            (CUDA; classifiers; torch compiled, recurrent or not float32).
        """
        ...
