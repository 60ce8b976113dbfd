"""One video source opened and read ahead on a thread of its own: every frame of a file, queued; the newest frame of
a live source (camera, stream), or every one with `keep_all_frames`, reconnected after drops (live_reader).

    reader = SourceReader("rtsp://cam/1", LiveSourceOptions(reconnect=5))   # opened now (video_source)
    reader.start(status)                                                     # the reader thread begins
    try:
        for batch in reader.batches(8): ...                                  # Decoded frames, until the source ends
    finally:
        reader.close()                                                       # the thread stopped, the source let go

The three loops over video sources share it: run_video (the CLI's detection of one source), many_sources (several
through one model) and video_frames (a source's frames for a loop of one's own).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterator, Sequence

import cv2

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from .frame_buffer import END, FrameQueue, LatestFrame
from .live_reader import Decoded, LiveReader, LiveSourceOptions
from .sequence import ImageSequence
from .source_status import SourceStatus
from .video_source import frame_rate, no_frames, open_source

MAX_FAILED_READS = 25  # in a row: the end of the file, or a source that has gone away
LIVE_STOP_WAIT_S = 1.0  # a live reader blocked in a read or a connect is left behind after this (it is a daemon)


class SourceReader:
    """A video source, opened at construction; `start` begins reading it ahead into a buffer on a thread.

    Args:
        source (str, int or ImageSequence): a video file, a stream URL, a camera index, or a folder of frames.
        live (LiveSourceOptions): reconnect tries and latest-frame mode, for a live source (files ignore them, with
            one warning, video_source.ignored_for_files).
        stride (int): give every *stride*th frame (a vid_stride): a file's frames 0, N, 2N, … (those between are
            decoded, as the next needs them, but not converted nor queued), a live source's every Nth frame received;
            1 (the default): every frame.

    Raises:
        InputError: the source cannot be opened (video_source.cannot_open says why), or *stride* is below 1.

    Attributes:
        name (str): the source as shown in messages (credentials hidden).
        live (bool): a camera or a live stream (reconnected after drops, the newest frame by default).
        fps (float): the rate its frames play at (video_source.frame_rate).
        stride (int): every how many frames one is given.
        size (tuple of int): (width, height) of its frames.
        header_frames (int): the frame count its header claims (0 when it says none).
        buffer (FrameQueue, LatestFrame or None): what the reader fills, once started.
    """

    def __init__(self, source: str | int | ImageSequence, live: LiveSourceOptions, stride: int = 1) -> None:
        check_stride(stride)
        self.stride = stride
        self.source = source
        self.name = hide_credentials(str(source))
        self.options = live
        self._capture, self._reopen = open_source(source, live)
        self.live = self._reopen is not None
        self.fps: float = frame_rate(source, self._capture)
        self.size = (int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.header_frames = int(max(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0))
        self._header_fps = self._capture.get(cv2.CAP_PROP_FPS) or 0
        self.buffer: FrameQueue | LatestFrame | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._skipped = [0]  # counted by a file's reader thread

    @property
    def rate(self) -> float:
        """The rate of the frames it gives: `fps` / `stride` (an annotated video of them plays at the source's
        speed; a tracker sees this much time between them)."""
        return self.fps / self.stride

    @property
    def expected_frames(self) -> int:
        """The frames a file should give (0: unknown): its header's count, less the empty "repeat" entries an AVI
        index counts when its header rate is a multiple of the pictures' (video_source.frame_rate), one in `stride`."""
        count = self.header_frames
        if count and self._header_fps >= 1.5 * self.fps:
            count = round(count * self.fps / self._header_fps)
        return -(-count // self.stride)

    def frame_number(self, item: Decoded, count: int) -> int:
        """A given frame's number in its source, for its Result: a strided file's own frame number, else *count*
        (the frames given before it: a file's frame number at stride 1; a live source's frames are numbered as
        they are given)."""
        return item.index if item.index is not None else count

    def start(self, status: SourceStatus, batch: int = 1,
              on_change: Callable[[], None] = lambda: None) -> FrameQueue | LatestFrame:
        """Begin reading: the thread fills the buffer (returned) until the source ends, it gives up, or `close`.

        Args:
            status (SourceStatus): told of a live source's drops, reconnects and dropped frames.
            batch (int): frames per detection call (a file's queue holds two batches at least).
            on_change (callable): called when the buffer gets a frame or is closed (a loop over many sources waits
                on it).

        Returns:
            FrameQueue or LatestFrame: the buffer; `END` once the source has ended.
        """
        size = max(8, 2 * batch)
        if self._reopen is None:
            self.buffer = FrameQueue(size, on_change)
            self._thread = threading.Thread(target=_read_file, args=(self._capture, self.buffer, self._stop,
                                                                     self._skipped, self.stride, self.fps), daemon=True)
        else:
            buffer = FrameQueue(size, on_change) if self.options.keep_all_frames else LatestFrame(on_change)
            self.buffer = buffer
            status.count_dropped_frames(lambda: buffer.dropped)
            shown = f"camera {self.source}" if isinstance(self.source, int) else self.name
            self._thread = LiveReader(shown, self._capture, self._reopen, buffer, self.options, status, self._stop,
                                      stride=self.stride)
        self._thread.start()
        return self.buffer

    def frames(self) -> Iterator[Decoded]:
        """The started reader's frames, until the source ends."""
        while (item := self.buffer.get()) is not END:
            yield item

    def batches(self, batch: int) -> Iterator[list[Decoded]]:
        """Lists of up to *batch* frames (the last may be shorter), until the source ends."""
        frames = self.frames()
        while pending := [item for _, item in zip(range(batch), frames)]:
            yield pending

    @property
    def dropped(self) -> int:
        """A live source's frames skipped because a newer one came before the loop took one."""
        return self.buffer.dropped if self.buffer is not None else 0

    @property
    def skipped(self) -> int:
        """A file's frames that could not be decoded (or came at another size), between good ones."""
        return self._skipped[0]

    @property
    def gave_up(self) -> str | None:
        """Why a live source's reader stopped trying (its reconnect tries ran out), else None."""
        return self._thread.gave_up if isinstance(self._thread, LiveReader) else None

    def no_frames(self, count: int) -> InputError | None:
        """The error for a file that opened but gave none of its frames (*count* 0), else None."""
        if count == 0 and not self.live and isinstance(self.source, str):
            return InputError(no_frames(self.source))
        return None

    @property
    def closed(self) -> bool:
        """`close` was called (before or after `start`)."""
        return self._stop.is_set()

    def close(self) -> None:
        """Stop reading and let go of the source; a live reader blocked in a read or a connect is left behind (a
        daemon thread) after LIVE_STOP_WAIT_S. Safe to call more than once, and before `start`."""
        close_all([self])

    def _signal_stop(self) -> None:
        if self._stop.is_set():
            return  # closed already
        self._stop.set()
        if self.buffer is not None:
            self.buffer.abandon()  # a reader waiting for room in the queue returns
        elif self._thread is None:
            self._capture.release()  # never started: no reader will release it


def close_all(readers: Sequence[SourceReader]) -> None:
    """Stop every reader, then wait for them: files' readers until they end (they release their capture), the live
    ones LIVE_STOP_WAIT_S in all, not each."""
    for reader in readers:
        reader._signal_stop()
    deadline = time.monotonic() + LIVE_STOP_WAIT_S
    for reader in readers:
        if reader._thread is not None:
            reader._thread.join(max(deadline - time.monotonic(), 0.0) if reader.live else None)


def check_stride(stride: int) -> None:
    """InputError unless *stride* (`--vid-stride`) is a whole number of frames, 1 or more."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise InputError(f"--vid-stride {stride}: give a number of frames, 1 or more (1: every frame)")


def _read_file(capture: cv2.VideoCapture, frames: FrameQueue, stop: threading.Event, skipped: list[int],
               stride: int = 1, fps: float = 0.0) -> None:
    """Decoded frames of a file into the queue, each with its number in the file (from its first good frame): every
    *stride*th one (timed number / *fps* when *stride* is above 1). A frame that fails to decode, or comes at another
    size than the first, is skipped and counted (skipped[0]) as long as good frames follow it, and keeps its number:
    the frames after it keep theirs and their times. Frames passed over by the stride are only grabbed (decoded, not
    converted), so their size is not checked."""
    failed, size, index = 0, None, 0
    try:
        while not stop.is_set() and failed < MAX_FAILED_READS:
            position = index + failed if size is not None else 0  # the frame this read takes: failed reads took theirs
            if size is not None and position % stride:
                if not capture.grab():
                    failed += 1
                    continue
                frame = None
            else:
                ok, frame = capture.read()
                if not ok or frame is None or (size is not None and frame.shape != size):
                    failed += 1
                    continue
            skipped[0] += failed if size is not None else 0
            failed, size, index = 0, size or frame.shape, position
            if frame is not None:
                frames.put(Decoded(frame, None if stride == 1 else round(index / fps, 6), None, index))
            index += 1
    finally:
        capture.release()
        frames.close()
