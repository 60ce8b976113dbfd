"""python -m weights_tools {synth,inspect,convert,partial} …"""
from __future__ import annotations

import sys
import warnings

from darknet_py.cli import OneLineParser
from darknet_py.core.errors import DarknetError, InputError
from darknet_py.core.fileio import refuse_overwrite


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m weights_tools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="deterministic random weights of exactly the cfg's layout")
    p.add_argument("cfg", help="the Darknet .cfg whose layout the weights follow")
    p.add_argument("out", help="the .weights file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0: the same file every time)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")
    p = sub.add_parser("inspect", help="header, float count, per-layer table with --cfg")
    p.add_argument("weights", help="a darknet .weights file")
    p.add_argument("--cfg", help="its .cfg: adds the per-layer table (counts, offsets, value ranges)")
    p = sub.add_parser("convert", help=".weights → .pt (PyTorch state_dict) or .pt → .weights")
    p.add_argument("cfg", help="the Darknet .cfg both files follow")
    p.add_argument("source", help="a .weights file (→ .pt) or a .pt state_dict (→ .weights)")
    p.add_argument("out", help="the file to write: .pt or .weights")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")
    p = sub.add_parser("partial", help="the first N layers' weights, as darknet partial makes yolov4-tiny.conv.29")
    p.add_argument("cfg", help="the Darknet .cfg the weights follow (at least up to layer N-1)")
    p.add_argument("weights", help="the .weights file to take them from")
    p.add_argument("out", help="the file to write (darknet's name for it: NAME.conv.N)")
    p.add_argument("layers", type=int, help="N: layers 0 to N-1 are kept (29 for yolov4-tiny, 137 for yolov4, "
                   "15 for yolov3-tiny)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")
    args = parser.parse_args(argv)
    warnings.formatwarning = lambda message, *_args, **_kw: f"warning: {message}\n"  # one line, as darknet-py's
    try:
        if args.command in ("synth", "convert", "partial"):
            refuse_overwrite(args.out, args.exist_ok)
        if args.command == "synth":
            from .synth import write_synthetic

            if not 0 <= args.seed < 2 ** 64:  # numpy's generators take a seed of 0 to 2^64 - 1
                raise InputError(f"--seed {args.seed}: expected a whole number from 0 to 2^64 - 1")

            count = write_synthetic(args.cfg, args.out, args.seed)
            print(f"wrote {args.out}: {count:,} floats (seed {args.seed})")
        elif args.command == "inspect":
            from .inspect import describe

            print(describe(args.weights, args.cfg))
        elif args.command == "partial":
            from .partial import partial

            done = partial(args.cfg, args.weights, args.out, args.layers)
            print(f"wrote {args.out}: layers 0 to {done.layers - 1} ({done.weighted} with weights), "
                  f"{done.floats:,} floats")
        else:
            from .convert import convert

            convert(args.cfg, args.source, args.out)
            print(f"wrote {args.out}")
    except DarknetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
