"""A detection run into its output folder, end to end: what `darknet-py detect` does on this machine once its flags
are checked and its model loaded, for one source or several. The folder is claimed (a fresh runs/detect/N, or
--output), the sinks `Outputs` asks for are made there, a live view (if any) is fed and told each source's figures,
the run goes (`run.run_source`, or `many_sources.run_many` with a subfolder per source), and whatever the run wrote
nothing into is removed again, however it ends.

    outcome = detect_into_folder("images", paths, detect_batch, Outputs(json="darknet"), names, output=None)
    for line in outcome.lines:
        print(line, file=sys.stderr)
    sys.exit(outcome.exit_code())

The command line and a script get the same folders, files and last lines from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ContextManager, Protocol, Sequence

from ..core import interrupt
from ..pipeline.tracking import counts_text
from .clips import ClipsSink
from .heatmap_sink import HeatmapSink
from .live_reader import LiveSourceOptions
from .many_sources import run_many
from .notify import NotifySink
from .outputs import Outputs, SourceItems, check_sources_kept
from .run import DetectBatch, RunReport, run_source
from .run_folders import drop_empty, folder_files, make_folders, run_folder, written_to
from .sinks import Sink, Stage
from .source_status import SourceStatus
from .sources import source_names
from .tracking_sinks import TrackingStage
from .watched_folder import WatchedFolder


class Viewer(Protocol):
    """What a run needs of a live view (darknet_py.live.LiveView is one): a sink for each source's frames, and each
    source's figures for /health and /metrics."""

    def source(self, index: int) -> Sink:
        """The sink of source *index* (0: the first, or the only one)."""

    def watch(self, status: SourceStatus) -> None:
        """Report *status* (a video source's reads, drops and lag) from now on."""


@dataclass(frozen=True)
class FolderOutcome:
    """How a run into its folder went.

    Attributes:
        reports (list of RunReport): one per source, in the order given.
        lines (list of str): the run's last lines for the terminal: each source's summary and where its files
            went, the notes of its sinks (files not written, and why), the counts of its lines and zones.
        errors (list of str): what ended a source early (a stream that gave up reconnecting, a file with no
            frame); each is a line `error: …` for the terminal. What the source did before is written.
        interrupted (bool): a stop (Ctrl-C, SIGTERM) ended the run; what was done is written.
    """

    reports: list[RunReport]
    lines: list[str]
    errors: list[str]
    interrupted: bool

    def exit_code(self) -> int:
        """The process's exit status: a stop's (130 for Ctrl-C, 143 for SIGTERM), else 1 when a source failed, else
        0."""
        if self.interrupted:
            return interrupt.exit_code()
        return 1 if self.errors else 0


def detect_into_folder(kind: str, items: SourceItems, detect_batch: DetectBatch, outputs: Outputs,
                       names: Sequence[str] | None = None, *, output: str | None = None, stages: Sequence[Stage] = (),
                       viewer: Viewer | None = None, ready: Callable[[], None] | None = None, batch: int = 1,
                       sequence: Callable[[], ContextManager] | None = None, channels: int = 3,
                       live: LiveSourceOptions = LiveSourceOptions(), in_flight: int = 1,
                       vid_stride: int = 1) -> FolderOutcome:
    """Detect on one source (as `sources.source_items` describes it) into the run's folder.

    Args:
        kind (str): "images" or "video".
        items (list of str, str, int or ImageSequence): the image paths, or the video file, stream URL, camera
            index or image sequence.
        detect_batch (DetectBatch): images → their Detections.
        outputs (Outputs): the files and views to write.
        names (sequence of str or None): the class names (coco.json's categories).
        output (str or None): the folder (--output; made with its parents if missing), or None for a fresh
            runs/detect/N.
        stages (sequence of Stage): jobs between detection and the sinks (tracking, redaction), in order.
        viewer (Viewer or None): a live view fed every result, and told a video source's figures.
        ready (callable or None): called once the folder and sinks are ready, before the first image is read (e.g.
            to wait for the live view's viewers).
        batch (int): images or frames per detect_batch call (as `run.run_source` takes it).
        sequence (callable or None): a video's recurrent-state scope (`Backend.sequence`).
        channels (int): the network's input channels: image files are read as it reads them.
        live (LiveSourceOptions): a camera's or stream's reconnects and latest-frame mode.
        in_flight (int): detect_batch calls at once; above 1 it must be safe to call from several threads.
        vid_stride (int): a video's every Nth frame; images ignore it.

    Returns:
        FolderOutcome: the report, the last lines, and the exit status.

    Raises:
        InputError: as `run.run_source` raises it (no image readable, a video that gives no frame); the folder is
            removed if the run made it and wrote nothing into it.
    """
    check_sources_kept(output, kind, items, outputs.annotated, outputs.codec)
    out, made = run_folder(output)
    try:
        before = folder_files(out, made)  # an --output folder with files (--exist-ok): tell the run's from those
        watched = isinstance(items, WatchedFolder)
        if watched:  # goes on from an earlier run's list; dates each image by its file
            items.resume_from(out)
            stages = [items, *stages]
        sinks = outputs.sinks(out, kind, items, names, stages) + ([viewer.source(0)] if viewer else [])
        # for /health and /metrics: a video's, and a folder watched for as long as a camera runs
        status = SourceStatus(str(items.folder)) if watched else SourceStatus(str(items)) if kind == "video" else None
        if watched:
            sinks.append(status)  # last, as run_video puts a video's: it counts what every other sink has written
        if viewer is not None and status is not None:
            viewer.watch(status)
        if status is not None:
            connect_status(sinks, status)
        if ready is not None:
            ready()
        report = run_source(kind, items, detect_batch, sinks, batch, sequence=sequence, stages=stages,
                            channels=channels, live=live, status=status, in_flight=in_flight, vid_stride=vid_stride)
    finally:  # --no-save with nothing else to write, or a stop before the run: no empty runs/detect/N left behind
        drop_empty(made)
    lines = [f"{report.summary()}{written_to(out, before)}", *Outputs.notes(sinks), *counts_lines(stages)]
    errors = [report.video.gave_up] if report.video is not None and report.video.gave_up else []
    return FolderOutcome([report], lines, errors, report.interrupted)


def detect_into_folders(items: Sequence[str | int], detect_batch: DetectBatch, outputs: Outputs,
                        names: Sequence[str] | None = None, *, output: str | None = None,
                        stages: Sequence[Sequence[Stage]] = (), viewer: Viewer | None = None,
                        ready: Callable[[], None] | None = None, batch: int | None = None,
                        live: LiveSourceOptions = LiveSourceOptions(), vid_stride: int = 1) -> FolderOutcome:
    """Detect on several videos, streams or cameras through one model (`many_sources.run_many`), each source's files
    in its own subfolder of the run's folder, named after the source (`sources.source_names`).

    Args:
        items (sequence of str or int): video files, stream URLs, camera indexes.
        detect_batch (DetectBatch): frames (of any sources) → their Detections.
        outputs (Outputs): the files and views to write for each source.
        names (sequence of str or None): the class names.
        output (str or None): the run's folder (--output), or None for a fresh runs/detect/N.
        stages (sequence of sequences of Stage): each source's stages (a tracker follows one camera); default none.
        viewer (Viewer or None): a live view: source N's frames at its /mjpeg/N and /json/N, every source's figures
            at /health and /metrics.
        ready (callable or None): called once the folders and sinks are ready, before the first frame is read.
        batch (int or None): frames per detection at most (default: one per source).
        live (LiveSourceOptions): reconnects and latest-frame mode of the live sources (as `many_sources.run_many`
            takes it).
        vid_stride (int): detect every Nth frame of each source.

    Returns:
        FolderOutcome: a report per source, the last lines (each source's summary and its sinks' notes; a source
        that gave no frame has its error instead), and the exit status.
    """
    stages = list(stages) or [[] for _ in items]
    check_sources_kept(output, "video", list(items), outputs.annotated, outputs.codec)
    out, made = run_folder(output)
    folders = [out / name for name in source_names(list(items))]
    try:
        made += make_folders(*folders)
        befores = [folder_files(folder, made) for folder in folders]
        statuses = [SourceStatus(str(each)) for each in items]
        sinks = []
        for index, (folder, each, jobs, status) in enumerate(zip(folders, items, stages, statuses)):
            sinks.append(outputs.sinks(folder, "video", each, names, jobs, source=folder.name)
                         + ([viewer.source(index)] if viewer else []))
            if viewer is not None:
                viewer.watch(status)
            connect_status(sinks[-1], status)
        if ready is not None:
            ready()
        videos = run_many(items, detect_batch, sinks, batch, stages=stages, live=live, statuses=statuses,
                          vid_stride=vid_stride)
    finally:
        drop_empty(made)
    reports = [RunReport(video.frames, video.interrupted, video) for video in videos]
    lines = []
    for folder, before, report, its_sinks in zip(folders, befores, reports, sinks):
        if report.video.no_frames is None:  # a file that gave nothing is its error below, not "0 frames"
            lines += [f"{folder.name}: {report.summary()}{written_to(folder, before)}", *Outputs.notes(its_sinks)]
    lines += [f"{folder.name}: {line}" for folder, jobs in zip(folders, stages) for line in counts_lines(jobs)]
    errors = [video.gave_up or video.no_frames for video in videos if video.gave_up or video.no_frames]
    return FolderOutcome(reports, lines, errors, any(video.interrupted for video in videos))


def counts_lines(stages: Sequence[Stage]) -> list[str]:
    """The counts of the tracking stage's lines and zones among *stages*, for the run's last lines (also after
    Ctrl-C): one line per stage that counts."""
    return [counts_text(stage.counts) for stage in stages if isinstance(stage, TrackingStage) and stage.shapes]


def connect_status(sinks: Sequence[Sink], status: SourceStatus) -> None:
    """A source's *status* (/health) and its sinks, linked both ways: --notify posts the drops and returns of the
    connection the status follows, each clip a ClipsSink lists joins the status' recent happenings, and a heat map
    (--heatmap) is served at /heatmap/N."""
    for sink in sinks:
        if isinstance(sink, NotifySink):
            sink.watch(status)
        elif isinstance(sink, ClipsSink):
            sink.on_clip(status.clip)
        elif isinstance(sink, HeatmapSink):
            status.show_heatmap(sink.picture_png)
