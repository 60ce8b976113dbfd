"""The detection run over one SOURCE (what `darknet-py detect` does without --ray): images in batches,
or a video, stream or camera frame by frame, every result handed to the sinks (sinks.py), which are
finished however the run ends.

    kind, items = source_items("photos/")
    report = run_source(kind, items, lambda images: model.detect(images), [RecordsJsonSink("out/detections.json")])
    print(report.summary())

A stop (Ctrl-C, SIGTERM) ends the run with `interrupted` set and the results done written whole:
an image detected is saved with all its outputs before the stop takes effect. Tests act at exact
moments through the events `images-done N` and `frames-detected N` (darknet_py.core.events).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

import numpy as np

from ..core import events, interrupt
from ..pipeline.detect import iter_batches
from ..pipeline.detections import Detections
from ..pipeline.preprocess import as_bgr8, read_image
from .live_reader import LiveSourceOptions
from .sinks import Result, Sink, Stage, finish_all, through_stages, write_all
from .source_status import SourceStatus
from .video import VideoReport, run_video

DetectBatch = Callable[[list[np.ndarray]], list[Detections]]
"""BGR images → one Detections per image (e.g. `lambda images: model.detect(images, 0.25, 0.45)`)."""


@dataclass(frozen=True)
class RunReport:
    """How a run went.

    Args:
        done (int): images, or video frames, detected and written.
        interrupted (bool): a stop ended the run early (what was done is written).
        video (VideoReport or None): the video's details (fps, size, frames skipped); None for images.
    """

    done: int
    interrupted: bool
    video: VideoReport | None = None

    def summary(self) -> str:
        """The run's line for the terminal, e.g. `12 frames (320x180, 25 fps)` or `3 image(s)`."""
        if self.video is None:
            return f"{self.done} image(s)" + (", interrupted — the images done are saved" if self.interrupted else "")
        report = self.video
        done = f"{report.frames} frames ({report.size[0]}x{report.size[1]}, {report.fps:g} fps)"
        if report.skipped:
            done += f", {report.skipped} unreadable frame(s) skipped"
        if report.dropped_frames:
            done += f", {report.dropped_frames} dropped for newer ones"
        if report.drops:
            done += f", {report.drops} connection(s) lost"
        return f"{done}, interrupted — the video holds the frames done" if self.interrupted else done


def run_source(kind: str, items: list[str] | str | int, detect_batch: DetectBatch, sinks: Sequence[Sink],
               batch: int = 1, sequence: Callable[[], ContextManager] | None = None,
               stages: Sequence[Stage] = (), channels: int = 3, live: LiveSourceOptions = LiveSourceOptions(),
               status: SourceStatus | None = None) -> RunReport:
    """Detect on a source as `sources.source_items` describes it, writing through *sinks*.

    Args:
        kind (str): "images" or "video" (source_items' first value).
        items (list of str, str or int): the image paths, or the video file, stream URL or camera index.
        detect_batch (DetectBatch): images → their Detections.
        sinks (sequence of Sink): where the results go; all are finished when the run ends, however it ends.
        batch (int): images or frames per detect_batch call.
        sequence (callable or None): a video's recurrent-state scope (`Backend.sequence`); see run_video.
        stages (sequence of Stage): jobs between detection and the sinks (tracking, redaction), in order.
        channels (int): the network's input channels: image files are read as it reads them (see run_images).
        live (LiveSourceOptions): a camera's or stream's reconnects and latest-frame mode (see run_video).
        status (SourceStatus or None): a video source's figures for /health and /metrics.

    Returns:
        RunReport: how many were done, and whether a stop ended the run.
    """
    if kind == "images":
        return run_images(list(items), detect_batch, sinks, batch, stages, channels)
    report = run_video(items, detect_batch, batch=batch, sinks=sinks, sequence=sequence, stages=stages, live=live,
                       status=status)
    return RunReport(report.frames, report.interrupted, report)


def run_images(paths: Sequence[str], detect_batch: DetectBatch, sinks: Sequence[Sink], batch: int = 1,
               stages: Sequence[Stage] = (), channels: int = 3) -> RunReport:
    """Detect on image files, *batch* at a time, each decoded once (detection, drawing and sinks share it).

    A grey network (`channels` 1) gets each file as darknet reads it for one (cv2.IMREAD_GRAYSCALE), and the
    sinks that grey image as BGR (the network saw no colour: the annotated image shows none either).

    Args:
        paths (sequence of str): image files; each result's `source` is its path as given here.
        detect_batch (DetectBatch): images → their Detections.
        sinks (sequence of Sink): where the results go; all are finished when the run ends, however it ends.
        batch (int): images per detect_batch call.
        stages (sequence of Stage): jobs between detection and the sinks, in order.
        channels (int): the network's input channels, 1 or 3 (darknet reads image files with no others).

    Returns:
        RunReport: images done, and whether a stop ended the run.
    """
    done, interrupted = 0, False
    try:
        for chunk in iter_batches(paths, batch):
            images = [read_image(path, channels) for path in chunk]
            started = time.perf_counter()
            found = detect_batch(images)
            milliseconds = (time.perf_counter() - started) * 1000 / len(chunk)
            for path, image, dets in zip(chunk, map(as_bgr8, images), found):
                with interrupt.deferred():  # an image detected is saved whole before a stop takes effect
                    dets.source = path
                    write_all(sinks, through_stages(stages, Result(path, None, image, dets, milliseconds=milliseconds)))
                done += 1
                events.emit(f"images-done {done}")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        with interrupt.deferred():  # a stop now waits for the collected files (records JSON, result.json)
            finish_all([*stages, *sinks])
    return RunReport(done, interrupted)
