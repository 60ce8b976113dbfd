"""A video writer whose frames are encoded in a thread of their own, so that encoding a frame overlaps detecting
the next ones instead of adding to them; handed a callable instead of a frame, it draws the frame there too
(AnnotatedVideoSink hands over `lambda: result.annotated`: the boxes are drawn beside detection as well).

The detection loop hands each annotated frame over and goes on; a bounded queue (QUEUE_FRAMES) makes it wait
when the encoder falls behind, so memory stays bounded. Encoding a 1280x720 frame costs 5 ms (MJPG) to 18 ms
(H.264) on 2 cores, a fifth to half of yolov4-tiny int8's frame. `release()` waits for every frame handed over,
then finishes the file: the video holds every frame written, whatever ended the run. An encoding failure
(a full disk) is raised by the next `write()` or by `release()`; frames after it are dropped.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, NamedTuple, Union

import numpy as np

from ..core import events
from .video_writer import VideoWriter

QUEUE_FRAMES = 4  # frames waiting to be encoded at most (1280x720: 2.8 MB each)
_END = None
Frame = Union[np.ndarray, Callable[[], np.ndarray]]
"""A BGR frame, or what makes it (called in the encoder thread: drawing the boxes overlaps detection too)."""


class _Action:
    """Work handed to the encoder thread between two frames (BackgroundWriter.call)."""

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run


class _Timed(NamedTuple):
    """A frame handed over (or what makes it) and its time in the stream."""

    frame: Frame
    time: float | None


class BackgroundWriter:
    """A `VideoWriter` that encodes through `inner` in a background thread, in the order frames were written.

    Args:
        inner (VideoWriter): the writer that encodes (video_writer.open_video_writer's).
        queue_frames (int): frames handed over and not yet encoded, at most; `write` waits beyond.
    """

    def __init__(self, inner: VideoWriter, queue_frames: int = QUEUE_FRAMES) -> None:
        self.inner = inner
        self.written = 0  # frames encoded so far
        self._frames: queue.Queue[_Timed | _Action | None] = queue.Queue(maxsize=queue_frames)
        self._failure: BaseException | None = None  # the first encoding failure: frames after it are dropped
        self._reported = False
        self._thread = threading.Thread(target=self._encode, name="darknet_py-encode", daemon=True)
        self._thread.start()

    def write(self, frame: Frame, time: float | None = None) -> None:
        """Hand a BGR frame over (or a callable that makes it, called in the encoder thread), with its time in the
        stream (VideoWriter.write); the caller must not change it afterwards. Raises an earlier frame's encoding
        failure."""
        self._raise_failure()
        self._frames.put(_Timed(frame, time))

    def call(self, action: Callable[[], None]) -> None:
        """Run *action* in the encoder thread once every frame handed over before it is encoded, before any frame
        handed over after it (a recording's next segment begins there). Its failure is raised as an encoding
        failure is, and the frames after it are dropped."""
        self._raise_failure()
        self._frames.put(_Action(action))

    def release(self) -> None:
        """Encode every frame handed over, then finish the file; raises an encoding failure after finishing."""
        if self._thread.is_alive():
            self._frames.put(_END)
            self._thread.join()
        self.inner.release()
        self._raise_failure()

    def _encode(self) -> None:
        while (frame := self._frames.get()) is not _END:
            if self._failure is not None:
                continue  # after a failure the rest is dropped, but the queue keeps draining: write() never blocks
            try:
                if isinstance(frame, _Action):
                    frame.run()
                    continue
                image = frame.frame() if callable(frame.frame) else frame.frame
                self.inner.write(image, frame.time)
                self.written += 1
                events.emit(f"frames-encoded {self.written}")
            except BaseException as exc:  # noqa: BLE001 - raised in the detection loop's thread instead
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None and not self._reported:
            self._reported = True
            raise self._failure
