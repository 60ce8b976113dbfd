"""Redaction (`detect --blur CLASS… / --pixelate CLASS…`): a stage that hides the chosen classes' boxes in the
image every sink and the live view get — the saved image or video, crops, the MJPEG stream — while the
detections themselves (labels, JSON) are untouched. `--no-boxes` leaves boxes and labels off the drawn outputs.

What each does to a box's pixels (`box_rect`: every pixel the box touches, nothing outside it changes):
- blur: a Gaussian blur over the box alone, kernel side about half the box's shorter side (odd, at least
  3; sigma from the side as OpenCV derives it), the box's own border pixels repeated beyond its edges
  (nothing from outside the box bleeds in or out);
- pixelate: the box cut into square cells from its top-left corner, PIXELATE_CELLS cells along its longer
  side (the last row and column may be narrower), each cell filled with its mean colour (rounded half up).
Boxes are redacted in the detections' order (best first); where boxes overlap, the later one works on the
already redacted pixels.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from ..format.names import class_ids
from ..pipeline.box_rect import box_rect
from .sinks import Result

PIXELATE_CELLS = 8  # along the box's longer side: a face-sized box keeps no recognisable detail
MODES = ("blur", "pixelate")


def blur_region(region: np.ndarray) -> np.ndarray:
    """A Gaussian-blurred copy of *region* (H, W[, C] uint8), its border repeated (see the module notes)."""
    side = max(3, (min(region.shape[:2]) // 2) | 1)
    return cv2.GaussianBlur(region, (side, side), 0, borderType=cv2.BORDER_REPLICATE)


def pixelate_region(region: np.ndarray, cells: int = PIXELATE_CELLS) -> np.ndarray:
    """A copy of *region* (H, W[, C] uint8) in square cells of their mean colour (see the module notes)."""
    height, width = region.shape[:2]
    cell = max(1, -(-max(height, width) // cells))  # ceil: at most `cells` along the longer side
    rows, cols = np.arange(0, height, cell), np.arange(0, width, cell)
    sums = np.add.reduceat(np.add.reduceat(region.astype(np.int64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, height)), np.diff(np.append(cols, width)))
    if region.ndim == 3:
        counts = counts[:, :, None]
    means = (2 * sums + counts) // (2 * counts)  # mean rounded half up, in integers
    return np.repeat(np.repeat(means, cell, axis=0)[:height], cell, axis=1)[:, :width].astype(region.dtype)


REDACTORS = {"blur": blur_region, "pixelate": pixelate_region}


class RedactStage:
    """Hides the chosen classes' boxes in each result's image (a `Stage`; the original image is left as it was).

    Args:
        modes (dict[int, str]): class id → "blur" or "pixelate".
        boxes (bool): draw boxes and labels on the annotated outputs (False: the redacted image as it is).
    """

    def __init__(self, modes: dict[int, str], boxes: bool = True) -> None:
        unknown = set(modes.values()) - set(MODES)
        if unknown:
            raise InputError(f"unknown redaction {sorted(unknown)}; use {' or '.join(MODES)}")
        self.modes = dict(modes)
        self.boxes = boxes

    def process(self, result: Result) -> Result:
        image = result.image
        dets = result.detections
        chosen = [(box, self.modes[int(c)]) for box, c in zip(dets.boxes, dets.class_ids) if int(c) in self.modes]
        if chosen:
            image = image.copy()
            size = (image.shape[1], image.shape[0])
            for box, mode in chosen:
                x1, y1, x2, y2 = box_rect(box, size)
                image[y1:y2, x1:x2] = REDACTORS[mode](image[y1:y2, x1:x2])
        redacted = dataclasses.replace(result, image=image) if chosen else result
        if not self.boxes:
            redacted = without_boxes(redacted)
        return redacted

    def finish(self) -> None:
        pass


def without_boxes(result: Result) -> Result:
    """*result* whose annotated image is its image as it is: the sinks and the live view show no boxes or labels."""
    plain = dataclasses.replace(result)
    plain._annotated = plain.image  # the drawn copy every sink shares (sinks.Result.annotated), here undrawn
    return plain


def redact_stage(blur: Iterable[str] = (), pixelate: Iterable[str] = (), names: Sequence[str] = (),
                 boxes: bool = True) -> RedactStage | None:
    """The stage `--blur`, `--pixelate` and `--no-boxes` ask for; None when none is given.

    Args:
        blur (iterable of str): class names or ids to blur.
        pixelate (iterable of str): class names or ids to pixelate.
        names (sequence of str): the model's class names.
        boxes (bool): False for --no-boxes.

    Returns:
        RedactStage or None.

    Raises:
        InputError: an unknown class, or a class given to both.
    """
    blurred, pixelated = class_ids(blur, names, "--blur"), class_ids(pixelate, names, "--pixelate")
    both = blurred & pixelated
    if both:
        raise InputError(f"class {names[min(both)]} is given to both --blur and --pixelate; choose one")
    if not blurred and not pixelated and boxes:
        return None
    return RedactStage({**{c: "blur" for c in blurred}, **{c: "pixelate" for c in pixelated}}, boxes)
