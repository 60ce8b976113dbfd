"""Reading a live source (camera stream, webcam) that stays up: when the connection drops, reconnect with
backoff (1 s doubling to 30 s), for ever or for `reconnect` tries, while the detection loop goes on
unaware: frames keep their increasing index, and their stream time goes on across the gap.

    reader = LiveReader("rtsp://cam/1", opened, reopen, LatestFrame(), LiveSourceOptions(reconnect=5), status)
    reader.start()   # frames (Decoded) into the buffer until stopped, or given up (reader.gave_up says why)

One stderr line per drop and per reconnect (credentials hidden), and the events `source-dropped N` and
`source-reconnected N` (darknet_py.core.events) for tests that act at those moments.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Protocol

import cv2
import numpy as np

from ..core import events
from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.retry import backoff
from .frame_buffer import FrameQueue, LatestFrame
from .source_status import SourceStatus
from .stream_capture import OPEN_TIMEOUT_S, READ_TIMEOUT_S, StreamCapture

FIRST_DELAY_S = 1.0  # the first try comes this long after a drop (a camera rebooting needs seconds, not ms)
LONGEST_DELAY_S = 30.0  # the wait doubles up to this, so a long outage costs one try every 30 s


class Capture(Protocol):
    """What the reader needs of a capture: cv2.VideoCapture, or a StreamCapture (which also gives the last
    frame's presentation time, `time`)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


class Decoded(NamedTuple):
    """A decoded frame, its time in the stream (seconds since the run's first frame; None for a file read frame by
    frame, whose frames are timed by index / fps), for a live source the moment the camera sent it (`captured`:
    time.monotonic() seconds: the frame's presentation time on our clock, placed by the earliest arrival of the
    connection's frames so far; a webcam's frame: when it was read), from which the detection's lag behind the
    camera is measured, for a file read every Nth frame (a vid_stride) its number among the file's frames, and for a
    live source its `wall` time: this machine's clock (epoch seconds) when the run's first frame came, plus `time`
    (one clock for every output that gives a frame's date: records, events, a recording's segments)."""

    image: np.ndarray
    time: float | None
    captured: float | None = None
    index: int | None = None
    wall: float | None = None


@dataclass(frozen=True)
class LiveSourceOptions:
    """How a live source is read.

    Args:
        reconnect (int or None): tries after a drop before giving up; None: for ever.
        keep_all_frames (bool): queue every frame (the detection may fall behind the camera) instead of only
            the newest.
        first_delay_s (float): the wait before the first try; each failed try doubles it.
        longest_delay_s (float): the longest wait between tries.
        open_timeout_s (float): how long connecting to a stream may take.
        read_timeout_s (float): how long a stream may go silent before it counts as dropped.
    """

    reconnect: int | None = None
    keep_all_frames: bool = False
    first_delay_s: float = FIRST_DELAY_S
    longest_delay_s: float = LONGEST_DELAY_S
    open_timeout_s: float = OPEN_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S

    def check(self) -> None:
        """Raises InputError for values that mean nothing (a negative number of tries)."""
        if self.reconnect is not None and self.reconnect < 0:
            raise InputError(f"--reconnect {self.reconnect}: give a number of tries, 0 or more (default: for ever)")


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LiveReader(threading.Thread):
    """The reader thread of a live source: frames into *buffer*, reconnecting after drops.

    Args:
        source (str): the source as given (shown with credentials hidden).
        capture (Capture): the first connection, already open.
        reopen (callable): opens a new connection; raises OSError (or InputError) when it cannot.
        buffer (FrameQueue or LatestFrame): where the frames go (closed when the reader ends).
        options (LiveSourceOptions): tries and waits.
        status (SourceStatus): told of drops and reconnects (for /health).
        stop (threading.Event): set by the detection loop when it ends; the reader then ends too.
        report (callable): where the drop and reconnect lines go (default: stderr).
        stride (int): only every *stride*th frame received goes into the buffer (a vid_stride); 1: every one.
    """

    def __init__(self, source: str, capture: Capture, reopen: Callable[[], Capture], buffer: FrameQueue | LatestFrame,
                 options: LiveSourceOptions, status: SourceStatus, stop: threading.Event,
                 report: Callable[[str], None] = say, stride: int = 1) -> None:
        super().__init__(name="live-reader", daemon=True)  # a reader stuck in a read never holds the program
        self.name_shown = hide_credentials(str(source))
        self.capture, self.reopen, self.buffer = capture, reopen, buffer
        self.options, self.status, self.stop, self.report = options, status, stop, report
        self.gave_up: str | None = None  # why the reader stopped trying, when it did
        self.size: tuple[int, ...] | None = None  # the first connection's frame shape: later ones are fitted to it
        self._origin: float | None = None  # monotonic time of the run's first frame
        self._wall_origin = 0.0  # the wall clock (epoch seconds) at that moment (not `_started`: Thread has one)
        self.stride = stride
        self._received = 0  # frames received, all connections together (the stride counts them)

    def run(self) -> None:
        capture: Capture | None = self.capture
        try:
            while capture is not None and not self.stop.is_set():
                frames = self._read_connection(capture)
                capture.release()
                capture = None
                if self.stop.is_set():
                    break
                capture = self._reconnect(frames)
        finally:
            if capture is not None:
                capture.release()
            self.buffer.close()

    def _read_connection(self, capture: Capture) -> int:
        """Frames of one connection into the buffer, until a read fails or the run stops; returns how many."""
        count, anchor = 0, None  # anchor: (a frame's run time, its presentation time): the connection's first timed one
        earliest = None  # the least (arrival - presentation time) so far: the camera's clock on ours
        while not self.stop.is_set():
            ok, image = capture.read()
            if not ok or image is None:
                return count
            now = time.monotonic()
            if self._origin is None:
                self._origin, self._wall_origin = now, time.time()
            # a network stream's presentation time (None for its very first frame); a webcam's frames have none
            pts = capture.time if isinstance(capture, StreamCapture) else None
            if pts is not None:
                anchor = anchor or (now - self._origin, pts)
                # a frame cannot arrive before the camera sent it, so the earliest arrival for its presentation time
                # dates the camera's frames (the first ones say little: FFmpeg hands over the first second or so of
                # a stream at once, read while it probed)
                earliest = min(earliest, now - pts) if earliest is not None else now - pts
            # the stream's own clock within a connection (steady, whatever the decoding pace); across a gap,
            # the wall clock: a record's time says when the camera saw it, gap included
            at = anchor[0] + (pts - anchor[1]) if anchor is not None and pts is not None else now - self._origin
            if self._received % self.stride == 0:
                self.buffer.put(Decoded(self._fit(image), round(at, 6), earliest + pts if pts is not None else now,
                                        wall=self._wall_origin + round(at, 6)))
            self._received += 1
            count += 1
        return count

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """Frames at the first connection's size: one annotated video, one coordinate system for the records."""
        if self.size is None:
            self.size = image.shape
        elif image.shape != self.size:
            if image.ndim != len(self.size) or image.shape[2:] != self.size[2:]:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3]
            image = cv2.resize(image, (self.size[1], self.size[0]))
        return image

    def _reconnect(self, frames: int) -> Capture | None:
        """New connections tried with backoff until one opens (returned), the tries run out or the run stops
        (None; `gave_up` says why when the tries ran out)."""
        drops = self.status.dropped()
        lost_at = time.monotonic()
        limit = self.options.reconnect
        delays = backoff(self.options.first_delay_s, self.options.longest_delay_s)
        delay = next(delays)
        if limit == 0:
            self.gave_up = f"{self.name_shown}: the stream dropped after {frames} frames; not reconnecting (--reconnect 0)"
            self.report(f"{self.name_shown}: stream lost after {frames} frames of this connection")
            events.emit(f"source-dropped {drops}")
            return None
        self.report(f"{self.name_shown}: stream lost after {frames} frames of this connection; reconnecting "
                    f"(first try in {delay:g} s)")
        events.emit(f"source-dropped {drops}")
        tries, reason = 0, ""
        while limit is None or tries < limit:
            if self.stop.wait(delay):
                return None
            tries += 1
            try:
                capture = self.reopen()
            except (OSError, InputError) as exc:
                reason = hide_credentials(str(exc))
                delay = next(delays)
                continue
            self.status.connected()
            self.report(f"{self.name_shown}: reconnected after {time.monotonic() - lost_at:.1f} s "
                        f"({tries} {'try' if tries == 1 else 'tries'})")
            events.emit(f"source-reconnected {drops}")
            return capture
        self.gave_up = (f"{self.name_shown}: gave up after {tries} reconnect {'try' if tries == 1 else 'tries'} "
                        f"(--reconnect {limit}); last error: {reason}")
        return None
