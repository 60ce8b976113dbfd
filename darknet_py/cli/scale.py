"""`darknet-py scale`: a width/depth/size-scaled cfg (Scaled-YOLOv4 model scaling)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.fileio import atomic_write, refuse_overwrite


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cfg", help="the base Darknet .cfg file, or an official model's name (yolov4-csp, …: its cfg)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier W (filters rounded to multiples of 8)")
    p.add_argument("--depth", type=float, default=1.0, help="multiplier D of the residual units in each CSP stage")
    p.add_argument("--size", type=int, help="network input size S (a multiple of the total stride)")
    p.add_argument("-o", "--output", required=True, help="the .cfg file to write")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")


def run(args) -> int:
    from ..format import zoo
    from ..model.info import blocks, summary
    from ..model.network import build
    from ..model.scaling import ScaleSpec, scale
    from ..model.structure import csp_depths

    refuse_overwrite(args.output, args.exist_ok)
    spec = ScaleSpec(args.width, args.depth, args.size)
    cfg = zoo.cfg_or_name(args.cfg)  # a file, or an official model's name (its cfg only)
    base = build(cfg, init_weights=False)  # its structure and counts are read, never its weight values
    header = (f"{Path(args.output).name}: {Path(cfg).name} scaled by darknet-py scale "
              f"--width {spec.width:g} --depth {spec.depth:g} --size {spec.size or base.width}\n"
              "New architecture: train it (or convert matching weights); the base weights do not fit.")
    text, scaled = scale(base, spec, header, args.output)
    with atomic_write(args.output, "w") as handle:
        handle.write(text)
    before, after = summary(base), summary(scaled)
    print(f"wrote {args.output}: {before['bflops']:.3f} -> {after['bflops']:.3f} BFLOPs, "
          f"{before['params']:,} -> {after['params']:,} params, {base.width}x{base.height} -> "
          f"{scaled.width}x{scaled.height}, CSP stage depths {csp_depths(blocks(base))} -> {csp_depths(blocks(scaled))}")
    return 0


