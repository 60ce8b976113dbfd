"""`darknet-py detect`: images, folders, videos, streams, webcams; --ray for many sources."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from ..core import interrupt
from ..core.errors import InputError
from ..format.names import class_ids
from ..live import DARKNET_JPEG_QUALITY, LiveOptions, LiveView
from ..media.detect_run import FolderOutcome, counts_lines, detect_into_folder, detect_into_folders
from ..media.outputs import Outputs, check_sources_kept
from ..media.run import check_in_flight, plan_calls
from ..media.run_folders import check_output_folder, drop_empty, run_folder
from ..media.sinks import Stage
from ..media.source_reader import check_stride
from ..media.sources import first_shared_name, source_items, source_names
from ..media.video_source import live_source
from ..media.video_writer import CODECS
from .camera_options import add_camera_args, check_camera_flags, live_source_options, segmenting
from .clip_options import add_clip_args, check_notify, clipping, notify_headers
from .common import add_backend_arg, add_device_args, add_model_args, load_model
from .dataset_options import add_dataset_args, check_dataset_args, dataset_flags_given, dataset_stages
from .heatmap_options import add_heatmap_args, heatmap_options
from .tile_options import add_tile_args, tile_options
from .track_options import (
    add_tracking_args,
    detect_source,
    ray_tracking,
    single_source_name,
    track_ray_run,
    tracking_stage,
)
from .watch_options import add_watch_args, watched_folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", help="image (a file or an http(s) URL of one), folder, glob, .txt list of "
                   "image paths (- reads the list from standard input, as darknet), video file, stream URL, or webcam "
                   "index; several videos, "
                   "streams or cameras run through one model, each source's outputs in OUTPUT/<source name>/ "
                   "(with --ray: any sources)")
    add_model_args(p)
    p.add_argument("--output", help="output folder (default: a fresh runs/detect/N)")
    p.add_argument("--thresh", type=float, default=0.25, help="score threshold (default 0.25)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS overlap threshold (default 0.45)")
    p.add_argument("--nms-kind", choices=["iou", "greedynms", "diounms", "none"], help="override the cfg's nms_kind")
    p.add_argument("--classes", nargs="+", metavar="CLASS",
                   help="keep only these classes: names (person, 'traffic light') or ids (0)")
    labels = p.add_mutually_exclusive_group()
    labels.add_argument("--best-class", dest="multi_label", action="store_false", default=None,
                        help="one label per box, its best class (OpenCV DNN's rule); default: every class above "
                             "the threshold, as darknet")
    labels.add_argument("--multi-label", dest="multi_label", action="store_true",
                        help="every class above the threshold for each box (darknet's rule; the default)")
    lb = p.add_mutually_exclusive_group()
    lb.add_argument("--letterbox", dest="letterbox", action="store_true", default=None)
    lb.add_argument("--no-letterbox", dest="letterbox", action="store_false")
    add_device_args(p)
    add_backend_arg(p)
    p.add_argument("--batch", type=int, default=None, help="images per forward (default 1; 8 with --ray)")
    p.add_argument("--in-flight", type=int, default=None, metavar="N",
                   help="detections running at once, each on a share of the cores (on the CPU: torch, onnxruntime, "
                        "OpenVINO): more frames/s, each frame later; default 2 for files and images, 1 for cameras "
                        "and streams; 1: one at a time")
    p.add_argument("--vid-stride", type=int, default=1, metavar="N",
                   help="detect every Nth frame of a video, stream or camera (default 1: every frame): N times less "
                        "work; outputs keep each frame's number and time in the source, and the annotated video plays "
                        "at the source's speed (fps / N)")
    ray = p.add_argument_group("distributed (Ray)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on Ray: no ADDRESS starts a local Ray; 'auto' or ray://host:port joins a cluster")
    ray.add_argument("--workers", type=int, default=2, help="model actors (default 2); each takes 1 CPU or 1 GPU")
    ray.add_argument("--worker-threads", type=int, help="threads per actor (default: this machine's torch default, "
                     "which gives results identical to a run without --ray)")
    ray.add_argument("--shard-size", type=int, default=64, help="images or video frames per output shard (default 64)")
    p.add_argument("--save-json", nargs="?", const="darknet_py", choices=["darknet_py", "jsonl", "darknet", "coco"],
                   help="write the detections as JSON: OUTPUT/detections.json (darknet_py: records with pixel "
                        "boxes, written when the run ends), with `--save-json jsonl` the same records in "
                        "OUTPUT/detections.jsonl, a line each, appended as each image or frame is done (for cameras "
                        "and long videos: nothing held in memory, nothing lost if the run dies; what --ray writes), "
                        "with `--save-json darknet` OUTPUT/result.json in the format of darknet's "
                        "`detector test -out` (frame_id, filename, objects with relative_coordinates), or with "
                        "`--save-json coco` OUTPUT/coco.json, a COCO dataset for labelling tools (a video's frames "
                        "with --save-frames)")
    p.add_argument("--save-txt", action="store_true", help="OUTPUT/labels/*.txt: YOLO label lines plus the score")
    p.add_argument("--ext-output", action="store_true",
                   help="darknet's `-ext_output` lines on stdout (name: NN%%, left_x, top_y, width, height)")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images/video")
    p.add_argument("--show", action="store_true", help="show results in a window (needs a display)")
    p.add_argument("--exist-ok", action="store_true", help="write into an --output folder that already holds files")
    p.add_argument("--codec", choices=list(CODECS), help="annotated video: h264 (.mp4, plays in browsers; the default "
                   "with PyAV), mp4v (.mp4, OpenCV) or mjpg (.avi, OpenCV)")
    live = p.add_argument_group("live view (browser, VLC, programs reading darknet's streams)")
    live.add_argument("--serve", type=int, metavar="PORT", help="a page at http://HOST:PORT/ showing the annotated "
                      "stream and a detections table; the streams at /mjpeg and /json (server-sent events)")
    live.add_argument("--mjpeg-port", type=int, metavar="PORT", help="darknet's -mjpeg_port: annotated frames as MJPEG")
    live.add_argument("--json-port", type=int, metavar="PORT", help="darknet's -json_port: each frame's objects as JSON")
    live.add_argument("--mjpeg-quality", type=int, default=None,
                      help=f"JPEG quality of the MJPEG stream, 1..100 (default {DARKNET_JPEG_QUALITY}, darknet's)")
    live.add_argument("--host", default="127.0.0.1", help="address the servers listen on (default 127.0.0.1: this "
                      "machine only; 0.0.0.0 lets others watch, without authentication)")
    live.add_argument("--wait-viewers", type=int, default=0, metavar="N",
                      help="start detecting once N stream connections are open (the page opens two)")
    live.add_argument("--keep-serving", action="store_true",
                      help="when the source ends, keep serving its last frame until Ctrl-C")
    add_camera_args(p)
    add_clip_args(p)
    add_tracking_args(p)
    add_heatmap_args(p)
    add_dataset_args(p)
    add_tile_args(p)
    add_watch_args(p)
    p.set_defaults(multi_label=None)  # darknet's rule unless --best-class


def run(args) -> int:
    live_options = _live_options(args)
    if args.ray is not None:
        if live_options.wanted:
            raise InputError("--serve, --mjpeg-port and --json-port are not available with --ray")
        if args.in_flight is not None:
            raise InputError("--in-flight is for one machine's run; with --ray, --workers sets how many run at once")
        return _run_detect_on_ray(args)
    with LiveView(live_options) if live_options.wanted else contextlib.nullcontext() as live:
        return _detect_here(args, live)


def _detect_here(args, live: LiveView | None) -> int:
    """One source on this machine: images or a video, with files written and a live view if asked."""
    watched = watched_folder(args)
    if len(args.source) > 1:
        return _detect_many(args, live)
    args.batch = 1 if args.batch is None else args.batch
    check_in_flight(args.in_flight)
    windows = tile_options(args)  # bad values fail before the model loads
    camera = live_source_options(args)
    segmenting(args)  # checked before the model loads
    heatmap_options(args)
    name = single_source_name(args)
    stages = _stages(args, name, [name])  # its flags checked (and the tracker library found) before the model loads
    kind, items = ("images", watched) if watched is not None else detect_source(args, stages)
    check_stride(args.vid_stride)
    if kind == "images" and args.vid_stride != 1:
        raise InputError(f"--vid-stride takes every Nth frame of a video; the source is {len(items)} separate "
                         "image(s)")
    check_dataset_args(args, kind, watched.images() if watched is not None else items)
    check_camera_flags(args, kind)
    clipping(args, kind)
    check_notify(args, live=kind == "video" and live_source(items), watched=watched is not None)
    if kind == "images" and watched is None:
        _refuse_shared_names(args, items)
    if args.show:
        _require_display()
    check_output_folder(args.output, args.exist_ok)
    check_sources_kept(args.output, kind, items, not args.no_save, args.codec)
    model, names = load_model(args)
    options = _detect_options(args, names, windows)
    stages += dataset_stages(args, names)  # redaction, after tracking: it changes the pixels, not the boxes
    _describe(live)
    if watched is not None:
        print(f"watching {watched.folder} for images (Ctrl-C to stop)", file=sys.stderr, flush=True)
    detector, in_flight = plan_calls(model, kind, items, args.in_flight)

    def detect_batch(images):
        return detector.detect(images, args.thresh, args.nms, **options)

    outcome = detect_into_folder(kind, items, detect_batch, _outputs(args, names), names, output=args.output, stages=stages,
                                 viewer=live, ready=lambda: _wait_for_viewers(args, live), batch=args.batch,
                                 sequence=model.sequence, channels=model.channels, live=camera, in_flight=in_flight,
                                 vid_stride=args.vid_stride)
    _print_outcome(outcome)
    _keep_serving(args, live, outcome)
    return outcome.exit_code()


def _detect_many(args, live: LiveView | None) -> int:
    """Several videos, streams or cameras through one model (media.many_sources): each source's outputs in
    OUTPUT/<source name>/, all the sources at /health and /metrics, source N's streams at /mjpeg/N and /json/N."""
    if args.sequence:
        raise InputError("--sequence reads one folder as a video; give one SOURCE with it")
    if args.in_flight is not None:
        raise InputError("--in-flight is for one SOURCE; several sources already share the model frame by frame")
    found = [source_items(source) for source in args.source]
    images = [source for source, (kind, _) in zip(args.source, found) if kind != "video"]
    if images:
        raise InputError(f"{images[0]}: several sources must each be a video, a stream or a camera (for many images, "
                         "give one folder or glob)")
    items = [item for _, item in found]
    args.batch = len(items) if args.batch is None else args.batch  # one frame a source a batch at most, by default
    windows = tile_options(args)
    camera = live_source_options(args)
    segmenting(args)  # checked before the model loads
    heatmap_options(args)
    check_stride(args.vid_stride)
    names = source_names(items)
    stages = [_stages(args, name, names) for name in names]  # a tracker per source: each follows one camera
    for each in items:
        check_dataset_args(args, "video", each)
    clipping(args)
    check_notify(args, live=any(live_source(each) for each in items))
    if args.show:
        raise InputError("--show shows one source; drop it with several (--serve shows them in a browser)")
    check_output_folder(args.output, args.exist_ok)
    check_sources_kept(args.output, "video", items, not args.no_save, args.codec)
    model, names = load_model(args)
    if model.stateful:  # before any folder is made
        raise InputError("this model has recurrent layers, whose state runs from one frame to the next of one "
                         "video; run one source at a time")
    options = _detect_options(args, names, windows)
    for jobs in stages:
        jobs += dataset_stages(args, names)
    _describe(live)

    def detect_batch(frames):
        return model.detect(frames, args.thresh, args.nms, **options)

    outcome = detect_into_folders(items, detect_batch, _outputs(args, names), names, output=args.output, stages=stages,
                                  viewer=live, ready=lambda: _wait_for_viewers(args, live), batch=args.batch,
                                  live=camera, vid_stride=args.vid_stride)
    _print_outcome(outcome)
    _keep_serving(args, live, outcome)
    return outcome.exit_code()


def _keep_serving(args, live: LiveView | None, outcome: FolderOutcome) -> None:
    """--keep-serving: once the sources have ended (not stopped, none failed), their last frames, /health and the heat
    maps stay served until Ctrl-C or SIGTERM (then exit 0: the run is whole)."""
    if live and args.keep_serving and not outcome.interrupted and not outcome.errors:
        ended = ("the source has ended; still serving its last frame" if len(args.source) == 1
                 else "the sources have ended; still serving their last frames")
        print(f"{ended} — Ctrl-C to stop", file=sys.stderr, flush=True)
        live.hold()


def _stages(args, source: str, sources: list[str]) -> list[Stage]:
    """The jobs the flags ask for between detection and the sinks (tracking, counting, redaction), in order, for
    the source named *source* (its lines and zones) among *sources*."""
    tracking = tracking_stage(args, source, sources)
    return [tracking] if tracking else []


def _print_outcome(outcome: FolderOutcome) -> None:
    """The run's last lines on stderr, then what ended a source early (`error: …`; its outputs are finished)."""
    for line in outcome.lines + [f"error: {error}" for error in outcome.errors]:
        print(line, file=sys.stderr, flush=True)


def _outputs(args, names: list[str] | None = None) -> Outputs:
    """The outputs the flags ask for (media.outputs builds their sinks); *names*, the model's class names, once it is
    loaded (--clip-classes)."""
    return Outputs(annotated=not args.no_save, codec=args.codec, json=args.save_json, yolo_labels=args.save_txt,
                   ext_output=args.ext_output, darknet_labels=args.save_labels, frames_every=args.save_frames,
                   crops=args.save_crops, crop_pad=args.crop_pad or 0.0, mot=args.save_mot, show=args.show,
                   segments=segmenting(args), clips=clipping(args, names=names), notify=tuple(args.notify),
                   notify_headers=tuple(notify_headers(args).items()), heatmap=heatmap_options(args))


STOP_DEADLINE_S = 5.0  # after Ctrl-C / SIGTERM, --ray ends within this even if Ray's teardown hangs


def _run_detect_on_ray(args) -> int:
    """--ray: shards over a Ray cluster, results in OUTPUT/detections.jsonl; a rerun resumes."""
    from ..distributed.ray_detect import RayOptions, detect_on_ray, print_report, require_ray

    given_flags = (("--show", args.show), ("--save-txt", args.save_txt), ("--ext-output", args.ext_output),
                   (f"--vid-stride {args.vid_stride}", args.vid_stride != 1), ("--segment", args.segment is not None),
                   ("--keep-segments", args.keep_segments is not None),
                   ("--clips", args.clips is not None), ("--clip-on", args.clip_on is not None),
                   ("--keep-clips", args.keep_clips is not None), ("--clip-classes", args.clip_classes is not None), ("--notify", bool(args.notify)),
                   ("--notify-header", bool(args.notify_header)), ("--watch", args.watch),
                   ("--heatmap", args.heatmap or args.heatmap_at is not None or args.heatmap_radius is not None),
                   # plain --save-json asks for detections.json, which --ray does not write (jsonl is its own file)
                   ("--save-json" if args.save_json == "darknet_py" else f"--save-json {args.save_json}",
                    args.save_json in ("darknet_py", "darknet", "coco")))
    for flag, given in given_flags + dataset_flags_given(args):
        if given:
            raise InputError(f"{flag} is not available with --ray (results go to OUTPUT/detections.jsonl)")
    if args.tiles is not None or args.tile_overlap is not None or args.roi is not None:
        raise InputError("--tiles and --roi are not available with --ray (its workers detect whole images)")
    stage, tracked, sources = ray_tracking(args)  # --track: one source, tracked on this driver afterwards
    args.batch = 8 if args.batch is None else args.batch
    # a fresh runs/detect/N is claimed now (two runs must not share one: each would take the other's plan for its own)
    out, made = (Path(args.output), []) if args.output else run_folder(None)
    rerun = "rerun the same command" if args.output else f"rerun it with --output {out}"
    hint = f"interrupted: finished shards are kept in {out}; {rerun} to resume"
    # finished shards are on disk whole at every moment: a stop may end the process after STOP_DEADLINE_S
    with interrupt.deadline(STOP_DEADLINE_S, hint):
        try:
            require_ray()  # before the model is loaded: a missing extra is the first thing to hear about
            model, names = load_model(args)
            classes = _classes(args, names)
            if model.stateful:
                raise InputError("this model has recurrent layers, whose state runs from one video frame to the "
                                 "next; --ray splits videos across workers, so run it without --ray")
            options = RayOptions(address=args.ray, workers=args.workers, worker_threads=args.worker_threads,
                                 batch=args.batch, shard_size=args.shard_size, save_images=not args.no_save,
                                 exist_ok=args.exist_ok)
            report = detect_on_ray(sources, out, model, conf_thresh=args.thresh, nms_thresh=args.nms,
                                   names=names, ray_options=options, multi_label=args.multi_label,
                                   letterbox=args.letterbox, classes=classes,
                                   nms_kind=args.nms_kind)
        except KeyboardInterrupt:
            interrupt.announce(hint)
            raise
        finally:
            drop_empty(made)  # refused before any shard (no Ray, a bad model): no empty runs/detect/N left
    print_report(report)
    if stage is not None:
        track_ray_run(args, out, tracked, stage, names)
        for line in counts_lines([stage]):
            print(line, file=sys.stderr, flush=True)
    return 0


def _detect_options(args, names: list[str], windows: dict) -> dict:
    """detect()'s keyword arguments from the flags (thresholds aside): class names, label rule, letterbox,
    --classes (checked against the names), NMS kind, the class scores darknet's box order needs, tiles."""
    return dict(names=names, multi_label=args.multi_label, letterbox=args.letterbox, classes=_classes(args, names),
                nms_kind=args.nms_kind, class_scores=_darknet_box_order(args), **windows)


def _describe(live: LiveView | None) -> None:
    """The live view's URLs: its servers are up (a taken port failed first), and there is a model to show."""
    for line in live.describe() if live else ():
        print(line, file=sys.stderr, flush=True)


def _wait_for_viewers(args, live: LiveView | None) -> None:
    """--wait-viewers N: detection starts once N stream connections are open."""
    if live and args.wait_viewers:
        print(f"waiting for {args.wait_viewers} viewer(s)", file=sys.stderr, flush=True)
        live.wait_for_viewers(args.wait_viewers)


def _darknet_box_order(args) -> bool:
    """Whether detections keep each box's class scores, for outputs listing boxes in darknet's NMS order: its label
    files and JSON (Outputs.darknet_box_order) and its -json_port stream."""
    return _outputs(args).darknet_box_order or args.json_port is not None


def _live_options(args) -> LiveOptions:
    quality = DARKNET_JPEG_QUALITY if args.mjpeg_quality is None else args.mjpeg_quality
    options = LiveOptions(serve=args.serve, mjpeg_port=args.mjpeg_port, json_port=args.json_port,
                          host=args.host, quality=quality)
    if not options.wanted:
        for flag, given in (("--wait-viewers", args.wait_viewers), ("--keep-serving", args.keep_serving),
                            ("--mjpeg-quality", args.mjpeg_quality is not None)):
            if given:
                raise InputError(f"{flag} needs --serve, --mjpeg-port or --json-port")
    elif args.wait_viewers < 0:
        raise InputError(f"--wait-viewers {args.wait_viewers}: give a number of viewers, 0 or more")
    return options


def _refuse_shared_names(args, images: list[str]) -> None:
    """Before the model loads: images whose outputs would take one name in the run's folder (a/x.jpg and b/x.jpg from
    a glob or a list over folders: the annotated image is named after the file, its --save-txt label and --save-crops
    crops after the file's stem) are refused, rather than the second silently replacing the first's. The records
    (--save-json) name each image by its path, and --save-labels writes beside each image: those never collide."""
    by_stem = args.save_txt or args.save_crops
    shared = None if args.no_save and not by_stem else first_shared_name(images, by_stem)
    if shared is not None:
        same_file_name = os.path.basename(shared[0]) == os.path.basename(shared[1])  # x.jpg and x.png share a stem only
        named = (("annotated image", not args.no_save and same_file_name), ("label", args.save_txt),
                 ("crops", args.save_crops))
        outputs = " and ".join(name for name, wanted in named if wanted)
        raise InputError(f"{shared[0]} and {shared[1]} would write their {outputs} under one name ({shared[2]}) in the "
                         "run's folder, the second replacing the first: detect them in separate runs (or with "
                         "--no-save and --save-json, whose records keep each path)")


def _require_display() -> None:
    """Refuse --show up front: without a display, OpenCV's GUI backend aborts the process."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show needs a display (DISPLAY is not set); drop --show or run where a screen is attached")


def _classes(args, names: list[str]) -> tuple[int, ...] | None:
    """--classes as class ids (names or ids, checked against the model's names: an unknown one is an error, not a
    run that finds nothing)."""
    return tuple(sorted(class_ids(args.classes, names, "--classes"))) if args.classes else None
