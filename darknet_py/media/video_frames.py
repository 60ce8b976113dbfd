"""`darknet_py.video_frames`: the decoded frames of a video, a stream, a camera or a folder of frames, read the way
`darknet-py detect` reads them, for a loop of one's own.

    video = darknet_py.video_frames("rtsp://cam/1")      # opened now: a bad source fails here, with the reason
    print(video.fps, video.size)
    for image in video:                                  # BGR uint8, as cv2 reads it
        dets = model.detect(image)[0]

What a `cv2.VideoCapture` loop does not: the next frame is decoded on a background thread while the caller works
on this one; a camera or a stream that drops is reconnected (for ever, or `reconnect` tries) and the loop goes on
across the gap; a live source gives its newest frame (frames the caller was too slow for are dropped and counted)
unless `keep_all_frames`; a file's undecodable frames are skipped, and a file with no decodable frame at all is an
InputError saying why, not an empty loop.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from .live_reader import LiveSourceOptions
from .sequence import ImageSequence
from .source_reader import SourceReader, check_stride
from .source_status import SourceStatus
from .sources import source_items


class VideoFrames:
    """The frames of one source, iterated once; see the module doc.

    Args:
        source (str, int or path): a video file, a stream URL (rtsp://, http(s)://, ...), a camera index, or a folder
            of frames (or a glob; read in name order, as `detect --sequence`).
        reconnect (int or None): a live source's reconnect tries after a drop before the frames end; None: for ever.
        keep_all_frames (bool): a live source gives every frame (the loop may fall behind the camera) instead of the
            newest one each time.
        vid_stride (int): give every Nth frame: a file's frames 0, N, 2N, … (`.frame` and `.time` are theirs in the
            file), a live source's every Nth frame received; 1: every frame.

    Raises:
        InputError: a source that cannot be opened (with FFmpeg's reason for a file), a single image or a list of
            them, a negative `reconnect`, a `vid_stride` below 1.

    Attributes:
        fps (float): the frame rate (a video's own, as `detect` reads it; a folder's 25 unless it says otherwise).
        size (tuple of int): (width, height) of the frames.
        live (bool): a camera or a live stream (reconnected, the newest frame by default).
        count (int): frames given so far.
        frame (int or None): the number of the frame last given: a file's frame number (vid_stride counted), a live
            source's count of frames given before it; None before the first.
        time (float or None): the time of the frame last given, in seconds from the first: a live source's own (the
            outage of a reconnection included), a file's frame number / fps, as `detect`'s records give it.
        captured (float or None): a live source's frame last given: the moment the camera sent it, in
            time.monotonic() seconds (`time.monotonic() - video.captured` is how far the loop is behind the camera,
            what /health reports as lag); None for a file.
        dropped (int): a live source's frames skipped because a newer one came before the caller took it.
        skipped (int): a file's frames that could not be decoded, between good ones.
        gave_up (str or None): why a live source's frames ended (its reconnect tries ran out), else None.
    """

    def __init__(self, source: str | int | os.PathLike[str], *, reconnect: int | None = None,
                 keep_all_frames: bool = False, vid_stride: int = 1) -> None:
        options = LiveSourceOptions(reconnect=reconnect, keep_all_frames=keep_all_frames)
        options.check()
        check_stride(vid_stride)  # before the source is opened
        self._reader = SourceReader(_openable(source), options, vid_stride)
        self.name = self._reader.name
        self.fps: float = self._reader.fps
        self.size: tuple[int, int] = self._reader.size
        self.live: bool = self._reader.live
        self.count = 0
        self.frame: int | None = None
        self.time: float | None = None
        self.captured: float | None = None
        self._started = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise InputError(f"the frames of {self.name} are read once: call darknet_py.video_frames again to read "
                             "them again")
        self._started = True
        return self._frames()

    def _frames(self) -> Iterator[np.ndarray]:
        if self._reader.closed:  # closed before the loop began
            return
        self._reader.start(SourceStatus(self.name))
        try:
            for item in self._reader.frames():
                self.frame = self._reader.frame_number(item, self.count)
                self.time = item.time if item.time is not None else self.count / self.fps
                self.captured = item.captured
                self.count += 1
                yield item.image
        finally:
            self.close()
        if (empty := self._reader.no_frames(self.count)) is not None:
            raise empty

    @property
    def dropped(self) -> int:
        return self._reader.dropped

    @property
    def skipped(self) -> int:
        return self._reader.skipped

    @property
    def gave_up(self) -> str | None:
        return self._reader.gave_up

    def close(self) -> None:
        """Stop reading and let go of the source (also done when the loop ends, breaks, or is garbage-collected)."""
        self._reader.close()

    def __enter__(self) -> "VideoFrames":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "live " if self.live else ""
        return f"VideoFrames({kind}{self.name}, {self.size[0]}x{self.size[1]} at {self.fps:g} fps, {self.count} read)"


def _openable(source: str | int | os.PathLike[str]) -> str | int | ImageSequence:
    """What open_source takes: a camera index, a video or stream as given, or a folder of frames as a sequence."""
    if isinstance(source, int):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"video_frames() takes a video file, a stream URL, a camera index or a folder of frames, not "
                         f"a {type(source).__name__}")
    text = os.fspath(source)
    kind, items = source_items(text)
    if kind == "video":
        return items
    if not Path(text).is_dir():
        # said without a function's name: darknet_py.track() reads its sources through here too
        raise InputError(f"{hide_credentials(text)} is {len(items)} separate image(s): frames come from a video, a "
                         "stream, a camera or a folder of frames (model.detect() takes separate images)")
    return ImageSequence.open(text)


def video_frames(source: str | int | os.PathLike[str], *, reconnect: int | None = None,
                 keep_all_frames: bool = False, vid_stride: int = 1) -> VideoFrames:
    """The decoded BGR frames of *source*, read ahead on a background thread, live sources reconnected.

    Args:
        source (str, int or path): a video file, a stream URL, a camera index, or a folder of frames.
        reconnect (int or None): a live source's tries after a drop before the frames end; None: for ever.
        keep_all_frames (bool): a live source gives every frame instead of the newest each time.
        vid_stride (int): every Nth frame only (see VideoFrames); 1: every frame.

    Returns:
        VideoFrames: iterate it for the frames (once); `.fps`, `.size`, `.live`, and after or during the loop
        `.count`, `.frame`, `.time`, `.captured`, `.dropped`, `.skipped`, `.gave_up`.

    Raises:
        InputError: the source cannot be opened (see VideoFrames); iterating raises it for a file with no decodable
            frame.
    """
    return VideoFrames(source, reconnect=reconnect, keep_all_frames=keep_all_frames, vid_stride=vid_stride)
