"""What a detection run writes, said once: `Outputs` names the files and views a run gives (as `darknet-py detect`'s
flags ask for them) and builds its sinks, so that the CLI, a script and a test write the same files the same way.

    outputs = Outputs(json="coco", crops=True, annotated=False)
    sinks = outputs.sinks(Path("out"), "images", paths, names)  # names: coco.json's categories
    run_source("images", paths, detect_batch, sinks)
    for line in outputs.notes(sinks):
        print(line)

Each output is one sink of media.sinks (or of darknet_labels, frames_dataset, crops, coco_dataset, tracking_sinks);
this module only chooses and orders them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from ..core.errors import InputError
from .clips import Clipping, ClipsSink
from .coco_dataset import COCO_JSON, CocoDatasetSink
from .crops import CROPS_DIR, CropsSink
from .darknet_labels import DarknetLabelsSink
from .frames_dataset import FramesDatasetSink
from .heatmap_sink import HeatmapOptions, HeatmapSink
from .notify import Notifier, NotifySink, is_mqtt
from .recording import Segmenting
from .sequence import ImageSequence
from .sinks import (
    DARKNET_JSON,
    LABELS_DIR,
    RECORDS_JSON,
    RECORDS_JSONL,
    AnnotatedImagesSink,
    AnnotatedVideoSink,
    DarknetJsonSink,
    ExtOutputSink,
    RecordsJsonSink,
    RecordsLinesSink,
    ShowSink,
    Sink,
    Stage,
    YoloLabelsSink,
    video_stem,
)
from .sources import annotated_name, source_names
from .tracking_sinks import TrackingStage, tracking_sinks
from .video_source import live_source
from .video_writer import output_suffix
from .watched_folder import WatchedFolder

# detections.json records, the same records a line each as they come, darknet's result.json, a COCO dataset
JSON_KINDS = ("darknet_py", "jsonl", "darknet", "coco")
# image paths (or a folder watched for them), or one video (file, URL, camera, sequence)
SourceItems = Union[Sequence[str], WatchedFolder, str, int, ImageSequence]


@dataclass(frozen=True)
class Outputs:
    """The outputs of one detection run; each field is one of `darknet-py detect`'s flags.

    Attributes:
        annotated (bool): the annotated images, or the annotated video (not --no-save).
        codec (str or None): the annotated video's codec (--codec; None: by its container, see video_writer).
        json (str or None): --save-json: "darknet_py" (OUTPUT/detections.json, records with pixel boxes), "jsonl"
            (OUTPUT/detections.jsonl, the same records a line each, appended as they come), "darknet"
            (OUTPUT/result.json, darknet's `detector test -out`), "coco" (OUTPUT/coco.json, a COCO dataset), or None.
        yolo_labels (bool): --save-txt: OUTPUT/labels/*.txt, YOLO label lines with the score.
        ext_output (bool): --ext-output: darknet's `-ext_output` lines on stdout.
        darknet_labels (bool): --save-labels: darknet's `-save_labels` file beside each image.
        frames_every (int or None): --save-frames N: every Nth frame of a video with its label file (a darknet
            training set); None: no frames kept.
        crops (bool): --save-crops: each box as OUTPUT/crops/CLASS/NAME_K.jpg.
        crop_pad (float): grow each crop's sides by this fraction of the box (--crop-pad).
        mot (bool): --save-mot: the tracks in MOTChallenge format (needs a TrackingStage among the stages).
        show (bool): --show: a window (needs a display).
        segments (Segmenting or None): --segment, --keep-segments: a camera's or stream's annotated video as a file
            per segment of its time (media.recording); None: one file.
        clips (Clipping or None): --clips, --clip-on, --clip-classes, --keep-clips: a video's, stream's or camera's
            clips of the moments something is detected, or a line or zone counts (media.clips); None: none.
        notify (tuple of str): --notify URLs: each counting event, each clip and each drop and return of a live source's
            connection POSTed to each http(s) URL or published to each mqtt(s) broker as JSON (media.notify).
        notify_headers (tuple of (name, value)): --notify-header: more headers sent with each http(s) message.
        heatmap (HeatmapOptions or None): --heatmap, --heatmap-at, --heatmap-radius: where the objects spent their
            time, OUTPUT/heatmap.png and OUTPUT/heatmap.npy (media.heatmap_sink); None: no heat map.
    """

    annotated: bool = True
    codec: str | None = None
    json: str | None = None
    yolo_labels: bool = False
    ext_output: bool = False
    darknet_labels: bool = False
    frames_every: int | None = None
    crops: bool = False
    crop_pad: float = 0.0
    mot: bool = False
    show: bool = False
    segments: Segmenting | None = None
    clips: Clipping | None = None
    notify: tuple[str, ...] = ()
    notify_headers: tuple[tuple[str, str], ...] = ()
    heatmap: HeatmapOptions | None = None

    def __post_init__(self) -> None:
        if self.json is not None and self.json not in JSON_KINDS:
            raise InputError(f"--save-json {self.json}: expected one of {', '.join(JSON_KINDS)}")

    def sinks(self, out: Path, kind: str, items: SourceItems, names: Sequence[str] | None = None,
              stages: Sequence[Stage] = (), source: str | None = None) -> list[Sink]:
        """The sinks of these outputs, in the order each result is written to them.

        Args:
            out (Path): the run's folder (it exists).
            kind (str): "images" or "video" (what media.sources.source_items says of the source).
            items: the source's items: image paths, or the video (path, URL, camera index, ImageSequence).
            names (sequence of str or None): the model's class names: coco.json's categories (needed for it), and the
                obj.names and obj.data that --save-frames writes beside its frames.
            stages (sequence of Stage): the run's stages; a TrackingStage among them gives the tracking outputs
                (the MOT file, counts.json and events.jsonl).
            source (str or None): the source's name in --notify's messages: its folder's name among several sources;
                None: what its outputs are named after (output_stem).

        Returns:
            list of Sink: tracking outputs first (they read the tracks), then the JSON, labels, annotated images
            or video, the dataset's files, a window, and a watched folder's index last.
        """
        tracking = next((stage for stage in stages if isinstance(stage, TrackingStage)), None)
        sinks: list[Sink] = self.tracking_sinks(out, items, tracking) if tracking is not None else []
        if self.ext_output:
            sinks.append(ExtOutputSink())
        if self.json == "darknet":
            sinks.append(DarknetJsonSink(out / DARKNET_JSON))
        elif self.json == "coco":
            if names is None:
                raise InputError("coco.json lists the model's classes as its categories: give the class names")
            frames = (out, self.frames_every) if self.frames_every is not None else None  # the frames it writes
            sinks.append(CocoDatasetSink(out / COCO_JSON, list(names), frames))
        elif self.json == "jsonl":
            sinks.append(RecordsLinesSink(out / RECORDS_JSONL))
        elif self.json:
            sinks.append(RecordsJsonSink(out / RECORDS_JSON))
        if self.yolo_labels:
            sinks.append(YoloLabelsSink(out / LABELS_DIR))
        if self.annotated and kind == "images":
            sinks.append(AnnotatedImagesSink(out))
        elif self.annotated:
            sinks.append(AnnotatedVideoSink(out / f"{output_stem(items)}{output_suffix(self.codec, items)}", self.codec,
                                            self.segments))
        sinks += self._happenings(out, kind, items, source)
        if self.darknet_labels:
            sinks.append(DarknetLabelsSink())
        if self.frames_every is not None:
            sinks.append(FramesDatasetSink(out, self.frames_every, names))
        if self.crops:
            sinks.append(CropsSink(out / CROPS_DIR, self.crop_pad))
        if self.heatmap is not None:
            sinks.append(HeatmapSink(out, self.heatmap))
        if self.show:
            sinks.append(ShowSink())
        if isinstance(items, WatchedFolder) and items.index is not None:
            sinks.append(items.index)  # last: an image is listed done once every other output of it is written
        return sinks

    def _happenings(self, out: Path, kind: str, items: SourceItems, source: str | None) -> list[Sink]:
        """The clips (--clips) and the messages to another program (--notify), which the clips feed."""
        watched = isinstance(items, WatchedFolder)  # --notify posts each image with detections
        if (self.clips is not None or (self.notify and not watched)) and kind == "images":
            flag = "--clips cuts clips out of" if self.clips is not None else "--notify posts the events and clips of"
            raise InputError(f"{flag} a video, stream or camera (or with --watch, the images with detections); the "
                             "source is images")
        # the notifier's thread starts here, after every check that could refuse the run
        name = (source or output_stem(items)) if self.notify else ""
        # a watched folder's image is named by its path below the folder (subfolders)
        notify = [NotifySink(Notifier(url, headers=None if is_mqtt(url) else dict(self.notify_headers), source=name),
                             name, **({"image_name": items.name_of} if watched else {})) for url in self.notify]
        sinks: list[Sink] = []
        if self.clips is not None:
            sinks.append(ClipsSink(out, self.clips, self.codec))
            for each in notify:
                sinks[-1].on_clip(each.clip)
        sinks += notify  # after the clips: the last clip, finished on finish(), is posted before they close
        return sinks

    def tracking_sinks(self, out: Path, items: SourceItems, stage: TrackingStage) -> list[Sink]:
        """The outputs of tracking: the MOT file (when asked for), counts.json and events.jsonl (when the stage
        counts lines or zones); named after the video (or sequence) *items*, a camera's or stream's counts going on from
        an earlier run's counts.json in *out*."""
        return tracking_sinks(out, output_stem(items), stage, self.mot,
                              live=not isinstance(items, (list, ImageSequence)) and live_source(items))

    @property
    def darknet_box_order(self) -> bool:
        """Whether an output lists boxes in the order darknet's NMS leaves them (Detections.nms_order_key): its
        label files (--save-labels, --save-frames) and its JSON (--save-json darknet). That order needs each box's
        class scores before NMS (detect(..., class_scores=True))."""
        return self.darknet_labels or self.frames_every is not None or self.json == "darknet"

    @staticmethod
    def notes(sinks: Sequence[Sink]) -> list[str]:
        """Lines for the end of a run: where darknet's label files went (beside the images, not in the run's
        folder), what --save-frames kept, what coco.json holds, the clips cut, the messages --notify delivered, where
        the heat map is."""
        return [sink.summary() for sink in sinks if isinstance(sink, (DarknetLabelsSink, FramesDatasetSink,
                                                                      CocoDatasetSink, ClipsSink, NotifySink,
                                                                      HeatmapSink))]


def check_sources_kept(output: str | Path | None, kind: str, items: SourceItems | Sequence[SourceItems],
                       annotated: bool, codec: str | None = None) -> None:
    """Refuse a run whose annotated copy of a source would be written over the source itself: `--output` the folder
    the images (or the video) are in, where the copy takes the file's own name (`--exist-ok` replaces files of the
    run's names, never what it reads).

    Args:
        output (str, Path or None): --output (None: a fresh runs/detect/N, which holds no source).
        kind (str): "images" or "video".
        items: the source's items (image paths, or a video); several videos' list (each in OUTPUT/<source name>/).
        annotated (bool): whether annotated copies are written (not --no-save).
        codec (str or None): the annotated video's codec (--codec).

    Raises:
        InputError: naming the source and what to do.
    """
    if output is None or not annotated or isinstance(items, (WatchedFolder, ImageSequence)):
        return  # a watched folder refuses outputs in itself (watched_folder); a sequence's video is not one of its images
    out = Path(output)
    if kind == "images":
        targets = [(out / annotated_name(path), path) for path in items]
    elif isinstance(items, (list, tuple)):  # several videos: each one's outputs in its own folder
        targets = [(out / name / f"{output_stem(each)}{output_suffix(codec, each)}", each)
                   for name, each in zip(source_names(list(items)), items)]
    else:
        targets = [(out / f"{output_stem(items)}{output_suffix(codec, items)}", items)]
    for target, source in targets:
        if isinstance(source, str) and Path(source).is_file() and target.is_file() and target.samefile(source):
            raise InputError(f"{source}: its annotated copy would be written over it (--output {out} is its folder); "
                             "choose another --output, or --no-save")


def output_stem(items: str | int | ImageSequence | WatchedFolder) -> str:
    """What a video's (or a sequence's) outputs are named after: the file's stem, a URL's last part (never its
    credentials), cameraN, or the sequence folder's name; a watched folder's name (--notify's `source`)."""
    if isinstance(items, WatchedFolder):
        return items.folder.resolve().name
    return items.stem if isinstance(items, ImageSequence) else video_stem(items)
