"""A grey (`channels=1`) yolov4-tiny and its comparison with darknet built with OpenCV (tests/test_greyscale.py,
benchmarks/grey_local_silu.py).

The model: the official yolov4-tiny cfg with `channels=1`, the official weights with the first convolution's
kernels summed over R, G and B (a grey pixel g then gives that layer what the colour pixel (g, g, g) gave).

The comparison: darknet's OpenCV build reads a grey network's images with cv::imread(IMREAD_GRAYSCALE), but its
`detector test` aborts on a grey image as soon as it draws a label (get_pixel asserts a channel 1), so it runs
`detector valid` (thresh 0.001, NMS 0.6, COCO results; image ids from numbered file names: symlinks 1.jpg …) and
darknet_py with the same settings, and matches every entry above a score from either side to the nearest of the
same image and class in the other.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.oracle.darknet_commands import detector_valid
from darknet_py.format.names import COCO_NAMES

FIRST_FILTERS = 32  # yolov4-tiny's first [convolutional]: 32 filters of 3x3x3, batch-normalised


def grey_files(cfg: Path, weights: Path, folder: Path) -> tuple[Path, Path]:
    """The grey model's cfg and weights, written into *folder*, from the official yolov4-tiny *cfg* and *weights*."""
    text = cfg.read_text()
    grey_text = re.sub(r"^channels=3\s*$", "channels=1", text, count=1, flags=re.M)
    assert grey_text != text, f"{cfg} has no channels=3 line"
    raw = weights.read_bytes()
    major, minor = np.frombuffer(raw[:8], np.int32)
    header = 20 if major * 10 + minor >= 2 else 16  # `seen` is 64-bit from version 0.2
    floats = np.frombuffer(raw[header:], np.float32)
    batch_norm = 4 * FIRST_FILTERS  # biases, scales, means, variances; then the kernels
    kernels = floats[batch_norm:batch_norm + FIRST_FILTERS * 27].reshape(FIRST_FILTERS, 3, 3, 3)
    folder.mkdir(parents=True, exist_ok=True)
    grey_cfg, grey_weights = folder / "yolov4-tiny-grey.cfg", folder / "yolov4-tiny-grey.weights"
    grey_cfg.write_text(grey_text)
    grey_weights.write_bytes(raw[:header] + floats[:batch_norm].tobytes() + kernels.sum(1, dtype=np.float32).tobytes()
                             + floats[batch_norm + kernels.size:].tobytes())
    return grey_cfg, grey_weights


@dataclass
class GreyComparison:
    darknet_entries: int  # COCO results entries darknet's `detector valid` wrote (score above 0.001)
    darknet_py_entries: int
    compared: int  # entries above the compared score, from both sides
    max_score_difference: float
    max_box_difference: float  # pixels, over x, y, w, h


def compare_with_opencv_darknet(darknet, cfg: Path, weights: Path, model, photos: list[Path], work: Path,
                                category_ids: list[int], above: float = 0.05) -> GreyComparison:
    """darknet's `detector valid` on *photos* against *model* (darknet_py) with the same settings."""
    folder = work / "images"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, photo in enumerate(photos, 1):
        link = folder / f"{number}.jpg"
        if not link.exists():
            link.symlink_to(photo)
        paths.append(str(link))
    (work / "valid.txt").write_text("".join(p + "\n" for p in paths))
    (work / "coco.names").write_text("".join(n + "\n" for n in COCO_NAMES))
    data = work / "obj.data"
    data.write_text(f"classes = 80\nvalid = {work / 'valid.txt'}\nnames = {work / 'coco.names'}\neval = coco\n"
                    f"results = {work}\nbackup = {work}\n")
    theirs = detector_valid(darknet, data, cfg, weights, "valid")
    found = model.detect(paths, 0.001, 0.6, nms_in_pixels=True, max_det=100_000)
    ours = [{"image_id": number, "category_id": category_ids[int(c)], "score": float(score),
             "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}  # unrounded (to_coco rounds to 0.01 px)
            for number, dets in enumerate(found, 1)
            for (x1, y1, x2, y2), score, c in zip(dets.boxes, dets.scores, dets.class_ids)]
    compared, worst_score, worst_box = 0, 0.0, 0.0
    for side, other in ((theirs, ours), (ours, theirs)):
        for entry in (e for e in side if e["score"] > above):
            same = [o for o in other if (o["image_id"], o["category_id"]) == (entry["image_id"], entry["category_id"])]
            assert same, f"no match for {entry}"
            best = min(same, key=lambda o: max(abs(a - b) for a, b in zip(o["bbox"], entry["bbox"])))
            worst_score = max(worst_score, abs(best["score"] - entry["score"]))
            worst_box = max(worst_box, max(abs(a - b) for a, b in zip(best["bbox"], entry["bbox"])))
            compared += 1
    return GreyComparison(len(theirs), len(ours), compared, worst_score, worst_box)


def coco_category_ids(annotations: Path) -> list[int]:
    """Class i → the i-th smallest COCO category id."""
    return sorted(c["id"] for c in json.loads(annotations.read_text())["categories"])
