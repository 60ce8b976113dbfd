"""Result sinks: every place a detection run's results go, each written by one class, for every caller.

A run (media/run.py, the CLI, the Ray driver) makes one `Result` per image or video frame and hands it
to each sink in turn; when the source ends, or stops on Ctrl-C or an error, it calls `finish()` on every
sink (`finish_all`), which leaves complete files::

    sinks = [ExtOutputSink(), RecordsJsonSink(out / RECORDS_JSON), AnnotatedImagesSink(out)]
    try:
        for path in paths:
            image = read_image(path)
            write_all(sinks, Result(path, None, image, model.detect(image)[0]))
    finally:
        finish_all(sinks)

Files appear whole or not at all (darknet_py.core.fileio): per-result files (labels, annotated images)
as each result is written, collected ones (records JSON, darknet's result.json, the annotated video)
on finish(). Some grow as the run goes, for sources that run until stopped: detections.jsonl a whole line
a result (RecordsLinesSink; events.jsonl and the MOT file likewise, tracking_sinks), and a camera's H.264 recording
a fragment at a time (AnnotatedVideoSink; a file per segment with --segment, media.recording).
The annotated image is drawn once, by the first sink that needs it, and shared.

A live view (darknet_py.live.LiveView) is a sink too: its write() publishes the frame, its finish()
ends the streams.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Protocol, runtime_checkable

import cv2
import numpy as np

from ..core import interrupt
from ..core.credentials import hide_credentials
from ..core.dates import utc_stamp, utc_text
from ..core.errors import DarknetWarning, InputError
from ..core.fileio import LinesFile, atomic_write, free_path, write_image
from ..pipeline.detections import Detections
from .background_writer import BackgroundWriter
from .darknet_json import darknet_frame_text, darknet_json_file
from .recording import RecordingFile, SegmentedRecording, Segmenting, recording
from .sources import annotated_name, image_name, video_stem  # video_stem: imported from here by other modules too
from .video_writer import default_codec

RECORDS_JSON = "detections.json"  # --save-json: the records of every image or frame
RECORDS_JSONL = "detections.jsonl"  # --save-json jsonl (and --ray): the same records, a line each, as they come
DARKNET_JSON = "result.json"  # --save-json darknet: the name darknet's docs give `detector test -out`
LABELS_DIR = "labels"  # --save-txt
DEFAULT_FPS = 25.0  # a video whose header gives no frame rate is written at this one
WINDOW_TITLE = "darknet-py"


@dataclass(eq=False)
class Result:
    """One detected image or video frame: what every sink is given.

    Args:
        source (str): the source as given: an image's path, or the video file, stream URL or camera
            index of a frame.
        frame (int or None): the frame's 0-based index in its video; None for an image.
        image (ndarray[H, W, 3]): the BGR image detected on (not modified by any sink).
        detections (Detections): what was found in it.
        fps (float or None): the video's frame rate; None for an image.
        milliseconds (float or None): detection time of this image (its batch's time shared out), for
            darknet's "Predicted in" line; None when not measured.
        stream_time (float or None): a live source's frame time in seconds since the run's first frame, gaps
            included (see live_reader); None: frame / fps (a file) or an image.
        captured (float or None): a live source's frame: when the camera sent it, in time.monotonic() seconds by
            the stream's clock (see live_reader); the source's figures measure the detection's lag from it.
        wall_time (float or None): a live source's frame: its date, epoch seconds (this machine's clock when the run's
            first frame came, plus `stream_time`; see live_reader.Decoded); None: a file's frame or an image.
        unreadable (str or None): why an image could not be read: `image` is then darknet's stand-in for it
            (darknet_image.unreadable_stand_in) and `detections` what was found on that, and only the sinks that
            reproduce darknet's lists of every image given (ListsUnreadable) are handed it; None: a real image.
        output_name (str or None): the name an image's outputs take (`name`) where its file's name is not enough: a
            watched folder's image in a subfolder, `2026-12-07_0001.jpg` (watched_folder); None: the file's name.
    """

    source: str
    frame: int | None
    image: np.ndarray
    detections: Detections
    fps: float | None = None
    milliseconds: float | None = None
    stream_time: float | None = None
    captured: float | None = None
    wall_time: float | None = None
    unreadable: str | None = None
    output_name: str | None = None
    _annotated: np.ndarray | None = field(default=None, init=False, repr=False)
    # drawn once even when two threads want it at once (the recording's encoder and the clips' each draw in theirs)
    _draw_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def annotated(self) -> np.ndarray:
        """The image with boxes and labels, drawn on first use and shared by every sink after that.

        Returns:
            ndarray[H, W, 3]: a BGR copy of `image` with the detections drawn.
        """
        return self._drawn_once(lambda: self.detections.draw(self.image))

    def _drawn_once(self, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """`_annotated`, made by *draw* the first time, in whichever thread asks first; the others wait for it."""
        if self._annotated is None:
            with self._draw_lock:
                if self._annotated is None:
                    self._annotated = draw()
        return self._annotated

    @property
    def drawn(self) -> np.ndarray | None:
        """The annotated image if a sink has drawn it already, else None (a live view then draws it on its
        viewers' threads, never in the detection loop)."""
        return self._annotated

    @property
    def time(self) -> float | None:
        """A video frame's time in the stream, in seconds (a live source's own, else frame / fps); None for an image."""
        if self.stream_time is not None:
            return self.stream_time
        return None if self.frame is None or not self.fps else self.frame / self.fps

    @property
    def watched_image(self) -> bool:
        """Whether this is an image of a watched folder (--watch): an image (no frame) dated by its file's time."""
        return self.frame is None and self.wall_time is not None

    @property
    def utc(self) -> str | None:
        """A live source's frame's date as ISO 8601 UTC to the millisecond (`2026-12-07T08:05:22.585Z`); None for a
        file's frame or an image."""
        return None if self.wall_time is None else utc_text(self.wall_time)

    def stream_fields(self) -> dict:
        """What a live JSON stream adds to darknet's frame object (a counting stage's running counts); none here."""
        return {}

    @property
    def name(self) -> str:
        """What darknet's lines call it and its outputs are named after: an image's file name (or `output_name`), or a
        frame's `STEM:INDEX` (e.g. `walk:12`)."""
        if self.frame is None:
            return self.output_name or image_name(self.source)
        return f"{video_stem(self.source)}:{self.frame}"


class Sink(Protocol):
    """Where results go: one write() per image or frame, then one finish(), also after Ctrl-C or an error.

    Two things a sink may also do, each its own protocol below: list the images that could not be read
    (ListsUnreadable), and write nothing when the run read nothing (Discards).
    """

    def write(self, result: Result) -> None:
        """Take one image's or frame's result (called from the detection loop: must not block)."""
        ...

    def finish(self) -> None:
        """The run has ended, whole or not: complete every file (atomically) and release what is held."""
        ...


@runtime_checkable
class ListsUnreadable(Protocol):
    """A sink also written the stand-in result of each image that could not be read (Result.unreadable), in its place
    in the order, when `takes_unreadable` is true: darknet's `detector test` goes on past "Cannot load image" with a
    blank image, and its lists (result.json, -ext_output) hold that image too."""

    takes_unreadable: bool


@runtime_checkable
class Discards(Protocol):
    """A sink that collects results into one file: when the run fails without reading anything, `discard()` is
    called instead of finish(), and no file of nothing is written beside the error (finish_all)."""

    def discard(self) -> None: ...


@runtime_checkable
class ChecksSize(Protocol):
    """A stage whose settings must fit the frames (lines and zones given in pixels): `check_size` refuses a frame size
    they do not fit, called when a source has been opened, before any of it is detected (run_many: among several
    sources, one that does not fit stops the run before any output, as one that cannot be opened does)."""

    def check_size(self, width: int, height: int) -> None: ...


class Stage(Protocol):
    """A job between detection and the sinks (tracking, counting, redaction, ...): it sees every result in
    order and returns it, changed or not, for the next stage and then the sinks."""

    def process(self, result: Result) -> Result:
        """Take one image's or frame's result, in order; return what the next stage and the sinks get."""
        ...

    def finish(self) -> None:
        """The run has ended, whole or not (stages are finished before the sinks)."""
        ...


def through_stages(stages: Iterable[Stage], result: Result) -> Result:
    """*result* after each of *stages*, in order."""
    for stage in stages:
        result = stage.process(result)
    return result


def write_all(sinks: Iterable[Sink], result: Result) -> None:
    """Hand *result* to each of *sinks*, in order (an unreadable image's stand-in only to those that take it)."""
    for sink in sinks:
        if result.unreadable is None or takes_unreadable(sink):
            sink.write(result)


def takes_unreadable(sink: Sink) -> bool:
    """Whether *sink* lists an image that could not be read, as darknet does (ListsUnreadable)."""
    return isinstance(sink, ListsUnreadable) and sink.takes_unreadable


def finish_all(sinks: Iterable[Sink], nothing_read: bool = False) -> None:
    """Finish every sink, in order, even when one of them fails; then raise the first failure.

    Args:
        sinks (iterable of Sink): the sinks (and stages) of the run.
        nothing_read (bool): the run fails without a single image or frame read (none could be): a sink that
            collects results into one file (Discards) writes none, rather than an empty list beside the error.
    """
    failure: BaseException | None = None
    for sink in sinks:
        try:
            if nothing_read and isinstance(sink, Discards):
                sink.discard()
            else:
                sink.finish()
        except BaseException as exc:  # noqa: BLE001 - the other sinks' files are finished first
            failure = failure or exc
    if failure is not None:
        raise failure


def detection_record(detections: Detections, source: str, frame: int | None = None, time: float | None = None) -> dict:
    """The records-JSON entry of one image or frame, as `detections.json` (the CLI) and
    `detections.jsonl` (the Ray driver) hold it.

    Args:
        detections (Detections): the image's or frame's detections.
        source (str): the image's path, or the video's, as given.
        frame (int or None): the 0-based frame index of a video frame; None for an image.
        time (float or None): the frame's time in seconds (given for tracked frames); None: not recorded.

    Returns:
        dict: `{"source", "width", "height", "detections": [{"class_id", "name", "score", "box"}, ...]}`, boxes
        xyxy in pixels, plus `"frame"` for a video frame, `"time"` when given, and each detection's `"track_id"`
        when tracked (Detections.to_list).
    """
    width, height = detections.image_size
    entry = {"source": source, "width": int(width), "height": int(height), "detections": detections.to_list()}
    if frame is not None:
        entry["frame"] = int(frame)
    if time is not None:
        entry["time"] = round(float(time), 6)
    return entry


def labels_name(result: Result) -> str:
    """The YOLO label file of an image (`dog.jpg` → `dog.txt`) or a frame (`walk.mp4` frame 3 → `walk_3.txt`)."""
    if result.frame is None:
        return Path(result.name.replace(":", "_")).stem + ".txt"
    return f"{frame_file_stem(result)}.txt"


def frame_file_stem(result: Result) -> str:
    """What a video frame's own files (labels, crops, a dataset's image) are named after: `STEM_FRAME` (`walk_3`);
    a camera's or stream's frame `STEM_DATE` (its `utc`, `cam_20261207T082411.557Z`), since a restarted run numbers
    its frames from 0 again and must not write over an earlier run's files."""
    stem = video_stem(result.source).replace(":", "_")
    return f"{stem}_{result.frame if result.wall_time is None else utc_stamp(result.wall_time)}"


# -- collected files, written on finish() (and the records' line file, written as it goes) ---------------------
class RecordsJsonSink:
    """`detections.json`: a JSON list of `detection_record()`s, one per image or frame, written whole on finish().

    Args:
        path (str or PathLike): the file to write.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.file = RunFile(path)
        self.records: list[dict] = []

    @property
    def path(self) -> Path:
        return self.file.path

    def write(self, result: Result) -> None:
        if not self.records:
            warn_if_live(result, "--save-json")
        self.file.choose(result)
        self.records.append(result_record(result))

    def finish(self) -> None:
        if self.file.untouched:  # a run that gave nothing (a camera still down, a stop at once)
            return
        with interrupt.deferred(), atomic_write(self.path, "w") as handle:
            json.dump(self.records, handle)

    def discard(self) -> None:
        """The run read nothing: no file (see finish_all)."""


def warn_if_live(result: Result, flag: str) -> None:
    """At a collected JSON's first result: a warning when it comes from a camera or stream, or a watched folder
    (`continues`), whose run goes on until it is stopped, every record held in memory until then: `--save-json jsonl` writes each as it comes.

    Args:
        result (Result): the first image's or frame's result.
        flag (str): the option that asked for the file (`--save-json`, `--save-json darknet`).
    """
    if continues(result):  # a camera's or stream's frame, a watched folder's image: runs that end when stopped
        warnings.warn(f"{hide_credentials(str(result.source))} runs until it is stopped: {flag} holds every frame's record "
                      "in memory and writes its file when the run ends; --save-json jsonl appends each record to "
                      "detections.jsonl as it comes", DarknetWarning, stacklevel=3)


def result_record(result: Result) -> dict:
    """The records-JSON entry of a result (detections.json, detections.jsonl): `detection_record()` with the frame's
    time where it tells something frame / fps does not: a tracked frame's (--track), a live source's (its gaps), and
    a live source's frame's date (`utc`)."""
    timed = result.detections.track_ids is not None or result.stream_time is not None
    record = detection_record(result.detections, result.source, result.frame, result.time if timed else None)
    if result.wall_time is not None:  # a live source's frame: its date, formatted once
        record["utc"] = result.utc
    return record


class RecordsLinesSink:
    """`detections.jsonl` (--save-json jsonl): one `detection_record()` per line, each appended and flushed as its
    image or frame is done, the records of `detections.json` in the file `--ray` writes. A run that dies (killed,
    out of memory) keeps every record written before, and a camera that runs for weeks holds none of them in
    memory; a reader takes the complete lines.

    Args:
        path (str or PathLike): the file, made (empty) with the first image or frame; one already there is replaced —
            a camera's or stream's is appended to (see `continues`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lines: LinesFile | None = None

    def write(self, result: Result) -> None:
        self._lines = self._lines or LinesFile(self.path, replace=not continues(result))
        self._lines.append([json.dumps(result_record(result))])

    def finish(self) -> None:
        if self._lines is not None:
            self._lines.close()


def continues(result: Result) -> bool:
    """Whether a run's line files (records, events, a dataset's list) go on from an earlier run's into the same folder
    rather than replace them: for a camera or stream (`captured` set), whose run is the stream's next stretch — a
    service restarted after a crash or a reboot loses nothing it wrote, each line dated by its `utc` — and for a
    watched folder's image (dated, `wall_time`, with no frame: --watch goes on where it stopped), but not for a file,
    whose rerun does the same work again."""
    return result.captured is not None or result.watched_image


class RunFile:
    """The name of a file that holds one run's whole output (detections.json, result.json, coco.json, a MOT sequence),
    chosen at the run's first result: *path*, or for a run that goes on from an earlier one into its folder
    (`continues`: a camera's or stream's, a watched folder's) the first free `STEM-2.EXT`, `STEM-3.EXT`… beside the
    earlier run's, as its recording goes — a restarted service writes over nothing the last run wrote; and a run that
    gives no result writes nothing over a file already there (`untouched`).

    Args:
        path (str or PathLike): the file's own name.
        suffix (str or None): its extension where that has several parts (core.fileio.free_path).
    """

    def __init__(self, path: str | os.PathLike[str], suffix: str | None = None) -> None:
        self.path, self.suffix, self.chosen = Path(path), suffix, False

    def choose(self, result: Result) -> Path:
        """The file's name for this run, chosen at its first result (*result*) and kept."""
        if not self.chosen:
            self.chosen = True
            self.path = free_path(self.path, self.suffix) if continues(result) else self.path
        return self.path

    @property
    def untouched(self) -> bool:
        """No result came and a file is there (an earlier run's): finish() writes nothing over it."""
        return not self.chosen and self.path.exists()


class DarknetJsonSink:
    """darknet's `result.json` (`detector test -out`): one object per image or frame, numbered from 1,
    images with their `filename`; written whole on finish() (see darknet_json). An image that could not be read has
    its object too, as in darknet's file: the objects found on darknet's blank stand-in (none, for a trained
    detector), and the numbers after it stay darknet's.

    Args:
        path (str or PathLike): the file to write.
    """

    takes_unreadable = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.file = RunFile(path)
        self.frames: list[str] = []

    @property
    def path(self) -> Path:
        return self.file.path

    def write(self, result: Result) -> None:
        if not self.frames:
            warn_if_live(result, "--save-json darknet")
        self.file.choose(result)
        filename = result.source if result.frame is None else None
        self.frames.append(darknet_frame_text(result.detections, len(self.frames) + 1, filename))

    def finish(self) -> None:
        if self.file.untouched:  # a run that gave nothing writes nothing over an earlier run's file
            return
        with interrupt.deferred(), atomic_write(self.path, "w") as handle:
            handle.write(darknet_json_file(self.frames))

    def discard(self) -> None:
        """The run read nothing: no file (see finish_all)."""


class AnnotatedVideoSink:
    """The annotated video: opened on the first frame at the source's frame rate and size, and finished
    on finish() into a playable file of the frames written, whatever ended the run (written to a
    temporary name, renamed into place when finished; a camera's or stream's H.264 recording in place instead,
    fragmented; see media.recording). Given *segments*, a camera's or stream's recording is a file per segment
    of its time instead (recording.SegmentedRecording). Frames are drawn and encoded in a thread of their own
    (background_writer), so both overlap detecting the next frames.

    Args:
        path (str or PathLike): the video file; its extension is the container (see video_writer).
        codec (str or None): "h264", "mp4v" or "mjpg"; None: the default for the extension.
        segments (Segmenting or None): how a live recording is cut (--segment); None: one file. A file's video is
            always one file (a warning says so when segments were asked for).
    """

    def __init__(self, path: str | os.PathLike[str], codec: str | None = None,
                 segments: Segmenting | None = None) -> None:
        self.path = os.fspath(path)
        self.codec = codec
        self.segments = segments
        self.frames = 0  # frames in the file: counted as encoded, final once finish() returns
        self._writer: BackgroundWriter | None = None
        self._segmented: SegmentedRecording | None = None
        self._segment_time = 0.0  # the stream time the segment being written began at

    def write(self, result: Result) -> None:
        if self._writer is None:
            self._open(result)
        elif self._segmented is not None and result.time - self._segment_time >= self._segmented.segmenting.seconds:
            self._begin_segment(result)
        # drawn in the encoder thread unless a sink before this one has drawn it (Result.annotated is shared)
        drawn = result.drawn
        self._writer.write(drawn if drawn is not None else (lambda: result.annotated), result.time)

    def _open(self, result: Result) -> None:
        suffix = os.path.splitext(self.path)[1]
        size = (result.image.shape[1], result.image.shape[0])
        codec = self.codec or default_codec(suffix, size)
        live = result.captured is not None
        if self.segments is not None and not live:
            warnings.warn(f"{hide_credentials(result.source)} is a file: its annotated video is one file "
                          "(--segment cuts the recordings of cameras and live streams)", DarknetWarning, stacklevel=2)
        inner = recording(self.path, result.fps or DEFAULT_FPS, size, codec, live, self.segments)
        if isinstance(inner, RecordingFile):
            self.path = inner.path  # a camera's, beside an earlier run's: cam-2.mp4
        else:
            # the first segment begun here, not in the encoder thread: a size the codec refuses is refused before
            # any frame, in its own words
            self._segmented = inner
            self._segment_time = result.time
            inner.begin(result.frame, result.time, _date(result))
        self._writer = BackgroundWriter(inner)

    def _begin_segment(self, result: Result) -> None:
        self._segment_time = result.time
        self._writer.call(functools.partial(self._segmented.begin, result.frame, result.time, _date(result)))

    def finish(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.release()  # every frame handed over encoded, then a finished, playable file of them
        finally:
            self.frames = writer.written


def _date(result: Result) -> float:
    """A live frame's date (epoch seconds): the records' `utc`, so a segment's name and its first record's agree."""
    return result.wall_time if result.wall_time is not None else time.time()


# -- per-result files and lines -------------------------------------------------------------------------
class YoloLabelsSink:
    """`labels/NAME.txt` per image or frame: YOLO label lines plus the score (`Detections.to_yolo_txt`).

    Args:
        folder (str or PathLike): where the label files go.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def write(self, result: Result) -> None:
        with atomic_write(self.folder / labels_name(result), "w") as handle:
            handle.write(result.detections.to_yolo_txt())

    def finish(self) -> None:
        pass


class AnnotatedImagesSink:
    """Annotated copies of images, under the source's file name (plus `.jpg` where OpenCV cannot write
    its extension; see sources.annotated_name); a video frame as `STEM_INDEX.jpg`.

    Args:
        folder (str or PathLike): where the images go.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def write(self, result: Result) -> None:
        name = annotated_name(result.name) if result.frame is None else f"{video_stem(result.source)}_{result.frame}.jpg"
        write_image(self.folder / name, result.annotated)

    def finish(self) -> None:
        pass


class ExtOutputSink:
    """darknet's `-ext_output` lines: for an image `PATH: Predicted in N milli-seconds.`, for a frame
    `STEM:INDEX: N objects`, then one line per box and class (`Detections.ext_output`). An image that could not be
    read has its lines too, as darknet prints them for its blank stand-in.

    Args:
        stream (file or None): where the lines go; None: standard output at the time of each write.
    """

    takes_unreadable = True

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def write(self, result: Result) -> None:
        dets = result.detections
        if result.frame is not None:
            print(f"{result.name}: {len(dets)} objects", file=self.stream)
        elif result.milliseconds is not None:
            print(f"{result.source}: Predicted in {result.milliseconds:f} milli-seconds.", file=self.stream)
        if len(dets):
            print(dets.ext_output(), file=self.stream)

    def finish(self) -> None:
        pass


class ShowSink:
    """Each annotated image in a window (`--show`; needs a display).

    Args:
        title (str): the window's title.
    """

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        self.title = title

    def write(self, result: Result) -> None:
        try:
            cv2.imshow(self.title, result.annotated)
            cv2.waitKey(1)
        except cv2.error:
            raise InputError("--show needs a display; none is available here") from None

    def finish(self) -> None:
        pass

