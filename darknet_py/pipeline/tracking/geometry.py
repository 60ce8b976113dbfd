"""Counting lines and zones: `--line NAME=X1,Y1,X2,Y2` and `--zone NAME=X1,Y1,X2,Y2,X3,Y3[,…]` read and checked,
then placed on a frame of a known size.

Coordinates are pixels, or fractions of the frame's width and height when every one of them is in [0, 1]
(`--line door=0.5,0,0.5,1` is the vertical line through the middle of any frame). A spec is checked where
it is read (a zero-length line, a zone of fewer than 3 points, with no area or with crossing sides) and again
when the frame's size is known (a point outside the frame); each failure is one InputError naming the flag.

    spec = parse_line("door=0.5,0,0.5,1")
    start, end = spec.in_pixels(640, 360)          # (320.0, 0.0), (320.0, 360.0)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...core.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Shape:
    """A counting line (2 points) or zone (3 or more points) as given on the command line.

    Args:
        kind (str): "line" or "zone".
        name (str): the name its counts are reported under.
        points (tuple of (float, float)): the coordinates as given, pixels or fractions.
        relative (bool): the coordinates are fractions of the frame's width and height.
        text (str): the flag's value as given, for messages.
    """

    kind: str
    name: str
    points: tuple[tuple[float, float], ...]
    relative: bool
    text: str

    @property
    def flag(self) -> str:
        return f"--{self.kind} {self.text}"

    def in_pixels(self, width: int, height: int) -> np.ndarray:
        """The points on a *width* × *height* frame.

        Args:
            width (int): the frame's width in pixels.
            height (int): the frame's height in pixels.

        Returns:
            ndarray[P, 2]: float64 (x, y) pixel coordinates.

        Raises:
            InputError: a point lies outside the frame.
        """
        points = np.array(self.points, np.float64)
        if self.relative:
            return points * (width, height)
        for x, y in self.points:
            if not (0 <= x <= width and 0 <= y <= height):
                raise InputError(f"{self.flag}: the point ({x:g}, {y:g}) is outside the {width}x{height} frame "
                                 f"(x in 0..{width}, y in 0..{height}; or give fractions in [0, 1])")
        return points


def parse_line(text: str) -> Shape:
    """`NAME=X1,Y1,X2,Y2` → a line from (X1, Y1) to (X2, Y2).

    Args:
        text (str): the value of `--line`.

    Returns:
        Shape: kind "line", two points.

    Raises:
        InputError: malformed, or the two points are the same.
    """
    shape = _parse("line", text)
    if len(shape.points) != 2:
        raise InputError(f"{shape.flag}: a line is NAME=X1,Y1,X2,Y2 (4 numbers), got {2 * len(shape.points)}")
    if shape.points[0] == shape.points[1]:
        raise InputError(f"{shape.flag}: the line has zero length (both ends at {shape.points[0]})")
    return shape


def parse_zone(text: str) -> Shape:
    """`NAME=X1,Y1,X2,Y2,X3,Y3[,…]` → a polygon through those points, closed back to the first.

    Args:
        text (str): the value of `--zone`.

    Returns:
        Shape: kind "zone", three or more points.

    Raises:
        InputError: malformed, fewer than 3 points, no area, or two sides that cross.
    """
    shape = _parse("zone", text)
    if len(shape.points) < 3:
        raise InputError(f"{shape.flag}: a zone needs at least 3 points (X1,Y1,X2,Y2,X3,Y3,…), got {len(shape.points)}")
    points = np.array(shape.points, np.float64)
    for i in range(len(points)):
        if np.array_equal(points[i], points[(i + 1) % len(points)]):
            raise InputError(f"{shape.flag}: corners {i + 1} and {(i + 1) % len(points) + 1} are the same point")
    if _collinear(points):
        raise InputError(f"{shape.flag}: the zone has no area (its points lie on one line)")
    crossing = _crossing_sides(points)  # before the area: a figure-eight's two halves cancel out to none
    if crossing is not None:
        i, j = crossing
        raise InputError(f"{shape.flag}: the zone's sides cross each other (side {i + 1} and side {j + 1}); "
                         "give its corners in order around it")
    if polygon_area(points) == 0:
        raise InputError(f"{shape.flag}: the zone has no area")
    return shape


def check_names(shapes: list[Shape]) -> None:
    """Refuse two shapes with one name, two lines or a line and a zone alike (the counts line, the drawn labels and
    the live view tell them apart by name only)."""
    seen: dict[str, str] = {}
    for shape in shapes:
        if shape.name in seen:
            other = f"another --{shape.kind}" if seen[shape.name] == shape.kind else f"a --{seen[shape.name]}"
            raise InputError(f"{shape.flag}: {other} is named {shape.name!r}; give each its own name")
        seen[shape.name] = shape.kind


def polygon_area(points: np.ndarray) -> float:
    """The signed area of the polygon through *points* (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which of *points* lie inside *polygon* (even-odd rule; a point on a side may fall either way).

    Args:
        points (ndarray[N, 2]): (x, y) points.
        polygon (ndarray[P, 2]): the polygon's corners in order.

    Returns:
        ndarray[N]: bool.
    """
    x, y = points[:, 0:1], points[:, 1:2]  # (N, 1) against the (P,) sides
    x1, y1 = polygon[:, 0], polygon[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    spans = (y1 > y) != (y2 > y)  # the side spans the point's height: a horizontal ray may cross it
    with np.errstate(divide="ignore", invalid="ignore"):
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crossings = spans & (x < at)
    return (crossings.sum(axis=1) % 2) == 1


def _parse(kind: str, text: str) -> Shape:
    name, sep, values = text.partition("=")
    flag = f"--{kind} {text}"
    if not sep or not name:
        raise InputError(f"{flag}: give it as NAME=" + ("X1,Y1,X2,Y2" if kind == "line" else "X1,Y1,X2,Y2,X3,Y3[,…]"))
    if not _NAME.match(name):
        raise InputError(f"{flag}: the name {name!r} may hold only letters, digits, '_', '-' and '.'")
    try:
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        raise InputError(f"{flag}: the coordinates must be numbers separated by commas, got {values!r}") from None
    if len(numbers) % 2 or not all(np.isfinite(numbers)):
        raise InputError(f"{flag}: the coordinates must be finite x,y pairs, got {len(numbers)} number(s)")
    if any(v < 0 for v in numbers):
        raise InputError(f"{flag}: a coordinate is negative; points must lie in the frame")
    points = tuple((numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2))
    return Shape(kind, name, points, all(v <= 1 for v in numbers), text)


def _crossing_sides(points: np.ndarray) -> tuple[int, int] | None:
    """The first two sides of the closed polygon that touch or cross, other than neighbours at their shared corner."""
    count = len(points)
    sides = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):  # neighbours share a corner
                if _overlap_beyond_corner(*sides[i], *sides[j]):
                    return i, j
                continue
            if _segments_touch(*sides[i], *sides[j]):
                return i, j
    return None


def _collinear(points: np.ndarray) -> bool:
    """All the points lie on one line."""
    return int(np.linalg.matrix_rank(points - points.mean(axis=0))) < 2


def _orientation(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def _on_segment(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_touch(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Segments ab and cd share at least one point."""
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return ((o1 == 0 and _on_segment(a, b, c)) or (o2 == 0 and _on_segment(a, b, d))
            or (o3 == 0 and _on_segment(c, d, a)) or (o4 == 0 and _on_segment(c, d, b)))


def _overlap_beyond_corner(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Neighbouring sides that fold back onto each other (collinear, pointing back): a zero-width spike."""
    shared = next((p for p in (a, b) if any(np.array_equal(p, q) for q in (c, d))), None)
    if shared is None:
        return False
    far1 = b if np.array_equal(shared, a) else a
    far2 = d if np.array_equal(shared, c) else c
    if _orientation(shared, far1, far2) != 0:
        return False
    return float(np.dot(far1 - shared, far2 - shared)) > 0  # same direction from the corner: they overlap
