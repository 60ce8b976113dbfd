"""COCO mAP of official yolov4-tiny at 416 on the shared val2017 subset, in one run:
our torch, onnxruntime and OpenVINO backends (darknet's `map` settings), int8 on onnxruntime and
on OpenVINO (NNCF), both calibrated on the shared photos, our single-label mode, and OpenCV 4.x
DNN's DetectionModel — every one scored by the same pycocotools COCOeval.

    python -m benchmarks.coco_map [--model yolov4-tiny] [--out benchmarks/results/coco_map.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.evaluate.coco import (
    METRICS,
    category_ids,
    evaluate,
    image_paths,
    load_ground_truth,
    metrics_table,
    run_map,
)
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.export.openvino import export_openvino
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import COCO_NAMES

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBSET = SHARED / "data" / "coco-val2017-subset"
CALIBRATION = SHARED / "data" / "images"


def opencv_results(cfg: Path, weights: Path, annotations: Path, images: Path, size: int, thresh: float, nms: float) -> list[dict]:
    """cv2.dnn_DetectionModel as its users call it: one class per box, IoU NMS per class."""
    coco = load_ground_truth(annotations)
    categories = category_ids(coco)
    model = cv2.dnn_DetectionModel(cv2.dnn.readNetFromDarknet(str(cfg), str(weights)))
    model.setInputParams(scale=1 / 255, size=(size, size), swapRB=True)
    results = []
    for image_id, path in image_paths(coco, images):
        class_ids, scores, boxes = model.detect(cv2.imread(path), confThreshold=thresh, nmsThreshold=nms)
        for c, s, (x, y, w, h) in zip(np.ravel(class_ids), np.ravel(scores), np.reshape(boxes, (-1, 4))):
            results.append({"image_id": image_id, "category_id": categories[int(c)], "score": float(s),
                            "bbox": [float(x), float(y), float(w), float(h)]})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov4-tiny")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--thresh", type=float, default=0.005)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "coco_map.json")
    args = parser.parse_args()
    cfg, weights = SHARED / "zoo" / "cfg" / f"{args.model}.cfg", SHARED / "zoo" / "weights" / f"{args.model}.weights"
    annotations, images = SUBSET / "instances_val2017_subset.json", SUBSET / "images"
    model = darknet_py.load(cfg, weights, size=args.size)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        onnx_file, onnx_int8, ir_int8 = (Path(folder) / name for name in ("model.onnx", "int8.onnx", "int8.xml"))
        int8 = Int8Options(str(CALIBRATION))
        export_onnx(model, onnx_file, COCO_NAMES)
        export_onnx(model, onnx_int8, COCO_NAMES, ExportOptions(), str(weights), int8)
        export_openvino(model, ir_int8, COCO_NAMES, ExportOptions(), str(weights), int8)
        runs = {
            "darknet_py torch (darknet map settings: multi-label, cfg NMS)": (model, {}),
            "darknet_py onnxruntime (same settings)": (darknet_py.load(onnx_file), {}),
            "darknet_py openvino f32 (same settings)": (darknet_py.load(onnx_file, backend="openvino"), {}),
            "darknet_py onnxruntime int8 (same settings)": (darknet_py.load(onnx_int8), {}),
            "darknet_py openvino int8, NNCF (same settings)": (darknet_py.load(ir_int8), {}),
            "darknet_py torch, OpenCV's rules (cv2.resize, one class per box, IoU NMS)": (
                model, {"multi_label": False, "nms_kind": "iou", "resize": "opencv"}),
        }
        for name, (detector, options) in runs.items():
            start = time.monotonic()
            report = run_map(detector, images, annotations, args.thresh, 0.45, batch=4, progress=False, **options)
            rows[name] = {**report.metrics, "detections": report.detections, "seconds": round(time.monotonic() - start, 1)}
            print(f"{name}\n{metrics_table(report.metrics)}\n", flush=True)
    start = time.monotonic()
    results = opencv_results(cfg, weights, annotations, images, args.size, args.thresh, 0.45)
    name = f"OpenCV {cv2.__version__} dnn_DetectionModel"
    metrics = evaluate(load_ground_truth(annotations), results)
    rows[name] = {**metrics, "detections": len(results), "seconds": round(time.monotonic() - start, 1)}
    print(f"{name}\n{metrics_table(metrics)}\n")
    with atomic_write(args.out, "w") as handle:
        json.dump({"model": args.model, "size": args.size, "thresh": args.thresh, "images": len(list(images.glob('*.jpg'))),
                   "metrics": list(METRICS), "runs": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
