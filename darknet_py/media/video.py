"""Video/stream/webcam detection: decode in a background thread, detect in batches, hand each
frame's result to the sinks (sinks.py: the annotated video, records, labels, a live view, ...).
The source is opened and read ahead by source_reader.py: files keep every frame; live sources (cameras,
streams) are reconnected after a drop (live_reader.py), and only the newest frame kept unless asked otherwise.
The sinks are always finished: on Ctrl-C or an error the frames done so far form a playable
video, renamed into place; the caller is told how far it got.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, ContextManager, Sequence

import numpy as np

from ..core import events, interrupt
from ..core.errors import InputError
from ..core.in_flight import in_order
from ..core.progress import Progress
from ..pipeline.detections import Detections
from .live_reader import LiveSourceOptions
from .sinks import AnnotatedVideoSink, Result, Sink, Stage, finish_all, through_stages, write_all
from .source_reader import SourceReader
from .source_status import SourceStatus


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
    stride: int = 1  # every how many frames of the source one was detected (--vid-stride)
    no_frames: str | None = None  # one of several sources (run_many), a file that gave no frame: why; else None


def run_video(source: str | int, detect_batch: Callable[[list[np.ndarray]], list[Detections]],
              output: str | None = None, batch: int = 1, *, sinks: Sequence[Sink] = (), codec: str | None = None,
              sequence: Callable[[], ContextManager] | None = None, stages: Sequence[Stage] = (),
              live: LiveSourceOptions = LiveSourceOptions(), status: SourceStatus | None = None,
              in_flight: int = 1, vid_stride: int = 1) -> VideoReport:
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
        vid_stride (int): detect every Nth frame (source_reader.SourceReader's stride): each Result keeps its frame's
            number and time in the source, and its `fps` is the source's / N (an annotated video plays at the
            source's speed).

    Returns:
        VideoReport: frames done, the source's fps and size, whether a stop ended it, the annotated video, and for
        a live source the frames dropped, the connections lost and why it gave up.
    """
    live.check()
    sinks = ([AnnotatedVideoSink(output, codec)] if output else []) + list(sinks)
    videos = [sink for sink in sinks if isinstance(sink, AnnotatedVideoSink)]
    reader = SourceReader(source, live, vid_stride)
    name, fps = reader.name, reader.rate
    status = status or SourceStatus(name)
    sinks.append(status)  # last: it counts the frames every other sink has written
    reader.start(status, batch)
    progress = Progress(os.path.basename(name) or name, reader.expected_frames or None, approximate=True,  # headers lie
                        detail=(lambda: f"{reader.dropped} dropped for newer") if reader.live and not live.keep_all_frames
                        else None)
    count, interrupted = 0, False
    failure: Exception | None = None
    scope = ExitStack()
    try:
        try:
            if sequence is not None:
                scope.enter_context(sequence())
            detected = in_order(lambda pending: detect_batch([item.image for item in pending]), reader.batches(batch),
                                in_flight)
            for pending, found in scope.enter_context(detected):
                for item, dets in zip(pending, found):
                    with interrupt.deferred():  # a frame's outputs are written whole before a stop takes effect
                        result = Result(name, reader.frame_number(item, count), item.image, dets, fps=fps,
                                        stream_time=item.time, captured=item.captured, wall_time=item.wall)
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
                # a file with no frame, or a run that failed before its first frame was written: no empty outputs
                empty = count == 0 and not interrupted and (failure is not None or reader.no_frames(count) is not None)
                finish_all([*stages, *sinks], nothing_read=empty)
    finally:
        scope.close()
        reader.close()
        progress.close()
    if failure is None and not interrupted and (empty := reader.no_frames(count)) is not None:
        raise empty  # not "0 frames", as if the video were empty: say what is wrong
    if failure is not None:
        if count == 0 and isinstance(failure, InputError):
            raise failure  # refused before any frame (e.g. a codec the first frame's size rules out): its own words
        kept = "".join(f"; {video.path} holds the {video.frames} frames done" for video in videos)
        raise InputError(f"video stopped after {count} frames: {failure}{kept}") from failure
    return VideoReport(count, reader.fps, reader.size, interrupted, videos[0].path if videos else None,
                       reader.header_frames, reader.skipped, live=reader.live, dropped_frames=reader.dropped,
                       drops=status.snapshot()["drops"], gave_up=reader.gave_up, stride=reader.stride)
