"""Video/stream/webcam detection: decode in a background thread, detect in batches, hand each
frame's result to the sinks (sinks.py: the annotated video, records, labels, a live view, ...).
Files keep every frame; live sources (cameras, streams) are read by live_reader.py: reconnected after a
drop, and only the newest frame kept unless asked otherwise.
The sinks are always finished: on Ctrl-C or an error the frames done so far form a playable
video, renamed into place; the caller is told how far it got.
"""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Sequence

import av
import cv2
import numpy as np

from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import DarknetWarning, InputError
from ..core.in_flight import in_order
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .frame_buffer import END, FrameQueue, LatestFrame
from .live_reader import Decoded, LiveReader, LiveSourceOptions
from .sequence import ImageSequence
from .sinks import DEFAULT_FPS, AnnotatedVideoSink, Result, Sink, Stage, finish_all, through_stages, write_all
from .source_status import SourceStatus
from .stream_capture import StreamCapture


@dataclass
class VideoReport:
    frames: int
    fps: float
    size: tuple[int, int]
    interrupted: bool
    output: str | None
    header_frames: int
    skipped: int = 0  # frames that could not be decoded (or changed size) between good ones
    live: bool = False  # a camera or a live stream (read with reconnects, the newest frame by default)
    dropped_frames: int = 0  # live: frames skipped because a newer one came before detection was ready
    drops: int = 0  # live: connections lost (each followed by reconnect tries)
    gave_up: str | None = None  # live: why the run ended (the reconnect tries ran out), else None


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
                      stacklevel=4)


MAX_FAILED_READS = 25  # in a row: the end of the file, or a source that has gone away
LIVE_STOP_WAIT_S = 1.0  # a live reader blocked in a read or a connect is left behind after this (it is a daemon)


def _file_reader(capture: cv2.VideoCapture, frames: FrameQueue, stop: threading.Event, skipped: list[int]) -> None:
    """Decoded frames of a file into the queue. A frame that fails to decode, or comes at another size than
    the first, is skipped and counted (skipped[0]) as long as good frames follow it."""
    failed, size = 0, None
    try:
        while not stop.is_set() and failed < MAX_FAILED_READS:
            ok, frame = capture.read()
            if not ok or frame is None or (size is not None and frame.shape != size):
                failed += 1
                continue
            skipped[0] += failed if size is not None else 0
            failed, size = 0, size or frame.shape
            frames.put(Decoded(frame, None))
    finally:
        capture.release()
        frames.close()


def start_reader(source: str | int | ImageSequence, capture, reopen: Callable | None, live: LiveSourceOptions,
                 status: SourceStatus, stop: threading.Event, batch: int, skipped: list[int],
                 on_change: Callable[[], None] = lambda: None) -> tuple[FrameQueue | LatestFrame, threading.Thread]:
    """The reader thread of an opened source (started) and the buffer it fills: every frame of a file; for a live
    source (*reopen* given) the newest frame, or every one with `live.keep_all_frames`, reconnecting after drops.

    Args:
        source (str, int or ImageSequence): the source as given.
        capture: its first capture (open_source).
        reopen (callable or None): how to connect again (open_source); None for a file.
        live (LiveSourceOptions): reconnects and latest-frame mode.
        status (SourceStatus): told of drops and reconnects.
        stop (threading.Event): set when the detection loop ends; the reader then ends.
        batch (int): frames per detection call (a file's queue holds two batches at least).
        skipped (list of int): a file's undecodable frames are counted in skipped[0].
        on_change (callable): called when the buffer gets a frame or is closed (for a loop over many sources).

    Returns:
        tuple: (the buffer, the started thread).
    """
    size = max(8, 2 * batch)
    if reopen is None:
        frames: FrameQueue | LatestFrame = FrameQueue(size, on_change)
        thread: threading.Thread = threading.Thread(target=_file_reader, args=(capture, frames, stop, skipped),
                                                    daemon=True)
    else:
        frames = FrameQueue(size, on_change) if live.keep_all_frames else LatestFrame(on_change)
        status.count_dropped_frames(lambda: frames.dropped)
        shown = f"camera {source}" if isinstance(source, int) else hide_credentials(str(source))
        thread = LiveReader(shown, capture, reopen, frames, live, status, stop)
    thread.start()
    return frames, thread


def gave_up(reader: threading.Thread | None) -> str | None:
    """Why a source's reader stopped trying (a live source whose reconnect tries ran out), else None."""
    return reader.gave_up if isinstance(reader, LiveReader) else None


def run_video(source: str | int, detect_batch: Callable[[list[np.ndarray]], list[Detections]],
              output: str | None = None, batch: int = 1, *, sinks: Sequence[Sink] = (), codec: str | None = None,
              sequence: Callable[[], ContextManager] | None = None, stages: Sequence[Stage] = (),
              live: LiveSourceOptions = LiveSourceOptions(), status: SourceStatus | None = None,
              in_flight: int = 1) -> VideoReport:
    """Detect on every frame of *source* (the newest frame each time, for a live source), handing each frame's
    `Result` to every sink.

    Each frame's sinks are written whole before a stop takes effect (interrupt.deferred); when the source
    ends, or on Ctrl-C or an error, every sink is finished (an annotated video is then a playable file of
    the frames done), and only then is the error raised. A stop ends the run with `interrupted` set.

    A live source (camera, stream) that drops is reconnected (live_reader): the run goes on across the gap with
    the same sinks, so the annotated video is one file that skips the gap, and the records go on with increasing
    `frame` and a `time` that includes the gap. If the tries run out (`live.reconnect`), the run ends normally
    with `gave_up` set.

    Args:
        source (str or int): a video file, a stream URL, or a camera index.
        detect_batch (callable): BGR frames → one Detections per frame.
        output (str or None): shorthand for an `AnnotatedVideoSink(output, codec)` ahead of *sinks*.
        batch (int): frames per detect_batch call.
        sinks (sequence of Sink): where the results go (sinks.py); a live view may be one.
        codec (str or None): the codec of *output* (default: by its extension, see video_writer).
        sequence (callable or None): e.g. `Backend.sequence`; entered when the source opens and left when it
            ends, so that a model with recurrent layers carries its state from frame to frame, as darknet's
            demo does.
        stages (sequence of Stage): jobs between detection and the sinks (tracking, redaction), in frame order.
        live (LiveSourceOptions): reconnect tries and latest-frame mode, for a live source (files ignore it).
        status (SourceStatus or None): the source's figures for /health and /metrics, kept up to date.
        in_flight (int): detect_batch calls running at once, on as many threads (in_flight.in_order); the frames'
            results still reach the sinks in order, from this thread. Above 1, detect_batch must be safe to call
            from several threads (a `Backend.concurrent` twin's detect is); a recurrent model needs 1.

    Returns:
        VideoReport: frames done, the source's fps and size, whether a stop ended it, the annotated video, and for
        a live source the frames dropped, the connections lost and why it gave up.
    """
    live.check()
    name = hide_credentials(str(source))
    sinks = ([AnnotatedVideoSink(output, codec)] if output else []) + list(sinks)
    videos = [sink for sink in sinks if isinstance(sink, AnnotatedVideoSink)]
    capture, reopen = open_source(source, live)
    fps = frame_rate(source, capture)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    header_frames = int(max(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0))
    expected = header_frames
    header_fps = capture.get(cv2.CAP_PROP_FPS) or 0
    if header_frames and header_fps >= 1.5 * fps:  # the header counts empty "repeat" entries too (frame_rate)
        expected = round(header_frames * fps / header_fps)
    status = status or SourceStatus(name)
    sinks.append(status)  # last: it counts the frames every other sink has written
    stop = threading.Event()
    skipped = [0]
    frames, thread = start_reader(source, capture, reopen, live, status, stop, batch, skipped)
    progress = Progress(os.path.basename(name) or name, expected or None, approximate=True,  # headers can lie
                        detail=(lambda: f"{frames.dropped} dropped for newer") if isinstance(frames, LatestFrame) else None)
    count, interrupted = 0, False
    failure: Exception | None = None
    scope = ExitStack()
    try:
        try:
            if sequence is not None:
                scope.enter_context(sequence())
            detected = in_order(lambda pending: detect_batch([item.image for item in pending]), _batches(frames, batch),
                                in_flight)
            for pending, found in scope.enter_context(detected):
                for item, dets in zip(pending, found):
                    with interrupt.deferred():  # a frame's outputs are written whole before a stop takes effect
                        result = Result(name, count, item.image, dets, fps=fps, stream_time=item.time,
                                        captured=item.captured)
                        write_all(sinks, through_stages(stages, result))
                    count += 1
                    progress.update()
                    events.emit(f"frames-detected {count}")
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # noqa: BLE001 - finish the files first, then report
            failure = exc
        finally:
            with interrupt.deferred():  # a stop now waits for the files: a playable video of the frames done
                finish_all([*stages, *sinks])
    finally:
        scope.close()
        stop.set()
        frames.abandon()  # a reader waiting for room in the queue returns
        thread.join(LIVE_STOP_WAIT_S if reopen is not None else None)
        progress.close()
    if failure is None and count == 0 and not interrupted and reopen is None and isinstance(source, str):
        raise InputError(no_frames(source))  # not "0 frames", as if the video were empty: say what is wrong
    if failure is not None:
        if count == 0 and isinstance(failure, InputError):
            raise failure  # refused before any frame (e.g. a codec the first frame's size rules out): its own words
        kept = "".join(f"; {video.path} holds the {video.frames} frames done" for video in videos)
        raise InputError(f"video stopped after {count} frames: {failure}{kept}") from failure
    figures = status.snapshot()
    return VideoReport(count, fps, size, interrupted, videos[0].path if videos else None, header_frames, skipped[0],
                       live=reopen is not None, dropped_frames=frames.dropped, drops=figures["drops"],
                       gave_up=gave_up(thread))


def _batches(frames: FrameQueue | LatestFrame, batch: int) -> Iterator[list[Decoded]]:
    """Lists of up to *batch* decoded frames, until the reader's end mark."""
    done = False
    while not done:
        pending = []
        while len(pending) < batch:
            item = frames.get()
            if item is END:
                done = True
                break
            pending.append(item)
        if pending:
            yield pending
