"""A network stream (RTSP, RTMP, SRT, HTTP MJPEG/HLS, ...) read through PyAV, with the same small interface as
cv2.VideoCapture (read, get, release), for the live reader.

Why PyAV rather than OpenCV's FFmpeg capture for live streams: it takes FFmpeg's options (RTSP over TCP,
which survives lossy links and NAT), gives open and read timeouts per call (a camera that goes silent is a
drop within the read timeout, never a hang), keeps FFmpeg's own log lines off stderr (OpenCV's build prints a
line per failed connection, with the address), and gives each frame's presentation time.
"""
from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

# demuxers whose timestamps are a frame counter at an assumed 25 frames/s, not the camera's clock: an HTTP MJPEG
# stream (multipart JPEGs, as most IP cameras send) carries no time at all, whatever its real frame rate
UNTIMED_FORMATS = frozenset({"mpjpeg", "mjpeg", "jpeg_pipe", "image2pipe"})
OPEN_TIMEOUT_S = 10.0  # connecting and reading the stream's headers
READ_TIMEOUT_S = 5.0  # no packet for this long: the stream has dropped


@dataclass(frozen=True)
class StreamInfo:
    """What the stream's headers say: its frame rate (0: unknown), frame size, and whether it has an end."""

    fps: float
    size: tuple[int, int]
    finite: bool  # a length in its headers (a file fetched over HTTP), not a live feed


class StreamCapture:
    """One connection to a stream, decoded frame by frame (BGR).

    Args:
        url (str): the stream's URL, credentials included (they go to FFmpeg, never to a message).
        open_timeout_s (float): how long connecting may take.
        read_timeout_s (float): how long a read may wait for data before the stream counts as dropped.

    Raises:
        OSError, av.FFmpegError: the stream cannot be opened (refused, not found, unauthorised, timed out).
    """

    def __init__(self, url: str, open_timeout_s: float = OPEN_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        options = {"rtsp_transport": "tcp"} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
        self._container = av.open(url, options=options, timeout=(open_timeout_s, read_timeout_s))
        try:
            if not self._container.streams.video:
                raise OSError("the stream holds no video")
            self._stream = self._container.streams.video[0]
            self._frames = self._container.decode(self._stream)
        except BaseException:
            self._container.close()
            raise
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.info = StreamInfo(float(rate) if rate else 0.0, (self._stream.codec_context.width,
                                                                self._stream.codec_context.height),
                               bool(self._container.duration) or bool(self._stream.frames))
        self.time: float | None = None  # the last frame's presentation time in seconds, when the stream gives one
        self._timed = not UNTIMED_FORMATS.intersection(self._container.format.name.split(","))

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame, as cv2.VideoCapture.read gives it: (True, BGR image), or (False, None) when the stream
        has ended, dropped or gone silent for the read timeout."""
        try:
            frame = next(self._frames)
        except (StopIteration, av.FFmpegError, OSError):
            return False, None
        self.time = frame.time if self._timed else None  # untimed: the reader times frames by their arrival
        return True, frame.to_ndarray(format="bgr24")

    def get(self, prop: int) -> float:
        """cv2.VideoCapture.get for what the reader asks: frame rate, width, height, frame count (0: unknown)."""
        return {cv2.CAP_PROP_FPS: self.info.fps, cv2.CAP_PROP_FRAME_WIDTH: float(self.info.size[0]),
                cv2.CAP_PROP_FRAME_HEIGHT: float(self.info.size[1]),
                cv2.CAP_PROP_FRAME_COUNT: float(self._stream.frames or 0)}.get(prop, 0.0)

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return True

    def release(self) -> None:
        self._container.close()
