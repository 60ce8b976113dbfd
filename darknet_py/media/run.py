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

import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Sequence

import numpy as np

from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import DarknetWarning, ImageFitError, InputError
from ..core.in_flight import in_order, iter_batches
from ..core.progress import Progress
from ..pipeline.darknet_image import unreadable_stand_in
from ..pipeline.detections import Detections
from .live_reader import LiveSourceOptions
from .sinks import Result, Sink, Stage, finish_all, takes_unreadable, through_stages, write_all
from .source_status import SourceStatus
from .video import VideoReport, run_video
from .video_source import live_source
from .watched_folder import WatchedFolder

if TYPE_CHECKING:
    from ..pipeline.backend import Backend

DEFAULT_CALLS = 2  # detect calls at once for files (plan_calls) and the server: 2 cores share them, a bigger CPU splits its cores
DetectBatch = Callable[[list[np.ndarray]], list[Detections]]
"""BGR images → one Detections per image (e.g. `lambda images: model.detect(images, 0.25, 0.45)`)."""


@dataclass(frozen=True)
class RunReport:
    """How a run went.

    Args:
        done (int): images, or video frames, detected and written.
        interrupted (bool): a stop ended the run early (what was done is written).
        video (VideoReport or None): the video's details (fps, size, frames skipped); None for images.
        unreadable (int): image files that could not be read and were skipped.
        watched (bool): the images came from a watched folder (--watch), whose run ends only when it is stopped.
    """

    done: int
    interrupted: bool
    video: VideoReport | None = None
    unreadable: int = 0  # images that could not be read, skipped (each named in a warning)
    watched: bool = False

    def summary(self) -> str:
        """The run's line for the terminal, e.g. `12 frames (320x180, 25 fps)` or `3 image(s)`."""
        if self.video is None:
            skipped = f", {self.unreadable} unreadable skipped" if self.unreadable else ""
            if self.watched:
                return f"{self.done} image(s){skipped}, watched until stopped"
            return f"{self.done} image(s){skipped}" + (", interrupted — the images done are saved" if self.interrupted
                                                        else "")
        report = self.video
        done = f"{report.frames} frames ({report.size[0]}x{report.size[1]}, {report.fps:g} fps)"
        if report.skipped:
            done += f", {report.skipped} unreadable frame(s) skipped"
        if report.stride > 1:
            done += f", every {_ordinal(report.stride)} frame"
        if report.dropped_frames:
            done += f", {report.dropped_frames} dropped for newer ones"
        if report.drops:
            done += f", {report.drops} connection(s) lost"
        return f"{done}, interrupted — the outputs hold the frames done" if self.interrupted else done


def plan_calls(model: Backend, kind: str, items: list[str] | str | int, requested: int | None) -> tuple[Backend, int]:
    """The backend a run detects with, and how many of its calls run at once (in_flight.in_order).

    Args:
        model (Backend): the loaded model.
        kind (str): "images" or "video" (source_items' first value).
        items (list of str, str or int): the images, or the video file, stream URL or camera index.
        requested (int or None): calls at once asked for (`--in-flight`); None: DEFAULT_CALLS for image files and
            video files where the backend has a twin for it (`Backend.concurrent`) and the CPU 2 cores or more,
            else 1. Cameras, streams and a watched folder keep 1 unless asked: each result's delay would grow.

    Returns:
        tuple: (backend, calls): *model* itself with 1, or its concurrent twin with calls above 1.

    Raises:
        InputError: *requested* is below 1.
    """
    check_in_flight(requested)
    # a camera's frame, a watched folder's image: each result wanted as soon as it can be (more calls would each
    # wait for the next item)
    live = (kind == "video" and live_source(items)) or isinstance(items, WatchedFolder)
    calls = requested if requested is not None else 1 if live else default_calls()
    return concurrent_calls(model, calls, warn=requested is not None)


def default_calls() -> int:
    """Detect calls at once where none are asked for and each result's delay does not count (files, the server's
    requests): DEFAULT_CALLS on a CPU of 2 cores or more, else 1."""
    return DEFAULT_CALLS if (os.cpu_count() or 1) >= 2 else 1


def concurrent_calls(model: Backend, calls: int, warn: bool = True) -> tuple[Backend, int]:
    """The backend that runs *calls* detect() calls at once (`Backend.concurrent`), and how many it runs.

    Args:
        model (Backend): the loaded model.
        calls (int): calls at once wanted (1 or more).
        warn (bool): warn when the backend runs one at a time (where a user asked for more with --in-flight).

    Returns:
        tuple: (backend, calls): *model* itself with 1, or its concurrent twin with *calls* above 1.
    """
    check_in_flight(calls)
    if calls == 1:
        return model, 1
    twin = model.concurrent(calls)
    if twin is None:
        if warn:
            warnings.warn(f"the {model.traits.name} backend on {model.traits.device} cannot run {calls} detections at "
                          f"once here: --in-flight {calls} is ignored, one runs at a time (onnxruntime and OpenVINO on "
                          "the CPU take it, and eager float32 torch on the CPU with a torch thread per detection)",
                          DarknetWarning, stacklevel=3)
        return model, 1
    return twin, calls


def check_in_flight(requested: int | None) -> None:
    """InputError unless *requested* (`--in-flight`) is None or at least 1: checked before the model loads."""
    if requested is not None and requested < 1:
        raise InputError(f"--in-flight must be at least 1, got {requested}")


def run_source(kind: str, items: list[str] | str | int, detect_batch: DetectBatch, sinks: Sequence[Sink],
               batch: int = 1, sequence: Callable[[], ContextManager] | None = None,
               stages: Sequence[Stage] = (), channels: int = 3, live: LiveSourceOptions = LiveSourceOptions(),
               status: SourceStatus | None = None, in_flight: int = 1, vid_stride: int = 1) -> RunReport:
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
        in_flight (int): detect_batch calls at once (see `plan_calls`); above 1 it must be safe to call from
            several threads.
        vid_stride (int): a video's every Nth frame (see run_video); images ignore it.

    Returns:
        RunReport: how many were done, and whether a stop ended the run.
    """
    if kind == "images":  # a watched folder's images are taken as they come
        paths = items if isinstance(items, WatchedFolder) else list(items)
        return run_images(paths, detect_batch, sinks, batch, stages, channels, in_flight)
    report = run_video(items, detect_batch, batch=batch, sinks=sinks, sequence=sequence, stages=stages, live=live,
                       status=status, in_flight=in_flight, vid_stride=vid_stride)
    return RunReport(report.frames, report.interrupted, report)


def run_images(paths: Iterable[str], detect_batch: DetectBatch, sinks: Sequence[Sink], batch: int = 1,
               stages: Sequence[Stage] = (), channels: int = 3, in_flight: int = 1) -> RunReport:
    """Detect on image files, *batch* at a time, each decoded once (detection, drawing and sinks share it).

    A grey network (`channels` 1) gets each file as darknet reads it for one (cv2.IMREAD_GRAYSCALE), and the
    sinks that grey image as BGR (the network saw no colour: the annotated image shows none either).

    Args:
        paths (iterable of str): image files; each result's `source` is its path as given here. A list is counted
            (progress on stderr); another iterable (a WatchedFolder) is taken as it gives them, without end, each
            unreadable one warned about (and its stand-in written to the sinks that take one) at once.
        detect_batch (DetectBatch): images → their Detections.
        sinks (sequence of Sink): where the results go; all are finished when the run ends, however it ends.
        batch (int): images per detect_batch call.
        stages (sequence of Stage): jobs between detection and the sinks, in order.
        channels (int): the network's input channels, 1 or 3 (darknet reads image files with no others).
        in_flight (int): batches read and detected at once, on as many threads (in_flight.in_order); results reach
            the sinks in order, from this thread.

    Returns:
        RunReport: images done, and whether a stop ended the run.

    Raises:
        InputError: no image could be read (the first one's reason). One that cannot be read among others is
            skipped with a warning, as darknet goes on past "Cannot load image" (and --ray records the error).
    """
    # torch comes with these: imported when images are read, so that the command line builds its options (and
    # answers --help) without it
    from ..pipeline.preprocess import as_bgr8, read_image

    stand_ins = any(takes_unreadable(sink) for sink in sinks)  # darknet's lists hold the images it cannot load too

    def read_and_detect(chunk: list[str]) -> tuple[list[str], list[np.ndarray], list[Detections], float,
                                                   list[str | None], list[str]]:
        """The chunk's images detected: (their paths, pixels, detections, ms each, why each is a stand-in (None: read)),
        and why each image of the chunk that could not be read could not (stand-in or not)."""
        paths, images, stand_in_for, failures = [], [], [], []
        for path in chunk:
            try:
                image, failure = read_image(path, channels), None
            except InputError as exc:  # undecodable, too large, gone since listed: this image only
                failure = str(exc)
                failures.append(failure)
                if not stand_ins:
                    continue
                image = unreadable_stand_in(channels)
            paths.append(path)
            images.append(image)
            stand_in_for.append(failure)
        started = time.perf_counter()
        try:
            found = detect_batch(images) if images else []
        except ImageFitError as error:  # an option this image cannot take (a --roi beyond its size): name the image
            if len(paths) != 1:
                raise
            raise ImageFitError(f"{hide_credentials(paths[0])}: {error}") from None
        milliseconds = (time.perf_counter() - started) * 1000 / max(len(images), 1)
        return paths, images, found, milliseconds, stand_in_for, failures

    done, interrupted, unreadable, warned, ended = 0, False, [], 0, False
    held: list[Result] = []  # unreadable images' stand-ins, written once an image was read (if none is: the error)
    # a folder's or a list's progress (count, rate, ETA) on stderr, as a video's; none for one image
    endless = not isinstance(paths, Sequence)
    progress = Progress("detect", len(paths), unit="images") if not endless and len(paths) > 1 else None
    try:
        with in_order(read_and_detect, iter_batches(paths, batch), in_flight) as detected:
            for chunk, (detected_paths, images, found, milliseconds, stand_in_for, failures) in detected:
                unreadable += failures
                if None in stand_in_for or endless:  # once an image was read: if none is, the run's error says it
                    for failure in unreadable[warned:]:
                        warnings.warn(f"{failure}; skipped", DarknetWarning, stacklevel=2)
                    warned = len(unreadable)
                for path, image, dets, failure in zip(detected_paths, images, found, stand_in_for):
                    dets.source = shown = hide_credentials(path)  # an image URL's user and password: nowhere
                    if failure is not None:
                        stand_in = Result(shown, None, image, dets, milliseconds=milliseconds, unreadable=failure)
                        if endless:  # no end to wait for: listed now (a watched folder's index)
                            with interrupt.deferred():
                                write_all(sinks, stand_in)
                        else:
                            held.append(stand_in)
                        continue
                    with interrupt.deferred():  # an image detected is saved whole before a stop takes effect
                        for stand_in in held:
                            write_all(sinks, stand_in)
                        held.clear()
                        write_all(sinks, through_stages(stages, Result(shown, None, as_bgr8(image), dets,
                                                                       milliseconds=milliseconds)))
                    done += 1
                    events.emit(f"images-done {done}")
                if progress is not None:
                    progress.update(len(chunk))  # its unreadable images too: they are done with
        if done:  # the images after the last one read
            for stand_in in held:
                write_all(sinks, stand_in)
        ended = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None and done:  # its last line: how far it got (a run that read nothing is its error)
            progress.close()
        # nothing written, for none could be read or the run failed at its first image: no files of nothing
        nothing = done == 0 and not interrupted and (bool(unreadable) or not ended)
        with interrupt.deferred():  # a stop now waits for the collected files (records JSON, result.json)
            finish_all([*stages, *sinks], nothing_read=nothing)
    for failure in unreadable[warned:] if done else ():  # after the last image read
        warnings.warn(f"{failure}; skipped", DarknetWarning, stacklevel=2)
    if unreadable and done == 0 and not interrupted:
        raise none_readable(unreadable)
    return RunReport(done, interrupted, unreadable=len(unreadable), watched=isinstance(paths, WatchedFolder))


def none_readable(failures: list[str]) -> InputError:
    """The error of a run where no image could be read (detect, classify), from each image's reason."""
    return InputError(failures[0] if len(failures) == 1 else f"none of the {len(failures)} images could be read (the "
                      f"first: {failures[0]})")


def _ordinal(n: int) -> str:
    """2nd, 3rd, 4th, 11th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
