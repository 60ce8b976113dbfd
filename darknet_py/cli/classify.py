"""`darknet-py classify`: the top classes of images, as `darknet classifier predict` computes them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core import events, interrupt
from ..core.errors import InputError
from ..core.fileio import atomic_write, refuse_overwrite, require_writable
from ..media.classify_run import classify_images
from ..media.run import none_readable
from ..media.run_folders import run_folder
from ..media.sources import source_items
from .common import add_model_args, model_files, size_arg

CLASSIFY_RUNS = Path("runs/classify")  # --save-json's default: a fresh CLASSIFY_RUNS/N each run
CLASSIFICATIONS_JSON = "classifications.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="image (a file or an http(s) URL of one), folder or glob of images")
    add_model_args(p)
    p.add_argument("--top", type=int, default=5, help="classes listed per image (default 5)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
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
    if args.save_json and args.output:  # refused before the model loads and every image is classified
        refuse_overwrite(Path(args.output) / CLASSIFICATIONS_JSON, args.exist_ok)
    elif args.save_json:
        require_writable(CLASSIFY_RUNS, f"the run's folder {CLASSIFY_RUNS}/N")
    cfg, weights = model_files(args)
    model = load(weights if cfg is None else cfg, None if cfg is None else weights, device=args.device, size=size_arg(args))
    if not model.is_classifier:
        raise InputError(f"{Path(cfg or weights).name} is a detector (it has detection layers): use darknet-py detect")
    names = resolve_names(model.num_classes, args.names, args.data) if (args.names or args.data) else model.names
    records, unreadable, interrupted = [], [], False
    try:
        for result in classify_images(model, items, args.top, names, args.batch, unreadable):
            with interrupt.deferred():  # an image's lines and record go together
                print(f"{result.source}:")
                print("\n".join(f"  {line}" for line in str(result).splitlines()), flush=True)
                records.append(result.as_dict())
            events.emit(f"images-done {len(records)}")
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the images done are kept (classifications.json), as detect keeps them
        interrupted = True
    if unreadable and not records and not interrupted:
        raise none_readable(unreadable)
    for failure in unreadable:  # as detect: skipped, named, and the run goes on
        print(f"warning: {failure}; skipped", file=sys.stderr)
    stopped = ", interrupted — the images done are saved" if interrupted else ""
    if args.save_json and (records or not interrupted):
        out, _ = run_folder(args.output, CLASSIFY_RUNS)
        with interrupt.deferred(), atomic_write(out / CLASSIFICATIONS_JSON, "w") as handle:
            json.dump(records, handle)
        print(f"{len(records)} image(s){stopped} → {out / CLASSIFICATIONS_JSON}", file=sys.stderr)
    elif interrupted:
        print(f"{len(records)} image(s){stopped if args.save_json else ', interrupted'}", file=sys.stderr)
    return interrupt.exit_code() if interrupted else 0
