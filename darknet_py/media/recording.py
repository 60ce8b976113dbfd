"""The annotated video's files: one file for the run (`RecordingFile`), or for a camera or stream that runs for weeks a
file per segment of its time, the oldest deleted as new ones start (`SegmentedRecording`, `--segment`,
`--keep-segments`).

Both are `VideoWriter`s, driven by AnnotatedVideoSink through a BackgroundWriter: frames are encoded, and segments
begun, in the encoder thread, in the order the detection loop handed them over, so a new segment never holds up
detection. Each segment is a whole video of its own (its own encoder, starting on a keyframe): it plays without the
ones before it, and a deleted one takes nothing from the rest.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import numpy as np

from ..core import events
from ..core.dates import utc_datetime, utc_text
from ..core.errors import InputError
from ..core.fileio import LinesFile, atomic_path, free_path
from .kept_files import KeptFiles, listed_files
from .video_writer import open_video_writer

SEGMENTS_SUFFIX = ".segments.jsonl"  # STEM.segments.jsonl: a line per segment, written as it begins
SEGMENT_TIME_FORMAT = "%Y%m%dT%H%M%SZ"  # in a segment's name: its first frame's date, UTC


class RecordingFile:
    """One video file being written, finished into a playable file by release(): under a temporary name renamed into
    place when finished (a file of the frames encoded, whatever ended the run), or — a camera's or stream's H.264
    recording — in place, fragmented (see video_writer.H264Writer), so a killed process keeps all but its last
    seconds.

    Args:
        path (str or PathLike): the video file; its extension is the container (see video_writer).
        fps (float): the rate it plays at.
        size (tuple[int, int]): width, height.
        codec (str): "h264", "mp4v" or "mjpg".
        live (bool): the recording of a camera or stream (written in place where the codec allows).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int], codec: str,
                 live: bool) -> None:
        self.path = os.fspath(path)
        suffix = os.path.splitext(self.path)[1]
        # a camera's recording runs until it is stopped, perhaps for weeks: written where it belongs, not under a
        # temporary name that only a clean end would rename
        in_place = live and codec == "h264"
        self._file: ContextManager[str] = contextlib.nullcontext(self.path) if in_place else atomic_path(self.path,
                                                                                                          suffix)
        temporary = self._file.__enter__()
        try:
            self._writer = open_video_writer(temporary, fps, size, codec, suffix, live=live)
        except BaseException:
            self._file.__exit__(*sys.exc_info())  # removes the temporary file
            raise

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        self._writer.write(frame, time)

    def release(self) -> None:
        """Finish the file: renamed into place (in place already), or removed if it cannot be finished."""
        try:
            self._writer.release()
        except BaseException:
            self._file.__exit__(*sys.exc_info())
            raise
        self._file.__exit__(None, None, None)


@dataclass(frozen=True)
class Segmenting:
    """How a live recording is cut (--segment, --keep-segments).

    Args:
        seconds (float): a new file every this many seconds of the stream's time (the records' `time`); at least 1,
            so that no two segments of a run start in the same second (their names give the second).
        keep (int or None): keep only this many segments, the newest (the one being written among them), deleting
            the oldest as each new one begins; None: keep every one.
    """

    seconds: float
    keep: int | None = None

    def check(self) -> None:
        """Raises InputError for values that cannot be meant."""
        if not self.seconds >= 1:
            raise InputError(f"--segment {self.seconds:g}: give the seconds of each file, 1 or more")
        if self.keep is not None and self.keep < 1:
            raise InputError(f"--keep-segments {self.keep}: give how many files to keep, 1 or more")


class SegmentedRecording:
    """A camera's or stream's recording as a file per segment, `STEM_YYYYmmddTHHMMSSZ.EXT` (its first frame's date,
    UTC: the records' `utc`), each begun by `begin()` between two frames and finished when the next begins; with
    `keep`, the oldest segments are deleted beyond that many. `STEM.segments.jsonl` gets a line per
    segment as it begins (flushed): its file, and the record `frame`, `time` and `utc` of its first frame — a
    segment holds the frames from its `first_frame` up to the next line's. The index goes on from an earlier run's
    into the same folder (a camera service restarted): the segments it lists that are still there count among the
    kept, so `keep` bounds the recording across restarts too. Files the index does not list are never deleted, nor
    written over (a name taken gets `-2`).

    Args:
        path (str or PathLike): the recording's one-file name (`OUTPUT/STEM.EXT`): segments go beside it.
        segmenting (Segmenting): the cut and what is kept.
        fps (float): the rate each segment plays at.
        size (tuple[int, int]): width, height.
        codec (str): "h264", "mp4v" or "mjpg".
    """

    def __init__(self, path: str | os.PathLike[str], segmenting: Segmenting, fps: float, size: tuple[int, int],
                 codec: str) -> None:
        path = Path(path)
        self.folder, self.stem, self.suffix = path.parent, path.stem, path.suffix
        self.segmenting = segmenting
        self._open = (fps, size, codec)
        self.index = LinesFile(self.folder / f"{self.stem}{SEGMENTS_SUFFIX}", replace=False)
        self.begun = 0  # segments begun by this run
        self._current: RecordingFile | None = None
        # the segments that `keep` counts, on disk, oldest first: an earlier run's that the index lists among them
        self._kept = KeptFiles(segmenting.keep, listed_files(self.index.path, self.folder)
                               if segmenting.keep is not None else ())

    def begin(self, first_frame: int, time: float, date: float) -> None:
        """Finish the segment being written and begin the next, whose first frame is the next one written.

        Args:
            first_frame (int): that frame's number in the run's records.
            time (float): its `time` in the records (seconds since the run's first frame).
            date (float): its date, epoch seconds (the records' `utc`): the segment's name.
        """
        self._finish_current()
        # a run's segments begin 1 s or more apart on one clock, so their names differ, but a file of that name may be
        # there from an earlier run: never written over
        path = free_path(self.folder / f"{self.stem}_{utc_datetime(date).strftime(SEGMENT_TIME_FORMAT)}{self.suffix}")
        self._current = RecordingFile(path, *self._open, live=True)
        self.begun += 1
        self.index.append([json.dumps({"file": path.name, "first_frame": first_frame, "time": round(time, 6),
                                       "utc": utc_text(date)})])
        self._kept.add(path)
        events.emit(f"segment-begun {self.begun}")

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        if self._current is None:
            raise RuntimeError("SegmentedRecording.write before begin()")  # AnnotatedVideoSink begins one first
        self._current.write(frame, time)

    def release(self) -> None:
        """Finish the segment being written and the index."""
        try:
            self._finish_current()
        finally:
            self.index.close()

    def _finish_current(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.release()


def recording(path: str | os.PathLike[str], fps: float, size: tuple[int, int], codec: str, live: bool,
              segmenting: Segmenting | None) -> RecordingFile | SegmentedRecording:
    """The writer of a run's annotated video: segments for a live source when *segmenting* is given, else one file —
    a live source's never written over an earlier run's (`-2`), a file's rerun replacing it."""
    if live and segmenting is not None:
        return SegmentedRecording(path, segmenting, fps, size, codec)
    return RecordingFile(free_path(path) if live else path, fps, size, codec, live)
