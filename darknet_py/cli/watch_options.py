"""detect's --watch and --watch-poll: the flags and their checks before the model loads (the watching is
media.watched_folder's)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import InputError
from ..media.run_folders import DETECT_RUNS
from ..media.watched_folder import POLL_S, WATCHED_JSONL, WatchedFolder


def add_watch_args(p: argparse.ArgumentParser) -> None:
    """--watch and --watch-poll, in their own help group."""
    group = p.add_argument_group("watching a folder (images dropped in by a camera, a scanner, another program)")
    group.add_argument("--watch", action="store_true",
                       help="SOURCE is a folder: detect its images, then each image that arrives, once it is whole "
                            "(closed by its writer or moved in; a JPEG or PNG with its end), until Ctrl-C or SIGTERM; "
                            f"each one done is listed in OUTPUT/{WATCHED_JSONL}, so a run again into the same --output "
                            "(--exist-ok) goes on where it stopped; with --notify each image in which something is "
                            "detected is POSTed")
    group.add_argument("--watch-subfolders", action="store_true",
                       help="--watch the folders in the folder too, and theirs, as they appear (a camera's upload "
                            "into a folder a day): outputs are named by the image's path below the folder with _ for "
                            "/ (OUTPUT/2026-12-07_0001.jpg)")
    group.add_argument("--watch-poll", type=float, default=None, metavar="SECONDS",
                       help=f"seconds between two looks at the folder (default {POLL_S:g}): a file no writer announces "
                            "(one there at the start, one on a network share) is taken once two looks find it "
                            "unchanged")


def watched_folder(args) -> WatchedFolder | None:
    """--watch checked against the other flags (InputError for what a folder that never ends cannot do), and the folder
    it watches; None without --watch (--watch-poll alone is refused)."""
    if not args.watch:
        for flag, given in (("--watch-poll sets how often", args.watch_poll is not None),
                            ("--watch-subfolders says whether", args.watch_subfolders)):
            if given:
                raise InputError(f"{flag} --watch looks at its folder: give --watch too")
        return None
    if len(args.source) != 1:
        raise InputError(f"--watch watches one folder; {len(args.source)} sources given")
    refused = (("--sequence", args.sequence), ("--track", args.track is not None),
               ("--line", bool(args.line)), ("--zone", bool(args.zone)), ("--keep-serving", args.keep_serving))
    for flag, given in refused:
        if given:
            raise InputError(f"{flag} is not available with --watch (its images are separate pictures, detected one "
                             "by one as they arrive, until the run is stopped)")
    for flag, value in (("--batch", args.batch), ("--in-flight", args.in_flight)):
        if value is not None and value != 1:
            raise InputError(f"{flag} {value}: --watch detects each image as soon as it is whole, one at a time")
    folder = WatchedFolder(args.source[0], POLL_S if args.watch_poll is None else args.watch_poll,
                           subfolders=args.watch_subfolders)
    _refuse_output_inside(folder, Path(args.output or DETECT_RUNS))
    return folder


def _refuse_output_inside(folder: WatchedFolder, output: Path) -> None:
    """InputError when the run's outputs would land where it watches (its annotated images detected again, and theirs,
    without end): --output the watched folder itself, or with --watch-subfolders any folder below it."""
    watched, out = folder.folder.resolve(), output.resolve()
    inside = out == watched or (folder.subfolders and watched in out.parents)
    if inside:
        where = "the watched folder" if out == watched else "a folder below the watched folder"
        raise InputError(f"the run's outputs would go into {where} ({output}), whose new images --watch detects: give "
                         "--output a folder outside it")

