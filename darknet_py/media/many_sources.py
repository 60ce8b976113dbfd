"""Many video sources (cameras, streams, files) through one model in one process: one reader thread per source
(source_reader: reconnects, newest frame), and one detection loop that batches whatever frames are ready,
at most one per source a round, taking the sources in turn. A source that is down or slow holds up no other:
the loop waits only when no source has a frame.

    reports = run_many(["rtsp://cam1/s", "rtsp://cam2/s"], detect_batch, [[records1], [records2]])

Each source has its own sinks, stages (a tracker follows one camera) and frame numbering; a source that ends
has its sinks finished at once, and every other's when the run ends, however it ends.
"""
from __future__ import annotations

import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core import events, interrupt
from ..core.errors import InputError
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .frame_buffer import END
from .live_reader import Decoded, LiveSourceOptions
from .sinks import ChecksSize, Result, Sink, Stage, finish_all, through_stages, write_all
from .source_reader import SourceReader, close_all
from .source_status import SourceStatus
from .video import VideoReport


@dataclass(eq=False)
class _Source:
    """One source's part of the run: its reader, its outputs and its count."""

    reader: SourceReader
    sinks: list[Sink]
    stages: list[Stage]
    status: SourceStatus
    count: int = 0
    done: bool = False  # its reader has ended (its buffer gave END)
    finished: bool = False  # its stages and sinks are finished

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def empty(self) -> str | None:
        """A file that reached its end without giving a frame: the error, one line; else None."""
        error = self.reader.no_frames(self.count) if self.done else None
        return None if error is None else str(error)

    def finish(self) -> None:
        """Finish its stages and sinks (a file that gave no frame leaves no collected JSON of nothing, as run_video's
        one source does)."""
        if not self.finished:
            self.finished = True
            finish_all([*self.stages, *self.sinks], nothing_read=self.empty is not None)

    def report(self, interrupted: bool) -> VideoReport:
        reader = self.reader
        return VideoReport(self.count, reader.fps, reader.size, interrupted, None, reader.header_frames,
                           reader.skipped, live=reader.live, dropped_frames=reader.dropped,
                           drops=self.status.snapshot()["drops"], gave_up=reader.gave_up, no_frames=self.empty,
                           stride=reader.stride)


def run_many(sources: Sequence[str | int], detect_batch: Callable[[list[np.ndarray]], list[Detections]],
             sinks: Sequence[Sequence[Sink]], batch: int | None = None, *, stages: Sequence[Sequence[Stage]] = (),
             live: LiveSourceOptions = LiveSourceOptions(),
             statuses: Sequence[SourceStatus] | None = None, vid_stride: int = 1) -> list[VideoReport]:
    """Detect on several video sources at once through one *detect_batch*, each source's results to its sinks.

    Args:
        sources (sequence of str or int): video files, stream URLs, camera indexes.
        detect_batch (callable): BGR frames (of any sources, any sizes) → one Detections per frame.
        sinks (sequence of sequences of Sink): each source's sinks, in the order of *sources*.
        batch (int or None): frames per detect_batch call at most (default: one per source).
        stages (sequence of sequences of Stage): each source's stages (tracking, redaction); default none.
        live (LiveSourceOptions): reconnects and latest-frame mode of the live sources.
        statuses (sequence of SourceStatus or None): each source's figures for /health and /metrics.
        vid_stride (int): detect every Nth frame of each source (see video.run_video).

    Returns:
        list of VideoReport: one per source, in order (`interrupted` set on all when a stop ended the run; a file
        that gave no frame has `no_frames` set, and its collecting sinks (`Discards`) wrote nothing).

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

    readers: list[SourceReader] = []
    try:  # every source opened before any is read: one that cannot be opened fails the run before any output
        for source, jobs in zip(sources, stages):
            readers.append(SourceReader(source, live, vid_stride))
            _check_size(readers[-1], jobs)
    except BaseException:
        close_all(readers)
        raise
    runs = [_Source(reader, [*outputs, status], list(jobs), status)
            for reader, outputs, jobs, status in zip(readers, sinks, stages, statuses)]
    scope = ExitStack()
    interrupted, failure = False, None
    try:
        for run in runs:
            run.reader.start(run.status, batch, poke)
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
                        result = Result(run.name, run.reader.frame_number(item, run.count), item.image, dets,
                                        fps=run.reader.rate, stream_time=item.time, captured=item.captured,
                                        wall_time=item.wall)
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
            close_all(readers)  # one wait for all the live readers, not one each
            scope.close()
    if failure is not None:
        done = ", ".join(f"{run.name}: {run.count}" for run in runs)
        raise InputError(f"detection stopped ({done} frames done): {failure}") from failure
    return [run.report(interrupted) for run in runs]


def _check_size(reader: SourceReader, jobs: Sequence[Stage]) -> None:
    """Refuse a source whose frames its stages do not fit (a line in pixels outside them), naming it; a source whose
    size is not known yet (a camera still connecting) is checked by its stages at its first frame."""
    if min(reader.size) > 0:
        for stage in jobs:
            if isinstance(stage, ChecksSize):
                try:
                    stage.check_size(*reader.size)
                except InputError as exc:
                    raise InputError(f"{reader.name}: {exc}") from None


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
                    item = run.reader.buffer.take_ready()
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
        dropped = sum(run.reader.dropped for run in self.runs)
        return f"{dropped} dropped for newer" if dropped else ""

    def __enter__(self) -> Progress:
        return self.line

    def __exit__(self, *exc) -> None:
        self.line.close()
