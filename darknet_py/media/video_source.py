"""Opening a video source: a file (read by OpenCV), a network stream (PyAV, stream_capture), a camera index or a
folder of frames (sequence); what kind it is (a live source is reconnected after a drop, a file is read to its end),
its frame rate as FFmpeg reads it, and the one line that says why a source cannot be opened or gives no frame.
source_reader reads what this opens.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import av
import cv2

from ..core.credentials import hide_credentials
from ..core.errors import DarknetWarning, InputError
from .live_reader import LiveSourceOptions
from .sequence import ImageSequence
from .sinks import DEFAULT_FPS
from .stream_capture import StreamCapture

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp")  # always a live feed
HTTP_SCHEMES = ("http", "https")  # a live feed (MJPEG, live HLS) unless its headers give a length


def open_capture(source: str | int | ImageSequence) -> cv2.VideoCapture:
    if isinstance(source, ImageSequence):  # a folder of frames (--sequence)
        return source.capture()
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputError(cannot_open(source))
    return capture


def cannot_open(source: str | int) -> str:
    """Why OpenCV could not open *source*, in one line: for a file FFmpeg's own reason (read with PyAV: OpenCV only
    says it failed, and the program keeps OpenCV's and FFmpeg's logs quiet, see cli.quiet_opencv_logs)."""
    if isinstance(source, int):
        return f"cannot open camera {source}: no camera answers at that index, or it is in use"
    shown = hide_credentials(str(source))
    if not os.path.isfile(source):
        return f"cannot open video source {shown!r} (missing file, unsupported codec, or no such camera)"
    return f"cannot read video {shown}: {_ffmpeg_reason(source)}"


def no_frames(source: str) -> str:
    """The error for a video file that opened but gave no frame at all (cut short before its first picture, or
    a codec that decodes nothing here)."""
    reason = _ffmpeg_reason(source, opened=True) if os.path.isfile(source) else "damaged, cut short, or not a video"
    return f"no frame of {hide_credentials(source)} could be decoded: {reason}"


def _ffmpeg_reason(path: str, opened: bool = False) -> str:
    """What FFmpeg says of the file: its error opening it, or that it reads; *opened*: OpenCV opened it."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                return "it has no video stream"
            codec = container.streams.video[0].codec_context.name
            for _ in container.decode(video=0):
                break
            else:
                return f"FFmpeg decodes no picture of its {codec} stream either (damaged or cut short)"
    except av.FFmpegError as exc:
        return f"{exc.strerror or exc} (not a video FFmpeg reads, or a damaged one)"
    except (OSError, ValueError) as exc:
        return str(exc)
    return f"OpenCV's video reader {'decodes none of' if opened else 'cannot open'} its {codec} stream"


def open_stream(url: str, options: LiveSourceOptions) -> StreamCapture:
    """A new connection to a network stream (StreamCapture); InputError with the reason when it cannot open."""
    try:
        return StreamCapture(url, options.open_timeout_s, options.read_timeout_s)
    except (OSError, av.FFmpegError) as exc:
        raise InputError(f"cannot open stream {hide_credentials(url)!r}: {hide_credentials(str(exc))}") from None


def url_scheme(source: str | int | ImageSequence) -> str:
    """The lowercase URL scheme of a source ("rtsp", "http", ...); "" for a file, a folder or a camera index."""
    text = str(source)
    return text.split("://", 1)[0].lower() if "://" in text else ""


def live_source(source: str | int | ImageSequence) -> bool:
    """Whether a video source runs until it is stopped, rather than to an end: a camera index, or a stream URL (an
    http(s) URL too, which is most often an MJPEG camera or a live playlist)."""
    return isinstance(source, int) or url_scheme(source) in (*LIVE_SCHEMES, *HTTP_SCHEMES)


def frame_rate(source: str | int | ImageSequence, capture, default: float | None = DEFAULT_FPS) -> float | None:
    """The rate a video's frames play at: for a local file FFmpeg's reading of its timestamps (PyAV's `guessed_rate`,
    what ffmpeg itself keeps when it converts the file), else what the capture says, else *default*.

    OpenCV's CAP_PROP_FPS is the container's average rate, which counts an AVI's empty index entries (frames that
    repeat the one before; OpenCV decodes past them): pedestrians.avi claims 50 frames/s and 682 frames, and its 341
    pictures are 40 ms apart. At 50 frames/s the annotated copy would play twice as fast as the source, and every
    record's time would be half its time in the source.
    """
    if isinstance(source, str) and not url_scheme(source) and os.path.isfile(source):
        try:
            with av.open(source) as container:
                guessed = container.streams.video[0].guessed_rate
            if guessed and float(guessed) > 0:
                return float(guessed)
        except (av.FFmpegError, IndexError, OSError, ValueError):
            pass  # OpenCV opened it; its figure will do
    return capture.get(cv2.CAP_PROP_FPS) or default


def header_size(source: str | int | ImageSequence) -> tuple[int, int] | None:
    """The frame size (width, height) a video file's header or a sequence's first image gives, before any frame is
    read; None for streams and cameras (their first frame says it) and for a file whose header gives none."""
    if isinstance(source, ImageSequence):
        return source.capture().size
    if not isinstance(source, str) or url_scheme(source) or not os.path.isfile(source):
        return None
    capture = cv2.VideoCapture(source)
    try:
        size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    return size if min(size) > 0 else None


def file_frame_rate(source: str | ImageSequence) -> float:
    """The rate a video file's (or a sequence's) frames play at, opened for this alone (see `frame_rate`)."""
    if isinstance(source, ImageSequence):
        return source.fps
    capture = cv2.VideoCapture(source)
    try:
        return frame_rate(source, capture)
    finally:
        capture.release()


def open_source(source: str | int | ImageSequence, options: LiveSourceOptions) -> tuple[object, Callable | None]:
    """The first capture of *source*, and for a live source how to open it again (None for files).

    Live: a camera index, a URL of a streaming protocol, or an http(s) URL whose headers give no length (MJPEG,
    live HLS); an http(s) URL with a length is a file fetched over the network, read like one. Live-source
    options given for a file are one warning (ignored_for_files).
    """
    if isinstance(source, int):
        return open_capture(source), lambda: open_capture(source)
    scheme = url_scheme(source)
    if scheme in LIVE_SCHEMES or scheme in HTTP_SCHEMES:
        stream = open_stream(source, options)
        if scheme in LIVE_SCHEMES or not stream.info.finite:
            return stream, lambda: open_stream(source, options)
        stream.release()
    capture = open_capture(source)
    ignored_for_files(hide_credentials(str(source)), options)
    return capture, None


def ignored_for_files(name: str, live: LiveSourceOptions) -> None:
    """One warning when live-source options were given for a file (read whole, never reconnected)."""
    given = [flag for flag, on in (("--reconnect", live.reconnect is not None), ("--keep-all-frames",
                                                                                 live.keep_all_frames)) if on]
    if given:
        warnings.warn(f"{name} is a file, read frame by frame to its end: {' and '.join(given)} "
                      f"{'applies' if len(given) == 1 else 'apply'} to cameras and live streams only", DarknetWarning,
                      stacklevel=5)
