"""Cut-outs of detected objects (`detect --save-crops`): each detection's box from the image, written as
`OUTPUT/crops/CLASS/NAME_K.jpg`, and the pixel rectangle a box covers (shared with redaction).

NAME is the image's file stem (a video frame's `STEM_FRAME`), K the detection's index in the image's
detections (best score first: the same order as `detections.json` lists them, so a crop leads back to its
record). A box with several classes (darknet's multi-label rule) is cut once per class. The crop is taken
from the image the sinks get, so a class that a redaction stage blurred is cut out blurred.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.fileio import write_image
from ..pipeline.box_rect import box_rect, check_pad
from .sinks import Result, frame_file_stem

CROPS_DIR = "crops"


def crop_name(result: Result, index: int) -> str:
    """`NAME_K.jpg`: the image's stem (a frame's `STEM_FRAME`, a camera's `STEM_DATE`: sinks.frame_file_stem) and the
    detection's index."""
    stem = Path(result.name).stem if result.frame is None else frame_file_stem(result)
    return f"{stem}_{index}.jpg"


def class_folder(name: str) -> str:
    """A class name as a folder name: path separators become `_` (a name like "N/A" stays one folder)."""
    cleaned = name.replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}_"


class CropsSink:
    """Each detection's box as a JPEG, `FOLDER/CLASS/NAME_K.jpg` (see the module notes), written whole.

    Args:
        folder (str or PathLike): where the class folders go (the CLI's `OUTPUT/crops`).
        pad (float): each side grows by this fraction of the box's width or height (clipped to the image).
    """

    def __init__(self, folder: str | os.PathLike[str], pad: float = 0.0) -> None:
        self.folder = Path(folder)
        self.pad = check_pad(pad)
        self.written = 0

    def write(self, result: Result) -> None:
        dets = result.detections
        image: np.ndarray = result.image
        size = (image.shape[1], image.shape[0])
        for index, (box, label) in enumerate(zip(dets.boxes, dets.labels)):
            x1, y1, x2, y2 = box_rect(box, size, self.pad)
            folder = self.folder / class_folder(label)
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / crop_name(result, index), image[y1:y2, x1:x2])
            self.written += 1

    def finish(self) -> None:
        pass
