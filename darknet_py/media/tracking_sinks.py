"""Tracking in the run loop: the stage that gives each frame's detections their track ids and counts what
crosses the lines and zones (`TrackingStage`), and the outputs it adds (sinks):

    OUTPUT/<stem>.mot.txt   --save-mot: MOTChallenge lines `frame,id,x,y,w,h,conf,-1,-1,-1` (frames from 1), appended
                            a frame at a time
    OUTPUT/counts.json      the counts of every line and zone, replaced whole at the first frame, at each frame with an
                            event and on finish (also after Ctrl-C or a stream error)
    OUTPUT/events.jsonl     one line per crossing, entry or exit, appended and flushed as it happens (a camera's: with
                            its `utc`, going on from an earlier run's)

    stage = TrackingStage("sort", lines=[parse_line("door=0.5,0,0.5,1")])
    run_video("walk.mp4", detect, stages=[stage], sinks=[MotSink(out / "walk.mot.txt"), CountsJsonSink(out / "counts.json", stage),
                                                       EventsJsonlSink(out / "events.jsonl")])

The stage hands on a `TrackedResult`: its detections carry `track_ids`, its annotated image shows the ids,
each track's short trail, the lines and zones with their running counts; a live JSON stream gets the counts.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import interrupt
from ..core.errors import InputError
from ..core.fileio import LinesFile, atomic_write
from ..pipeline.tracking import DEFAULT_TRACKER, LineCounter, Shape, Tracker, ZoneCounter, counts_of, make_tracker
from ..pipeline.tracking.counting import TrackClasses, TrackPoint, add_earlier_counts, check_counts, check_dwell
from ..pipeline.tracking.drawing import draw_counters, draw_trails
from .sinks import DEFAULT_FPS, Result, RunFile, continues, detection_record

COUNTS_JSON = "counts.json"
EVENTS_JSONL = "events.jsonl"
MOT_SUFFIX = ".mot.txt"
TRAIL_LENGTH = 30  # centres kept per track for the drawn trail (about a second of video)


@dataclass(eq=False)
class TrackedResult(Result):
    """A frame's `Result` after tracking: `detections.track_ids` set, plus what the outputs of tracking need.

    Args:
        events (tuple of CountEvent): the crossings, entries and exits of this frame.
        counts (dict): every counter's counts up to and including this frame (counts.json's content).
        inside (dict): zone name → the tracks inside it in this frame, per class.
        trails (dict): track id → its recent box centres, oldest first (this frame's tracks).
        lines (dict): line name → its two points in pixels.
        zones (dict): zone name → its corners in pixels.
    """

    events: tuple = ()
    counts: dict = field(default_factory=dict)
    inside: dict = field(default_factory=dict)
    trails: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    zones: dict = field(default_factory=dict)

    @property
    def annotated(self) -> np.ndarray:
        """The frame with boxes, track ids, trails, lines and zones with their counts (drawn once, then shared)."""
        return self._drawn_once(self._draw_tracked)

    def _draw_tracked(self) -> np.ndarray:
        canvas = self.detections.draw(self.image)
        draw_trails(canvas, self.trails)
        if self.lines or self.zones:
            draw_counters(canvas, self.lines, self.zones, self.counts, self.inside)
        return canvas

    def stream_fields(self) -> dict:
        """`counts` (counts.json so far) and `inside` (each zone's tracks now, per class) for the live JSON stream."""
        return {"counts": self.counts, "inside": self.inside} if self.lines or self.zones else {}


class TrackingStage:
    """Gives each frame's detections their track ids and counts the lines and zones (a `Stage`: frames in order).

    The tracker and the counters are made on the first frame, when its size and the video's frame rate are
    known; a line or zone outside that frame is refused then (InputError).

    Args:
        tracker (str): a registered tracker name ("bytetrack", "ocsort", "sort").
        lines (sequence of Shape): counting lines (geometry.parse_line).
        zones (sequence of Shape): counting zones (geometry.parse_zone).
        dwell_s (float or None): a stay in a zone this long is a `dwelling` event (ZoneCounter); None: none.
        trail (int): box centres kept per track for the drawn trail.
        **tracker_settings: the tracker's own keywords (make_tracker).
    """

    def __init__(self, tracker: str = DEFAULT_TRACKER, lines: Sequence[Shape] = (), zones: Sequence[Shape] = (),
                 trail: int = TRAIL_LENGTH, dwell_s: float | None = None, **tracker_settings) -> None:
        check_dwell(dwell_s)  # the counters are made at the first frame: a bad value is refused before the run
        self.tracker_name, self.shapes, self.dwell_s = tracker, [*lines, *zones], dwell_s
        self.trail, self.tracker_settings = trail, tracker_settings
        make_tracker(tracker, **tracker_settings)  # an unknown name or a missing library: refused before the run
        self.tracker: Tracker | None = None
        self.counters: list[LineCounter | ZoneCounter] = []
        self.earlier_counts: dict | None = None  # a live source's counters go on from these (resume_from)
        self._trails: dict[int, tuple] = {}
        self._classes = TrackClasses()
        self._frames = 0

    def resume_from(self, counts_json: str | os.PathLike[str]) -> None:
        """A camera's or stream's counters start from the counts in *counts_json* (an earlier run's into the same
        folder: a service restarted), read now, before the run, and added at the first frame if the source is live
        (`sinks.continues`); a file's counts start from 0 (its rerun counts the same frames again).

        Args:
            counts_json (str or PathLike): the counts.json this run writes; missing: start from 0.

        Raises:
            InputError: the file is there but holds no counts (naming it): the run would write over it.
        """
        path = Path(counts_json)
        if not path.is_file():
            return
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not JSON ({exc}): the counts a camera's run goes on from; move the file away "
                             "to count from 0") from None
        self.earlier_counts = check_counts(earlier, str(path))

    @property
    def counts(self) -> dict:
        """The counts so far, as counts.json holds them (`{"lines": {…}, "zones": {…}}`)."""
        return counts_of(self.counters) if self.counters or not self.shapes else _empty_counts(self.shapes, self.dwell_s)

    def process(self, result: Result) -> TrackedResult:
        if self.tracker is None:
            self._start(result)
        frame = self._frames if result.frame is None else result.frame
        self._frames += 1
        tracked = dataclasses.replace(result.detections, track_ids=self.tracker.update(result.detections))
        time = result.time if result.frame is not None else frame / (result.fps or DEFAULT_FPS)
        tracks = self._classes.points(tracked, frame)  # each track's box and class, once for the counters and trails
        events = tuple(event for counter in self.counters for event in counter.observe(tracks, frame, time))
        self._classes.settle(events)
        return TrackedResult(result.source, result.frame, result.image, tracked, result.fps, result.milliseconds,
                             result.stream_time, result.captured,  # a live source's clock, for records and lag
                             wall_time=result.wall_time,
                             events=events, counts=self.counts, trails=self._follow(tracks),
                             inside={c.name: dict(c.inside) for c in self.counters if c.kind == "zone"},
                             lines={c.name: (c.start, c.end) for c in self.counters if c.kind == "line"},
                             zones={c.name: c.polygon for c in self.counters if c.kind == "zone"})

    def check_size(self, width: int, height: int) -> None:
        """Refuse a frame size the lines and zones do not fit (a point given in pixels outside it): InputError."""
        for shape in self.shapes:
            shape.in_pixels(width, height)

    def _start(self, result: Result) -> None:
        height, width = result.image.shape[:2] if result.image.size else result.detections.image_size[::-1]
        self.tracker = make_tracker(self.tracker_name, result.fps or DEFAULT_FPS, **self.tracker_settings)
        for shape in self.shapes:
            points = shape.in_pixels(width, height)
            self.counters.append(LineCounter(shape.name, *points) if shape.kind == "line"
                                 else ZoneCounter(shape.name, points, self.dwell_s))
        if continues(result) and self.earlier_counts is not None:
            add_earlier_counts(self.counters, self.earlier_counts)

    def _follow(self, tracks: list[TrackPoint]) -> dict[int, tuple]:
        """Add each track's box centre to its trail; the trails of the tracks in this frame (immutable tuples, so
        a viewer drawing this frame later sees it as it was)."""
        shown: dict[int, tuple] = {}
        keep = self.trail - 1
        for point in tracks:
            shown[point.track_id] = (self._trails.get(point.track_id, ())[-keep:] if keep > 0 else ()) + ((point.x, point.y),)
        for track_id in [t for t in self._trails if t not in shown]:  # ended or unseen this frame: its trail restarts
            del self._trails[track_id]
        self._trails.update(shown)
        return shown

    def finish(self) -> None:
        pass


def _empty_counts(shapes: Sequence[Shape], dwell_s: float | None = None) -> dict:
    """counts.json when no frame was processed: every line and zone at zero."""
    zone = {"entered": {}, "exited": {}, "max_inside": {}, **({"dwelling": {}} if dwell_s is not None else {})}
    return {"lines": {s.name: {"in": {}, "out": {}} for s in shapes if s.kind == "line"},
            "zones": {s.name: {key: {} for key in zone} for s in shapes if s.kind == "zone"}}


def mot_lines(result: Result) -> list[str]:
    """A tracked frame's MOTChallenge lines: `frame,id,x,y,w,h,conf,-1,-1,-1`, frames numbered from 1, one line
    per track (a box darknet gives several classes is one line: its best score)."""
    dets = result.detections
    if dets.track_ids is None:
        return []
    frame = (result.frame or 0) + 1
    lines, seen = [], set()
    for box, score, track_id in zip(dets.boxes.tolist(), dets.scores.tolist(), dets.track_ids.tolist()):
        if track_id < 0 or track_id in seen:
            continue
        seen.add(track_id)
        x1, y1, x2, y2 = (round(v, 2) for v in box)  # the record's box, so both files tell the same
        lines.append(f"{frame},{track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{round(score, 6):.6f},-1,-1,-1")
    return lines


class MotSink:
    """`--save-mot`: the tracks in MOTChallenge format, which TrackEval and py-motmetrics read as they are; each
    frame's lines appended and flushed as the frame is done (a LinesFile), so a camera tracked for weeks holds none of
    them in memory and a run that dies keeps every frame's lines written before.

    Args:
        path (str or PathLike): the file (`OUTPUT/<stem>.mot.txt`), made (empty) with the first frame; one already
            there is replaced — a camera's or stream's run is a sequence of its own (frames from 1 again) and goes
            beside an earlier run's (`<stem>-2.mot.txt`, sinks.RunFile).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.file = RunFile(path, MOT_SUFFIX)
        self._lines: LinesFile | None = None

    @property
    def path(self) -> Path:
        return self.file.path

    def write(self, result: Result) -> None:
        if self._lines is None:
            self._lines = LinesFile(self.file.choose(result))
        self._lines.append(mot_lines(result))

    def finish(self) -> None:
        if self._lines is not None:
            self._lines.close()


class CountsJsonSink:
    """`counts.json`: the stage's counts so far, written whole (replaced atomically) at the first frame, at each frame
    with a crossing, entry or exit, and when the run ends, however it ends. A camera counting for weeks has its file
    current, and a run that dies (killed, out of memory) leaves the counts of every event in events.jsonl.

    Args:
        path (str or PathLike): the file.
        stage (TrackingStage): whose counts to write.
    """

    def __init__(self, path: str | os.PathLike[str], stage: TrackingStage) -> None:
        self.path, self.stage = Path(path), stage
        self._started = False

    def write(self, result: Result) -> None:
        events = result.events if isinstance(result, TrackedResult) else ()
        if events or not self._started:  # crossings are rare next to frames: a small file, now and then
            self._started = True
            self._save(result.counts if isinstance(result, TrackedResult) else self.stage.counts)

    def finish(self) -> None:
        self._save(self.stage.counts)

    def _save(self, counts: dict) -> None:
        with interrupt.deferred(), atomic_write(self.path, "w") as handle:
            json.dump(counts, handle, indent=1)


class EventsJsonlSink:
    """`events.jsonl`: one JSON line per crossing, entry or exit (CountEvent.to_dict), written and flushed as
    each frame's events come, so that a run that dies keeps every count made before (each frame's lines are
    one write).

    Args:
        path (str or PathLike): the file, made (empty) with the first frame; a file already there is replaced — a
            camera's or stream's is appended to (sinks.continues).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lines: LinesFile | None = None

    def write(self, result: Result) -> None:
        self._lines = self._lines or LinesFile(self.path, replace=not continues(result))
        events = result.events if isinstance(result, TrackedResult) else ()
        date = {"utc": result.utc} if result.wall_time is not None else {}  # a live source's: the frame's date
        self._lines.append(json.dumps({**event.to_dict(), **date}) for event in events)

    def finish(self) -> None:
        if self._lines is not None:
            self._lines.close()


class RecordsJsonlSink:
    """One `detection_record()` per line (the Ray driver's `detections.jsonl`), tracked frames with their time
    and track ids; written whole on finish().

    Args:
        path (str or PathLike): the file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lines: list[str] = []

    def write(self, result: Result) -> None:
        tracked = result.detections.track_ids is not None
        record = detection_record(result.detections, result.source, result.frame, result.time if tracked else None)
        self.lines.append(json.dumps(record))

    def finish(self) -> None:
        with interrupt.deferred(), atomic_write(self.path, "w") as handle:
            handle.write("".join(line + "\n" for line in self.lines))


def tracking_sinks(out: Path, stem: str, stage: TrackingStage, save_mot: bool, live: bool = False) -> list:
    """The outputs of `detect --track`: the MOT file when asked for, counts.json and events.jsonl when the stage
    counts lines or zones — a *live* source's (a camera, a stream) counts going on from the counts.json of an earlier
    run into *out*."""
    sinks: list = [MotSink(out / f"{stem}{MOT_SUFFIX}")] if save_mot else []
    if stage.shapes:
        if live:
            stage.resume_from(out / COUNTS_JSON)
        sinks += [CountsJsonSink(out / COUNTS_JSON, stage), EventsJsonlSink(out / EVENTS_JSONL)]
    return sinks



def check_tracking_source(kind: str, items) -> None:
    """Refuse --track on separate images: a tracker follows objects from one frame of a video to the next."""
    if kind == "images":
        raise InputError("--track follows objects from frame to frame: it needs a video, a stream, or a folder of "
                         f"frames given with --sequence (the source is {len(items)} separate image(s))")
