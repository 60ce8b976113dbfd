"""`darknet-py slice`: a darknet training set cut into tiles (small objects in large images; see media.tile_dataset)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import InputError
from ..format.darknet_data import DATA_FILE
from ..media.run_folders import check_output_folder
from ..media.tile_dataset import DEFAULT_MIN_VISIBLE, SliceOptions
from ..pipeline.tiles import DEFAULT_OVERLAP, MAX_OVERLAP, MIN_TILE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", help="the set's darknet .data file: its train= and valid= image lists (labels "
                   "beside each image, by darknet's rules), names= and classes=")
    p.add_argument("--images", help="instead of a .data file, a COCO-annotated set: the folder holding its images")
    p.add_argument("--annotations", help="… and its COCO instances JSON (classes: the categories by ascending id, "
                   "as map numbers them; crowd regions left out)")
    p.add_argument("--tile", type=int, required=True, metavar="N",
                   help=f"the tiles' side in source pixels (at least {MIN_TILE}); the network's input size trains "
                        "on objects at their own scale, as `detect --tiles N` finds them")
    p.add_argument("--overlap", type=float, default=DEFAULT_OVERLAP, metavar="F",
                   help=f"fraction of a tile that neighbouring tiles share, 0 to {MAX_OVERLAP} (default "
                        f"{DEFAULT_OVERLAP}, as --tile-overlap)")
    p.add_argument("--min-visible", type=float, default=DEFAULT_MIN_VISIBLE, metavar="F",
                   help="keep a box in a tile when at least this fraction of its area is inside it, clipped to the "
                        f"tile (default {DEFAULT_MIN_VISIBLE}, SAHI's min_area_ratio)")
    p.add_argument("--empty", type=float, default=1.0, metavar="F",
                   help="the fraction of tiles with no box that are kept, as negatives to train on, spread evenly "
                        "(default 1: every one; 0: none; 0.25: one in four)")
    p.add_argument("-o", "--output", required=True, help="the folder to write: tiles/ (each tile and its label "
                   "file), train.txt and valid.txt, obj.data, obj.names, backup/")
    p.add_argument("--exist-ok", action="store_true", help="write into an --output folder that already holds files")


def run(args) -> int:
    from ..core.progress import Progress
    from ..media.tile_dataset import slice_coco, slice_dataset

    coco = args.images is not None or args.annotations is not None
    if coco == (args.data is not None) or (coco and (args.images is None or args.annotations is None)):
        raise InputError("give the set to slice: its darknet .data file, or --images and --annotations (COCO)")
    options = SliceOptions(args.tile, args.overlap, args.min_visible, args.empty)
    options.check()
    check_output_folder(args.output, args.exist_ok)
    progress = Progress("slice", unit="images")  # its first line comes with the first image sliced
    if coco:
        report = slice_coco(args.images, args.annotations, args.output, options, progress.update)
    else:
        report = slice_dataset(args.data, args.output, options, progress.update)
    progress.close()  # not on an error: a set refused before any image has no progress line, only its error
    print(f"{report.summary()} → {Path(args.output) / DATA_FILE}", file=sys.stderr)
    return 0
