"""`darknet-py info`: darknet's layer table, BFLOPs and parameters."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.fileio import atomic_write, refuse_overwrite
from .common import add_size_arg, size_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cfg", help="a Darknet .cfg file, or an official model's name (yolov4-tiny, …: its cfg)")
    add_size_arg(p)
    p.add_argument("--json", action="store_true",
                   help='print {"bflops", "params", "layers": [...], "blocks": [...]} as JSON')
    p.add_argument("--dot", metavar="OUT.dot", help="write the CSP block graph for Graphviz (dot -Tsvg OUT.dot)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing --dot file")


def run(args) -> int:
    from ..format import zoo
    from ..model.info import blocks, format_table, summary
    from ..model.network import build
    from ..model.structure import to_dot

    if args.dot:
        refuse_overwrite(args.dot, args.exist_ok)
    cfg = zoo.cfg_or_name(args.cfg)  # a file, or an official model's name (its cfg only: no weights needed)
    model = build(cfg, size_arg(args), init_weights=False)  # the table reads shapes, never weight values
    print(json.dumps(summary(model), indent=1) if args.json else format_table(model))
    if args.dot:
        with atomic_write(args.dot, "w") as handle:
            handle.write(to_dot(blocks(model), Path(cfg).name))
        print(f"wrote {args.dot}", file=sys.stderr)
    return 0


