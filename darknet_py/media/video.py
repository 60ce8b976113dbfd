"""Video/stream/webcam detection: decode in a background thread, detect in batches, hand each
frame's result to the sinks (sinks.py: the annotated video, records, labels, a live view, ...).
The sinks are always finished: on Ctrl-C or an error the frames done so far form a playable
video, renamed into place; the caller is told how far it got.
"""
from __future__ import annotations

import os
import queue
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Sequence

import cv2
import numpy as np

from ..core import events, interrupt
from ..core.errors import InputError
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .sequence import ImageSequence
from .sinks import DEFAULT_FPS, AnnotatedVideoSink, Result, Sink, Stage, finish_all, through_stages, write_all

_END = object()


@dataclass
class VideoReport:
    frames: int
    fps: float
    size: tuple[int, int]
    interrupted: bool
    output: str | None
    header_frames: int
    skipped: int = 0  # frames that could not be decoded (or changed size) between good ones


def open_capture(source: str | int | ImageSequence) -> cv2.VideoCapture:
    if isinstance(source, ImageSequence):  # a folder of frames (--sequence)
        return source.capture()
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise InputError(f"cannot open video source {source!r} (missing file, unsupported codec, or no such camera)")
    return capture


MAX_FAILED_READS = 25  # in a row: the end of the file, or a source that has gone away


def _reader(capture: cv2.VideoCapture, frames: queue.Queue, stop: threading.Event, skipped: list[int]) -> None:
    """Decoded frames into the queue. A frame that fails to decode, or comes at another size than
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
            frames.put(frame)
    finally:
        frames.put(_END)


def run_video(source: str | int, detect_batch: Callable[[list[np.ndarray]], list[Detections]],
              output: str | None = None, batch: int = 1, *, sinks: Sequence[Sink] = (), codec: str | None = None,
              sequence: Callable[[], ContextManager] | None = None, stages: Sequence[Stage] = ()) -> VideoReport:
    """Detect on every frame of *source*, handing each frame's `Result` to every sink.

    Each frame's sinks are written whole before a stop takes effect (interrupt.deferred); when the source
    ends, or on Ctrl-C or an error, every sink is finished (an annotated video is then a playable file of
    the frames done), and only then is the error raised. A stop ends the run with `interrupted` set.

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

    Returns:
        VideoReport: frames done, the source's fps and size, whether a stop ended it, the annotated video.
    """
    sinks = ([AnnotatedVideoSink(output, codec)] if output else []) + list(sinks)
    videos = [sink for sink in sinks if isinstance(sink, AnnotatedVideoSink)]
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    header_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    frames: queue.Queue = queue.Queue(maxsize=max(8, 2 * batch))
    stop = threading.Event()
    skipped = [0]
    thread = threading.Thread(target=_reader, args=(capture, frames, stop, skipped), daemon=True)
    thread.start()
    progress = Progress(os.path.basename(str(source)), header_frames or None, approximate=True)  # headers can lie
    count, interrupted = 0, False
    failure: Exception | None = None
    scope = ExitStack()
    try:
        try:
            if sequence is not None:
                scope.enter_context(sequence())
            for pending in _batches(frames, batch):
                for frame, dets in zip(pending, detect_batch(pending)):
                    with interrupt.deferred():  # a frame's outputs are written whole before a stop takes effect
                        write_all(sinks, through_stages(stages, Result(str(source), count, frame, dets, fps=fps)))
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
        while thread.is_alive():
            try:
                frames.get_nowait()
            except queue.Empty:
                thread.join(0.05)
        capture.release()
        progress.close()
    if failure is not None:
        if count == 0 and isinstance(failure, InputError):
            raise failure  # refused before any frame (e.g. a codec the first frame's size rules out): its own words
        kept = "".join(f"; {video.path} holds the {video.frames} frames done" for video in videos)
        raise InputError(f"video stopped after {count} frames: {failure}{kept}") from failure
    return VideoReport(count, fps, size, interrupted, videos[0].path if videos else None, header_frames, skipped[0])


def _batches(frames: queue.Queue, batch: int) -> Iterator[list[np.ndarray]]:
    """Lists of up to *batch* decoded frames, until the reader's end mark."""
    done = False
    while not done:
        pending = []
        while len(pending) < batch:
            item = frames.get()
            if item is _END:
                done = True
                break
            pending.append(item)
        if pending:
            yield pending
