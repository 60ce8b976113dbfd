"""Dense-candidate NMS side by side with OpenCV: the candidates of yolov4-csp 512 with synthetic weights
on dog.jpg (16,128 boxes, what an untrained network gives at any threshold), suppressed as one class,
by each box's best class, and multi-label (every class above 0.25, capped at detect()'s 30,000);
darknet_py's NMS (IoU and the cfg's DIoU) against the one it had before (benchmarks/nms_previous.py)
and OpenCV's NMSBoxesBatched (IoU only). Then end-to-end: yolov4-csp detect() with those weights, decode + select timed apart from the
network. Interleaved rounds, medians, kept counts checked equal.

    python -m benchmarks.nms [--rounds 5] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.format.names import default_names
from darknet_py.pipeline.detect import DetectOptions, prepare_batch, select
from darknet_py.pipeline.nms import batched_nms
from weights_tools.synth import synthesize

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PREVIOUS = REPO / "benchmarks" / "nms_previous.py"


def previous_nms():
    spec = importlib.util.spec_from_file_location("nms_previous", PREVIOUS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.batched_nms


def candidates(folder: Path):
    """yolov4-csp 512 (synthetic weights) on dog.jpg: the model, the batch and its decoded candidates."""
    cfg = SHARED / "zoo" / "cfg" / "yolov4-csp.cfg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        synthesize(cfg, seed=0).save_weights(folder / "csp.weights")
    model = darknet_py.load(cfg, folder / "csp.weights", size=512)
    batch = prepare_batch([str(SHARED / "data" / "images" / "dog.jpg")], 512, 512, model.letter_box)
    return model, batch, model.runner()(batch.pixels)


def cases(boxes: torch.Tensor, objectness: torch.Tensor, scores: torch.Tensor) -> dict:
    boxes, objectness, scores = boxes[0], objectness[0], scores[0]
    best, best_class = scores.max(-1)
    image_idx, class_idx = (scores > 0.25).nonzero(as_tuple=True)
    chosen = scores[image_idx, class_idx]
    top = chosen.argsort(descending=True)[:30000]
    return {
        "one class (objectness)": (boxes, objectness, torch.zeros(len(objectness), dtype=torch.long)),
        "best class per box": (boxes, best, best_class),
        "multi-label, 30,000 best": (boxes[image_idx[top]], chosen[top], class_idx[top]),
    }


def opencv_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, thresh: float) -> list:
    xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).numpy()
    return list(np.ravel(cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.numpy().tolist(),
                                                 groups.numpy().astype(np.int32).tolist(), 0.0, thresh)))


def timed(call, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    old = previous_nms()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model, batch, (boxes, objectness, scores) = candidates(Path(tmp))
        for name, (b, s, g) in cases(boxes, objectness, scores).items():
            for kind in ("iou", "diou"):
                runs = {"darknet_py": lambda: batched_nms(b, s, g, 0.45, kind, 0.6),
                        "previous": lambda: old(b, s, g, 0.45, kind, 0.6)}
                if kind == "iou":
                    runs["opencv"] = lambda: opencv_nms(b, s, g, 0.45)
                ms, kept = {}, {}
                for _ in range(args.rounds):  # interleaved: one of each per round
                    for run_name, call in runs.items():
                        t, result = timed(call, 1)
                        ms.setdefault(run_name, []).append(t)
                        kept[run_name] = len(result)
                row = {"case": name, "kind": kind, "boxes": len(s), **{f"{k}_ms": round(statistics.median(v), 1)
                                                                       for k, v in ms.items()},
                       "kept": kept["darknet_py"], "same_kept": len(set(kept.values())) == 1}
                rows.append(row)
                print(row, flush=True)
        # end to end: yolov4-csp detect() (synthetic weights), decode + select apart from the network
        options = DetectOptions()
        names = default_names(model.num_classes)
        runner = model.runner()
        parts = {"network + decode": [], "select (thresholds + NMS)": [], "detect()": []}
        image = cv2.imread(str(SHARED / "data" / "images" / "dog.jpg"))
        for _ in range(args.rounds):
            t, found = timed(lambda: runner.candidates_above(batch.pixels, options.conf_thresh), 1)
            parts["network + decode"].append(t)
            parts["select (thresholds + NMS)"].append(timed(lambda: select(model.heads, found, batch, options, names), 1)[0])
            parts["detect()"].append(timed(lambda: model.detect(image), 1)[0])
        detect_row = {k: round(statistics.median(v), 1) for k, v in parts.items()}
        detect_row["detections"] = len(model.detect(image)[0])
        print(detect_row, flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} torch threads", "opencv": cv2.__version__, "rounds": args.rounds,
              "nms": rows, "yolov4_csp_detect_ms": detect_row}
    out = Path(args.out)
    with atomic_write(out / "nms.json", "w") as handle:
        json.dump(report, handle, indent=1)
    lines = [f"Measured {report['date']} on {report['machine']}, OpenCV {report['opencv']}; medians of "
             f"{args.rounds} interleaved rounds. Candidates: yolov4-csp 512, synthetic weights, dog.jpg.", "",
             "| candidates | NMS | boxes | darknet_py ms | previous ms | OpenCV NMSBoxesBatched ms | kept (all equal) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['kind']} | {r['boxes']:,} | {r['darknet_py_ms']} | {r['previous_ms']} | "
                     f"{r.get('opencv_ms', '—')} | {r['kept']:,} ({'yes' if r['same_kept'] else 'NO'}) |")
    lines += ["", "yolov4-csp 512 detect() with synthetic weights (every box above 0.25; darknet's multi-label rule): "
              + ", ".join(f"{k} {v} ms" for k, v in detect_row.items() if k != "detections")
              + f"; {detect_row['detections']:,} detections."]
    with atomic_write(out / "nms.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
