"""detect's options for live sources (cameras, RTSP/HTTP streams): reconnects, latest-frame mode, and a recording in
segments."""
from __future__ import annotations

import argparse

from ..core.errors import InputError
from ..media.live_reader import LiveSourceOptions
from ..media.recording import Segmenting


def add_camera_args(p: argparse.ArgumentParser) -> None:
    """--reconnect N, --keep-all-frames, --segment and --keep-segments, in their own help group."""
    group = p.add_argument_group("cameras and live streams (rtsp://, http(s):// without a length, webcam index)")
    group.add_argument("--reconnect", type=int, metavar="N",
                       help="after a drop, give up after N reconnect tries (waits of 1 s doubling to 30 s between "
                            "them) and exit 1; default: reconnect for ever")
    group.add_argument("--keep-all-frames", action="store_true",
                       help="detect every frame, queued (detection may fall behind the camera); default: only the "
                            "newest frame each time, the ones in between dropped and counted (files keep every frame)")
    group.add_argument("--segment", type=float, metavar="SECONDS",
                       help="record the annotated video as a new file every SECONDS of the stream, "
                            "OUTPUT/STEM_YYYYmmddTHHMMSSZ.mp4 (its first frame's date, UTC), each listed in "
                            "OUTPUT/STEM.segments.jsonl with its first frame's number, time and date as it begins; "
                            "default: one file for the whole run")
    group.add_argument("--keep-segments", type=int, metavar="N",
                       help="with --segment: keep the N newest files the index lists (an earlier run's into the same "
                            "folder too), deleting the oldest as each new one begins (N x SECONDS of recording on "
                            "disk); default: keep every one")


def live_source_options(args) -> LiveSourceOptions:
    """The options the flags give, checked (InputError for a negative --reconnect)."""
    options = LiveSourceOptions(reconnect=args.reconnect, keep_all_frames=args.keep_all_frames)
    options.check()
    return options


def check_camera_flags(args, kind: str) -> None:
    """Refuse the flags of a video's frames and a camera's connection on separate images, where they would do nothing
    (InputError): --segment, --keep-segments, --reconnect, --keep-all-frames."""
    if kind != "images":
        return
    for flag, given in (("--segment", args.segment is not None), ("--keep-segments", args.keep_segments is not None),
                        ("--reconnect", args.reconnect is not None), ("--keep-all-frames", args.keep_all_frames)):
        if given:
            raise InputError(f"{flag} is for a video, a stream or a camera; the source is images")


def segmenting(args) -> Segmenting | None:
    """--segment and --keep-segments, checked (InputError for values that mean nothing, or for segments of a video
    that --no-save does not write); None: the recording is one file."""
    if args.segment is None:
        if args.keep_segments is not None:
            raise InputError("--keep-segments N keeps the newest N files of --segment SECONDS: give --segment too")
        return None
    if args.no_save:
        raise InputError("--segment cuts the annotated video into files, and --no-save writes none")
    segments = Segmenting(args.segment, args.keep_segments)
    segments.check()
    return segments
