"""`darknet-py map`: darknet's `detector map` on a darknet-format dataset (--data obj.data), or COCO mAP
(pycocotools) of an annotated image folder (--images + --annotations)."""
from __future__ import annotations

import argparse
import json
import sys

from ..core.errors import InputError
from ..core.fileio import atomic_write, refuse_overwrite
from ..media.run import check_in_flight, plan_calls
from .common import add_backend_arg, add_device_args, add_model_args, load_model
from .tile_options import add_tile_args, tile_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..evaluate.darknet_map import POINTS
    from ..evaluate.detection_pass import MAP_THRESH

    add_model_args(p, names=False)
    add_backend_arg(p)
    p.add_argument("--data", dest="data_file", metavar="OBJ.DATA",
                   help="darknet .data file: darknet's `detector map` on its valid= list (labels found by darknet's "
                        "rules), printed as darknet prints it")
    p.add_argument("--images", help="COCO: folder holding the annotated images")
    p.add_argument("--annotations", help="COCO: instances JSON (e.g. instances_val2017.json)")
    p.add_argument("--thresh", type=float, default=MAP_THRESH,
                   help=f"score threshold (default {MAP_THRESH}, as darknet's map; its `valid` uses 0.001 with --nms 0.6)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS overlap threshold (default 0.45)")
    p.add_argument("--points", type=int, choices=POINTS, default=0,
                   help="--data: AP as the area under the curve (0, default), or from 11 (VOC2007) or 101 (COCO) "
                        "recall points, as darknet's -points")
    p.add_argument("--iou-thresh", type=float, default=0.5, help="--data: IoU for a true positive (default 0.5)")
    p.add_argument("--conf-thresh", type=float, default=0.25,
                   help="--data: score threshold of the precision/recall/F1/TP/FP/FN figures (darknet's -thresh, "
                        "default 0.25)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--in-flight", type=int, default=None, metavar="N",
                   help="detections running at once, each on a share of the cores (on the CPU: torch, onnxruntime, "
                        "OpenVINO; default 2 there); 1: one at a time")
    add_device_args(p)
    add_tile_args(p, roi=False)
    p.add_argument("--json-out", help="write the metrics here (COCO: AP, AP50, …; --data: mAP@IoU, precision, "
                                      "recall, f1, tp, fp, fn, average_iou, classes)")
    p.add_argument("--save-results", help="COCO: write the COCO results file here")
    p.add_argument("--exist-ok", action="store_true", help="overwrite existing --json-out / --save-results files")
    p.set_defaults(names=None, data=None)  # load_model reads them


def run(args) -> int:
    if args.data_file:
        if args.images or args.annotations or args.save_results:
            raise InputError("--data runs darknet's map on the .data file's valid list; --images, --annotations and "
                             "--save-results belong to the COCO mode")
    elif not (args.images and args.annotations):
        raise InputError("give --data obj.data (darknet's map), or --images and --annotations (COCO mAP)")
    for path in (args.json_out, args.save_results):
        if path:
            refuse_overwrite(path, args.exist_ok)
    if args.data_file and not 0 < args.iou_thresh < 1:
        raise InputError(f"--iou-thresh must be between 0 and 1, got {args.iou_thresh}")
    if args.data_file and not 0 <= args.conf_thresh <= 1:
        raise InputError(f"--conf-thresh must be in [0, 1], got {args.conf_thresh}")
    args.windows = tile_options(args)  # bad values fail before the model loads
    check_in_flight(args.in_flight)
    model, _ = load_model(args)
    # the images are files: a backend with a twin detects several at once (as `detect` does a folder)
    detector, args.in_flight = plan_calls(model, "images", [], args.in_flight)
    return _darknet_map(args, detector) if args.data_file else _coco_map(args, detector)


def _darknet_map(args, model) -> int:
    from ..evaluate.darknet_map import darknet_text, run_darknet_map

    result = run_darknet_map(model, args.data_file, args.iou_thresh, args.points, args.conf_thresh, args.thresh,
                             args.nms, args.batch, in_flight=args.in_flight, **args.windows)
    print(f"{result.detections} detections, {result.truths} ground-truth boxes (thresh {args.thresh}, NMS {args.nms})",
          file=sys.stderr)
    print(darknet_text(result))
    if args.json_out:
        with atomic_write(args.json_out, "w") as handle:
            json.dump(result.as_json(), handle, indent=1)
    return 0


def _coco_map(args, model) -> int:
    from ..evaluate.coco import metrics_table, run_map

    report = run_map(model, args.images, args.annotations, args.thresh, args.nms, args.batch, in_flight=args.in_flight,
                     **args.windows)
    print(f"{report.images} images, {report.detections} detections (thresh {args.thresh}, NMS {args.nms})", file=sys.stderr)
    print(metrics_table(report.metrics))
    if args.json_out:
        with atomic_write(args.json_out, "w") as handle:
            json.dump(report.metrics, handle, indent=1)
    if args.save_results:
        with atomic_write(args.save_results, "w") as handle:
            json.dump(report.results, handle)
    return 0
