"""Counting tracked objects: crossings of a line, entries into and exits from a zone, per class.

Both counters take each frame's tracked `Detections` (with `track_ids`, from a tracker) in frame order and
follow the centre of each track's box. They work the same in one's own loop as in `darknet-py detect --track`:

    door = LineCounter("door", (320, 0), (320, 360))
    pen = ZoneCounter("pen", [(0, 200), (200, 200), (200, 360), (0, 360)])
    for index, dets in enumerate(darknet_py.track(model, "walk.mp4")):
        for event in door.update(dets, index) + pen.update(dets, index):
            print(event.to_dict())
    print(door.counts, pen.counts)

Rules:
- line: a crossing is counted once, when a track's centre has gone from one side of the line to the other
  along a path that passes through the segment (walking round its end is not a crossing). `in` is from the
  left of the directed segment P1→P2 to its right, in image coordinates (y down): for a line drawn left to
  right, `in` is downwards; `out` is the other way. A centre near the line is on neither side yet: within
  `margin` pixels, or within `box_margin` of the box's own extent across the line (a tenth by default), so a box
  that wobbles on the line (a car in stop-and-go traffic, whose box grows and shrinks as it is hidden and seen) is
  not counted back and forth. A track first seen near the line starts on the side its centre is on (a car first
  detected just before the line and then driving over it is counted).
- zone: `entered` when a track's centre goes from outside the polygon to inside, `exited` the other way;
  a track first seen inside is inside (it counts in the occupancy) without having entered. `max_inside` is
  the largest number of tracks of a class inside at once. An exit says how long the track was inside
  (`seconds_inside`, the time between the frame it entered in, or was first seen inside, and the frame it left in:
  how long a customer queued, a vehicle stood in a bay), when the frames' times are known.
- class: the track's class, not its box's in one frame: the class its boxes have scored most, summed over every
  frame of the track so far and every label of darknet's multi-label boxes (TrackClasses); once counted, a track
  keeps the class it was counted under. A car the detector calls a truck now and then is counted as a car, and one
  object's crossings, entries and exits go to one class. Detections outside a confirmed track (`track_id` -1) are
  not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np

from ...core.errors import InputError
from ..detections import Detections
from .geometry import inside_polygon, polygon_area

FORGET_AFTER = 1000  # frames unseen after which a track's counting state is dropped (a long-running camera)
BOX_MARGIN = 0.1  # LineCounter: a centre within this share of its box's extent across the line is on neither side


@dataclass(frozen=True)
class CountEvent:
    """One crossing of a line, or one entry into, exit from or long stay in a zone.

    Args:
        frame (int): the 0-based frame it happened in.
        time (float or None): that frame's time in seconds, when known.
        track_id (int): the track that crossed.
        class_id (int): its class in that frame.
        name (str): the class's name.
        kind (str): "line" or "zone".
        counter (str): the line's or zone's name.
        direction (str): "in" / "out" for a line, "entered" / "exited" for a zone, and "dwelling" for a track
            inside a zone for its dwell time (ZoneCounter's `dwell_s`), still there.
        seconds_inside (float or None): a zone's exit or dwelling: seconds from the frame the track entered in (or
            was first seen inside) to this one; None for other events, or when the frames' times are not known.
    """

    frame: int
    time: float | None
    track_id: int
    class_id: int
    name: str
    kind: str
    counter: str
    direction: str
    seconds_inside: float | None = None

    def to_dict(self) -> dict:
        """`{"frame", "time", "track_id", "class_id", "name", "line" | "zone": NAME, "direction"}`, and for a zone's
        exit or dwelling `"seconds_inside"` (an events.jsonl line)."""
        entry = {"frame": self.frame, "time": None if self.time is None else round(self.time, 6),
                 "track_id": self.track_id, "class_id": self.class_id, "name": self.name, self.kind: self.counter,
                 "direction": self.direction}
        if self.kind == "zone" and self.direction in ("exited", "dwelling"):
            entry["seconds_inside"] = None if self.seconds_inside is None else round(self.seconds_inside, 6)
        return entry


class TrackPoint(NamedTuple):
    """One confirmed track in one frame, as the counters and the drawn trails follow it.

    Args:
        track_id (int): the tracker's id.
        class_id (int): the track's class (TrackClasses), or its box's best class in this frame.
        name (str): that class's name.
        x (float): the box's centre, pixels.
        y (float): the box's centre, pixels.
        width (float): the box's width, pixels.
        height (float): the box's height, pixels.
    """

    track_id: int
    class_id: int
    name: str
    x: float
    y: float
    width: float
    height: float


def tracked_centres(detections: Detections) -> list[TrackPoint]:
    """Each confirmed track of a frame once, with its box's centre and its best class in this frame (a box darknet
    gives several classes carries one track id: its best class, the first, is used).

    Raises:
        InputError: the detections were not tracked.
    """
    if detections.track_ids is None:
        raise InputError("counting needs tracked detections (Detections.track_ids): run a tracker first, "
                         "e.g. darknet_py.track(model, source)")
    seen: set[int] = set()
    points = []
    labels = detections.labels
    boxes = detections.boxes.tolist()
    for i, (track_id, class_id) in enumerate(zip(detections.track_ids.tolist(), detections.class_ids.tolist())):
        if track_id < 0 or track_id in seen:
            continue
        seen.add(track_id)
        x1, y1, x2, y2 = boxes[i]
        points.append(TrackPoint(track_id, class_id, labels[i], (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
    return points


class TrackClasses:
    """Each track's class over its life: the class its boxes have scored most so far, every label of a box counted
    (darknet lists a box under each class above the threshold), summed over the track's frames. A detector that
    calls a car a truck in a few frames, or a box car 0.6 and truck 0.4, leaves the track a car. Once a track has
    been counted (`settle`), it keeps that class: its later crossings, entries and exits are counted under it too,
    so one object's counts go to one class.

        classes = TrackClasses()
        for frame, dets in enumerate(darknet_py.track(model, "road.mp4")):
            for point in classes.points(dets, frame):
                print(point.track_id, point.name)
    """

    def __init__(self) -> None:
        # track → [last frame seen, class id → scores summed, the class it was counted under (None: not yet)]
        self._tracks: dict[int, list] = {}
        self._names: dict[int, str] = {}  # class id → name, as the detections named it

    def points(self, detections: Detections, frame: int) -> list[TrackPoint]:
        """The frame's tracked_centres, each with its track's class (this frame's labels counted first).

        Args:
            detections (Detections): the frame's detections with `track_ids`.
            frame (int): its 0-based index, frames in order (a track unseen for FORGET_AFTER frames is forgotten).

        Returns:
            list[TrackPoint]: one per confirmed track.
        """
        points = tracked_centres(detections)
        for track_id, class_id, score, label in zip(detections.track_ids.tolist(), detections.class_ids.tolist(),
                                                    detections.scores.tolist(), detections.labels):
            if track_id >= 0:
                state = self._tracks.setdefault(track_id, [frame, {}, None])
                state[0] = frame
                state[1][class_id] = state[1].get(class_id, 0.0) + score
                self._names[class_id] = label
        voted = []
        for point in points:
            _, table, settled = self._tracks[point.track_id]
            class_id = settled if settled is not None else max(
                table, key=lambda c: (table[c], c == point.class_id))  # a tie: this frame's best class
            voted.append(point._replace(class_id=class_id, name=self._names[class_id]))
        _forget(self._tracks, frame, lambda state: state[0])
        return voted

    def settle(self, events: Sequence[CountEvent]) -> None:
        """The tracks of *events* keep the class they were counted under from now on."""
        for event in events:
            state = self._tracks.get(event.track_id)
            if state is not None and state[2] is None:
                state[2] = event.class_id


def _add(table: dict[str, int], name: str, amount: int = 1) -> None:
    table[name] = table.get(name, 0) + amount


class Counter:
    """What LineCounter and ZoneCounter share: `update` takes a frame's tracked detections, `observe` the
    track points worked out once for every counter of a frame."""

    kind: str
    name: str
    _classes: TrackClasses  # each track's class, for update()

    def update(self, detections: Detections, frame: int, time: float | None = None) -> list[CountEvent]:
        """Take one frame's tracked detections; count the crossings (a line) or the entries, exits and occupancy
        (a zone) they complete.

        Args:
            detections (Detections): the frame's detections with `track_ids`.
            frame (int): its 0-based index (frames must come in order).
            time (float or None): its time in seconds, carried into the events.

        Returns:
            list[CountEvent]: the events of this frame.
        """
        events = self.observe(self._classes.points(detections, frame), frame, time)
        self._classes.settle(events)
        return events

    def observe(self, tracks: list[TrackPoint], frame: int, time: float | None = None) -> list[CountEvent]:
        """`update` on a frame's tracks (TrackClasses.points, worked out once for all the counters of a run)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        """The counts so far, as the command line prints them: `LineCounter(door in 3 person, out 1 person)`."""
        return f"{type(self).__name__}({counts_text(counts_of([self])).removeprefix('counts: ')})"


class LineCounter(Counter):
    """Counts tracks whose box centre crosses the segment *start* → *end* (pixels), per class and direction.

    Args:
        name (str): the line's name (`counts` and events carry it).
        start ((float, float)): P1, (x, y) in pixels.
        end ((float, float)): P2, (x, y) in pixels.
        margin (float): pixels from the line within which a centre is on neither side (see the module's rules).
        box_margin (float): the same as a share of the box's extent across the line (its height, for a level line):
            a centre nearer the line than the larger of the two leaves the track on the side it was on (a track
            first seen there starts on the side its centre is on). 0: only *margin*.

    Attributes:
        counts (dict): `{"in": {class name: n}, "out": {class name: n}}`.

    Raises:
        InputError: an end that is not a finite number, a zero-length line, or a negative margin.
    """

    kind = "line"

    def __init__(self, name: str, start: Sequence[float], end: Sequence[float], margin: float = 1.0,
                 box_margin: float = BOX_MARGIN) -> None:
        self.name = name
        self.start = (float(start[0]), float(start[1]))
        self.end = (float(end[0]), float(end[1]))
        if not np.isfinite([*self.start, *self.end]).all():
            raise InputError(f"line {name!r}: its ends must be finite numbers, found {self.start} → {self.end}")
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        self._length = float(np.hypot(dx, dy))
        if self._length == 0:
            raise InputError(f"line {name!r} has zero length (both ends at {self.start})")
        if not (margin >= 0 and box_margin >= 0):
            raise InputError(f"line {name!r}: margin {margin:g} px and box_margin {box_margin:g} must be 0 or more")
        self._direction = (dx / self._length, dy / self._length)
        self.margin, self.box_margin = float(margin), float(box_margin)
        self._classes = TrackClasses()
        self.counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        self._sides: dict[int, tuple[int, float, float, int]] = {}  # track → (side, x, y, last frame seen)

    def _signed_distance(self, x: float, y: float) -> float:
        """Pixels from the line's infinite extension; positive on the right of P1→P2 (y down), negative on the left."""
        ux, uy = self._direction
        return ux * (y - self.start[1]) - uy * (x - self.start[0])

    def _along(self, x: float, y: float) -> float:
        """Where (x, y) projects onto the segment: 0 at P1, 1 at P2."""
        ux, uy = self._direction
        return (ux * (x - self.start[0]) + uy * (y - self.start[1])) / self._length

    def observe(self, tracks: list[TrackPoint], frame: int, time: float | None = None) -> list[CountEvent]:
        """`update` on a frame's tracks (TrackClasses.points, worked out once for all the counters of a run)."""
        events = []
        ux, uy = self._direction
        for track_id, class_id, name, x, y, width, height in tracks:
            distance = self._signed_distance(x, y)
            across = abs(uy) * width + abs(ux) * height  # the box's extent along the line's normal
            if abs(distance) <= max(self.margin, self.box_margin * across):
                if track_id in self._sides:  # still here: not forgotten, side unchanged
                    side, px, py, _ = self._sides[track_id]
                    self._sides[track_id] = (side, px, py, frame)
                elif distance != 0:  # first seen near the line: the side it is on, until it is clearly on one
                    self._sides[track_id] = (1 if distance > 0 else -1, x, y, frame)
                continue
            side = 1 if distance > 0 else -1
            before = self._sides.get(track_id)
            self._sides[track_id] = (side, x, y, frame)
            if before is None or before[0] == side:
                continue
            _, px, py, _ = before
            d0, d1 = self._signed_distance(px, py), distance
            t = d0 / (d0 - d1)  # where the path from the last side to this one meets the line
            if 0 <= self._along(px + t * (x - px), py + t * (y - py)) <= 1:
                direction = "in" if side > 0 else "out"
                _add(self.counts[direction], name)
                events.append(CountEvent(frame, time, track_id, class_id, name, self.kind, self.name, direction))
        _forget(self._sides, frame, lambda state: state[3])
        return events


class ZoneCounter(Counter):
    """Counts tracks whose box centre enters or leaves a polygon, per class, and how many are inside.

    With *dwell_s*, a track that has been inside for that long is one `dwelling` event too, at the frame it gets
    there, while it is still inside (a queue that does not move, someone loitering): once a visit; a track that
    leaves and comes back starts a new visit.

    Args:
        name (str): the zone's name (`counts` and events carry it).
        polygon (sequence of (float, float)): its corners in order, in pixels (3 or more).
        dwell_s (float or None): the stay, in seconds, that is a `dwelling` event (needs the frames' times); None:
            none.

    Attributes:
        counts (dict): `{"entered": {class: n}, "exited": {class: n}, "max_inside": {class: n}}`, and with
            *dwell_s* `"dwelling": {class: n}`.
        inside (dict): the tracks inside in the last frame, per class: `{class: n}`.
    """

    kind = "zone"

    def __init__(self, name: str, polygon: Sequence[Sequence[float]], dwell_s: float | None = None) -> None:
        self.name = name
        self.polygon = np.array(polygon, np.float64).reshape(-1, 2)
        if len(self.polygon) < 3 or polygon_area(self.polygon) == 0:
            raise InputError(f"zone {name!r} needs at least 3 corners enclosing an area")
        check_dwell(dwell_s)
        self.dwell_s = dwell_s
        self.counts: dict[str, dict[str, int]] = {"entered": {}, "exited": {}, "max_inside": {}}
        if dwell_s is not None:
            self.counts["dwelling"] = {}
        self.inside: dict[str, int] = {}
        self._classes = TrackClasses()
        # track → (inside, last frame seen, inside since, its dwelling told this visit)
        self._states: dict[int, tuple[bool, int, float | None, bool]] = {}

    def observe(self, tracks: list[TrackPoint], frame: int, time: float | None = None) -> list[CountEvent]:
        """`update` on a frame's tracks (TrackClasses.points, worked out once for all the counters of a run)."""
        centres = np.array([(point.x, point.y) for point in tracks], np.float64).reshape(-1, 2)
        flags = inside_polygon(centres, self.polygon).tolist() if tracks else []
        events, inside = [], {}
        for (track_id, class_id, name, *_), now in zip(tracks, flags):
            before = self._states.get(track_id)
            staying = before is not None and before[0] and now  # inside then and now: the same visit
            since = before[2] if staying else (time if now else None)
            told = staying and before[3]
            if now:
                _add(inside, name)
            if before is not None and before[0] != now:
                direction = "entered" if now else "exited"
                _add(self.counts[direction], name)
                stayed = time - before[2] if not now and time is not None and before[2] is not None else None
                events.append(CountEvent(frame, time, track_id, class_id, name, self.kind, self.name, direction,
                                         stayed))
            if (now and not told and self.dwell_s is not None and time is not None and since is not None
                    and time - since >= self.dwell_s - 1e-9):  # the frame the stay reaches dwell_s
                told = True
                _add(self.counts["dwelling"], name)
                events.append(CountEvent(frame, time, track_id, class_id, name, self.kind, self.name, "dwelling",
                                         time - since))
            self._states[track_id] = (now, frame, since, told)
        for name, count in inside.items():
            self.counts["max_inside"][name] = max(self.counts["max_inside"].get(name, 0), count)
        self.inside = inside
        _forget(self._states, frame, lambda state: state[1])
        return events


def check_dwell(dwell_s: float | None) -> None:
    """Refuse a dwell time (ZoneCounter's, `--dwell`) that is not above 0; None (no dwelling events) passes."""
    if dwell_s is not None and not dwell_s > 0:
        raise InputError(f"--dwell {dwell_s:g}: give the seconds a stay in a zone takes to count, above 0")


def _forget(states: dict, frame: int, last_seen) -> None:
    """Drop the state of tracks unseen for FORGET_AFTER frames (checked every FORGET_AFTER frames: cheap)."""
    if frame % FORGET_AFTER == 0:
        for track_id in [t for t, state in states.items() if frame - last_seen(state) > FORGET_AFTER]:
            del states[track_id]


def counts_of(counters: Sequence[LineCounter | ZoneCounter]) -> dict:
    """The counts of every counter, as counts.json holds them.

    Returns:
        dict: `{"lines": {NAME: {"in": {…}, "out": {…}}}, "zones": {NAME: {"entered", "exited", "max_inside"}}}`.
    """
    return {"lines": {c.name: {k: dict(v) for k, v in c.counts.items()} for c in counters if c.kind == "line"},
            "zones": {c.name: {k: dict(v) for k, v in c.counts.items()} for c in counters if c.kind == "zone"}}


def check_counts(counts: object, where: str = "counts") -> dict:
    """*counts* if it is shaped as counts_of() gives counts: `{"lines": {NAME: {KEY: {class: n}}}, "zones": {…}}`,
    each n a whole number, 0 or more.

    Args:
        counts: what was read (a counts.json's JSON).
        where (str): what it was read from, for the error.

    Returns:
        dict: *counts*.

    Raises:
        InputError: naming the first part that is not so.
    """
    if not isinstance(counts, dict) or not all(isinstance(counts.get(kind, {}), dict) for kind in ("lines", "zones")):
        raise InputError(f"{where}: expected {{\"lines\": {{…}}, \"zones\": {{…}}}}, found {str(counts)[:200]}")
    for kind in ("lines", "zones"):
        for name, table in counts.get(kind, {}).items():
            if not isinstance(table, dict):
                raise InputError(f"{where}: {kind[:-1]} {name!r}: expected an object of counts, found {table!r}")
            for key, per_class in table.items():
                if not isinstance(per_class, dict) or not all(
                        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in per_class.values()):
                    raise InputError(f"{where}: {kind[:-1]} {name!r} {key}: expected counts per class (whole numbers, "
                                     f"0 or more), found {str(per_class)[:200]}")
    return counts


def add_earlier_counts(counters: Sequence[LineCounter | ZoneCounter], earlier: dict) -> None:
    """Start *counters* from an earlier run's counts (a camera's counts.json, its service restarted): crossings,
    entries, exits and dwellings added per class, `max_inside` the larger of the two. A line or zone is matched by its
    name; what the earlier counts hold for a name no counter has now, or a count this run does not keep (`dwelling`
    without a dwell time), is left out.

    Args:
        counters (sequence of LineCounter or ZoneCounter): this run's.
        earlier (dict): counts as counts_of() gives them (check_counts).
    """
    for counter in counters:
        for key, per_class in earlier.get(f"{counter.kind}s", {}).get(counter.name, {}).items():
            mine = counter.counts.get(key)
            if mine is None:
                continue
            for name, n in per_class.items():
                mine[name] = max(mine.get(name, 0), n) if key == "max_inside" else mine.get(name, 0) + n


def counts_text(counts: dict) -> str:
    """The counts on one line, e.g. `counts: door in 3 person, out 1 person; pen entered 2 person, exited 1 person,
    max inside 2 person`."""
    parts = []
    for kind, keys in (("lines", ("in", "out")), ("zones", ("entered", "exited", "max_inside", "dwelling"))):
        for name, table in counts[kind].items():
            shown = [f"{key.replace('_', ' ')} {_per_class(table[key])}" for key in keys if key in table]
            parts.append(f"{name} " + ", ".join(shown))
    return "counts: " + ("; ".join(parts) if parts else "no lines or zones")


def _per_class(table: dict[str, int]) -> str:
    return " + ".join(f"{n} {name}" for name, n in sorted(table.items())) if table else "0"
