"""`detect`'s tracking and counting options (--track, --sequence, --save-mot, --line, --zone): the flags, their
checks, and the stage they ask for (their files are media.outputs' to choose). The work itself is
darknet_py.pipeline.tracking's and darknet_py.media.tracking_sinks'."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from ..core.errors import InputError
from ..media.outputs import Outputs, output_stem
from ..media.sequence import ImageSequence
from ..media.sources import source_items
from ..media.tracking_sinks import TrackingStage, check_tracking_source
from ..media.video_source import file_frame_rate, header_size
from ..pipeline.tracking import DEFAULT_TRACKER, INSTALL_HINT, Shape, check_names, parse_line, parse_zone, tracker_names


def add_tracking_args(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group(f"tracking and counting (needs {INSTALL_HINT})")
    group.add_argument("--track", nargs="?", const=DEFAULT_TRACKER, metavar="TRACKER", type=_tracker_name,
                       help=f"follow objects from frame to frame: each detection gets a track id; TRACKER is one of "
                            f"{', '.join(tracker_names())} (default {DEFAULT_TRACKER})")
    group.add_argument("--sequence", action="store_true", help="read a folder (or glob) of images as the frames of "
                       "one video, in name order (a MOTChallenge sequence folder: its img1/ and seqinfo.ini frameRate)")
    group.add_argument("--save-mot", action="store_true",
                       help="OUTPUT/<stem>.mot.txt: the tracks in MOTChallenge format (frame,id,x,y,w,h,conf,-1,-1,-1)")
    group.add_argument("--line", action="append", default=[], metavar="[SOURCE:]NAME=X1,Y1,X2,Y2",
                       help="count tracks whose box centre crosses this line (repeatable): 'in' from the left of "
                            "P1→P2 to its right (y down), 'out' back; pixels, or fractions of the frame when all "
                            "four are in [0, 1]; counts in OUTPUT/counts.json, each crossing in OUTPUT/events.jsonl; "
                            "SOURCE: (a source's name, as its OUTPUT/<source name>/ folder) counts on that source only, "
                            "else on every source")
    group.add_argument("--zone", action="append", default=[], metavar="[SOURCE:]NAME=X1,Y1,X2,Y2,X3,Y3[,...]",
                       help="count tracks entering and leaving this polygon, and how many are inside (repeatable; "
                            "same units and SOURCE: as --line)")
    group.add_argument("--dwell", type=float, metavar="SECONDS",
                       help="with --zone: a track inside a zone for SECONDS is one 'dwelling' event (in "
                            "OUTPUT/events.jsonl and the counts) at the frame it gets there, while it is still inside: "
                            "a queue that does not move, someone loitering; once a visit")


def _tracker_name(value: str) -> str:
    """--track's TRACKER, a registered tracker's name. argparse gives --track the word after it, so a SOURCE written
    after --track lands here: said so, rather than argparse's later 'the following arguments are required: source'."""
    if value in tracker_names():
        return value
    misplaced = any(mark in value for mark in "./:\\") or value.isdigit() or Path(value).exists()
    hint = (f" ({value!r} looks like a SOURCE: a word after --track is its TRACKER; put SOURCE first, or name the "
            f"tracker: --track {DEFAULT_TRACKER} SOURCE)") if misplaced else ""
    raise argparse.ArgumentTypeError(f"unknown tracker {value!r}; use one of {', '.join(tracker_names())}{hint}")


def tracking_stage(args, source: str, sources: Sequence[str]) -> TrackingStage | None:
    """The stage --track asks for, for one source, its flags checked (before any model is loaded); None without
    --track.

    Args:
        args: the parsed flags.
        source (str): the source's name (its output folder's, `sources.source_names`; a single source's
            `single_source_name`): the lines and zones given for it (`SOURCE:NAME=…`) and for every source (`NAME=…`).
        sources (sequence of str): every source's name, for refusing a `SOURCE:` that names none of them.

    Returns:
        TrackingStage or None: its own tracker and counters.
    """
    if args.track is None:
        for flag, given in (("--save-mot", args.save_mot), ("--line", args.line), ("--zone", args.zone),
                            ("--dwell", args.dwell is not None)):
            if given:
                raise InputError(f"{flag} needs --track (counting and MOT output follow tracks)")
        return None
    if args.dwell is not None and not args.zone:
        raise InputError(f"--dwell {args.dwell:g} counts long stays in zones: give a --zone")
    lines = [shape for text in args.line if (shape := _for_source("line", text, source, sources)) is not None]
    zones = [shape for text in args.zone if (shape := _for_source("zone", text, source, sources)) is not None]
    check_names(lines + zones)
    return TrackingStage(args.track, lines=lines, zones=zones, dwell_s=args.dwell)  # the dwell time checked there


def single_source_name(args) -> str:
    """The name a run of one SOURCE gives its outputs (and `SOURCE:` in --line / --zone): the video's or stream's
    stem, `cameraN`, or with --sequence the folder's name."""
    source = args.source[0]
    return output_stem(ImageSequence(source, []) if args.sequence else source)  # before the sequence's frames are listed


def _for_source(kind: str, text: str, source: str, sources: Sequence[str]) -> Shape | None:
    """The shape `--KIND TEXT` gives *source*: parsed, or None when it names another source."""
    name, _, _ = text.partition("=")
    chosen, colon, _ = name.partition(":")
    parse = parse_line if kind == "line" else parse_zone
    if not colon:
        return parse(text)
    if chosen not in sources:
        raise InputError(f"--{kind} {text}: no source is named {chosen!r} (the sources here: {', '.join(sources)}; "
                         f"NAME=… without SOURCE: counts on every one)")
    return dataclasses.replace(parse(text[len(chosen) + 1:]), text=text) if source == chosen else None


def detect_source(args, stages: list = ()) -> tuple[str, list[str] | str | int | ImageSequence]:
    """What the SOURCE names (media.sources.source_items), or with --sequence the frames of one video; --track
    refused on separate images, and lines or zones that a video file's frames cannot hold refused before the run."""
    source = args.source[0]
    if args.sequence:
        if source.isdigit() or "://" in source or Path(source).is_file():
            raise InputError(f"--sequence reads a folder (or glob) of images as a video's frames; {source} is "
                             "a video, a stream or a single file already")
        kind, items = "video", ImageSequence.open(source)
    else:
        kind, items = source_items(source)
    if args.track is not None:
        check_tracking_source(kind, items)
        size = header_size(items)
        for shape in (shape for stage in stages if isinstance(stage, TrackingStage) for shape in stage.shapes):
            if size is not None:
                shape.in_pixels(*size)  # a stream's or camera's frames are checked when the first one comes
    return kind, items


def ray_tracking(args) -> tuple[TrackingStage | None, str | ImageSequence | None, list[str]]:
    """--ray with --track: the stage, the one video or sequence it follows, and the sources the actors detect on
    (a sequence's images); without --track: (None, None, the sources as given)."""
    name = single_source_name(args)
    stage = tracking_stage(args, name, [name])
    if stage is None:
        return None, None, list(args.source)
    if len(args.source) != 1:
        raise InputError(f"--track with --ray follows one video (or one --sequence folder); {len(args.source)} "
                         "sources given")
    _, items = detect_source(args, [stage])
    return stage, items, list(items.paths) if isinstance(items, ImageSequence) else [str(items)]


def track_ray_run(args, out: Path, items: str | ImageSequence, stage: TrackingStage, names: list[str]) -> None:
    """Track the finished --ray run's records on this driver, in frame order (distributed.ray_track)."""
    from ..distributed.ray_track import track_records

    frames = track_records(out, items, stage, Outputs(mot=args.save_mot).tracking_sinks(out, items, stage),
                           file_frame_rate(items), names)
    print(f"{frames} frames tracked on this driver → {out}", file=sys.stderr, flush=True)
