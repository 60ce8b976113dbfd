"""The pixel rectangle a detection's box covers: what a crop cuts out (`Detections.crops`, `detect --save-crops`)
and a redaction blurs (media/redact.py)."""
from __future__ import annotations

import math

from ..core.errors import InputError


def box_rect(box, image_size: tuple[int, int], pad: float = 0.0) -> tuple[int, int, int, int]:
    """The whole pixels a box covers, grown by *pad*, inside the image: every pixel the box touches is in.

    Args:
        box (sequence of 4 floats): x1, y1, x2, y2 in image pixels.
        image_size (tuple[int, int]): the image's width and height.
        pad (float): each side moves out by this fraction of the box's width (left, right) or height (top,
            bottom); 0: the box itself.

    Returns:
        tuple[int, int, int, int]: x1, y1, x2, y2 with 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height (at
        least one pixel, also for a box squeezed to a line by clipping).
    """
    width, height = image_size
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x, grow_y = pad * (x2 - x1), pad * (y2 - y1)
    left, right = _span(x1 - grow_x, x2 + grow_x, width)
    top, bottom = _span(y1 - grow_y, y2 + grow_y, height)
    return left, top, right, bottom


def _span(low: float, high: float, side: int) -> tuple[int, int]:
    start = min(max(math.floor(low), 0), side - 1)
    end = max(min(math.ceil(high), side), start + 1)
    return start, end


def check_pad(pad: float, what: str = "--crop-pad") -> float:
    """*pad* if it can grow a box (a finite fraction, 0 or more); else an InputError naming it as *what*."""
    if not (math.isfinite(pad) and pad >= 0):
        raise InputError(f"{what} {pad}: give a fraction of the box size, 0 or more (0.1 adds 10% on each side)")
    return pad
