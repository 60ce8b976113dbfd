"""The `Tracker` interface, the registry of trackers by name, and the adapter for Roboflow's `trackers` library.

A tracker takes each frame's `Detections` in order and says which track each detection belongs to. Each
tracker is one file in `adapters/` that registers a class under its `--track` name; the library's ByteTrack,
OC-SORT and SORT are adapters of `LibraryTracker`, and another (BoT-SORT, one with appearance features) is one
more file:

    @register("botsort")
    class BoTSort(LibraryTracker):
        library_class = "BoTSORTTracker"
        tuned = {...}                         # our settings for darknet's detections; stock=True drops them

The `trackers` library is optional (`pip install 'darknet-engine[track]'`): nothing imports it until a tracker is
made, and then a missing library is one InputError saying how to install it.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np

from ...core.errors import InputError
from ..detections import Detections

INSTALL_HINT = "pip install 'darknet-engine[track]'"
# The default is the one that measured best on darknet's detections of the generated sequences (SORT with its
# paper's centre/scale/ratio state, benchmarks/results/tracking.json), not the one expected to (ByteTrack).
DEFAULT_TRACKER = "sort"


@runtime_checkable
class Tracker(Protocol):
    """Follows objects from frame to frame.

    Attributes:
        name (str): the name it is registered under (`--track NAME`).
    """

    name: str

    def update(self, detections: Detections) -> np.ndarray:
        """Take the next frame's detections (frames in order, one call per frame, also when none were found).

        Args:
            detections (Detections): the frame's detections.

        Returns:
            ndarray[N]: int64, the track id (1, 2, …) of each detection, in the detections' order; -1 where a
            detection belongs to no confirmed track (yet).
        """
        ...

    def reset(self) -> None:
        """Forget every track: the next frame starts a new video. Ids start again from 1."""
        ...


_TRACKERS: dict[str, Callable[..., Tracker]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make the tracker class available as `--track NAME` and `make_tracker(NAME)`.

    The class is called as `cls(frame_rate=..., stock=..., **settings)`.
    """
    def add(cls: type) -> type:
        if name in _TRACKERS:
            raise ValueError(f"tracker {name!r} is registered twice")
        cls.name = name
        _TRACKERS[name] = cls
        return cls
    return add


def tracker_names() -> list[str]:
    """Every registered tracker's name, in alphabetical order."""
    return sorted(_TRACKERS)


def check_tracker_name(name: str) -> None:
    """Refuse a name no tracker is registered under, listing the ones that are."""
    if name not in _TRACKERS:
        raise InputError(f"unknown tracker {name!r}; use one of {', '.join(tracker_names())}")


def make_tracker(name: str = DEFAULT_TRACKER, frame_rate: float = 30.0, stock: bool = False, **settings: Any) -> Tracker:
    """A new tracker by name.

    Args:
        name (str): a registered name: "sort" (the default), "bytetrack" or "ocsort".
        frame_rate (float): the video's frames per second (a track's lost-time budget is in seconds).
        stock (bool): the library's own defaults instead of ours, tuned to darknet's scores.
        **settings: the library tracker's own keywords, over the defaults.

    Returns:
        Tracker: ready for the first frame.

    Raises:
        InputError: an unknown name, or the tracker's library is not installed.
    """
    check_tracker_name(name)
    return _TRACKERS[name](frame_rate=frame_rate, stock=stock, **settings)


def require_trackers():
    """The `trackers` module, or one InputError saying how to install it."""
    try:
        import trackers
    except ImportError:
        raise InputError(f"--track needs the `trackers` library, which is not installed: {INSTALL_HINT}") from None
    return trackers


def tracked_boxes(detections: Detections) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """The boxes a tracker sees: one per object, and which object each detection is.

    darknet's multi-label rule can give one box several classes, each a detection; a tracker must see that
    box once, or it would start a track per class. Detections with the same box (to the 0.01 px a record
    holds) are one object, represented by the first (best-scoring) of them. Boxes and scores are rounded to a
    record's precision (2 and 6 decimals), so that tracking the records of a run (`detect --ray --track`) gives
    the very ids that tracking its Detections does.

    Args:
        detections (Detections): one frame's detections, best first.

    Returns:
        (ndarray[M], ndarray[N], list of tuple): the index of each object's first detection, each detection's
        object, and each object's box rounded.
    """
    objects: dict[tuple, int] = {}
    first: list[int] = []
    owner: list[int] = []
    for i, (x1, y1, x2, y2) in enumerate(detections.boxes.tolist()):
        key = (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2))
        if key not in objects:  # detections come best first: an object's first one is its best class
            objects[key] = len(first)
            first.append(i)
        owner.append(objects[key])
    return np.array(first, np.int64), np.array(owner, np.int64), list(objects)


# Settings given by name (so that they read as text in `tuned` and in benchmark results): the similarity a
# tracker matches boxes by, and the box state its Kalman filter keeps.
SIMILARITIES = {"iou": "IoU", "giou": "GIoU", "diou": "DIoU", "ciou": "CIoU", "biou": "BIoU"}
STATES = {"xyxy": "XYXYStateEstimator", "xcycsr": "XCYCSRStateEstimator", "xcycwh": "XCYCWHStateEstimator"}


def library_keywords(settings: dict[str, Any]) -> dict[str, Any]:
    """*settings* as the library's keywords: `iou="diou"` → `iou=trackers.DIoU()`, `state="xcycsr"` →
    `state_estimator_class=XCYCSRStateEstimator`; the rest as they are.

    Raises:
        InputError: an unknown similarity or state name.
    """
    keywords = dict(settings)
    if isinstance(keywords.get("iou"), str):
        name = keywords["iou"]
        if name not in SIMILARITIES:
            raise InputError(f"unknown box similarity {name!r}; use one of {', '.join(SIMILARITIES)}")
        keywords["iou"] = getattr(require_trackers(), SIMILARITIES[name])()
    if "state" in keywords:
        name = keywords.pop("state")
        if name not in STATES:
            raise InputError(f"unknown tracker state {name!r}; use one of {', '.join(STATES)}")
        from trackers.utils import state_representations

        keywords["state_estimator_class"] = getattr(state_representations, STATES[name])
    return keywords


class LibraryTracker:
    """A tracker of Roboflow's `trackers` library (https://github.com/roboflow/trackers) behind `Tracker`.

    Subclasses name the library's class and give our defaults for darknet's scores (`tuned`: see
    benchmarks/tracking.py, which measured them); `stock=True` keeps the library's own.

    Args:
        frame_rate (float): the video's frames per second.
        stock (bool): the library's defaults instead of `tuned`.
        **settings: the library class's keywords, over the defaults.
    """

    name: ClassVar[str]
    library_class: ClassVar[str]
    tuned: ClassVar[dict[str, Any]] = {}

    def __init__(self, frame_rate: float = 30.0, stock: bool = False, **settings: Any) -> None:
        library = require_trackers()
        self.settings = {**({} if stock else self.tuned), **settings}
        self.frame_rate = float(frame_rate)
        keywords = library_keywords(self.settings)
        self._make = lambda: getattr(library, self.library_class)(frame_rate=self.frame_rate, **keywords)
        self._tracker = self._make()
        import supervision  # installed with trackers, which speaks its Detections

        self._sv = supervision

    def update(self, detections: Detections) -> np.ndarray:
        first, owner, rounded = tracked_boxes(detections)
        boxes = np.array(rounded, np.float64)
        scores = np.array([round(s, 6) for s in detections.scores[first].tolist()], np.float64)
        given = self._sv.Detections(xyxy=boxes.reshape(-1, 4), confidence=scores,
                                    class_id=detections.class_ids[first].astype(int), data={"object": np.arange(len(first))})
        found = self._tracker.update(given)
        per_object = np.full(len(first), -1, np.int64)
        if len(found):
            ids = np.asarray(found.tracker_id, np.int64)
            per_object[np.asarray(found.data["object"], np.int64)] = np.where(ids >= 0, ids + 1, -1)  # ids from 1
        return per_object[owner]

    def reset(self) -> None:
        self._tracker = self._make()
