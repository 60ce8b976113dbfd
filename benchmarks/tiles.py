"""Tiles on large images: COCO AP of official yolov4-tiny (416) on 3x3 mosaics of the shared val2017
subset, side by side in one process: no tiles, `tiles="auto"`, tiles of SAHI's slice size (416), the auto
tiles merged by plain IoU NMS instead of darknet_py's merge (an ablation), SAHI 0.12's sliced prediction
around the same model (its defaults, its GREEDYNMM/IOS forced, its NMS option) and, as the ceiling, the
original images one by one.

The mosaics: the subset's 158 images in id order, nine at a time on a 3x3 grid at native resolution
(columns as wide as their widest image, rows as tall as their tallest, grey elsewhere; about
1920x1440), their annotations moved with them (areas kept, so AP_small means the same objects as on
the originals); 18 mosaics, the last one holding the remaining 5 images. They are kept in memory,
decoded once; seconds per image time detection and merging only (no decoding), every method on the
same arrays, interleaved mosaic by mosaic so that a busy machine slows all of them alike.

SAHI is given the same model as a SAHI detection model (`DarknetPySahiModel` below: each slice detected
by `model.detect` with darknet's rules, exactly as our windows are), slices of the network's size with
0.2 overlap (as `tiles="auto"`) and its standard (whole-image) prediction on. At map's threshold 0.005
SAHI switches its default GREEDYNMM/IOS merge to NMS/IOU by itself (below 0.1); the forced GREEDYNMM/IOS
row shows why. A second pass at detect's threshold 0.25, where SAHI's default merge runs as it is,
compares ours with it again.

Needs SAHI: `pip install sahi==0.12.8` (not a dependency of darknet_py; only this benchmark uses it).

    python -m benchmarks.tiles [--limit N] [--out benchmarks/results/tiles.json] [--picture docs/tiles.jpg]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_model
from darknet_py.evaluate.coco import category_ids, evaluate, load_ground_truth
from darknet_py.format.names import default_names
from darknet_py.pipeline import tiles
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.nms import batched_nms
from darknet_py.pipeline.tiles import WindowOptions, windows_for

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBSET = SHARED / "data" / "coco-val2017-subset"
MAP_THRESH = 0.005
NMS = 0.45
GRID = 3
FILL = 114
MAP_OPTIONS = {"multi_label": True, "max_det": 100_000, "nms_in_pixels": True}  # darknet_py map's settings



# -- the data --------------------------------------------------------------------------------------
def mosaics(annotations: Path, folder: Path, limit: int | None = None) -> tuple[list[np.ndarray], dict, list, dict]:
    """(mosaic images, their COCO dict, the original images as (id, array), the originals' COCO dict)."""
    data = json.loads(annotations.read_text())
    images = sorted(data["images"], key=lambda i: i["id"])
    if limit:
        images = images[: limit * GRID * GRID]
        kept = {i["id"] for i in images}
        data = {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in kept]}
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    originals = [(i["id"], cv2.imread(str(folder / i["file_name"]))) for i in images]
    pictures, entries, moved = [], [], []
    for m, start in enumerate(range(0, len(images), GRID * GRID)):
        group = originals[start:start + GRID * GRID]
        cells = [group[r * GRID:(r + 1) * GRID] for r in range((len(group) + GRID - 1) // GRID)]
        widths = [max([row[c][1].shape[1] for row in cells if c < len(row)], default=0) for c in range(GRID)]
        heights = [max(img.shape[0] for _, img in row) for row in cells]
        canvas = np.full((sum(heights), sum(widths), 3), FILL, np.uint8)
        for r, row in enumerate(cells):
            for c, (image_id, img) in enumerate(row):
                x, y = sum(widths[:c]), sum(heights[:r])
                canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
                for ann in by_image.get(image_id, []):
                    bx, by, bw, bh = ann["bbox"]
                    moved.append({**{k: v for k, v in ann.items() if k != "segmentation"}, "id": len(moved) + 1,
                                  "image_id": m + 1, "bbox": [bx + x, by + y, bw, bh]})
        pictures.append(canvas)
        entries.append({"id": m + 1, "file_name": f"mosaic_{m + 1:02d}.png", "width": canvas.shape[1],
                        "height": canvas.shape[0]})
    mosaic_coco = {"images": entries, "annotations": moved, "categories": data["categories"]}
    return pictures, mosaic_coco, originals, data


def as_ground_truth(data: dict, folder: Path, name: str):
    """A pycocotools COCO object through darknet_py's own loader (it fills what the subset leaves out)."""
    path = folder / name
    path.write_text(json.dumps(data))
    return load_ground_truth(path)


# -- SAHI around the same model -----------------------------------------------------------------------
def sahi_model(model, threshold: float):
    """The model as a SAHI detection model: each slice is detected by `model.detect` (darknet's rules,
    map's multi-label settings), then SAHI shifts and merges."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction
    from sahi.utils.compatibility import fix_full_shape_list, fix_shift_amount_list

    class DarknetPySahiModel(DetectionModel):
        def set_model(self, model, **kwargs) -> None:
            self.model = model

        def perform_inference(self, image: np.ndarray) -> None:
            bgr = np.ascontiguousarray(image[:, :, ::-1])  # SAHI hands RGB slices
            self._original_predictions = self.model.detect(bgr, self.confidence_threshold, NMS, **MAP_OPTIONS)[0]

        def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=[[0, 0]],
                                                                     full_shape_list=None) -> None:
            dets = self._original_predictions
            shifts, shapes = fix_shift_amount_list(shift_amount_list), fix_full_shape_list(full_shape_list)
            shift = [int(v) for v in shifts[0]]
            full = [int(v) for v in shapes[0]] if shapes else None
            found = []
            for (x1, y1, x2, y2), score, c in zip(dets.boxes.tolist(), dets.scores.tolist(), dets.class_ids.tolist()):
                if x1 < x2 and y1 < y2:  # SAHI refuses empty boxes
                    found.append(ObjectPrediction(bbox=[x1, y1, x2, y2], category_id=int(c), score=score,
                                                  category_name=dets.names[c], shift_amount=shift, full_shape=full))
            self._object_prediction_list_per_image = [found]

    mapping = {str(i): name for i, name in enumerate(model.names or default_names(model.num_classes))}
    return DarknetPySahiModel(model=model, confidence_threshold=threshold, category_mapping=mapping)


def sahi_detect(detection_model, image_rgb: np.ndarray, side: int, **merge) -> list[tuple[list[float], float, int]]:
    from sahi.predict import get_sliced_prediction

    result = get_sliced_prediction(image_rgb, detection_model, slice_height=side, slice_width=side,
                                   overlap_height_ratio=0.2, overlap_width_ratio=0.2, verbose=0, **merge)
    return [(p.bbox.to_xyxy(), p.score.value, p.category.id) for p in result.object_prediction_list]


# -- methods ----------------------------------------------------------------------------------------
def ours(model, threshold: float, merge=None, **window):
    """model.detect with these window options; `merge` replaces darknet_py's merge of the windows (ablation)."""
    options = {**MAP_OPTIONS, **window}

    def run(image: np.ndarray) -> list[tuple[list[float], float, int]]:
        kept = tiles.merge
        tiles.merge = merge or kept
        try:
            dets = model.detect(image, threshold, NMS, **options)[0]
        finally:
            tiles.merge = kept
        return list(zip(dets.boxes.tolist(), dets.scores.tolist(), dets.class_ids.tolist()))
    return run


def nms_merge(per_window, windows, region, image_size, nms_thresh, max_det=1000) -> Detections:
    """The ablation: every window's boxes in image pixels, one plain IoU NMS per class over all of them
    (no shared-region test, no cut pieces)."""
    offsets = np.concatenate([np.tile(w[:2], 2)[None].repeat(len(d), 0) for w, d in zip(windows, per_window)])
    boxes = np.concatenate([d.boxes for d in per_window]) + offsets.astype(np.float32)
    scores = np.concatenate([d.scores for d in per_window])
    classes = np.concatenate([d.class_ids for d in per_window])
    keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), nms_thresh)
    keep = keep.numpy()[:max_det]
    return Detections(boxes[keep], scores[keep], classes[keep], per_window[0].names, image_size)


def sahi_run(model, threshold: float, side: int, **merge):
    detection_model = sahi_model(model, threshold)

    def run(image: np.ndarray) -> list[tuple[list[float], float, int]]:
        return sahi_detect(detection_model, np.ascontiguousarray(image[:, :, ::-1]), side, **merge)
    run.rgb = True
    return run


def to_coco(found, image_id: int, categories: list[int]) -> list[dict]:
    return [{"image_id": image_id, "category_id": categories[c], "score": round(float(s), 6),
             "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]}
            for (x1, y1, x2, y2), s, c in found]


def measure(methods: dict, images: list[np.ndarray], coco, categories: list[int]) -> dict:
    """Each method on every image, interleaved image by image; AP from one COCOeval per method."""
    results = {name: [] for name in methods}
    seconds = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for index, image in enumerate(images):
        for name, run in methods.items():
            started, used = time.perf_counter(), time.process_time()
            found = run(image)
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - used)
            results[name].extend(to_coco(found, index + 1, categories))
        print(f"  image {index + 1}/{len(images)}: " + ", ".join(f"{n.split(' (')[0]} {seconds[n][-1]:.2f}s"
                                                                   for n in methods), flush=True)
    rows = {}
    for name in methods:
        metrics = evaluate(coco, results[name])
        rows[name] = {"AP": metrics["AP"], "AP50": metrics["AP50"], "AP_small": metrics["APs"],
                      "AP_medium": metrics["APm"], "AP_large": metrics["APl"], "detections": len(results[name]),
                      "seconds_per_image": statistics.mean(seconds[name]),
                      "median_seconds": statistics.median(seconds[name]),
                      "cpu_seconds_per_image": statistics.mean(cpu[name])}
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[name].items()), flush=True)
    return rows


def batch_costs(model, image: np.ndarray, sizes=(1, 4, 8, 31), rounds: int = 3) -> dict:
    """Milliseconds of network (candidates()) per window at each batch size, torch and onnxruntime (the
    same network exported in memory): why windows go 4 at a time on a CPU. Medians of `rounds`."""
    from darknet_py.pipeline.detect import prepare_batch

    crops = [np.ascontiguousarray(image[y:y + model.height, x:x + model.width])
             for y in range(0, image.shape[0] - model.height, 100) for x in range(0, image.shape[1] - model.width, 150)]
    pixels = prepare_batch(crops[:max(sizes)], model.width, model.height, False).pixels
    backends = {"torch": model, "onnxruntime": darknet_py.load(SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg",
                                                               SHARED / "zoo" / "weights" / "yolov4-tiny.weights",
                                                               backend="onnxruntime")}
    out = {}
    for name, backend in backends.items():
        out[name] = {}
        for size in sizes:
            backend.candidates(pixels[:size])
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                for start in range(0, max(sizes) - size + 1, size):
                    backend.candidates(pixels[start:start + size])
                times.append((time.perf_counter() - started) / (max(sizes) // size * size) * 1000)
            out[name][str(size)] = statistics.median(times)
        print(f"{name}: ms per window at batch " + ", ".join(f"{k}: {v:.1f}" for k, v in out[name].items()), flush=True)
    return out


def picture(model, image: np.ndarray, path: Path, crop: tuple[int, int, int, int] | None = None) -> None:
    """Plain pass (left) and tiles (right) at detect's defaults on one mosaic, drawn side by side."""
    plain = model.detect(image)[0].draw(image)
    tiled = model.detect(image, tiles="auto")[0].draw(image)
    if crop:
        x1, y1, x2, y2 = crop
        plain, tiled = plain[y1:y2, x1:x2], tiled[y1:y2, x1:x2]
    gap = np.full((plain.shape[0], 16, 3), 255, np.uint8)
    both = np.concatenate([plain, gap, tiled], 1)
    scale = min(1.0, 1600 / both.shape[1])
    both = cv2.resize(both, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    for text, x in (("no tiles", 8), ("tiles auto", both.shape[1] // 2 + 8)):
        cv2.putText(both, text, (x, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 4, cv2.LINE_AA)
        cv2.putText(both, text, (x, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", both, [cv2.IMWRITE_JPEG_QUALITY, 82])
    with atomic_write(path, "wb") as handle:
        handle.write(data.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="mosaics to use (default: all 18)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "tiles.json")
    parser.add_argument("--picture", type=Path, help="also draw plain vs tiles on a mosaic into this image")
    parser.add_argument("--picture-mosaic", type=int, default=1, help="which mosaic the picture shows (1-based)")
    parser.add_argument("--skip-low", action="store_true", help="skip the pass at detect's threshold 0.25")
    args = parser.parse_args()
    import sahi as sahi_package
    from sahi.logger import logger as sahi_logger

    sahi_logger.setLevel(logging.ERROR)  # its per-image warning that it switches to NMS/IOU at 0.005

    load_at_start = os.getloadavg()[0]  # other work on the machine slows every method, and not always alike
    model = darknet_py.load(SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights")
    side = model.width
    pictures, mosaic_coco, originals, original_coco = mosaics(SUBSET / "instances_val2017_subset.json",
                                                             SUBSET / "images", args.limit)
    if args.picture:
        picture(model, pictures[args.picture_mosaic - 1], args.picture)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        mosaic_gt = as_ground_truth(mosaic_coco, Path(folder), "mosaics.json")
        original_gt = as_ground_truth(original_coco, Path(folder), "originals.json")
    categories = category_ids(mosaic_gt)
    model.detect(pictures[0], tiles="auto")  # warm-up: first-call costs belong to no method
    print(f"{len(pictures)} mosaics, sizes {sorted({p.shape[1::-1] for p in pictures})}", flush=True)
    at_map = {
        "no tiles": ours(model, MAP_THRESH),
        "tiles auto (darknet_py)": ours(model, MAP_THRESH, tiles="auto"),
        f"tiles {side} (darknet_py; SAHI's slice size)": ours(model, MAP_THRESH, tiles=side),
        "tiles auto, windows merged by plain IoU NMS (ablation)": ours(model, MAP_THRESH, nms_merge, tiles="auto"),
        "SAHI defaults (GREEDYNMM/IOS asked; at 0.005 SAHI runs NMS/IOU)": sahi_run(model, MAP_THRESH, side),
        "SAHI GREEDYNMM/IOS forced": sahi_run(model, MAP_THRESH, side, force_postprocess_type=True),
        "SAHI NMS option (NMS/IOS)": sahi_run(model, MAP_THRESH, side, postprocess_type="NMS"),
    }
    print(f"mosaics at map's threshold {MAP_THRESH}", flush=True)
    rows = measure(at_map, pictures, mosaic_gt, categories)
    print("originals (the ceiling)", flush=True)
    original_rows = measure({"originals, no tiles": ours(model, MAP_THRESH)}, [img for _, img in originals],
                            _renumbered(original_gt, originals), categories)
    batches = batch_costs(model, pictures[0])
    low = {}
    if not args.skip_low:
        print("mosaics at detect's threshold 0.25", flush=True)
        low = measure({"tiles auto (darknet_py), thresh 0.25": ours(model, 0.25, tiles="auto"),
                       "SAHI defaults (GREEDYNMM/IOS), thresh 0.25": sahi_run(model, 0.25, side)},
                      pictures, mosaic_gt, categories)
    report = {
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
        "sahi": sahi_package.__version__, "model": "yolov4-tiny (official weights)", "network": [model.width, model.height],
        "mosaics": len(pictures), "mosaic_sizes": sorted({f"{p.shape[1]}x{p.shape[0]}" for p in pictures}),
        "originals": len(originals), "threshold": MAP_THRESH, "nms": NMS, "tile_side": side, "tile_overlap": 0.2,
        "runs": {**rows, **original_rows}, "runs_at_0.25": low, "network_ms_per_window_by_batch": batches,
        "windows_per_mosaic": {"tiles auto": [len(windows_for(p.shape[1], p.shape[0], WindowOptions("auto"), side, side))
                                              for p in pictures],
                               f"tiles {side} and SAHI": [len(windows_for(p.shape[1], p.shape[0], WindowOptions(side),
                                                                          side, side)) for p in pictures]},
    }
    tiles, sahi_default = rows["tiles auto (darknet_py)"], rows["SAHI defaults (GREEDYNMM/IOS asked; at 0.005 SAHI runs NMS/IOU)"]
    report["goal"] = {
        "tiles_AP_over_originals_AP": tiles["AP"] / original_rows["originals, no tiles"]["AP"],
        "tiles_AP_minus_best_SAHI_AP": tiles["AP"] - max(r["AP"] for n, r in rows.items() if n.startswith("SAHI")),
        "tiles_time_over_SAHI_default_time": tiles["seconds_per_image"] / sahi_default["seconds_per_image"],
        "tiles_cpu_time_over_SAHI_default_cpu_time": tiles["cpu_seconds_per_image"] / sahi_default["cpu_seconds_per_image"],
    }
    report["load_average_1min"] = {"start": load_at_start, "end": os.getloadavg()[0]}
    with atomic_write(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(args.out.with_suffix(".md"), "w") as handle:
        handle.write(markdown(report))
    print(markdown(report))


def _renumbered(ground_truth, originals):
    """The originals' ground truth with image ids 1..n in the order measure() numbers them."""
    renumber = {image_id: i + 1 for i, (image_id, _) in enumerate(originals)}
    data = ground_truth.dataset
    moved = {"images": [{**i, "id": renumber[i["id"]]} for i in data["images"]],
             "annotations": [{**a, "image_id": renumber[a["image_id"]]} for a in data["annotations"]],
             "categories": data["categories"]}
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return as_ground_truth(moved, Path(folder), "originals.json")


def markdown(report: dict) -> str:
    lines = [f"COCO AP of {report['model']} at {report['network'][0]}x{report['network'][1]} on {report['mosaics']} "
             f"3x3 mosaics of the val2017 subset ({', '.join(report['mosaic_sizes'][:3])}, …) and on the "
             f"{report['originals']} originals; threshold {report['threshold']}, NMS {report['nms']}; tiles and SAHI "
             f"slices {report['tile_side']} px, overlap {report['tile_overlap']}; SAHI {report['sahi']}; "
             f"{report['cpu']}, {report['torch_threads']} torch threads; {report['date']}.", "",
             "| run | AP | AP50 | AP_small | AP_medium | AP_large | s / image | CPU s / image |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in {**report["runs"], **report["runs_at_0.25"]}.items():
        lines.append(f"| {name} | {row['AP'] * 100:.1f} | {row['AP50'] * 100:.1f} | {row['AP_small'] * 100:.1f} | "
                     f"{row['AP_medium'] * 100:.1f} | {row['AP_large'] * 100:.1f} | {row['seconds_per_image']:.2f} | "
                     f"{row['cpu_seconds_per_image']:.2f} |")
    goal = report["goal"]
    lines += ["", f"Tiles: {goal['tiles_AP_over_originals_AP'] * 100:.0f}% of the originals' AP, "
                  f"{goal['tiles_AP_minus_best_SAHI_AP'] * 100:+.1f} AP against the best SAHI row, in "
                  f"{goal['tiles_time_over_SAHI_default_time']:.2f}x SAHI's default time "
                  f"({goal['tiles_cpu_time_over_SAHI_default_cpu_time']:.2f}x its CPU time); load average "
                  f"{report['load_average_1min']['start']:.1f} at the start, {report['load_average_1min']['end']:.1f} at the end."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
