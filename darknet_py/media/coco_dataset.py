"""`detect --save-json coco`: what was detected as a COCO dataset (OUTPUT/coco.json) — the format labelling tools
(CVAT, Label Studio, FiftyOne) import pre-annotations in, and that COCO trainers and pycocotools read.

    {"images": [{"id", "file_name", "width", "height"}, …],
     "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h], "area", "iscrowd": 0, "score"}, …],
     "categories": [{"id", "name", "supercategory"}, …]}

One annotation per box, its best class (as darknet's `-save_labels` labels a box: a training set wants one class per
object), the box clipped to the image, in pixels with 2 decimals; `score` is that class's confidence (tools that do
not know it ignore it). A model with darknet's 80 COCO classes keeps COCO's own category ids (1 to 90, with gaps: the
ids of instances_val2017.json), so the file merges with COCO's annotations; any other model numbers its classes from
1. Classes named dont_show* are left out, as darknet leaves them out of its outputs. An image's `file_name` is its path
as given; a video's frames are the JPEGs `--save-frames` keeps (frames_dataset), by the path they were written to.
Written whole on finish(), whatever ended the run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core import interrupt
from ..core.errors import InputError
from ..core.fileio import atomic_write
from ..format.names import COCO_NAMES
from .darknet_labels import best_class
from .frames_dataset import frame_image_path
from .sinks import Result, RunFile

COCO_JSON = "coco.json"  # --save-json coco
# COCO's category id of each of its 80 detection classes, in darknet's coco.names order (instances_*2017.json)
COCO_CATEGORY_IDS = [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70, *range(72, 83),
                     *range(84, 91)]


def category_ids(names: list[str]) -> list[int]:
    """The category id of each class: COCO's own ids for darknet's 80 COCO classes, else class id + 1."""
    if list(names) == list(COCO_NAMES):
        return list(COCO_CATEGORY_IDS)
    return list(range(1, len(names) + 1))


class CocoDatasetSink:
    """OUTPUT/coco.json (see the module notes).

    Args:
        path (str or PathLike): the file to write.
        names (list of str): the model's class names (the categories).
        frames (tuple of (str or PathLike, int), or None): for a video, (the run's folder, N) of `--save-frames N`:
            the frames it keeps, at the paths it writes them to, are the dataset's images; None: images only.
    """

    def __init__(self, path: str | os.PathLike[str], names: list[str],
                 frames: tuple[str | os.PathLike[str], int] | None = None) -> None:
        self.file = RunFile(path)
        self.names = list(names)
        self.ids = category_ids(self.names)
        self.frames = frames
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    @property
    def path(self) -> Path:
        return self.file.path

    def write(self, result: Result) -> None:
        self.file.choose(result)  # a camera's run beside an earlier run's coco.json (coco-2.json), not over it
        if result.frame is None:
            file_name = result.source
        elif self.frames is None:
            raise InputError("--save-json coco lists image files: a video's frames are its images only with "
                             "--save-frames, which writes them")
        elif result.frame % self.frames[1]:
            return
        else:
            file_name = str(frame_image_path(self.frames[0], result))
        dets = result.detections
        width, height = dets.image_size
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
        for _, members in dets.darknet_boxes():  # dont_show classes are already left out
            best = best_class(dets, members)  # as darknet's -save_labels picks it
            x1, y1, x2, y2 = (round(float(v), 2) for v in dets.boxes[best])  # clipped to the image
            w, h = round(x2 - x1, 2), round(y2 - y1, 2)
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                     "category_id": self.ids[int(dets.class_ids[best])], "bbox": [x1, y1, w, h],
                                     "area": round(w * h, 2), "iscrowd": 0,
                                     "score": round(float(dets.scores[best]), 6)})

    def finish(self) -> None:
        if self.file.untouched:  # a run that gave nothing writes nothing over an earlier run's
            return
        categories = [{"id": self.ids[i], "name": name, "supercategory": ""} for i, name in enumerate(self.names)
                      if not name.startswith("dont_show")]
        with interrupt.deferred(), atomic_write(self.path, "w") as handle:
            json.dump({"images": self.images, "annotations": self.annotations, "categories": categories}, handle)

    def discard(self) -> None:
        """The run read nothing: no file (see sinks.finish_all)."""

    def summary(self) -> str:
        """What the dataset holds, for the run's last lines."""
        return f"coco: {len(self.images)} image(s), {len(self.annotations)} annotation(s) in {self.path}"
