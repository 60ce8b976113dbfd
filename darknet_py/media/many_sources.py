"""Many video sources (cameras, streams, files) through one model in one process: one reader thread per source
(video.start_reader: reconnects, newest frame), and one detection loop that batches whatever frames are ready,
at most one per source a round, taking the sources in turn. A source that is down or slow holds up no other:
the loop waits only when no source has a frame.

    reports = run_many(["rtsp://cam1/s", "rtsp://cam2/s"], detect_batch, [[records1], [records2]])

Each source has its own sinks, stages (a tracker follows one camera) and frame numbering; a source that ends
has its sinks finished at once, and every other's when the run ends, however it ends.
"""
from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .frame_buffer import END, FrameQueue, LatestFrame
from .live_reader import Decoded, LiveSourceOptions
from .sinks import Result, Sink, Stage, finish_all, through_stages, write_all
from .source_status import SourceStatus
from .video import LIVE_STOP_WAIT_S, VideoReport, frame_rate, gave_up, open_source, start_reader


@dataclass(eq=False)
class _Source:
    """One source's part of the run: its reader and buffer, its outputs and its count."""

    name: str
    sinks: list[Sink]
    stages: list[Stage]
    status: SourceStatus
    fps: float
    size: tuple[int, int]
    header_frames: int
    live: bool
    frames: FrameQueue | LatestFrame | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    skipped: list[int] = field(default_factory=lambda: [0])
    count: int = 0
    done: bool = False  # its reader has ended (its buffer gave END)
    finished: bool = False  # its stages and sinks are finished

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            finish_all([*self.stages, *self.sinks])

    def report(self, interrupted: bool) -> VideoReport:
        return VideoReport(self.count, self.fps, self.size, interrupted, None, self.header_frames, self.skipped[0],
                           live=self.live, dropped_frames=self.frames.dropped if self.frames else 0,
                           drops=self.status.snapshot()["drops"], gave_up=gave_up(self.thread))


def run_many(sources: Sequence[str | int], detect_batch: Callable[[list[np.ndarray]], list[Detections]],
             sinks: Sequence[Sequence[Sink]], batch: int | None = None, *, stages: Sequence[Sequence[Stage]] = (),
             live: LiveSourceOptions = LiveSourceOptions(),
             statuses: Sequence[SourceStatus] | None = None) -> list[VideoReport]:
    """Detect on several video sources at once through one *detect_batch*, each source's results to its sinks.

    Args:
        sources (sequence of str or int): video files, stream URLs, camera indexes.
        detect_batch (callable): BGR frames (of any sources, any sizes) → one Detections per frame.
        sinks (sequence of sequences of Sink): each source's sinks, in the order of *sources*.
        batch (int or None): frames per detect_batch call at most (default: one per source).
        stages (sequence of sequences of Stage): each source's stages (tracking, redaction); default none.
        live (LiveSourceOptions): reconnects and latest-frame mode of the live sources.
        statuses (sequence of SourceStatus or None): each source's figures for /health and /metrics.

    Returns:
        list of VideoReport: one per source, in order (`interrupted` set on all when a stop ended the run).

    Raises:
        InputError: a source cannot be opened (before any detection), or detection failed (after every
            source's sinks were finished).
    """
    live.check()
    batch = batch or len(sources)
    statuses = list(statuses) if statuses is not None else [SourceStatus(str(source)) for source in sources]
    stages = list(stages) or [[] for _ in sources]
    changed = threading.Condition()

    def poke() -> None:
        with changed:
            changed.notify_all()

    opened: list[tuple] = []
    try:  # every source opened before any is read: one that cannot be opened fails the run before any output
        for source in sources:
            opened.append(open_source(source, live))
    except BaseException:
        for capture, _ in opened:
            capture.release()
        raise
    runs: list[_Source] = []
    scope = ExitStack()
    interrupted, failure = False, None
    try:
        for source, (capture, reopen), outputs, jobs, status in zip(sources, opened, sinks, stages, statuses):
            run = _Source(hide_credentials(str(source)), [*outputs, status], list(jobs), status,
                          frame_rate(source, capture),
                          (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))),
                          int(max(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0)), reopen is not None)
            runs.append(run)
            run.frames, run.thread = start_reader(source, capture, reopen, live, status, run.stop, batch,
                                                  run.skipped, poke)
        progress = scope.enter_context(_progress(runs))
        turn = 0
        try:
            while True:
                pending = _ready(runs, batch, turn, changed)
                if pending is None:
                    break
                turn += 1
                for (run, item), dets in zip(pending, detect_batch([item.image for _, item in pending])):
                    with interrupt.deferred():  # a frame's outputs are written whole before a stop takes effect
                        result = Result(run.name, run.count, item.image, dets, fps=run.fps, stream_time=item.time,
                                        captured=item.captured)
                        write_all(run.sinks, through_stages(run.stages, result))
                    run.count += 1
                    progress.update()
                    events.emit(f"frames-detected {sum(r.count for r in runs)}")
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # noqa: BLE001 - finish the files first, then report
            failure = exc
    finally:
        try:
            with interrupt.deferred():  # a stop now waits for the files
                for run in runs:
                    run.finish()
        finally:
            for run in runs:
                run.stop.set()
                if run.frames is not None:
                    run.frames.abandon()
            deadline = time.monotonic() + LIVE_STOP_WAIT_S  # one wait for all the live readers, not one each
            for run in runs:
                if run.thread is not None:
                    run.thread.join(max(deadline - time.monotonic(), 0.0) if run.live else None)
            scope.close()
    if failure is not None:
        done = ", ".join(f"{run.name}: {run.count}" for run in runs)
        raise InputError(f"detection stopped ({done} frames done): {failure}") from failure
    return [run.report(interrupted) for run in runs]


def _ready(runs: list[_Source], batch: int, turn: int, changed: threading.Condition) -> list | None:
    """Up to *batch* frames, one per source that has one, starting from a different source each turn; waits while
    none has any; None once every source has ended (a source that ends has its sinks finished here, at once)."""
    while True:
        pending: list[tuple[_Source, Decoded]] = []
        ended: list[_Source] = []
        with changed:  # put() and close() notify under this lock: nothing is missed between the look and the wait
            while not pending and not ended:
                order = runs[turn % len(runs):] + runs[:turn % len(runs)]
                for run in order:
                    if run.done or len(pending) >= batch:
                        continue
                    item = run.frames.take_ready()
                    if item is END:
                        run.done = True
                        ended.append(run)
                    elif item is not None:
                        pending.append((run, item))
                if not pending and not ended:
                    if all(run.done for run in runs):
                        return None
                    changed.wait(1.0)  # a timed wait, so Ctrl-C is seen at once
        for run in ended:  # outside the lock: the other readers go on while these files are written
            with interrupt.deferred():
                run.finish()
        if pending:
            return pending


class _progress:
    """One progress line for all the sources: frames detected in all, and frames dropped for newer ones."""

    def __init__(self, runs: list[_Source]) -> None:
        self.runs = runs
        self.line = Progress(f"{len(runs)} sources", None, detail=self.detail)

    def detail(self) -> str:
        dropped = sum(run.frames.dropped for run in self.runs if run.frames is not None)
        return f"{dropped} dropped for newer" if dropped else ""

    def __enter__(self) -> Progress:
        return self.line

    def __exit__(self, *exc) -> None:
        self.line.close()
