"""`darknet-py map`: COCO mAP of a model on an annotated image folder."""
from __future__ import annotations

import argparse
import json
import sys

from ..fileio import atomic_write, refuse_overwrite
from .common import add_backend_arg, add_device_args, add_model_args, load_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..coco_eval import MAP_THRESH

    add_model_args(p, names=False)
    add_backend_arg(p)
    p.add_argument("--images", required=True, help="folder holding the annotated images")
    p.add_argument("--annotations", required=True, help="COCO instances JSON (e.g. instances_val2017.json)")
    p.add_argument("--thresh", type=float, default=MAP_THRESH, help=f"score threshold (default {MAP_THRESH}, as darknet)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS overlap threshold (default 0.45)")
    p.add_argument("--batch", type=int, default=1)
    add_device_args(p)
    p.add_argument("--json-out", help="write the metrics (AP, AP50, AP75, APs, APm, APl) here")
    p.add_argument("--save-results", help="write the COCO results file here")
    p.add_argument("--exist-ok", action="store_true", help="overwrite existing --json-out / --save-results files")
    p.set_defaults(names=None, data=None)  # load_model reads them


def run(args) -> int:
    from ..coco_eval import metrics_table, run_map

    for path in (args.json_out, args.save_results):
        if path:
            refuse_overwrite(path, args.exist_ok)
    model, _ = load_model(args)
    report = run_map(model, args.images, args.annotations, args.thresh, args.nms, args.batch)
    print(f"{report.images} images, {report.detections} detections (thresh {args.thresh}, NMS {args.nms})", file=sys.stderr)
    print(metrics_table(report.metrics))
    if args.json_out:
        with atomic_write(args.json_out, "w") as handle:
            json.dump(report.metrics, handle, indent=1)
    if args.save_results:
        with atomic_write(args.save_results, "w") as handle:
            json.dump(report.results, handle)
    return 0


