"""darknet's `-save_labels` (`darknet detector test DATA CFG WEIGHTS -dont_show -save_labels < list.txt`): one
YOLO label file per image, where darknet puts it, written as darknet writes it (src/detector.c, test_detector).

Where: darknet's `replace_image_to_label` (src/utils.c; format.darknet_data.label_path, which `map` reads labels
by): the first `/images/train2017/`, `/images/val2017/`, `/images/train2014/`, `/images/val2014/` becomes
`/labels/…/`, the first `/JPEGImages/` becomes `/labels/` (and the same with backslashes), then the extension
(.jpg .jpeg .png .bmp .ppm .tiff, lower or upper case, at the very end) becomes `.txt`; otherwise the label file
is beside the image. An image with another extension is refused (darknet would write its labels over it).

What: one line per box that keeps a class above the threshold after NMS, `CLASS X Y W H` with `%2.4f`
(centre and size relative to the image, not clipped: darknet's `bbox`), CLASS the box's best class (the
first of equal ones). Lines come in the order darknet's NMS leaves its boxes: `do_nms_sort` sorts them once
per class, class 0 to the last, by that class's score (glibc's qsort is a stable merge sort), so the boxes
end up ordered by their score in the last class, then the one before, … — their scores before NMS, which
`detect(..., class_scores=True)` keeps (`Detections.class_scores`; Detections.nms_order_key). Without them, the
scores kept after NMS order the lines (the same whenever NMS removed no class of a box that kept another).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.fileio import atomic_write
from ..format.darknet_data import label_path
from ..pipeline.detections import Detections
from .sinks import Result


def darknet_label_rows(detections: Detections) -> list[tuple[int, float, float, float, float]]:
    """darknet's `-save_labels` boxes for one image's detections, before printing.

    Args:
        detections (Detections): the image's detections, with `class_scores` (detect(..., class_scores=True))
            for darknet's exact order.

    Returns:
        list of (class, x, y, w, h): each box's best class and its centre and size relative to the image (not
        clipped), in darknet's order (see the module notes).
    """
    width, height = detections.image_size
    extents = detections.boxes if detections.unclipped is None else detections.unclipped
    ids = np.arange(len(detections)) if detections.box_ids is None else detections.box_ids
    groups: dict[int, list[int]] = {}
    for i in range(len(detections)):
        groups.setdefault(int(ids[i]), []).append(i)
    entries = []
    for members in groups.values():
        best = best_class(detections, members)
        x1, y1, x2, y2 = (float(v) for v in extents[best])
        row = (int(detections.class_ids[best]), (x1 + x2) / 2 / width, (y1 + y2) / 2 / height,
               (x2 - x1) / width, (y2 - y1) / height)
        entries.append((detections.nms_order_key(members), row))
    entries.sort(key=lambda entry: entry[0])  # stable: equal keys keep the detections' order
    return [row for _, row in entries]


def best_class(detections: Detections, members: list[int]) -> int:
    """The detection of a box whose class darknet's -save_labels writes: its loop keeps the first class with the
    highest score (a later one must be strictly greater).

    Args:
        detections (Detections): an image's detections.
        members (list of int): the detections of one box.

    Returns:
        int: the index of the chosen one in *detections*.
    """
    return min(members, key=lambda i: (-float(detections.scores[i]), int(detections.class_ids[i])))


def darknet_label_lines(detections: Detections) -> str:
    """The label file's text: darknet's `-save_labels` lines for one image's detections (darknet_label_rows).

    Args:
        detections (Detections): the image's detections (with `class_scores` for darknet's exact order).

    Returns:
        str: `CLASS X Y W H\n` per box, the values as darknet's `%2.4f` prints them; "" for none.
    """
    return "".join(f"{c} {x:2.4f} {y:2.4f} {w:2.4f} {h:2.4f}\n" for c, x, y, w, h in darknet_label_rows(detections))


class DarknetLabelsSink:
    """darknet's `-save_labels` files: each image's label file where darknet writes it (`label_path`), made
    whole or not at all; the folder is created when missing (darknet would crash on a missing one).
    Images only: a video frame has no image file to put its labels beside (`--save-txt` labels frames).
    """

    def __init__(self) -> None:
        self.written = 0
        self.first: Path | None = None

    def write(self, result: Result) -> None:
        if result.frame is not None:
            raise InputError("--save-labels writes darknet's label file beside each image; a video's frames have "
                             "none (use --save-txt for frames)")
        target = Path(label_path(result.source))
        os.makedirs(target.parent, exist_ok=True)
        with atomic_write(target, "w") as handle:
            handle.write(darknet_label_lines(result.detections))
        self.written += 1
        self.first = self.first or target

    def summary(self) -> str:
        """Where the label files went (not in the run's folder), for its last lines."""
        where = f" (first: {self.first})" if self.first else ""
        return f"labels: {self.written} file(s) where darknet puts them{where}"

    def finish(self) -> None:
        pass
