"""Detections: the one result type every backend returns and the CLI formats."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from ..core.errors import InputError
from .box_rect import box_rect, check_pad


class Detection(NamedTuple):
    """One detection: what `Detections` gives when iterated over or indexed with an int."""

    box: tuple[float, float, float, float]  # (x1, y1, x2, y2) in image pixels, clipped to the image
    score: float
    class_id: int
    name: str
    track_id: int | None = None  # None: not tracked, or in no confirmed track yet


@dataclass(repr=False, eq=False)
class Detections:
    """Boxes xyxy in image pixels (float32, (n, 4)), scores (n,), class ids (n,), and the name table.

    Sorted by score. With darknet's multi-label rule one box can carry several classes: such
    detections share a `box_ids` value (the network candidate they came from). `boxes` are clipped
    to the image; `unclipped` are the same boxes before clipping, which darknet reports.

    Attributes:
        boxes (ndarray[N, 4]): float32, (x1, y1, x2, y2) in image pixels, clipped to the image.
        scores (ndarray[N]): float32, the score darknet thresholds (objectness × class probability
            for [yolo]), best first.
        class_ids (ndarray[N]): int64 class ids.
        names (list[str]): every class name, indexed by class id.
        image_size (tuple[int, int]): the image's width and height.
        source (str): the image's path ("" for an array).
        unclipped (ndarray[N, 4], optional): the boxes before clipping, as darknet reports them.
        box_ids (ndarray[N], optional): int64, the network candidate each detection came from;
            several classes of one box share it.
        class_scores (ndarray[N, K], optional): float32, when asked for: each box's scores above the
            threshold before NMS.
        track_ids (ndarray[N], optional): int64, the track each detection belongs to (1, 2, …; -1: none yet),
            set by a tracker (darknet_py.track, `detect --track`); None when not tracked.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)  # width, height
    source: str = ""
    unclipped: np.ndarray | None = None
    box_ids: np.ndarray | None = None
    class_scores: np.ndarray | None = None  # (n, classes) when asked for: the box's scores above the threshold before NMS
    track_ids: np.ndarray | None = None  # (n,) int64 when tracked: 1, 2, ... or -1 (no confirmed track)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index):
        """`dets[i]`: the i-th detection as a `Detection`; `dets[dets.scores > 0.5]`, `dets[:3]`, `dets[[0, 2]]`: a
        `Detections` of those (in that order), every per-detection array cut alike.

        Args:
            index (int, slice, bool mask or int array): which detections.

        Returns:
            Detection or Detections: one detection for an int, else the selection.

        Raises:
            IndexError: an int or mask that does not fit the detections.
        """
        if isinstance(index, (int, np.integer)):
            i = range(len(self))[index]  # negative ints count from the end; an IndexError names the range
            return self._detection(i, self.labels[i])
        chosen = np.arange(len(self))[index]  # slices, masks and index lists as numpy takes them
        cut = {name: getattr(self, name)[chosen] for name in ("boxes", "scores", "class_ids", "unclipped", "box_ids",
                                                               "class_scores", "track_ids")
               if getattr(self, name) is not None}
        return dataclasses.replace(self, **cut)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is: the arrays element for element (dtype aside), names, size and source (the
        dataclass's own == compared arrays with ==, and raised "the truth value of an array … is ambiguous")."""
        if not isinstance(other, Detections):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None  # mutable, compared by value

    def __iter__(self) -> Iterator[Detection]:
        """Each detection as a `Detection` (box, score, class_id, name, track_id), best first."""
        return (self._detection(i, label) for i, label in enumerate(self.labels))

    def _detection(self, i: int, label: str) -> Detection:
        track = None if self.track_ids is None or self.track_ids[i] < 0 else int(self.track_ids[i])
        return Detection(tuple(float(v) for v in self.boxes[i]), float(self.scores[i]), int(self.class_ids[i]), label,
                         track)

    SHOWN = 5  # detections a repr lists; the fields themselves hold them all

    def __repr__(self) -> str:
        """What was found, readable at a prompt: `Detections(4 on dog.jpg 768x576: dog 0.84, truck 0.79, …)`
        (the dataclass's own repr printed every array and all 80 class names)."""
        found = [f"{label} {score:.2f}" for label, score in zip(self.labels[:self.SHOWN], self.scores[:self.SHOWN].tolist())]
        more = ", …" if len(self) > self.SHOWN else ""
        where = f" on {self.source}" if self.source else ""
        tracked = ", tracked" if self.track_ids is not None else ""
        size = f"{self.image_size[0]}x{self.image_size[1]}"
        return f"Detections({len(self)}{where} {size}{tracked}{': ' if found else ''}{', '.join(found)}{more})"

    @property
    def labels(self) -> list[str]:
        """The class name of each detection (the id as text where the name table has none)."""
        return [self.names[c] if c < len(self.names) else str(c) for c in self.class_ids.tolist()]

    def to_list(self) -> list[dict]:
        """One dict per detection: `class_id`, `name`, `score` (6 decimals), `box` (xyxy pixels, 2 decimals), and
        when tracked `track_id` (an int, or None for a detection in no confirmed track)."""
        found = [
            {"class_id": int(c), "name": n, "score": round(float(s), 6), "box": [round(float(v), 2) for v in b]}
            for b, s, c, n in zip(self.boxes, self.scores, self.class_ids, self.labels)
        ]
        if self.track_ids is not None:
            for entry, track in zip(found, self.track_ids.tolist()):
                entry["track_id"] = track if track >= 0 else None
        return found

    def to_json(self) -> str:
        """`{"source", "width", "height", "detections": to_list()}` as one line of JSON (a `detections.json` record)."""
        w, h = self.image_size
        return json.dumps({"source": self.source, "width": w, "height": h, "detections": self.to_list()})

    def to_coco(self, image_id: int, category_ids: list[int] | None = None) -> list[dict]:
        """COCO results entries: bbox as [x, y, width, height]; class i → category_ids[i] when given.

        Args:
            image_id (int): the COCO image id of this image.
            category_ids (list[int], optional): COCO category id of each class id; None: the class id itself.

        Returns:
            list[dict]: `{"image_id", "category_id", "score", "bbox"}` per detection.
        """
        out = []
        for (x1, y1, x2, y2), s, c in zip(self.boxes.tolist(), self.scores.tolist(), self.class_ids.tolist()):
            category = c if category_ids is None else category_ids[c]
            out.append({"image_id": image_id, "category_id": int(category), "score": round(s, 6),
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]})
        return out

    def to_yolo_txt(self) -> str:
        """Darknet/YOLO label lines: class cx cy w h (normalised), plus the score."""
        w, h = self.image_size
        lines = []
        for (x1, y1, x2, y2), s, c in zip(self.boxes.tolist(), self.scores.tolist(), self.class_ids.tolist()):
            lines.append(f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f} {s:.6f}")
        return "\n".join(lines) + ("\n" if lines else "")

    def darknet_boxes(self) -> list[tuple[np.ndarray, list[int]]]:
        """darknet's view: one entry per box, (unclipped xyxy, detection indices best first then by class),
        boxes in order of their best score; classes named dont_show* are left out, as darknet does."""
        extents = self.boxes if self.unclipped is None else self.unclipped
        ids = np.arange(len(self)) if self.box_ids is None else self.box_ids
        shown = [i for i, name in enumerate(self.labels) if not name.startswith("dont_show")]
        grouped: dict[int, list[int]] = {}
        for i in shown:  # detections come best first: a box's first one is its best class
            grouped.setdefault(int(ids[i]), []).append(i)
        return [(extents[members[0]], [members[0]] + sorted(members[1:], key=lambda i: int(self.class_ids[i])))
                for members in grouped.values()]

    def nms_order_key(self, members: list[int]) -> tuple[float, ...]:
        """Where darknet's NMS leaves a box in its list: `do_nms_sort` sorts the boxes once per class, class 0 to the
        last, by that class's score (glibc's qsort is a stable merge sort), so they end up ordered by their score in
        the last class, then the one before, ... Sorting by this key (stably) puts boxes in that order.

        Args:
            members (list of int): the detections of one box (its classes kept).

        Returns:
            tuple of float: the box's scores from the last class to the first, negated — its scores before NMS when
            `class_scores` is kept (detect(..., class_scores=True)), else the kept scores (the same order whenever NMS
            removed no class of a box that kept another).
        """
        if self.class_scores is not None:
            scores = self.class_scores[members[0]].astype(np.float64)
        else:
            classes = max(len(self.names), int(self.class_ids.max()) + 1)
            scores = np.zeros(classes)
            for i in members:
                scores[int(self.class_ids[i])] = float(self.scores[i])
        return tuple(-scores[::-1])

    def ext_output(self) -> str:
        """darknet detector test -ext_output's lines: boxes left to right, each its best class first, then
        its other classes; `name: 97%\t(left_x: …   top_y: …   width: …   height: …)`, unclipped."""
        lines = []
        for (x1, y1, x2, y2), members in sorted(self.darknet_boxes(), key=lambda entry: float(entry[0][0])):
            where = (f"\t(left_x: {_c_round(x1):4.0f}   top_y: {_c_round(y1):4.0f}   "
                     f"width: {_c_round(x2 - x1):4.0f}   height: {_c_round(y2 - y1):4.0f})")
            lines += [f"{self.labels[i]}: {self.scores[i] * 100:.0f}%{where}" for i in members]
        return "\n".join(lines)

    def crops(self, image: np.ndarray, pad: float = 0.0) -> list[np.ndarray]:
        """Each detection's box cut out of *image*, as `detect --save-crops` cuts it: every pixel the box touches,
        each side grown by *pad* of the box's width or height, inside the image.

        Args:
            image (ndarray[H, W, ...]): the image these detections were found in (its size is checked).
            pad (float): the fraction each side grows by (0.1: 10% of the width left and right, of the height top
                and bottom).

        Returns:
            list[ndarray]: one view into *image* per detection, in the detections' order (copy one to keep it apart
            from the image).

        Raises:
            InputError: an image of another size than the one detected on, or a negative pad.
        """
        self._check_image(image, "crops")
        check_pad(pad, "crops: pad")
        rects = (box_rect(box, self.image_size, pad) for box in self.boxes)
        return [image[top:bottom, left:right] for left, top, right, bottom in rects]

    def _check_image(self, image: np.ndarray, what: str) -> None:
        """InputError unless *image* is the array the detections were found in (its size; a path, a PIL image or a
        tensor is named as such): boxes drawn on, or cut out of, another picture would be in the wrong places."""
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise InputError(f"{what}: give the image the detections were found in as a numpy array (H, W, 3) BGR, as "
                             f"cv2.imread reads it; got {type(image).__name__}")
        if tuple(self.image_size) != (0, 0) and tuple(image.shape[1::-1]) != tuple(self.image_size):
            raise InputError(f"{what}: the image is {image.shape[1]}x{image.shape[0]}, the detections were found in a "
                             f"{self.image_size[0]}x{self.image_size[1]} one")

    def draw(self, image: np.ndarray) -> np.ndarray:
        """A copy of the BGR image with boxes and labels.

        Args:
            image (ndarray[H, W, 3]): the BGR uint8 image the detections belong to.

        Returns:
            ndarray[H, W, 3]: a new image; `image` is left as it was.

        Raises:
            InputError: not an image array, or one of another size than the one detected on.
        """
        self._check_image(image, "draw")
        canvas = image.copy()
        thickness = max(1, round(min(canvas.shape[:2]) / 400))
        tracks = [-1] * len(self) if self.track_ids is None else self.track_ids.tolist()
        for (x1, y1, x2, y2), s, c, name, track in zip(self.boxes.tolist(), self.scores.tolist(), self.class_ids.tolist(),
                                                       self.labels, tracks):
            color = _color(c) if track < 0 else track_color(track)  # a tracked box keeps its track's colour
            p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
            cv2.rectangle(canvas, p1, p2, color, thickness)
            text = f"{name} {s:.2f}" if track < 0 else f"#{track} {name} {s:.2f}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
            top = max(p1[1], th + base)
            cv2.rectangle(canvas, (p1[0], top - th - base), (p1[0] + tw, top), color, -1)
            cv2.putText(canvas, text, (p1[0], top - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        return canvas


    def to_supervision(self):
        """These detections as `supervision.Detections` (Roboflow's supervision: its annotators and zones).

        Returns:
            supervision.Detections: `xyxy`, `confidence`, `class_id`, `tracker_id` (when tracked; -1 for none) and
            `data["class_name"]`.

        Raises:
            InputError: supervision is not installed.
        """
        sv = _require_supervision()
        return sv.Detections(xyxy=self.boxes.astype(np.float32).reshape(-1, 4), confidence=self.scores.astype(np.float32),
                             class_id=self.class_ids.astype(int),
                             tracker_id=None if self.track_ids is None else self.track_ids.astype(int),
                             data={"class_name": np.array(self.labels, dtype=str)})

    @classmethod
    def from_supervision(cls, detections, names: list[str] | None = None, image_size: tuple[int, int] = (0, 0),
                         source: str = "") -> "Detections":
        """`supervision.Detections` as ours, best score first; its `tracker_id` becomes `track_ids`.

        Args:
            detections (supervision.Detections): boxes xyxy in pixels; `confidence` (1.0 when absent) and `class_id`
                (0 when absent).
            names (list[str], optional): the class names; None: taken from `data["class_name"]` where it has them.
            image_size (tuple[int, int]): the image's width and height.
            source (str): the image's path.

        Returns:
            Detections: the same boxes, scores, classes and track ids.
        """
        count = len(detections)
        scores = np.ones(count, np.float32) if detections.confidence is None else np.asarray(detections.confidence, np.float32)
        classes = np.zeros(count, np.int64) if detections.class_id is None else np.asarray(detections.class_id, np.int64)
        order = np.argsort(-scores, kind="stable")
        if names is None:
            named = detections.data.get("class_name") if detections.data else None
            table: dict[int, str] = {} if named is None else {int(c): str(n) for c, n in zip(classes, named)}
            names = [table.get(i, str(i)) for i in range(int(classes.max()) + 1 if count else 0)]
        tracks = None if detections.tracker_id is None else np.asarray(detections.tracker_id, np.int64)[order]
        return cls(boxes=np.asarray(detections.xyxy, np.float32).reshape(-1, 4)[order], scores=scores[order],
                   class_ids=classes[order], names=list(names), image_size=image_size, source=source, track_ids=tracks)


def _same(a: object, b: object) -> bool:
    """Field equality for Detections: arrays by shape and values, the rest with ==."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


def _require_supervision():
    try:
        import supervision
    except ImportError:
        raise InputError("Detections.to_supervision()/from_supervision() need supervision, which is not installed: "
                         "pip install supervision (or 'darknet-engine[track]', which brings it)") from None
    return supervision


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour a track is drawn in (its box, id and trail): the same for the track's whole life."""
    return _color(track_id * 104729 + 3)


def _c_round(value: float) -> float:
    """C's round(): halves away from zero (Python's round() goes to even)."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def _color(class_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(class_id * 7919 + 17)
    return tuple(int(v) for v in rng.integers(64, 256, 3))  # type: ignore[return-value]
