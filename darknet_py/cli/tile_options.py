"""The --tiles, --tile-overlap and --roi options of `detect` and `map` (darknet_py.pipeline.tiles does the work)."""
from __future__ import annotations

import argparse

from ..core.errors import InputError
from ..pipeline.tiles import AUTO_MAX_SCALE, DEFAULT_OVERLAP, MAX_OVERLAP, MIN_TILE, parse_roi, parse_tiles


def add_tile_args(p: argparse.ArgumentParser, roi: bool = True) -> None:
    """Add --tiles and --tile-overlap (and --roi when `roi`)."""
    group = p.add_argument_group("tiles (small objects in large images)")
    group.add_argument("--tiles", metavar="auto|N",
                       help="detect in overlapping tiles of N source pixels a side ('auto': the fewest tiles at "
                            f"most {AUTO_MAX_SCALE:g}x the network's input size; N at least {MIN_TILE}) plus the whole "
                            "image, run together, boxes merged across tile edges (docs/tiles.md)")
    group.add_argument("--tile-overlap", type=str, metavar="F",
                       help=f"fraction of the tile side that neighbouring tiles share, 0 to {MAX_OVERLAP} "
                            f"(default {DEFAULT_OVERLAP})")
    if roi:
        group.add_argument("--roi", metavar="X1,Y1,X2,Y2",
                           help="detect only in this region of each image or frame (pixels); boxes stay in the "
                                "image's coordinates")


def tile_options(args) -> dict:
    """The detect() keywords the flags ask for: {} without them, so that the plain pass runs untouched."""
    options: dict = {}
    if args.tiles is not None:
        options["tiles"] = parse_tiles(args.tiles)
    if args.tile_overlap is not None:
        if args.tiles is None:
            raise InputError("--tile-overlap needs --tiles")
        try:
            overlap = float(args.tile_overlap)
        except ValueError:
            overlap = float("nan")
        if not 0 <= overlap <= MAX_OVERLAP:
            raise InputError(f"--tile-overlap {args.tile_overlap}: give a fraction of the tile side from 0 to "
                             f"{MAX_OVERLAP}, e.g. 0.2")
        options["tile_overlap"] = overlap
    if getattr(args, "roi", None) is not None:
        options["roi"] = parse_roi(args.roi)
    return options
