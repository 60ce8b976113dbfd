"""A classifier cfg exported by `darknet-py export` (metadata task "classify") run by a graph
runtime (onnxruntime, OpenVINO), with the torch model's `.classify()` and the same Classification results.

The session, metadata and batching are the runtime's (darknet_py.backends.graph); the pipeline is
darknet_py.pipeline.classify's, so every backend pre-processes and ranks classes the same way. It
meets the `Backend` protocol as a classifier: detect() and candidates() refuse.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, ContextManager, NoReturn, Sequence

from ..core.errors import InputError
from ..pipeline.backend import BackendTraits, Portable
from ..pipeline.classifications import Classification
from ..pipeline.classify import classify_with
from ..pipeline.detect import ImageLike
from .graph import GraphDetector


class GraphClassifier:
    """darknet_py.load("classifier.onnx") (or .xml) returns one of these.

    Args:
        session (GraphDetector): the opened export (an OnnxDetector or OpenVinoDetector) that runs the graph; its
            metadata's "outputs" is the class count, and "hierarchy" the parents of a tree's classes, if any.
    """

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
        """The session's traits, without candidates."""
        return replace(self.session.traits, candidates=False)

    def portable(self) -> Portable:
        """What rebuilds the session in another process (see GraphDetector.portable)."""
        return self.session.portable()

    def concurrent(self, calls: int) -> None:
        """None: classifying runs one call at a time.

        Args:
            calls (int): the calls that would run at once (not used).

        Returns:
            None: there is no twin.
        """
        return None

    def sequence(self) -> ContextManager:
        """A no-op context (no recurrent state); it yields the classifier."""
        return contextlib.nullcontext(self)

    def candidates(self, pixels: Any) -> NoReturn:
        """Refused: a classifier has no detection candidates.

        Raises:
            InputError: always.
        """
        raise InputError(f"{self.source} is a classifier: it has no detection candidates")

    def candidates_above(self, pixels: Any, objectness_thresh: float) -> NoReturn:
        """Refused, as `candidates` is.

        Raises:
            InputError: always.
        """
        return self.candidates(pixels)

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> list[Classification]:
        """Same contract as Darknet.classify.

        Args:
            images (ImageLike or sequence of ImageLike): as darknet_py.pipeline.classify takes them.
            top (int): the best classes to keep per image.
            names (list of str or None): class names; None: the export's.

        Returns:
            list of Classification: one per image, in input order.

        Raises:
            InputError: *top* is not a positive integer, or fewer names than classes were given.
        """
        return classify_with(lambda pixels: self.session.run(pixels)[0], self.width, self.height, images, top,
                             names or self.names, self.num_classes, self.hierarchy)

    def detect(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: this export is a classifier (use `classify`).

        Raises:
            InputError: always.
        """
        raise InputError(f"{self.source} is a classifier: use classify")

    def __repr__(self) -> str:
        return f"GraphClassifier({self.source!r}, {self.num_classes} classes, {self.width}x{self.height})"


OnnxClassifier = GraphClassifier  # its name before OpenVINO could run classifiers too


def classifier_or_detector(session: GraphDetector) -> GraphDetector | GraphClassifier:
    """An opened export as the detector or the classifier its metadata says it is.

    Args:
        session (GraphDetector): the opened export.

    Returns:
        GraphDetector or GraphClassifier: a GraphClassifier around it when its metadata's task is "classify", else
        the session itself.
    """
    return GraphClassifier(session) if session.meta.get("task") == "classify" else session
