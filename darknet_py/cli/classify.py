"""`darknet-py classify`: the top classes of images, as `darknet classifier predict` computes them."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..backends import BACKENDS, GRAPH_BACKENDS, graph_backend
from ..core import interrupt
from ..core.errors import InputError
from ..media.classify_run import check_classify_output, classify_run
from ..media.sources import source_items
from .common import add_model_args, model_files, size_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="image (a file or an http(s) URL of one), folder or glob of images")
    add_model_args(p)
    p.add_argument("--top", type=int, default=5, help="classes listed per image (default 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="inference engine (default torch; onnxruntime for a .onnx file, openvino for a .xml file): "
                        "cfg + weights exported in memory to the runtime named")
    p.add_argument("--output", help="folder for --save-json (default: a fresh runs/classify/N)")
    p.add_argument("--save-json", action="store_true", help="write OUTPUT/classifications.json")
    p.add_argument("--exist-ok", action="store_true", help="replace an OUTPUT/classifications.json already there")
    p.add_argument("--batch", type=int, default=1, help="images per forward (default 1)")


def run(args) -> int:
    from ..api import load
    from ..format.names import resolve_names

    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}")
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    kind, items = source_items(args.source)
    if kind != "images":
        raise InputError(f"classify takes images (a file, a folder or a glob), not a {kind}: {args.source}")
    check_classify_output(args.save_json, args.output, args.exist_ok)  # before the model loads
    if args.backend in GRAPH_BACKENDS:
        graph_backend(args.backend).require()  # a missing extra: before the model files are read
    cfg, weights = model_files(args)
    model = load(weights if cfg is None else cfg, None if cfg is None else weights, device=args.device, size=size_arg(args),
                 backend=args.backend)
    if not model.is_classifier:
        raise InputError(f"{Path(cfg or weights).name} is a detector (it has detection layers): use darknet-py detect")
    names = resolve_names(model.num_classes, args.names, args.data) if (args.names or args.data) else model.names
    outcome = classify_run(model, items, args.top, names, args.batch, each=_print_result, save_json=args.save_json,
                           output=args.output, progress=not sys.stdout.isatty())  # a terminal shows the results
    for failure in outcome.unreadable:  # as detect: skipped, named, and the run goes on
        print(f"warning: {failure}; skipped", file=sys.stderr)
    if outcome.summary() is not None:
        print(outcome.summary(), file=sys.stderr)
    return interrupt.exit_code() if outcome.interrupted else 0


def _print_result(result) -> None:
    """darknet's `classifier predict` lines: the image, then each class and its probability."""
    print(f"{result.source}:")
    print("\n".join(f"  {line}" for line in str(result).splitlines()), flush=True)
