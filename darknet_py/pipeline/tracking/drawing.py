"""Drawing what tracking adds to an annotated frame: each track's short trail, the counting lines and zones,
and their running counts (the boxes with their track ids are `Detections.draw`'s)."""
from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

from ..detections import track_color

LINE_COLOR = (0, 215, 255)  # BGR amber: lines and zones stand apart from the class colours
ZONE_COLOR = (255, 160, 60)


def draw_trails(canvas: np.ndarray, trails: Mapping[int, Sequence[tuple[float, float]]]) -> None:
    """Each track's recent box centres as a polyline in its colour, on *canvas* (in place).

    Args:
        canvas (ndarray[H, W, 3]): the BGR image to draw on.
        trails (mapping): track id → its centres, oldest first.
    """
    thickness = max(1, round(min(canvas.shape[:2]) / 400))
    for track_id, points in trails.items():
        if len(points) > 1:
            path = np.array(points, np.float64).round().astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [path], False, track_color(track_id), thickness, cv2.LINE_AA)


def draw_counters(canvas: np.ndarray, lines: Mapping[str, np.ndarray], zones: Mapping[str, np.ndarray],
                  counts: dict, inside: Mapping[str, Mapping[str, int]] | None = None) -> None:
    """The lines (with an arrow showing `in`) and zones with their names, and a panel in the top-left corner
    with each one's running counts, on *canvas*.

    Args:
        canvas (ndarray[H, W, 3]): the BGR image to draw on (in place).
        lines (mapping): line name → its two points in pixels.
        zones (mapping): zone name → its corners in pixels.
        counts (dict): counts.json's content so far (`counting.counts_of`).
        inside (mapping, optional): zone name → the tracks inside it now, per class.
    """
    thickness = max(2, round(min(canvas.shape[:2]) / 200))  # lines stay visible in a compressed video
    rows = []
    for name, points in zones.items():
        corners = np.asarray(points).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [corners], True, ZONE_COLOR, thickness, cv2.LINE_AA)
        _label(canvas, name, tuple(corners[0, 0]), ZONE_COLOR)
        table = counts["zones"].get(name, {})
        now = sum((inside or {}).get(name, {}).values())
        dwelling = f", dwelling {_total(table['dwelling'])}" if "dwelling" in table else ""  # with --dwell
        rows.append((f"{name}: {now} inside, entered {_total(table.get('entered'))}, "
                     f"exited {_total(table.get('exited'))}{dwelling}", ZONE_COLOR))
    for name, (start, end) in lines.items():
        p1, p2 = tuple(int(round(v)) for v in start), tuple(int(round(v)) for v in end)
        cv2.line(canvas, p1, p2, LINE_COLOR, thickness, cv2.LINE_AA)
        _in_arrow(canvas, np.asarray(start, np.float64), np.asarray(end, np.float64), thickness)
        _label(canvas, name, p1, LINE_COLOR)
        table = counts["lines"].get(name, {})
        rows.append((f"{name}: in {_total(table.get('in'))}, out {_total(table.get('out'))}", LINE_COLOR))
    _panel(canvas, rows)


def _panel(canvas: np.ndarray, rows: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Lines of text on a dark band in the top-left corner, each in its counter's colour."""
    if not rows:
        return
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1) for text, _ in rows]
    step = max(h + base for (_, h), base in sizes) + 4
    width = max(w for (w, _), _ in sizes) + 12
    band = canvas[:step * len(rows) + 6, :width]
    band[:] = (band * 0.35).astype(canvas.dtype)  # darkened, not hidden: the frame shows through
    for i, (text, color) in enumerate(rows):
        cv2.putText(canvas, text, (6, 4 + step * (i + 1) - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)


def _total(table: Mapping[str, int] | None) -> int:
    return sum((table or {}).values())


def _in_arrow(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, thickness: int) -> None:
    """A short arrow from the line's middle towards its right side (y down): the `in` direction."""
    along = end - start
    length = float(np.hypot(*along))
    right = np.array([-along[1], along[0]]) / length  # the right of P1→P2 in image coordinates
    middle = (start + end) / 2
    tip = middle + right * max(12.0, min(canvas.shape[:2]) / 20)
    cv2.arrowedLine(canvas, tuple(int(v) for v in middle.round()), tuple(int(v) for v in tip.round()), LINE_COLOR,
                    thickness, cv2.LINE_AA, tipLength=0.35)


def _label(canvas: np.ndarray, text: str, at: tuple[int, int], color: tuple[int, int, int]) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    height, width = canvas.shape[:2]
    x = int(min(max(at[0], 0), max(width - tw, 0)))
    y = int(min(max(at[1], th + base), height))
    cv2.rectangle(canvas, (x, y - th - base), (x + tw, y), color, -1)
    cv2.putText(canvas, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
