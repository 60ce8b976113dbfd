"""`detect`'s options for building datasets and sharing results: darknet's `-save_labels` (--save-labels),
object crops (--save-crops, --crop-pad) and redaction (--blur, --pixelate, --no-boxes): the flags, their
checks before the model loads, and the redaction stage they ask for (their files are media.outputs' to choose).
The work is darknet_py.media's (darknet_labels, crops, redact)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.fileio import require_writable
from ..media.darknet_labels import label_path
from ..media.frames_dataset import check_every
from ..media.redact import PIXELATE_CELLS, redact_stage
from ..media.sinks import Stage
from ..pipeline.box_rect import check_pad


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("labels, crops and redaction")
    group.add_argument("--save-labels", action="store_true",
                       help="darknet's -save_labels: each image's YOLO label file (class x y w h, its best class per "
                            "box) beside the image, or by darknet's images/…→labels/… mapping; byte for byte what "
                            "`darknet detector test … -save_labels` writes (images only; label files already there "
                            "are replaced only with --exist-ok)")
    group.add_argument("--save-frames", nargs="?", type=int, const=1, default=None, metavar="N",
                       help="a darknet training set from a video, stream or camera: every Nth frame (default: every "
                            "frame) as OUTPUT/frames/STEM_FRAME.jpg (a camera's: STEM_DATE.jpg) with its darknet label "
                            "file beside it (the lines --save-labels writes), OUTPUT/frames.txt listing them (darknet's "
                            "train= list), and "
                            "OUTPUT/obj.data and obj.names pointing at them (darknet detector train OUTPUT/obj.data "
                            "…), to check and correct in a labelling tool before training")
    group.add_argument("--save-crops", action="store_true",
                       help="each detection's box as OUTPUT/crops/CLASS/NAME_K.jpg (K: its index in the image's "
                            "detections, as detections.json lists them)")
    group.add_argument("--crop-pad", type=float, default=None, metavar="F",
                       help="with --save-crops: grow each side by F times the box's width or height (0.1: 10%%)")
    group.add_argument("--blur", nargs="+", default=[], metavar="CLASS",
                       help="blur these classes' boxes (names or ids) in the saved image or video and the live view")
    group.add_argument("--pixelate", nargs="+", default=[], metavar="CLASS",
                       help=f"pixelate these classes' boxes ({PIXELATE_CELLS} cells along the longer side) in the "
                            "saved image or video and the live view")
    group.add_argument("--no-boxes", action="store_true",
                       help="leave boxes and labels off the saved images or video and the live view")


def check_dataset_args(args, kind: str, items) -> None:
    """Refuse what cannot work before the model loads: labels for a video, an image darknet names no label file
    for, label files that would replace existing ones (without --exist-ok), a --crop-pad without --save-crops or
    below 0."""
    if args.crop_pad is not None:
        if not args.save_crops:
            raise InputError("--crop-pad needs --save-crops")
        check_pad(args.crop_pad)
    _check_redaction_shows(args)
    if args.save_json == "coco" and kind == "video" and args.save_frames is None:
        raise InputError("--save-json coco lists image files: for a video, stream or camera add --save-frames [N], "
                         "whose kept frames are the dataset's images")
    if args.save_frames is not None:
        check_every(args.save_frames)
        if kind == "images":
            raise InputError("--save-frames keeps frames of a video, a stream or a camera; an image's darknet labels "
                             "are written by --save-labels")
    if args.save_labels:
        if kind != "images":
            raise InputError("--save-labels writes darknet's label file beside each image; a video has none "
                             "(--save-frames keeps its frames with their labels, --save-txt labels each frame)")
        fetched = [path for path in items if "://" in path]
        if fetched:
            raise InputError(f"--save-labels writes darknet's label file beside each image; an image URL "
                             f"({hide_credentials(fetched[0])}) has no folder here (use --save-txt)")
        labels = [label_path(path) for path in items]  # every image's label file has a name, before any is written
        held = [path for path in labels if Path(path).exists()]
        if held and not args.exist_ok:  # darknet replaces them; a user's (corrected) labels are not replaced unasked
            raise InputError(f"--save-labels would replace {len(held)} label file(s) already there (first: {held[0]}); "
                             "pass --exist-ok to replace them, as darknet does")
        for folder in sorted({str(Path(path).parent) for path in labels}):  # not one image detected, then refused
            require_writable(folder, "--save-labels writes each label file where darknet does (beside its image, or "
                                     "images/…→labels/…)")


def _check_redaction_shows(args) -> None:
    """Refuse --blur, --pixelate or --no-boxes where no picture is written or shown (--no-save and nothing else that
    draws: crops, kept frames, clips, a live view, a window, a heat map's scene, MQTT snapshots): they would do
    nothing, and a user expecting redacted pictures would find none."""
    given = [flag for flag, on in (("--blur", args.blur), ("--pixelate", args.pixelate), ("--no-boxes", args.no_boxes))
             if on]
    if not given or not args.no_save:
        return
    drawn = (args.save_crops, args.save_frames is not None, args.clips is not None, args.serve is not None,
             args.mjpeg_port is not None, args.show, args.heatmap, bool(args.notify))
    if not any(drawn):
        raise InputError(f"{given[0]} changes the pictures a run writes or shows, and with --no-save it writes or "
                         "shows none (add --save-crops, --save-frames, --clips, --serve, ... or drop --no-save)")


def dataset_stages(args, names: list[str]) -> list[Stage]:
    """The redaction stage --blur, --pixelate and --no-boxes ask for (class names checked against the model's)."""
    stage = redact_stage(args.blur, args.pixelate, names, boxes=not args.no_boxes)
    return [stage] if stage else []


def dataset_flags_given(args) -> tuple[tuple[str, bool], ...]:
    """(flag, whether given) for each of these options (what --ray, which writes records only, refuses)."""
    return (("--save-labels", args.save_labels), ("--save-frames", args.save_frames is not None),
            ("--save-crops", args.save_crops), ("--blur", bool(args.blur)),
            ("--pixelate", bool(args.pixelate)), ("--no-boxes", args.no_boxes))
