"""Annotated-video writers, one per codec: H.264 MP4 through PyAV (what browsers play), and OpenCV's
MPEG-4 Part 2 (`mp4v`) and Motion-JPEG AVI.

OpenCV's wheels carry no H.264 encoder and browsers refuse `mp4v` in `<video>`; PyAV's wheels carry
libx264. Without PyAV the default falls back to OpenCV's writers with a one-line warning.
Every writer takes BGR frames of one size and is closed with release(), which leaves a finished file.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Protocol

import cv2
import numpy as np

from ..core.errors import DarknetWarning, InputError


class VideoWriter(Protocol):
    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        """Add *frame* (BGR); *time*: its time in the stream, seconds, for a writer that times its frames (a live
        source's H.264); the others give every frame 1 / fps."""

    def release(self) -> None: ...


def pyav_available() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


LIVE_KEYFRAME_S = 2.0  # a live recording's keyframe (and fragment) interval, seconds
TIMED_TICKS = 1000  # a live recording's frames are timed in milliseconds


class H264Writer:
    """H.264 (libx264, yuv420p, BT.601 tagged) in an MP4 with its index up front (plays while loading); with *live*,
    a fragmented MP4 instead, a fragment per keyframe, a keyframe every LIVE_KEYFRAME_S: a camera's recording that
    plays while it is written, and that keeps all but its last seconds if the process is killed.

    A live recording's frames are timed by their time in the stream (to the millisecond), not 1 / fps each: the
    frames a camera's newest-frame mode skipped, or a reconnect's gap, take their real time, so an hour of camera
    plays in an hour (the frame before a gap stays on screen through it) instead of faster by the frames skipped."""

    # superfast at CRF 25: the picture quality (PSNR) of veryfast at CRF 23 for about half its CPU and a quarter
    # more bytes (benchmarks/results/video_codecs.md); on a few cores the encoder competes with detection
    PRESET, CRF = "superfast", "25"

    def __init__(self, path: str, fps: float, size: tuple[int, int], preset: str | None = None,
                 crf: str | None = None, live: bool = False) -> None:
        """Args:
            path (str): the .mp4 to write.
            fps (float): frames per second it plays at.
            size (tuple[int, int]): width, height; both even (4:2:0 chroma).
            preset (str, optional): x264's speed preset (default PRESET).
            crf (str, optional): x264's constant-quality factor, lower is better (default CRF).
            live (bool): fragmented, for a source that runs until it is stopped (see the class).
        """
        import av

        width, height = size
        if width % 2 or height % 2:
            raise InputError(f"H.264 (4:2:0) needs an even width and height; the video is {width}x{height}: "
                             "use --codec mp4v or --codec mjpg")
        # faststart moves the index to the front when the file is closed; a recording that may be killed first is
        # fragmented instead (an empty index up front, then fragments that each carry their own)
        # (each packet flushed to the file as it is muxed, or a killed process would leave the last buffers unwritten)
        options = ({"movflags": "+frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"} if live
                   else {"movflags": "+faststart"})
        self._container = av.open(path, "w", format="mp4", options=options)
        rate = Fraction(fps).limit_denominator(100_000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        self._stream.options = {"preset": preset or self.PRESET, "crf": crf or self.CRF}
        context = self._stream.codec_context
        # say what the BGR → YUV conversion used (BT.601, limited range) so players convert it back the same way
        context.colorspace = context.color_primaries = context.color_trc = 6  # SMPTE 170M (BT.601)
        context.color_range = 1  # MPEG / limited
        if live:  # a fragment per keyframe: a killed recording loses at most this much
            context.gop_size = max(1, round(LIVE_KEYFRAME_S * fps))
            # timed to the millisecond by each frame's stream time (see the class)
            context.time_base = self._stream.time_base = Fraction(1, TIMED_TICKS)
        self._live, self._fps = live, fps
        self._frames = 0
        self._first_time: float | None = None
        self._last_pts = -1

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        import av

        # OpenCV's BGR → I420 is BT.601 limited range with each 2x2 block's chroma averaged: closer to the exact
        # formula than swscale's default, and several times cheaper (benchmarks/results/video_codecs.md)
        picture = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        picture.pts = self._timed_pts(time) if self._live else self._frames
        self._frames += 1
        for packet in self._stream.encode(picture):
            self._container.mux(packet)

    def _timed_pts(self, time: float | None) -> int:
        """A live frame's pts in TIMED_TICKS: its stream time since the first frame's (a frame without one, 1 / fps
        after the last); always after the last frame's, as the muxer requires."""
        if time is None:
            pts = self._last_pts + max(1, round(TIMED_TICKS / self._fps)) if self._last_pts >= 0 else 0
        else:
            self._first_time = time if self._first_time is None else self._first_time
            pts = round((time - self._first_time) * TIMED_TICKS)
        self._last_pts = max(pts, self._last_pts + 1)
        return self._last_pts

    def release(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():  # flush the frames the encoder still holds
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


class OpenCVWriter:
    def __init__(self, path: str, fps: float, size: tuple[int, int], fourcc: str) -> None:
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self._writer.isOpened():
            raise InputError(f"OpenCV cannot write {fourcc} video to {path}")

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        self._writer.write(frame)  # OpenCV's writers know only a fixed frame rate

    def release(self) -> None:
        self._writer.release()


@dataclass(frozen=True)
class Codec:
    suffix: str
    describe: str
    open: Callable[[str, float, tuple[int, int]], VideoWriter]


CODECS: dict[str, Codec] = {
    "h264": Codec(".mp4", "H.264 MP4 (PyAV; plays in browsers)", H264Writer),
    "mp4v": Codec(".mp4", "MPEG-4 Part 2 MP4 (OpenCV; browsers do not play it)",
                  lambda path, fps, size: OpenCVWriter(path, fps, size, "mp4v")),
    "mjpg": Codec(".avi", "Motion-JPEG AVI (OpenCV)", lambda path, fps, size: OpenCVWriter(path, fps, size, "MJPG")),
}
NO_PYAV = "PyAV is not installed (pip install av)"


def require_codec(name: str) -> None:
    """Refuse an unknown codec, or h264 without PyAV, before any work is done."""
    if name not in CODECS:
        raise InputError(f"unknown video codec {name!r}; choose one of {', '.join(CODECS)}")
    if name == "h264" and not pyav_available():
        raise InputError(f"--codec h264 needs PyAV: {NO_PYAV}; or choose --codec mp4v / mjpg")


def output_suffix(codec: str | None, source: str | int) -> str:
    """The annotated video's extension: the codec's container; by default .mp4 (H.264), or without PyAV
    what OpenCV wrote before (.avi for an .avi source, else .mp4)."""
    if codec is not None:
        require_codec(codec)
        return CODECS[codec].suffix
    if pyav_available():
        return ".mp4"
    return ".avi" if str(source).lower().endswith(".avi") else ".mp4"


def default_codec(suffix: str, size: tuple[int, int]) -> str:
    """The codec for an output named *suffix*: MJPG for .avi; H.264 for the rest where PyAV is here and the
    size allows it, else mp4v with a one-line warning saying why."""
    if suffix.lower() == ".avi":
        return "mjpg"
    if not pyav_available():
        reason = NO_PYAV
    elif size[0] % 2 or size[1] % 2:
        reason = f"H.264 (4:2:0) needs even sides and the video is {size[0]}x{size[1]}"
    else:
        return "h264"
    warnings.warn(f"writing MPEG-4 Part 2 (mp4v), which browsers do not play: {reason}", DarknetWarning, stacklevel=3)
    return "mp4v"


def open_video_writer(path: str, fps: float, size: tuple[int, int], codec: str | None = None,
                      suffix: str | None = None, live: bool = False) -> VideoWriter:
    """A writer for *path* (a temporary name; *suffix* is the final name's extension when it differs); *live*: the
    recording of a camera or stream (H.264: fragmented, see H264Writer)."""
    suffix = (suffix or os.path.splitext(path)[1]).lower()
    codec = codec or default_codec(suffix, size)
    require_codec(codec)
    if CODECS[codec].suffix != suffix:
        raise InputError(f"{codec} writes {CODECS[codec].suffix} files, not {suffix or 'files without an extension'}")
    if live and codec == "h264":
        return H264Writer(path, fps, size, live=True)
    return CODECS[codec].open(path, fps, size)
