"""detect's --heatmap, --heatmap-at and --heatmap-radius: the flags and their checks before the model loads (the map
is pipeline.heatmap's, its files media.heatmap_sink's)."""
from __future__ import annotations

import argparse

from ..core.errors import InputError
from ..media.heatmap_sink import HEATMAP_NPY, HEATMAP_PNG, HeatmapOptions
from ..pipeline.heatmap import ANCHORS, DEFAULT_ANCHOR, RADIUS_OF_SHORT_SIDE


def add_heatmap_args(p: argparse.ArgumentParser) -> None:
    """--heatmap, --heatmap-at, --heatmap-radius, in their own help group."""
    group = p.add_argument_group("heat map (where objects spend their time)")
    group.add_argument("--heatmap", action="store_true",
                       help=f"OUTPUT/{HEATMAP_PNG}: how long an object was at each place of the view, coloured from "
                            "blue (a moment) to red (the most) over the scene (the median of frames across the run: "
                            f"who walks through is gone), with its scale; OUTPUT/{HEATMAP_NPY}: the same as numbers "
                            "(seconds per pixel for a video, stream or camera; images for a folder); mind --classes; a "
                            "camera's or watched folder's map is saved every minute and goes on from an earlier run's")
    group.add_argument("--heatmap-at", choices=ANCHORS, default=None,
                       help="where each box marks the map: bottom (its bottom edge's middle, where a person or a "
                            "vehicle meets the ground; the default), center, or box (all of it)")
    group.add_argument("--heatmap-radius", type=int, default=None, metavar="PX",
                       help="the disc marked around each box's point, in pixels (default "
                            f"{RADIUS_OF_SHORT_SIDE * 100:.0f}%% of the frame's shorter side: 22 at 720p)")


def heatmap_options(args) -> HeatmapOptions | None:
    """The heat map the flags ask for, checked (InputError otherwise); None without --heatmap."""
    if not args.heatmap:
        for flag, given in (("--heatmap-at", args.heatmap_at is not None),
                            ("--heatmap-radius", args.heatmap_radius is not None)):
            if given:
                raise InputError(f"{flag} shapes the heat map: give --heatmap")
        return None
    if args.heatmap_radius is not None and args.heatmap_radius < 1:
        raise InputError(f"--heatmap-radius {args.heatmap_radius}: expected a radius of at least 1 pixel")
    anchor = args.heatmap_at or DEFAULT_ANCHOR
    if anchor == "box" and args.heatmap_radius is not None:
        raise InputError("--heatmap-radius is the disc around a box's point; --heatmap-at box marks the whole box")
    return HeatmapOptions(anchor, args.heatmap_radius)
