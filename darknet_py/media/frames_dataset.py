"""`detect VIDEO --save-frames [N]`: a darknet training set drawn from a video, stream or camera, for checking and
correcting in a labelling tool (Yolo_mark, DarkMark) before training on it.

Every Nth frame is written as `OUTPUT/frames/STEM_FRAME.jpg` (the frame as decoded, without boxes; with the
redaction asked for, --blur / --pixelate, since a training set is kept), its darknet label file
`STEM_FRAME.txt` beside it (the lines darknet's `-save_labels` writes for an image: `CLASS X Y W H`, its best class
per box, darknet's order; see darknet_labels), and each image's path as a line of `OUTPUT/frames.txt`, darknet's
`train=` list. A frame is written whole (image and labels) before its list line, so a run stopped at any moment
leaves a list whose every line has its image and labels.

With the model's class names, the set is ready for darknet as it stands: `OUTPUT/obj.names` (the names, one a line)
and `OUTPUT/obj.data` (`classes=`, `train=` and `valid=` the list, `names=`, `backup=` an OUTPUT/backup/ folder made
for the weights darknet saves while training), written with the first frame kept, so that `darknet detector train
OUTPUT/obj.data CFG WEIGHTS` or `darknet-py map --data OUTPUT/obj.data` reads it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..core.errors import InputError
from ..core.fileio import LinesFile, atomic_write, write_image
from ..format.darknet_data import DATA_FILE, write_data_files
from .darknet_labels import darknet_label_lines
from .sinks import Result, continues, frame_file_stem

FRAMES_DIR = "frames"
FRAMES_LIST = "frames.txt"


def frame_image_path(out: str | os.PathLike[str], result: Result) -> Path:
    """Where a kept frame's JPEG goes: OUT/frames/STEM_FRAME.jpg; a camera's or stream's frame OUT/frames/STEM_DATE.jpg
    (sinks.frame_file_stem)."""
    return Path(out) / FRAMES_DIR / f"{frame_file_stem(result)}.jpg"


def check_every(every: int) -> None:
    """InputError unless *every* (`--save-frames N`) is at least 1."""
    if every < 1:
        raise InputError(f"--save-frames {every}: give how often a frame is kept, 1 (every frame) or more")


class FramesDatasetSink:
    """Every *every*th frame with its darknet label file, and the list of them (see the module notes).

    Args:
        out (str or PathLike): the run's folder: the frames go to out/frames/, the list to out/frames.txt.
        every (int): keep frames 0, every, 2·every, … of each source.
        names (sequence of str or None): the model's class names: out/obj.names and out/obj.data are written with
            them; None: neither.
    """

    def __init__(self, out: str | os.PathLike[str], every: int = 1, names: Sequence[str] | None = None) -> None:
        check_every(every)
        self.out = Path(out)
        self.folder = self.out / FRAMES_DIR
        self.list_path = self.out / FRAMES_LIST
        self.every = every
        self.names = list(names) if names is not None else None
        self.written = 0
        self._list: LinesFile | None = None

    def write(self, result: Result) -> None:
        if result.frame is None:
            raise InputError("--save-frames keeps frames of a video, a stream or a camera; an image's labels are "
                             "written by --save-labels")
        if result.frame % self.every:
            return
        if self._list is None:  # the first frame kept: the folder, the list and darknet's files, once
            self.folder.mkdir(parents=True, exist_ok=True)
            self._list = LinesFile(self.list_path, replace=not continues(result))  # a camera's goes on
            if self.names is not None:
                write_data_files(self.out, self.names, {"train": self.list_path, "valid": self.list_path})
        image = frame_image_path(self.out, result)
        write_image(image, result.image)
        with atomic_write(image.with_suffix(".txt"), "w") as handle:
            handle.write(darknet_label_lines(result.detections))
        self._list.append([str(image.resolve())])  # a line only once its image and labels are whole
        self.written += 1

    def summary(self) -> str:
        """What the run kept, for its last lines."""
        listed = f"listed in {self.list_path}"
        if self.names is not None and self.written:
            listed += f" (darknet's {self.out / DATA_FILE})"
        return f"frames: {self.written} image(s) with darknet label files in {self.folder}, {listed}"

    def finish(self) -> None:
        if self._list is not None:
            self._list.close()
