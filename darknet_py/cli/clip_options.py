"""detect's --clips, --clip-on, --clip-classes, --keep-clips and --notify (repeatable): the flags and their checks
before the model loads (the clips are media.clips', the messages media.notify's)."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..format.names import class_ids
from ..media.clips import CLIPS_DIR, CLIPS_JSONL, TRIGGERS, Clipping
from ..media.notify import check_notify_url, is_mqtt, parse_header


def add_clip_args(p: argparse.ArgumentParser) -> None:
    """--clips SECONDS, --clip-on, --clip-classes, --keep-clips and --notify URL, in their own help group."""
    group = p.add_argument_group("clips and notifications (videos, streams, cameras)")
    group.add_argument("--clips", type=float, metavar="SECONDS",
                       help=f"a short annotated video of each moment something is detected: from SECONDS before the "
                            f"first frame with a detection to SECONDS after the last (detections less than SECONDS "
                            f"apart: one clip), OUTPUT/{CLIPS_DIR}/STEM_FIRST.mp4 (FIRST: its first frame's number, a "
                            f"camera's date), each listed in OUTPUT/{CLIPS_JSONL} once it is finished; the SECONDS "
                            f"before are held in memory as JPEG (1280x720: 2.8 MB a second at 25 fps)")
    group.add_argument("--clip-on", choices=TRIGGERS, default=None,
                       help="what begins a clip: detections (any the run keeps: mind --classes; the default) or "
                            "events (a crossing, entry, exit or dwelling of --line/--zone)")
    group.add_argument("--clip-classes", nargs="+", metavar="CLASS",
                       help="only detections of these classes (names or ids) begin a clip; the others are drawn as "
                            "usual (--classes leaves them out everywhere); default: any detection")
    group.add_argument("--keep-clips", type=int, metavar="N",
                       help="keep the N newest clips the index lists (an earlier run's into the same folder too), "
                            "deleting the oldest as each new one is finished; default: keep every one")
    group.add_argument("--notify", metavar="URL", action="append", default=[],
                       help="send each crossing, entry, exit or dwelling of --line/--zone (its events.jsonl line), "
                            "each clip of --clips once it is finished (its clips.jsonl line), and each drop and return "
                            "of a camera's or stream's connection as JSON, from a thread of their own, in order: "
                            "POSTed to an http(s):// URL, or published to an MQTT broker, "
                            "mqtt(s)://[USER:PASSWORD@]HOST[:PORT]/TOPIC, under TOPIC/SOURCE/TYPE (QoS 1; retained "
                            "states too: TOPIC/SOURCE/objects, the classes in view, with --line/--zone "
                            "TOPIC/SOURCE/counts, and TOPIC/SOURCE/snapshot, the annotated frame as a JPEG at each "
                            "event or object coming into view; TOPIC/SOURCE/status is online or offline, offline also as "
                            "the "
                            "connection's last will); a receiver that is down gets them when it is back (tried again "
                            "after 1 s doubling to 30 s); repeatable: each URL gets every message (a broker and a "
                            "webhook)")
    group.add_argument("--notify-header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="a header sent with every message to an http(s) --notify URL (repeatable), e.g. "
                            "'Authorization: Bearer TOKEN' for a receiver that wants a token; never printed")


def check_notify(args, live: bool, watched: bool = False) -> None:
    """--notify: each URL one to POST to or an MQTT broker, none twice, --notify-header only with an http(s) one, and
    something to send (InputError otherwise).

    Args:
        args: detect's parsed flags.
        live (bool): a source is a camera or a stream, whose drops and returns are posted.
        watched (bool): the source is a folder watched for images (--watch), each one with detections posted.
    """
    if not args.notify:
        if args.notify_header:
            raise InputError("--notify-header is sent with --notify's messages: give --notify URL too")
        return
    for url in args.notify:
        check_notify_url(url)
        if args.notify.count(url) > 1:
            raise InputError(f"--notify {hide_credentials(url)} is given twice: each URL would get every message twice")
    if args.notify_header and all(is_mqtt(url) for url in args.notify):
        check_notify_url(args.notify[0], headers=True)  # headers with brokers only: refused, naming the first
    notify_headers(args)
    # a broker has a video's states to be sent (its objects in view, their pictures): any video will do
    if args.clips is None and not (args.line or args.zone) and not live and not watched and \
            not any(is_mqtt(url) for url in args.notify):
        raise InputError("--notify posts the crossings, entries and exits of --line/--zone, the clips of --clips, "
                         "a camera's or stream's drops and the images --watch finds something in: give one of them "
                         "(an mqtt:// broker is also sent a video's objects in view)")


def notify_headers(args) -> dict[str, str]:
    """--notify-header's headers, checked (InputError for one that is not NAME: VALUE)."""
    return dict(parse_header(text) for text in args.notify_header)


def clipping(args, kind: str = "video", names: Sequence[str] | None = None) -> Clipping | None:
    """--clips, --clip-on, --clip-classes and --keep-clips, checked (InputError for values that mean nothing, clips of
    images, events without a line or zone to count, a class the model does not have); None: no clips.

    Args:
        args: detect's parsed flags.
        kind (str): "images" or "video", as media.sources.source_items says of the source.
        names (sequence of str or None): the model's class names, for --clip-classes (InputError for one it does not
            have); None: before the model loads, the flags checked without them.
    """
    if args.clips is None:
        if args.clip_on is not None:
            raise InputError(f"--clip-on {args.clip_on} says what begins a clip of --clips SECONDS: give --clips too")
        if args.keep_clips is not None:
            raise InputError("--keep-clips N keeps the newest N clips of --clips SECONDS: give --clips too")
        if args.clip_classes is not None:
            raise InputError("--clip-classes chooses the detections that begin a clip of --clips SECONDS: give --clips "
                             "too")
        return None
    # the classes as ids once the model's names are known; before, a stand-in that checks the rest
    classes = tuple(sorted(class_ids(args.clip_classes, names, "--clip-classes"))) if args.clip_classes and names \
        else (() if args.clip_classes else None)
    clips = Clipping(args.clips, args.clip_on or TRIGGERS[0], args.keep_clips, classes)
    clips.check()
    if kind == "images":
        raise InputError("--clips cuts clips out of a video, stream or camera; the source is separate images")
    if clips.on == "events" and not (args.line or args.zone):
        raise InputError("--clip-on events begins a clip at a crossing, entry or exit: give --line or --zone (with "
                         "--track)")
    return clips
