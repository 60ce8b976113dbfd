"""A classifier cfg exported by `darknet-py export` (metadata task "classify") run by a graph
runtime (onnxruntime, OpenVINO), with the torch model's `.classify()` and the same Classification results.

The session, metadata and batching are the runtime's (darknet_py.graph_backend); the pipeline is
darknet_py.classify's, so every backend pre-processes and ranks classes the same way.
"""
from __future__ import annotations

from typing import Sequence

from .classifications import Classification
from .classify import classify_with
from .detect import ImageLike
from .errors import InputError
from .graph_backend import GraphDetector


class OnnxClassifier:
    is_classifier = True

    def __init__(self, session: GraphDetector) -> None:
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


def classifier_or_detector(session: GraphDetector) -> GraphDetector | OnnxClassifier:
    """An opened export as the detector or the classifier its metadata says it is."""
    return OnnxClassifier(session) if session.meta.get("task") == "classify" else session
