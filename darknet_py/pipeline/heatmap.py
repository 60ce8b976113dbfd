"""Where objects spend time: a heat map of one camera's view, each pixel the time (or the number of images) during
which an object stood there, and its picture over the scene.

Each frame marks the pixels near a point of each box (its bottom centre by default: where a person or a vehicle
meets the ground) — a disc of `radius` pixels — or every pixel of the box; the pixels marked at least once in a frame
gain that frame's duration. Two objects in one place in one frame count once: the map says for how long a place was
occupied, not how many objects passed (tracking's counts say that). It is supervision's `HeatMapAnnotator`'s heat
(its discs drawn by OpenCV at the truncated anchor, marked once a frame) with a frame's duration in place of 1, which
the tests check against it.

    heat = Heatmap(1280, 720, radius=22)
    for image, dets, seconds in frames:
        heat.add(dets.boxes, seconds)
    cv2.imwrite("heatmap.png", render_heatmap(heat.heat, background, unit="s"))
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..core.errors import InputError

# where on each box its heat is marked: the bottom centre (feet, wheels), the box's centre, or the whole box
ANCHORS = ("bottom", "center", "box")
DEFAULT_ANCHOR = "bottom"
RADIUS_OF_SHORT_SIDE = 0.03  # the default disc: 3% of the frame's shorter side (22 px at 720p, 11 px at 360p)
OPACITY = 0.7  # the colour's share over the scene at the most occupied place; a place never occupied is the scene
FAINTEST = 0.4  # the share, relative to OPACITY, at the least occupied one
COLORMAP = cv2.COLORMAP_JET  # blue (little) to red (most), the usual reading of a heat map


def default_radius(width: int, height: int) -> int:
    """The disc's radius when none is given: 3% of the frame's shorter side, at least 2 pixels.

    Args:
        width (int): the frame's width in pixels.
        height (int): the frame's height in pixels.

    Returns:
        int: the radius in pixels.
    """
    return max(2, round(RADIUS_OF_SHORT_SIDE * min(width, height)))


class Heatmap:
    """The time each pixel of a view was occupied, accumulated frame by frame.

    Args:
        width (int): the map's width in pixels (the frames').
        height (int): its height.
        radius (int or None): the disc marked around each box's anchor, in pixels; None: `default_radius`.
            Not used with `anchor="box"`.
        anchor (str): `"bottom"` (the bottom edge's middle, the default), `"center"`, or `"box"` (every pixel of the
            box).

    Attributes:
        heat (ndarray[H, W] of float64): the time each pixel was occupied so far, in the units `add` was given
            (float64: a camera's weeks of 40 ms frames add up without losing the small ones).
        frames (int): the frames added.
    """

    def __init__(self, width: int, height: int, radius: int | None = None, anchor: str = DEFAULT_ANCHOR) -> None:
        if anchor not in ANCHORS:
            raise InputError(f"heat map anchor {anchor!r}: expected one of {', '.join(ANCHORS)}")
        if width < 1 or height < 1:
            raise InputError(f"heat map size {width}x{height}: expected at least 1x1")
        self.width, self.height, self.anchor = int(width), int(height), anchor
        self.radius = default_radius(width, height) if radius is None else int(radius)
        if self.radius < 1:
            raise InputError(f"heat map radius {radius}: expected at least 1 pixel")
        self.heat = np.zeros((self.height, self.width), np.float64)
        self.frames = 0
        self._mask = np.zeros((self.height, self.width), np.uint8)  # one frame's marks, reused

    def add(self, boxes: np.ndarray | Sequence[Sequence[float]], duration: float = 1.0) -> None:
        """Add one frame: the pixels its boxes mark gain *duration*.

        Args:
            boxes (ndarray[N, 4]): the frame's boxes, xyxy in the map's pixels (N may be 0).
            duration (float): how long the frame stands for (seconds of video), or 1 (an image).
        """
        self.frames += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0 or duration <= 0:
            return
        mask = self._mask
        mask.fill(0)
        for x1, y1, x2, y2 in boxes.tolist():
            if self.anchor == "box":
                # the pixels the box's corners fall in, and every one between, as cv2.rectangle fills them
                left, top = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
                right, bottom = max(int(np.floor(x2)) + 1, 0), max(int(np.floor(y2)) + 1, 0)  # a box left of the map: none
                mask[top:bottom, left:right] = 1
                continue
            x, y = (x1 + x2) / 2, (y2 if self.anchor == "bottom" else (y1 + y2) / 2)
            cv2.circle(mask, (int(x), int(y)), self.radius, 1, thickness=-1)  # int(): the pixel the point is in
        # only the marked rows are touched: a few boxes in a large frame cost a few rows, not the frame
        rows = np.flatnonzero(mask.any(axis=1))
        if len(rows):
            band = slice(rows[0], rows[-1] + 1)
            self.heat[band] += mask[band] * float(duration)

    def merge(self, earlier: np.ndarray) -> bool:
        """Add a map saved by an earlier run of the same view (a camera's service restarted), if it has this size.

        Args:
            earlier (ndarray[H, W]): the earlier map.

        Returns:
            bool: whether it was added (False: another size, left out).
        """
        if earlier.shape != self.heat.shape:
            return False
        self.heat += np.nan_to_num(earlier.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return True


def render_heatmap(heat: np.ndarray, background: np.ndarray, unit: str = "s", opacity: float = OPACITY) -> np.ndarray:
    """A picture of *heat* over *background*: each occupied pixel coloured from blue (a moment) to red (the most time
    of any), blended over the scene (the colour's share growing with the heat, from 0.4 x *opacity* to *opacity*);
    pixels never occupied are the scene as it is; a colour bar in the top-right corner gives the scale (0 to the most,
    in *unit*).

    Args:
        heat (ndarray[H, W]): the map (Heatmap.heat).
        background (ndarray[H, W, 3]): the BGR scene to draw over (its size is the map's).
        unit (str): what the map counts, for the scale: `"s"` (seconds) or `"images"`.
        opacity (float): the colour's share, against the scene, at the most occupied place.

    Returns:
        ndarray[H, W, 3]: a new BGR image.
    """
    if background.shape[:2] != heat.shape:
        raise InputError(f"heat map {heat.shape[1]}x{heat.shape[0]} over a background of "
                         f"{background.shape[1]}x{background.shape[0]}")
    canvas = background.copy()
    most = float(heat.max()) if heat.size else 0.0
    if most > 0:
        occupied = heat > 0
        share = heat[occupied] / most
        colours = cv2.applyColorMap(np.clip(np.rint(share * 255), 0, 255).astype(np.uint8), COLORMAP).reshape(-1, 3)
        # a place passed for a moment is a tint, the most occupied ones nearly the colour alone
        alpha = (opacity * (FAINTEST + (1 - FAINTEST) * share)).astype(np.float32)[:, None]
        scene = canvas[occupied].astype(np.float32)
        canvas[occupied] = np.rint(scene + alpha * (colours.astype(np.float32) - scene)).astype(np.uint8)
    _colour_bar(canvas, most, unit)
    return canvas


def _colour_bar(canvas: np.ndarray, most: float, unit: str) -> None:
    """The scale in the top-right corner: the colours from the most (top) to nothing (bottom), with both values."""
    height, width = canvas.shape[:2]
    bar_h = max(16, height // 3)
    bar_w = max(6, width // 80)
    scale = max(0.35, min(height, width) / 1200)
    thickness = 1 if scale < 0.8 else 2
    top_text, bottom_text = _amount(most, unit), f"0 {unit}"
    text_w = max(cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
                 for text in (top_text, bottom_text))
    text_h = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][1]
    margin = max(4, bar_w)
    x2 = width - margin
    x1 = x2 - bar_w
    y1 = margin + text_h + margin // 2
    y2 = min(height - margin - text_h - margin // 2, y1 + bar_h)
    if text_w > x2 or y2 <= y1:  # a frame too small for a scale: the colours alone
        return
    levels = np.linspace(255, 0, y2 - y1).round().astype(np.uint8).reshape(-1, 1)
    canvas[y1:y2, x1:x2] = cv2.applyColorMap(np.repeat(levels, x2 - x1, axis=1), COLORMAP)
    cv2.rectangle(canvas, (x1 - 1, y1 - 1), (x2, y2), (255, 255, 255), 1)
    for text, y in ((top_text, y1 - margin // 2), (bottom_text, y2 + margin // 2 + text_h)):
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        origin = (x2 - tw, y)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _amount(value: float, unit: str) -> str:
    """The scale's top value: seconds as `42.5 s`, `12 min 5 s`, `3 h 20 min`; images as a count."""
    if unit != "s":
        return f"{value:.0f} {unit}"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
