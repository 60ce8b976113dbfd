"""A classifier cfg exported by `darknet-py export` (metadata task "classify") run by a graph
runtime (onnxruntime, OpenVINO), with the torch model's `.classify()` and the same Classification results.

The session, metadata and batching are the runtime's (darknet_py.backends.graph); the pipeline is
darknet_py.pipeline.classify's, so every backend pre-processes and ranks classes the same way. It
meets the `Backend` protocol as a classifier: detect() and candidates() refuse.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import ContextManager, Sequence

from ..core.errors import InputError
from ..pipeline.backend import BackendTraits, Portable
from ..pipeline.classifications import Classification
from ..pipeline.classify import classify_with
from ..pipeline.detect import ImageLike
from .graph import GraphDetector


class GraphClassifier:
    """darknet_py.load("classifier.onnx") (or .xml) returns one of these."""

    is_classifier = True
    stateful = False
    input_device = None
    heads: list = []  # no detection layer

    def __init__(self, session: GraphDetector) -> None:
        self.session = session
        self.meta = session.meta
        self.source = session.source
        self.names: list[str] = session.names
        self.width, self.height, self.channels = session.width, session.height, session.channels
        self.letter_box, self.resize = session.letter_box, session.resize
        self.num_classes: int = self.meta["outputs"]
        self.hierarchy: list[int] | None = self.meta.get("hierarchy")

    @property
    def traits(self) -> BackendTraits:
        return replace(self.session.traits, candidates=False)

    def portable(self) -> Portable:
        return self.session.portable()

    def concurrent(self, calls: int) -> None:
        """None: classifying runs one call at a time."""
        return None

    def sequence(self) -> ContextManager:
        return contextlib.nullcontext(self)

    def candidates(self, pixels):
        raise InputError(f"{self.source} is a classifier: it has no detection candidates")

    def candidates_above(self, pixels, objectness_thresh):
        return self.candidates(pixels)

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> list[Classification]:
        """Same contract as Darknet.classify."""
        return classify_with(lambda pixels: self.session.run(pixels)[0], self.width, self.height, images, top,
                             names or self.names, self.num_classes, self.hierarchy)

    def detect(self, *args, **kwargs):
        raise InputError(f"{self.source} is a classifier: use classify")

    def __repr__(self) -> str:
        return f"GraphClassifier({self.source!r}, {self.num_classes} classes, {self.width}x{self.height})"


OnnxClassifier = GraphClassifier  # its name before OpenVINO could run classifiers too


def classifier_or_detector(session: GraphDetector) -> GraphDetector | GraphClassifier:
    """An opened export as the detector or the classifier its metadata says it is."""
    return GraphClassifier(session) if session.meta.get("task") == "classify" else session
