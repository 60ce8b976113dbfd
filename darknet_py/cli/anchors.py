"""`darknet-py anchors`: anchors for a training set, as darknet's `detector calc_anchors` computes them (model.anchors);
with --cfg, the network's size and anchor count from a cfg, and -o a copy of it with the new anchors."""
from __future__ import annotations

import argparse
import os
import sys

from ..core.errors import InputError
from ..core.fileio import atomic_write, refuse_overwrite
from ..format.cfg import read_cfg_text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="the set's darknet .data file: its train= image list (labels beside each image, by "
                   "darknet's rules) and classes=")
    p.add_argument("--cfg", help="the cfg the anchors are for: its [net] width and height and its [yolo] layers' num "
                   "are the defaults of --width, --height and --clusters")
    p.add_argument("--clusters", type=int, metavar="K", help="how many anchors (darknet's -num_of_clusters): 9 for "
                   "yolov4 and yolov4-csp, 6 for yolov4-tiny; without --cfg it must be given")
    p.add_argument("--size", type=int, metavar="S", help="the network's width and height, S×S (or --width, --height)")
    p.add_argument("--width", type=int, help="the network's input width, the box widths' scale")
    p.add_argument("--height", type=int, help="the network's input height, the box heights' scale")
    p.add_argument("--seed", type=int, default=0, help="the seed of the random first centres, 0 to 4294967295 "
                   "(default 0; darknet seeds with the time, so its anchors change from run to run: the seed "
                   "`date +%%s` said when darknet ran gives its anchors)")
    p.add_argument("-o", "--output", metavar="NEW.cfg", help="write a copy of --cfg with the anchors in every [yolo] "
                   "layer (anchors= and num=; the rest as it was, comments included)")
    p.add_argument("--plot", metavar="PNG", help="draw the boxes' sizes (a dot each, coloured by its anchor) and the "
                   "anchors (rectangles from the corner), as darknet's -show draws cloud.png")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing -o or --plot file")


def run(args) -> int:
    from ..core.progress import Progress
    from ..model.anchors import (
        calc_anchors,
        cfg_size_and_count,
        cfg_with_anchors,
        check_anchor_request,
        check_cfg_takes,
    )

    if args.output is not None and args.cfg is None:
        raise InputError("-o writes a copy of a cfg with the new anchors: give the cfg with --cfg")
    if args.size is not None and (args.width is not None or args.height is not None):
        raise InputError("--size S is --width S --height S: give one or the other")
    width = args.size if args.width is None else args.width
    height = args.size if args.height is None else args.height
    clusters, cfg_text = args.clusters, None
    if args.cfg is not None:
        cfg_text = read_cfg_text(args.cfg)
        cfg_width, cfg_height, cfg_count = cfg_size_and_count(cfg_text, args.cfg, need_count=clusters is None)
        width = cfg_width if width is None else width
        height = cfg_height if height is None else height
        clusters = cfg_count if clusters is None else clusters
    if clusters is None:
        raise InputError("give --clusters K (darknet's -num_of_clusters; 9 for yolov4, 6 for yolov4-tiny), or --cfg "
                         "to take its [yolo] layers' num")
    if width is None or height is None:
        raise InputError("give the network's size: --size S, or --width and --height (or --cfg, whose [net] has them)")
    check_anchor_request(clusters, width, height, args.seed)
    # before the work: a cfg that cannot take them is refused now
    layers = check_cfg_takes(cfg_text, args.cfg, clusters) if args.output is not None else []
    for path in (args.output, args.plot):
        if path is not None:
            refuse_overwrite(path, args.exist_ok)
    if args.plot is not None:
        import cv2  # only for the plot: the command alone loads no OpenCV

        if not cv2.haveImageWriter(args.plot):  # refused now: not after -o is written
            raise InputError(f"--plot {args.plot}: OpenCV writes no image of that kind; give a .png or .jpg file")
    progress = Progress("anchors", unit="label files")
    anchors = calc_anchors(args.data, clusters, width, height, args.seed, progress.update)
    progress.close()
    boxes = anchors.boxes
    print(f"{len(boxes.sizes):,} boxes of {boxes.images:,} images at {width}x{height}: {clusters} anchors after "
          f"{anchors.rounds} k-means rounds (seed {args.seed})", file=sys.stderr)
    print("\n".join(anchors.darknet_lines()))
    if args.output is not None:
        with atomic_write(args.output, "w") as handle:
            handle.write(cfg_with_anchors(cfg_text, args.cfg, anchors))
        print(f"wrote {args.output}: {os.path.basename(args.cfg)} with these anchors in its "
              f"{len(layers)} [yolo] layers", file=sys.stderr)
    if args.plot is not None:
        from ..core.fileio import write_image
        from ..media.anchor_plot import plot_anchors

        write_image(args.plot, plot_anchors(anchors))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0

