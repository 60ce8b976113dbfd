"""A picture of a set's box sizes and its anchors (what darknet's `calc_anchors -show` draws in cloud.png, in its
colours): each box a dot at (width, height) in network pixels, coloured by the anchor it is closest to; each anchor a
rectangle from the top-left corner (0, 0) to its size; a legend of the anchors and their boxes. The picture spans the
boxes (the largest 0.5% left out) and the anchors, not the whole network: a set of small objects fills it too; one
scale serves both axes, so a square anchor is square."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..model.anchors import Anchors, closest_anchor

SIDE = 700  # the plot's longer side in pixels (darknet's cloud.png is 700 × 700)
LEFT, TOP, RIGHT, BOTTOM = 44, 24, 48, 28  # margins: heights' numbers, widths' numbers, "width", the caption
BACKGROUND, GRID = (250, 250, 250), (225, 225, 225)  # light: darknet's cluster colours are dark
OUTLINE = TEXT = (40, 40, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def anchor_colour(index: int) -> tuple[int, int, int]:
    """darknet's colour of cluster *index* in cloud.png (show_acnhors), as BGR."""
    red, green, blue = (index * 123 + 55) % 255, (index * 321 + 33) % 255, (index * 11 + 99) % 255
    return blue, green, red


@dataclass(frozen=True)
class PlotFrame:
    """Where network pixels land in the picture: (LEFT + w · scale, TOP + h · scale), for w ≤ width, h ≤ height.

    Attributes:
        scale (float): picture pixels per network pixel.
        width (float): the network pixels the plot spans across.
        height (float): the network pixels it spans down.
    """

    scale: float
    width: float
    height: float

    def point(self, w: float, h: float) -> tuple[int, int]:
        """The picture pixel (x, y) of size (w, h)."""
        return LEFT + round(w * self.scale), TOP + round(h * self.scale)


def plot_frame(anchors: Anchors) -> PlotFrame:
    """The span of the plot of *anchors*: the boxes up to their 99.5th percentile and every anchor, with 15% to
    spare, the same on both axes (within the network's size); one scale for both.

    Args:
        anchors (Anchors): calc_anchors' result.

    Returns:
        PlotFrame: the scale and span.
    """
    sizes = np.nan_to_num(anchors.boxes.sizes)
    reach = float(max(np.percentile(sizes, 99.5, axis=0).max(), anchors.centers.max()) * 1.15)
    width, height = (float(min(max(reach, 8.0), limit)) for limit in (anchors.width, anchors.height))
    return PlotFrame(SIDE / max(width, height), width, height)


def _step(span: float) -> float:
    """A round grid step giving 4 to 10 lines over *span*."""
    step = 10 ** math.floor(math.log10(span / 4))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= 10:
            return step * factor
    return step * 10


def plot_anchors(anchors: Anchors) -> np.ndarray:
    """The picture (BGR, uint8) of *anchors* over the boxes they were computed from.

    Args:
        anchors (Anchors): calc_anchors' result.

    Returns:
        np.ndarray: (H, W, 3) uint8; the plot's longer side SIDE pixels, plus margins for the axes and caption.
    """
    frame = plot_frame(anchors)
    right, bottom = frame.point(frame.width, frame.height)
    picture = np.full((bottom + BOTTOM, right + RIGHT, 3), BACKGROUND, np.uint8)
    step = _step(max(frame.width, frame.height))
    for k in range(int(frame.width // step) + 1):  # widths along the top
        x = frame.point(k * step, 0)[0]
        cv2.line(picture, (x, TOP), (x, bottom), GRID, 1)
        cv2.putText(picture, f"{k * step:g}", (x - 8, TOP - 8), FONT, 0.38, TEXT, 1, cv2.LINE_AA)
    for k in range(int(frame.height // step) + 1):  # heights down the side
        y = frame.point(0, k * step)[1]
        cv2.line(picture, (LEFT, y), (right, y), GRID, 1)
        cv2.putText(picture, f"{k * step:g}", (4, y + 4), FONT, 0.38, TEXT, 1, cv2.LINE_AA)
    sizes, centers = anchors.boxes.sizes, anchors.centers
    owners = closest_anchor(sizes, centers)
    inside = (sizes[:, 0] <= frame.width) & (sizes[:, 1] <= frame.height)  # NaN sizes are outside too
    for k in range(len(centers)):
        for w, h in sizes[(owners == k) & inside]:
            cv2.circle(picture, frame.point(float(w), float(h)), 1, anchor_colour(k), -1, cv2.LINE_AA)
    for w, h in centers:
        cv2.rectangle(picture, frame.point(0, 0), frame.point(float(w), float(h)), OUTLINE, 1)
    counts = np.bincount(owners, minlength=len(centers))
    for k, (w, h) in enumerate(centers):  # the legend, top right: one line per anchor, smallest first
        y = TOP + 16 + 16 * k
        cv2.circle(picture, (right - 150, y - 4), 4, anchor_colour(k), -1, cv2.LINE_AA)
        cv2.putText(picture, f"{float(w):.0f} x {float(h):.0f}: {counts[k]:,} boxes", (right - 140, y), FONT, 0.4,
                    TEXT, 1, cv2.LINE_AA)
    cv2.putText(picture, "width", (right + 8, TOP - 8), FONT, 0.38, TEXT, 1, cv2.LINE_AA)
    cv2.putText(picture, "height", (4, bottom + 14), FONT, 0.38, TEXT, 1, cv2.LINE_AA)
    outside = int((~inside).sum())
    caption = (f"{len(sizes):,} boxes at {anchors.width}x{anchors.height}" + (f" ({outside:,} larger not shown)"
               if outside else "") + f", {len(centers)} anchors, avg IoU {anchors.average_iou:.2f} %")
    cv2.putText(picture, caption, (LEFT + 40, picture.shape[0] - 9), FONT, 0.4, TEXT, 1, cv2.LINE_AA)
    return picture
