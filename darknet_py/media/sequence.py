"""A folder of images read as the frames of one video (`detect --sequence`): in name order, at the frame rate
its MOTChallenge `seqinfo.ini` gives (else 25 fps).

MOTChallenge's layout works as it is: `detect MOT17-04 --sequence` reads `MOT17-04/img1/*.jpg` and the
`frameRate` of `MOT17-04/seqinfo.ini`, and names its outputs after `MOT17-04`.

The video loop reads it through the few calls it makes of `cv2.VideoCapture` (`capture()`).
"""
from __future__ import annotations

import configparser
import glob
import warnings
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import DarknetWarning, InputError
from ..pipeline.image_url import IMAGE_EXTENSIONS, has_image_extension

DEFAULT_SEQUENCE_FPS = 25.0
MOT_FRAMES = "img1"  # MOTChallenge keeps a sequence's frames here, its seqinfo.ini beside


class ImageSequence:
    """The images of a folder (or a glob), in name order, as one video's frames.

    Args:
        source (str): the folder or glob as given (the frames' `source`, the outputs' name).
        paths (list of str): the frames, in order.
        fps (float): the frame rate.
    """

    def __init__(self, source: str, paths: list[str], fps: float = DEFAULT_SEQUENCE_FPS) -> None:
        self.source, self.paths, self.fps = source, list(paths), float(fps)

    @classmethod
    def open(cls, source: str) -> "ImageSequence":
        """The sequence a folder (a MOTChallenge sequence folder, with `img1/`) or a glob names.

        Raises:
            InputError: no images there.
        """
        folder = Path(source)
        if (folder / MOT_FRAMES).is_dir() and not _images_in(folder):
            folder = folder / MOT_FRAMES
        paths = _images_in(folder) if folder.is_dir() else sorted(
            f for f in glob.glob(source) if has_image_extension(f))
        if not paths:
            raise InputError(f"--sequence {source}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) there")
        return cls(source, paths, _mot_frame_rate(folder) or DEFAULT_SEQUENCE_FPS)

    def __str__(self) -> str:
        return self.source

    @property
    def stem(self) -> str:
        """What its outputs are named after: the folder's name (a MOTChallenge sequence's, not `img1`), or for a
        glob the name of the folder it looks in."""
        folder = Path(self.source) if Path(self.source).is_dir() else Path(self.source).parent
        folder = folder.resolve() if folder.name in ("", ".", "..") else folder
        return folder.parent.name if folder.name == MOT_FRAMES else (folder.name or "sequence")

    def capture(self) -> "SequenceCapture":
        """A reader of the frames with the calls the video loop makes of a cv2.VideoCapture."""
        return SequenceCapture(self)


class SequenceCapture:
    """`read()`, `grab()`, `get()`, `isOpened()` and `release()` over an ImageSequence, as cv2.VideoCapture."""

    def __init__(self, sequence: ImageSequence) -> None:
        self.sequence, self.index = sequence, 0
        first = cv2.imread(sequence.paths[0], cv2.IMREAD_COLOR)
        self.size = (0, 0) if first is None else (first.shape[1], first.shape[0])

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame; (False, None) past the last one, or for a file that cannot be read or is not the first
        frame's size: the loop skips that frame (its number kept by those after it), and a warning names the file —
        at the end of a sequence as in its middle, where the loop alone could not tell it from the sequence's end."""
        if self.index >= len(self.sequence.paths):
            return False, None
        path = self.sequence.paths[self.index]
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        self.index += 1
        if frame is None:
            warnings.warn(f"{path}: cannot read the image; frame {self.index - 1} of the sequence skipped",
                          DarknetWarning, stacklevel=2)
            return False, None
        if self.size != (0, 0) and (frame.shape[1], frame.shape[0]) != self.size:
            warnings.warn(f"{path}: {frame.shape[1]}x{frame.shape[0]}, not the sequence's {self.size[0]}x{self.size[1]}; "
                          f"frame {self.index - 1} of the sequence skipped", DarknetWarning, stacklevel=2)
            return False, None
        return True, frame

    def grab(self) -> bool:
        self.index += 1
        return self.index <= len(self.sequence.paths)

    def get(self, prop: int) -> float:
        values = {cv2.CAP_PROP_FPS: self.sequence.fps, cv2.CAP_PROP_FRAME_COUNT: len(self.sequence.paths),
                  cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1]}
        return float(values.get(prop, 0.0))

    def release(self) -> None:
        self.index = len(self.sequence.paths)


def _images_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(str(f) for f in folder.iterdir() if has_image_extension(f))


def _mot_frame_rate(frames: Path) -> float | None:
    """`frameRate` of the seqinfo.ini beside a MOTChallenge `img1/` folder (or in the folder itself)."""
    for ini in (frames.parent / "seqinfo.ini", frames / "seqinfo.ini"):
        if ini.is_file():
            config = configparser.ConfigParser()
            try:
                config.read(ini)
                rate = float(config.get("Sequence", "frameRate"))
            except (configparser.Error, ValueError):
                raise InputError(f"{ini}: no readable frameRate in its [Sequence] section") from None
            if rate > 0:
                return rate
    return None
