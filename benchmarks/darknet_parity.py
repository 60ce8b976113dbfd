"""darknet_py against the real darknet on everything the suite checks in part, in full:

- resize: darknet's resize_image / letterbox_image (resize_dump) on PNG copies of every shared photo at
  several network sizes, plus tiny and 1-pixel-wide sources (upscaling);
- detect: `darknet detector test` (official yolov4-tiny and yolov3-tiny, every photo) against
  `darknet-py detect`'s defaults: classes, scores, boxes, and the -ext_output lines;
- map: `darknet detector map -points 0 | 11 | 101` on the whole shared COCO subset written out as a
  darknet dataset (labels beside PNG copies) against `darknet-py map --data`;
- valid: `darknet detector valid` (thresh 0.001, NMS 0.6) results and darknet_py's COCO path with the
  same settings, both scored by pycocotools.

Needs the reference darknet (built into .darknet-ref by benchmarks/oracle/darknet_reference.py's
script). About 6 minutes on 2 quiet cores (darknet's four passes over the subset are most of it).

    python -m benchmarks.darknet_parity [--out benchmarks/results]
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
from benchmarks.oracle.darknet_commands import detector_map, detector_test, detector_valid, parse_map
from benchmarks.oracle.darknet_dataset import write_darknet_dataset
from benchmarks.oracle.darknet_reference import BUILD_DIR, BUILD_SCRIPT, DarknetProgram
from darknet_py.core.fileio import atomic_write
from darknet_py.evaluate.coco import evaluate as coco_evaluate
from darknet_py.evaluate.coco import load_ground_truth, run_map
from darknet_py.evaluate.darknet_map import darknet_text, evaluate
from darknet_py.evaluate.detection_pass import detect_paths
from darknet_py.format.darknet_data import load_dataset
from darknet_py.pipeline.preprocess import prepare

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBSET = SHARED / "data" / "coco-val2017-subset"
SIZES = [(416, 416, False), (416, 416, True), (512, 320, True), (608, 608, True), (320, 608, False)]


def darknet() -> DarknetProgram:
    import subprocess

    subprocess.run(["bash", str(BUILD_SCRIPT), str(BUILD_DIR)], check=True, capture_output=True)
    return DarknetProgram(BUILD_DIR)


def official(name: str) -> tuple[Path, Path]:
    return SHARED / "zoo" / "cfg" / f"{name}.cfg", SHARED / "zoo" / "weights" / f"{name}.weights"


def resize_parity(program: DarknetProgram, work: Path, pngs: list[Path]) -> dict:
    rng = np.random.default_rng(0)
    sources = list(pngs)
    for w, h in ((1, 37), (37, 1), (1, 1), (3, 2), (97, 55)):
        sources.append(work / f"random-{w}x{h}.png")
        cv2.imwrite(str(sources[-1]), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    worst, compared, identical = 0.0, 0, 0
    for path in sources:
        for width, height, letterbox in SIZES:
            theirs, _ = program.resize(path, width, height, letterbox, work)
            if np.isnan(theirs).any():
                continue  # darknet's 0/0 for an inner side of 1 from a longer source
            ours = prepare(cv2.imread(str(path)), width, height, letterbox, resize="darknet")[0]
            worst, compared = max(worst, float(np.abs(ours - theirs).max())), compared + 1
            identical += bool(np.array_equal(ours, theirs))
    return {"tensors": compared, "bit_identical": identical, "max_abs_difference": worst}


def detect_parity(program: DarknetProgram, work: Path, pngs: list[Path]) -> dict:
    out = {}
    for name in ("yolov4-tiny", "yolov3-tiny"):
        cfg, weights = official(name)
        records, lines = detector_test(program, cfg, weights, pngs, work / name)
        model = darknet_py.load(cfg, weights)
        classes_equal, score, box, objects, same_lines = 0, 0.0, 0.0, 0, 0
        for path in pngs:
            dets = model.detect(str(path))[0]
            w, h = dets.image_size
            theirs = sorted((o["class_id"], o["confidence"], *o["relative_coordinates"].values()) for o in records[str(path)])
            ours = sorted((int(c), float(s), ((b[0] + b[2]) / 2 / w), ((b[1] + b[3]) / 2 / h), (b[2] - b[0]) / w,
                           (b[3] - b[1]) / h) for c, s, b in zip(dets.class_ids, dets.scores, dets.unclipped))
            objects += len(theirs)
            if [t[0] for t in theirs] == [o[0] for o in ours]:
                classes_equal += 1
                score = max([score] + [abs(t[1] - o[1]) for t, o in zip(theirs, ours)])
                box = max([box] + [abs(a - b) * side for t, o in zip(theirs, ours)
                                   for a, b, side in zip(t[2:], o[2:], (w, h, w, h))])
            same_lines += dets.ext_output().splitlines() == lines[str(path)]
        out[name] = {"images": len(pngs), "objects": objects, "same_classes": classes_equal,
                     "max_score_difference": score, "max_box_difference_px": round(box, 3),
                     "identical_ext_output": same_lines}
    return out


def map_parity(program: DarknetProgram, data: Path) -> dict:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    dataset = load_dataset(data, model.num_classes)
    found = list(detect_paths(model, dataset.images, progress=False, class_scores=True))
    out = {}
    for points in (0, 11, 101):
        theirs = detector_map(program, data, cfg, weights, points)
        text = darknet_text(evaluate(found, dataset.truths, dataset.names, points=points))
        ours = parse_map(text)
        out[f"points {points}"] = {
            "darknet_mAP": theirs.mean_ap, "darknet_py_mAP": ours.mean_ap,
            "darknet_prf": [theirs.precision, theirs.recall, theirs.f1], "darknet_py_prf": [ours.precision, ours.recall, ours.f1],
            "darknet_tp_fp_fn": [theirs.tp, theirs.fp, theirs.fn], "darknet_py_tp_fp_fn": [ours.tp, ours.fp, ours.fn],
            "max_class_ap_difference": max(abs(a[2] - b[2]) for a, b in zip(theirs.classes, ours.classes)),
            "identical_lines": sum(a == b for a, b in zip(theirs.lines, ours.lines)), "lines": len(theirs.lines)}
    return out


def valid_parity(program: DarknetProgram, data: Path, work: Path) -> dict:
    cfg, weights = official("yolov4-tiny")
    theirs = detector_valid(program, data, cfg, weights, "valid")
    annotations = json.loads((SUBSET / "instances_val2017_subset.json").read_text())
    for image in annotations["images"]:
        image["file_name"] = Path(image["file_name"]).stem + ".png"
    (work / "gt.json").write_text(json.dumps(annotations))
    ours = run_map(darknet_py.load(cfg, weights), data.parent / "images", work / "gt.json", 0.001, 0.6, progress=False)
    reference = coco_evaluate(load_ground_truth(work / "gt.json"), theirs)
    return {"darknet_valid": {k: round(v * 100, 2) for k, v in reference.items()}, "darknet_valid_detections": len(theirs),
            "darknet_py": {k: round(v * 100, 2) for k, v in ours.metrics.items()}, "darknet_py_detections": ours.detections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    program = darknet()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="darknet_py-parity-") as tmp:
        work = Path(tmp)
        pngs = []
        for photo in sorted((SHARED / "data" / "images").glob("*.jpg")):
            pngs.append(work / f"{photo.stem}.png")
            cv2.imwrite(str(pngs[-1]), cv2.imread(str(photo)))
        report = {"date": time.strftime("%Y-%m-%d"), "resize": resize_parity(program, work, pngs)}
        print("resize", report["resize"], flush=True)
        report["detect"] = detect_parity(program, work, pngs)
        print("detect", report["detect"], flush=True)
        data = write_darknet_dataset(SUBSET / "instances_val2017_subset.json", SUBSET / "images", work / "dataset")
        report["map"] = map_parity(program, data)
        print("map", report["map"], flush=True)
        report["valid"] = valid_parity(program, data, work)
        print("valid", report["valid"], flush=True)
    report["seconds"] = round(time.monotonic() - started)
    out = Path(args.out)
    with atomic_write(out / "darknet_parity.json", "w") as handle:
        json.dump(report, handle, indent=1, default=float)  # numpy scalars among the figures
    with atomic_write(out / "darknet_parity.md", "w") as handle:
        handle.write(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    z = r["resize"]
    lines = [f"darknet_py against the real darknet, {r['date']} ({r['seconds']} s). PNG copies of the shared photos; the "
             "COCO subset (158 images) as a darknet dataset, labels beside the images.", "",
             f"Resize (resize_dump): {z['tensors']} tensors, {z['bit_identical']} bit-identical, max |difference| "
             f"{z['max_abs_difference']:.1e}.", "",
             "| detect (defaults) | images | objects | same classes | max score diff | max box diff px | identical -ext_output |",
             "|---|---|---|---|---|---|---|"]
    for name, d in r["detect"].items():
        lines.append(f"| {name} | {d['images']} | {d['objects']} | {d['same_classes']}/{d['images']} | "
                     f"{d['max_score_difference']:.1e} | {float(d['max_box_difference_px']):.3g} | {d['identical_ext_output']}/{d['images']} |")
    lines += ["", "| map --data, yolov4-tiny | mAP@0.50 darknet / ours | P, R, F1 darknet / ours | TP, FP, FN darknet / ours "
              "| max class AP diff | identical printed lines |", "|---|---|---|---|---|---|"]
    for name, m in r["map"].items():
        lines.append(f"| {name} | {m['darknet_mAP'] * 100:.2f} / {m['darknet_py_mAP'] * 100:.2f} | "
                     f"{', '.join(f'{v:.2f}' for v in m['darknet_prf'])} / {', '.join(f'{v:.2f}' for v in m['darknet_py_prf'])} | "
                     f"{', '.join(map(str, m['darknet_tp_fp_fn']))} / {', '.join(map(str, m['darknet_py_tp_fp_fn']))} | "
                     f"{m['max_class_ap_difference']:.2f} | {m['identical_lines']}/{m['lines']} |")
    v = r["valid"]
    lines += ["", f"COCO path, darknet's `valid` settings (thresh 0.001, NMS 0.6), pycocotools: darknet valid AP "
              f"{v['darknet_valid']['AP']} / AP50 {v['darknet_valid']['AP50']} ({v['darknet_valid_detections']:,} results); "
              f"darknet_py AP {v['darknet_py']['AP']} / AP50 {v['darknet_py']['AP50']} ({v['darknet_py_detections']:,})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
