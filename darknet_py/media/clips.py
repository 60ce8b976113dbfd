"""Clips of the moments something happens (`--clips SECONDS`): a short annotated video from SECONDS before the first
frame with a detection (or, with `--clip-on events`, a crossing, entry, exit or dwelling of `--line`/`--zone`) to
SECONDS after the last, instead of — or beside — hours of recording nobody watches.

    OUTPUT/clips/STEM_FIRST.mp4   a clip, named after its first frame as a frame's files are (sinks.frame_file_stem:
                                  `walk_120`, a camera's `cam_20261207T082411.557Z`)
    OUTPUT/clips.jsonl            a line per clip, appended once the clip is a finished file (a program following the
                                  file may send it on at once): its file, first and last frame, times, date, and what
                                  set it off

A clip goes on while triggers keep coming less than SECONDS apart, so a person in view for a minute is one clip, not
sixty. The seconds before a trigger come from a ring of the latest frames, held JPEG-encoded (1280x720: 115 KB a frame,
2 ms to encode; benchmarks/results/clips.json) so that a long lead-in of a large camera stays a few tens of MB. Drawing, encoding and
writing happen in the encoder thread (background_writer), never in the detection loop; the ring and the clip being
written are that thread's alone, and the detection loop only says, between two frames, where a clip begins and ends.
"""
from __future__ import annotations

import functools
import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

from ..core import events
from ..core.dates import utc_text
from ..core.errors import InputError
from ..core.fileio import LinesFile, free_path
from ..pipeline.jpeg import encode_jpeg
from .background_writer import BackgroundWriter
from .kept_files import KeptFiles, listed_files
from .recording import RecordingFile
from .sinks import DEFAULT_FPS, Result, continues, frame_file_stem
from .tracking_sinks import TrackedResult
from .video_writer import CODECS, default_codec

CLIPS_DIR = "clips"
CLIPS_JSONL = "clips.jsonl"
TRIGGERS = ("detections", "events")  # what begins a clip: any detection kept, or a counting event
RING_JPEG_QUALITY = 90  # the lead-in's frames: 1 level off on average (1280x720), a third of the size at 95
ClipListener = Callable[[dict, Path], None]  # ClipsSink's on_clip: a listed clip's index line and its file
TIME_SLACK = 1e-6  # frame / fps in floats (4.9 - 3.9 > 1.0): a frame SECONDS away exactly, at the records' precision, is in


@dataclass(frozen=True)
class Clipping:
    """What `--clips` and `--clip-on` ask for.

    Args:
        seconds (float): a clip begins this many seconds of the stream before its first trigger and ends this many after
            its last; triggers closer together than this are one clip.
        on (str): "detections" (a frame with any detection that the run keeps: mind `--classes`) or "events" (a frame
            with a crossing, entry, exit or dwelling of the run's lines and zones).
        keep (int or None): keep only this many clips, the newest, deleting the oldest as each new one is finished
            (an earlier run's into the same folder among them: the index lists them); None: keep every one.
        classes (tuple of int or None): with "detections": only detections of these class ids begin a clip or keep it
            going (the others are drawn, as every output has them); None: any detection.
    """

    seconds: float
    on: str = "detections"
    keep: int | None = None
    classes: tuple[int, ...] | None = None

    def check(self) -> None:
        """Raises InputError for values that cannot be meant."""
        if not self.seconds > 0:
            raise InputError(f"--clips {self.seconds:g}: give the seconds kept before and after what sets a clip off, "
                             "more than 0")
        if self.keep is not None and self.keep < 1:
            raise InputError(f"--keep-clips {self.keep}: give how many clips to keep, 1 or more")
        if self.on not in TRIGGERS:
            raise InputError(f"--clip-on {self.on}: expected one of {', '.join(TRIGGERS)}")
        if self.classes is not None and self.on != "detections":
            raise InputError("--clip-classes chooses the detections that begin a clip; with --clip-on events, "
                             "crossings do (--classes chooses what is tracked)")


class _Frame(NamedTuple):
    """A frame's place in the run, as a clip's name and index line give it."""

    frame: int
    time: float
    wall_time: float | None
    stem: str  # its files' name (sinks.frame_file_stem)


class ClipsSink:
    """Writes the clips of a video, stream or camera (see the module's docstring); a sink of the run loop.

    Args:
        out (str or PathLike): the run's folder: the clips go in its `clips/`, their index is its `clips.jsonl`.
        clipping (Clipping): the lead-in and tail, and what sets a clip off.
        codec (str or None): "h264", "mp4v" or "mjpg" (an `.avi`); None: H.264 where PyAV is installed (video_writer).
    """

    def __init__(self, out: str | os.PathLike[str], clipping: Clipping, codec: str | None = None) -> None:
        clipping.check()
        self.out = Path(out)
        self._listeners: list[ClipListener] = []
        self.clipping = clipping
        self.codec = codec
        self.clips = 0  # clips begun
        self._writer: BackgroundWriter | None = None
        self._recorder: _ClipRecorder | None = None
        self._last_trigger: float | None = None  # the time of the open clip's last trigger; None: no clip open
        self._why: dict[str, int] = {}  # the open clip's triggers: class or event name → how many

    def on_clip(self, listener: ClipListener) -> None:
        """Call *listener* with each clip's index line (a dict) and its file as the clip is listed, in the clip thread
        (`--notify`: NotifySink.clip; the live view's source figures: SourceStatus.clip). Before the run."""
        self._listeners.append(listener)

    def write(self, result: Result) -> None:
        if self._writer is None:
            self._open(result)
        now = _time(result)
        if self._last_trigger is not None and now - self._last_trigger > self.clipping.seconds + TIME_SLACK:
            self._end()  # this frame is past the clip's tail: the next clip's lead-in, if any
        why = self._triggers(result)
        if why:
            if self._last_trigger is None:
                self.clips += 1
                self._writer.call(functools.partial(self._recorder.begin, now))
            self._last_trigger = now
            for name in why:
                self._why[name] = self._why.get(name, 0) + 1
        place = _Frame(result.frame if result.frame is not None else 0, now, result.wall_time, frame_file_stem(result))
        drawn = result.drawn  # drawn in the encoder thread unless a sink before this one has drawn it
        self._writer.call(functools.partial(self._recorder.take, place,
                                            (lambda: drawn) if drawn is not None else (lambda: result.annotated)))

    def summary(self) -> str:
        """What the run cut, for its last lines."""
        return f"clips: {self.clips} in {self.out / CLIPS_DIR}, listed in {self.out / CLIPS_JSONL}"

    def finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self._last_trigger is not None:
            self._end(writer)  # a clip open when the run ends (the video's end, Ctrl-C) is finished and listed
        writer.release()

    def _open(self, result: Result) -> None:
        (self.out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
        size = (result.image.shape[1], result.image.shape[0])
        suffix = CODECS[self.codec].suffix if self.codec else ".mp4"
        self._recorder = _ClipRecorder(self.out, self.clipping, result.fps or DEFAULT_FPS,
                                       self.codec or default_codec(suffix, size), suffix, live=continues(result),
                                       listeners=self._listeners)
        self._writer = BackgroundWriter(self._recorder)

    def _triggers(self, result: Result) -> list[str]:
        """What in this frame sets a clip off (or keeps one going): its detections' class names (of the classes
        asked for), or its events' line and zone names with their direction."""
        if self.clipping.on == "events":
            found = result.events if isinstance(result, TrackedResult) else ()
            return [f"{event.counter} {event.direction}" for event in found]
        found = result.detections
        if self.clipping.classes is None:
            return found.labels
        return [label for label, class_id in zip(found.labels, found.class_ids.tolist())
                if class_id in self.clipping.classes]

    def _end(self, writer: BackgroundWriter | None = None) -> None:
        why, self._why, self._last_trigger = self._why, {}, None
        (writer or self._writer).call(functools.partial(self._recorder.end, why, self.clipping.on))


def _time(result: Result) -> float:
    """A frame's time in the stream (seconds); a frame without one (no rate known) counted at DEFAULT_FPS."""
    time = result.time
    return time if time is not None else (result.frame or 0) / DEFAULT_FPS


class _ClipRecorder:
    """The encoder thread's side of ClipsSink: the ring of the latest frames, the clip being written, the index.

    Its methods run in the encoder thread, in the order the detection loop handed them over (BackgroundWriter.call);
    `release()` is the BackgroundWriter's `inner.release()` at the end.
    """

    def __init__(self, out: Path, clipping: Clipping, fps: float, codec: str, suffix: str, live: bool,
                 listeners: list[ClipListener]) -> None:
        self.out, self.seconds, self.listeners = out, clipping.seconds, listeners
        self.fps, self.codec, self.suffix, self.live = fps, codec, suffix, live
        # a camera's clips go on from an earlier run's (named by date, never written over); a file's rerun replaces
        self.index = LinesFile(out / CLIPS_JSONL, replace=not live)
        # the clips that `keep` counts, on disk, oldest first: an earlier run's that the index lists among them (read
        # before the index is emptied for a file's rerun, whose clips keep their names and are written over)
        self._kept = KeptFiles(clipping.keep, listed_files(self.index.path, out / CLIPS_DIR)
                               if clipping.keep is not None else ())
        self.index.append([])  # made (or emptied) now: a rerun of a file without clips lists none
        self.finished = 0
        self._ring: deque[tuple[_Frame, np.ndarray]] = deque()  # (frame, its JPEG bytes), oldest first
        self._starting = False  # a clip has begun: its file is opened at the next frame
        self._clip: RecordingFile | None = None
        self._first: _Frame | None = None  # the open clip's first frame, its last, and how many it holds
        self._last: _Frame | None = None
        self._count = 0

    def begin(self, trigger_time: float) -> None:
        """A clip begins: its lead-in is the ring's frames from SECONDS before *trigger_time*; its file is opened at
        the next frame (whose size it takes)."""
        while self._ring and self._ring[0][0].time < trigger_time - self.seconds - TIME_SLACK:
            self._ring.popleft()
        self._starting = True

    def take(self, place: _Frame, make: Callable[[], np.ndarray]) -> None:
        """The next frame of the run: into the open clip, else into the ring (dropping what falls out of its
        SECONDS)."""
        frame = make()
        if self._starting:
            self._start(place, frame)
        if self._clip is not None:
            self._add(place, frame)
            return
        self._ring.append((place, encode_jpeg(frame, RING_JPEG_QUALITY)))
        while self._ring[0][0].time < place.time - self.seconds - TIME_SLACK:
            self._ring.popleft()

    def _start(self, place: _Frame, frame: np.ndarray) -> None:
        """Open the clip's file, named after its first frame (the lead-in's, or *place* without one), and write the
        lead-in into it."""
        lead_in, self._ring, self._starting = self._ring, deque(), False
        self._first = lead_in[0][0] if lead_in else place
        path = self.out / CLIPS_DIR / f"{self._first.stem}{self.suffix}"
        size = (frame.shape[1], frame.shape[0])
        self._clip = RecordingFile(free_path(path) if self.live else path, self.fps, size, self.codec, self.live)
        self._count = 0
        for old, jpeg in lead_in:
            self._add(old, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))

    def _add(self, place: _Frame, frame: np.ndarray) -> None:
        self._clip.write(frame, place.time)
        self._last = place
        self._count += 1

    def end(self, why: dict[str, int], on: str) -> None:
        """Finish the open clip and list it in the index."""
        clip, self._clip, self._starting = self._clip, None, False
        if clip is None:
            return  # no frame came after its trigger was handed over: nothing was opened
        clip.release()
        first, last = self._first, self._last
        line = {"file": f"{CLIPS_DIR}/{Path(clip.path).name}", "first_frame": first.frame, "last_frame": last.frame,
                "frames": self._count, "time": round(first.time, 6), "seconds": round(last.time - first.time, 6)}
        if first.wall_time is not None:
            line["utc"] = utc_text(first.wall_time)
        line[on] = why
        self.index.append([json.dumps(line)])
        self.finished += 1
        for listener in self.listeners:
            listener(line, Path(clip.path))
        self._kept.add(Path(clip.path))
        events.emit(f"clip-finished {self.finished}")

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        raise RuntimeError("ClipsSink hands its frames over with take()")  # BackgroundWriter.call, never write

    def release(self) -> None:
        """The end of the run: a clip still open was ended by ClipsSink.finish() before; the index closed."""
        try:
            if self._clip is not None:
                self._clip.release()
        finally:
            self.index.close()

