"""How far int8 moves a network's outputs from fp32: onnxruntime's static int8 and OpenVINO's NNCF
int8, both calibrated on the shared photos, against the fp32 export, on those photos.

For models without official weights here (yolov4-csp) AP cannot be measured: this is what can be.
Per int8 path and output (boxes, scores, objectness of the `boxes` export): the largest difference
relative to the largest fp32 value, and the 99th percentile of |difference| over candidates whose
fp32 score is above 0.05; then detections (threshold 0.25): how many fp32 detections int8 finds again
(same class, IoU ≥ 0.5) and how many it adds.

    python -m benchmarks.int8_drift [--models yolov4-tiny:416,yolov4-csp:512] [--out benchmarks/results/int8_drift.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import darknet_py
from benchmarks.run import CALIBRATION, REPO, model_files
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.backends.openvino import OpenVinoDetector
from darknet_py.core.fileio import atomic_write
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.export.openvino import export_openvino
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import default_names
from darknet_py.pipeline.detect import prepare_batch

SCORE_FLOOR = 0.05
DETECT_THRESH = 0.25
MATCH_IOU = 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N, 4) with every box in b (M, 4), xyxy."""
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], -1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def _found_again(reference, other) -> tuple[int, int, int]:
    """(fp32 detections, of them found by int8 with the same class at IoU ≥ 0.5, int8 detections)."""
    total = found = extra = 0
    for want, have in zip(reference, other):
        total, extra = total + len(want), extra + len(have)
        if len(want) and len(have):
            same = want.class_ids[:, None] == have.class_ids[None, :]
            found += int(((_iou(want.boxes, have.boxes) >= MATCH_IOU) & same).any(1).sum())
    return total, found, extra


def drift(spec: str, folder: Path) -> dict:
    name, side = spec.split(":")
    cfg, weights, kind = model_files(name, int(side), folder)
    model = darknet_py.load(cfg, weights, size=int(side))
    names = default_names(model.num_classes)
    fp32_file, ort_file, ov_file = (folder / f"{name}{suffix}" for suffix in (".onnx", "-int8.onnx", "-int8.xml"))
    int8 = Int8Options(str(CALIBRATION))
    export_onnx(model, fp32_file, names, ExportOptions("boxes"), str(weights))
    export_onnx(model, ort_file, names, ExportOptions("boxes"), str(weights), int8)
    export_openvino(model, ov_file, names, ExportOptions("boxes"), str(weights), int8)
    return {"model": name, "size": int(side), "weights": kind, **compare(fp32_file, ort_file, ov_file)}


def compare(fp32_file: Path, ort_file: Path, ov_file: Path) -> dict:
    """int8 (onnxruntime .onnx, OpenVINO .xml) against the fp32 `boxes` export, on the shared photos."""
    photos = sorted(str(p) for p in CALIBRATION.glob("*.jpg"))
    reference = OnnxDetector(fp32_file)
    pixels = prepare_batch(photos, reference.width, reference.height, reference.letter_box).pixels
    ref_out = reference.run(pixels)
    ref_dets = reference.detect(photos, DETECT_THRESH)
    confident = ref_out[1].max(-1) > SCORE_FLOOR  # (N, M) candidates that matter
    result: dict = {"photos": len(photos), "int8": {}}
    for label, detector in (("onnxruntime-int8", OnnxDetector(ort_file)), ("openvino-int8 (NNCF)", OpenVinoDetector(ov_file))):
        outputs = detector.run(pixels)
        entry = {}
        for output, want, have in zip(("boxes", "scores", "objectness"), ref_out, outputs):
            difference = np.abs(have - want)
            entry[f"{output}_max_rel"] = round(float(difference.max() / np.abs(want).max()), 4)
            entry[f"{output}_p99_abs_confident"] = round(float(np.quantile(difference[confident], 0.99)), 4) if confident.any() else None
        total, found, extra = _found_again(ref_dets, detector.detect(photos, DETECT_THRESH))
        entry.update(fp32_detections=total, found_again=found, int8_detections=extra)
        result["int8"][label] = entry
        print(f"{fp32_file.stem} {label}: " + ", ".join(f"{k} {v}" for k, v in entry.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="yolov4-tiny:416,yolov4-csp:512")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "int8_drift.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="darknet_py-int8-") as tmp:
        results = [drift(spec, Path(tmp)) for spec in filter(None, args.models.split(","))]
    with atomic_write(args.out, "w") as handle:
        json.dump({"calibration": str(CALIBRATION.name), "score_floor": SCORE_FLOOR, "detect_thresh": DETECT_THRESH,
                   "models": results}, handle, indent=1)


if __name__ == "__main__":
    main()
