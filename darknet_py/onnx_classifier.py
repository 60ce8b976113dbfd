"""An onnxruntime-backed classifier: a classifier cfg exported by `darknet-py export` (metadata task
"classify"), with the torch model's `.classify()` and the same Classification results.

The session, metadata and batching are OnnxDetector's (darknet_py.onnx_backend); the pipeline is
darknet_py.classify's, so both backends pre-process and rank classes the same way.
"""
from __future__ import annotations

import os
from typing import Sequence

from .classifications import Classification
from .classify import classify_with
from .detect import ImageLike
from .errors import InputError
from .onnx_backend import OnnxDetector


class OnnxClassifier:
    is_classifier = True

    def __init__(self, session: OnnxDetector) -> None:
        self.session = session
        self.meta = session.meta
        self.source = session.source
        self.names: list[str] = session.names
        self.width, self.height = session.width, session.height
        self.num_classes: int = self.meta["outputs"]
        self.hierarchy: list[int] | None = self.meta.get("hierarchy")

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> list[Classification]:
        """Same contract as Darknet.classify."""
        return classify_with(lambda pixels: self.session.run(pixels)[0], self.width, self.height, images, top,
                             names or self.names, self.num_classes, self.hierarchy)

    def detect(self, *args, **kwargs):
        raise InputError(f"{self.source} is a classifier: use classify")

    def __repr__(self) -> str:
        return f"OnnxClassifier({self.source!r}, {self.num_classes} classes, {self.width}x{self.height})"


def open_onnx(model: str | os.PathLike[str] | bytes, device: str = "cpu",
              size: int | Sequence[int] | None = None) -> OnnxDetector | OnnxClassifier:
    """A `darknet-py export` file as the detector or the classifier its metadata says it is."""
    session = OnnxDetector(model, device=device, size=size)
    return OnnxClassifier(session) if session.meta.get("task") == "classify" else session

