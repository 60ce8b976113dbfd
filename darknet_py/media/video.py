"""Video/stream/webcam detection: decode in a background thread, detect in batches, write
an annotated video. The writer always finishes cleanly: on Ctrl-C or an error the frames
done so far form a playable file, renamed into place; the caller is told how far it got.
"""
from __future__ import annotations

import os
import queue
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, ContextManager

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.fileio import atomic_path
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .video_writer import open_video_writer

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


def open_capture(source: str | int) -> cv2.VideoCapture:
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


def run_video(source: str | int, detect_batch: Callable[[list[np.ndarray]], list[Detections]], output: str | None,
              batch: int = 1, on_frame: Callable[[int, Detections], None] | None = None, codec: str | None = None,
              on_image: Callable[[np.ndarray, Detections, np.ndarray | None], None] | None = None,
              sequence: Callable[[], ContextManager] | None = None) -> VideoReport:
    """Detect on every frame of *source*, writing the annotated frames to *output* with *codec* (default: by the
    output's extension, see video_writer). *on_image* (a live view) gets each frame, its detections and the
    annotated frame when one was drawn for the file (else None); it must not block. *sequence* (e.g.
    Darknet.sequence) is entered when the source opens and left when it ends: a model with recurrent layers
    then carries its state from frame to frame, as darknet's demo does."""
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
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
    writer = None
    suffix = os.path.splitext(output)[1] if output else ""
    scope = ExitStack()
    if sequence is not None:
        scope.enter_context(sequence())
    try:
        with (atomic_path(output, suffix) if output else _no_path()) as tmp:
            if tmp:
                writer = open_video_writer(tmp, fps, size, codec, suffix)
            try:
                done = False
                while not done:
                    pending = []
                    while len(pending) < batch:
                        item = frames.get()
                        if item is _END:
                            done = True
                            break
                        pending.append(item)
                    if not pending:
                        break
                    for frame, dets in zip(pending, detect_batch(pending)):
                        if on_frame:
                            on_frame(count, dets)
                        drawn = None
                        if writer is not None:
                            drawn = dets.draw(frame)
                            writer.write(drawn)
                        if on_image:
                            on_image(frame, dets, drawn)
                        count += 1
                        progress.update()
            except KeyboardInterrupt:
                interrupted = True
            except Exception as exc:  # noqa: BLE001 - finish the file first, then report
                failure = exc
            finally:
                if writer is not None:
                    writer.release()  # a finished, playable file of the frames done
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
        kept = f"; {output} holds the {count} frames done" if output else ""
        raise InputError(f"video stopped after {count} frames: {failure}{kept}") from failure
    return VideoReport(count, fps, size, interrupted, output, header_frames, skipped[0])


class _no_path:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
