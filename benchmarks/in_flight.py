"""Two detections at once (`--in-flight 2`, darknet_py/core/in_flight.py) against one at a time, on this CPU.

Three levels, each one at a time and two at once in the same rounds:
- the network alone: the exported graph's run() on one 416x416 input, called from one thread (the detector as
  loaded: one run on all cores) and from two threads at once (its `concurrent(2)` twin: the cores split); torch's
  detect() on all its threads against its twin's, two calls at once;
- the video loop as `darknet-py detect pedestrians.avi` runs it (run_video; 341 frames, 1280x720): annotated MJPG
  written, and detections only (no video), with the OpenCV DNN loop (read → detect → draw → write MJPG,
  benchmarks.run.opencv_video_loop) in the same rounds as the reference;
- a folder of photos (the COCO val2017 subset's 158 images, detections only).

yolov4-tiny 416 (official weights): onnxruntime and OpenVINO on the fp32 export and on a static int8 one (calibrated
on the shared photos); torch eager (its twin: the same model, each calling thread on its share of torch's threads).

    python -m benchmarks.in_flight [--rounds 3]

Writes benchmarks/results/in_flight.json and .md, one run per CPU model (the other CPUs' kept). About 20 minutes
on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

import darknet_py
from benchmarks.background_encoding import CFG, VIDEO, WEIGHTS, opencv_frames_per_s
from benchmarks.cpu_paths import machine_report, save_per_cpu
from benchmarks.run import REPO, SHARED, _exported
from darknet_py.media import run, video
from darknet_py.media.sources import source_items

PHOTOS = SHARED / "data" / "coco-val2017-subset" / "images"
NETWORK_CALLS = 60  # runs per measurement of the network alone


def calls_per_s(call: Callable[[], object], threads: int, calls: int = NETWORK_CALLS) -> float:
    """*calls* calls of `call` shared by *threads* threads started together; calls per second."""
    for _ in range(2 * threads):
        call()
    each = calls // threads

    def work() -> None:
        for _ in range(each):
            call()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return each * threads / (time.perf_counter() - start)


def network_rates(models: dict) -> dict[tuple, float]:
    """One round of the network alone: (name, calls at once) → runs/s."""
    pixels = np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)
    rates = {}
    for name, model in models.items():
        twin = model.concurrent(2)
        if name == "torch":  # no run() of the bare graph: detect() of an image at the network's size
            image = np.random.default_rng(0).integers(0, 256, (416, 416, 3), np.uint8)
            rates[(name, 1)] = calls_per_s(lambda: model.detect([image]), 1)
            rates[(name, 2)] = calls_per_s(lambda: twin.detect([image]), 2)
            continue
        rates[(name, 1)] = calls_per_s(lambda: model.run(pixels), 1)
        rates[(name, 2)] = calls_per_s(lambda: twin.run(pixels), 2)
    return rates


def video_rate(model, calls: int, write: bool) -> float:
    """Frames/s of run_video over VIDEO with *calls* detections at once, the annotated MJPG written or not."""
    detector, calls = run.plan_calls(model, "video", str(VIDEO), calls)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        report = video.run_video(str(VIDEO), lambda images: detector.detect(images), codec="mjpg" if write else None,
                                 output=str(Path(folder) / "out.avi") if write else None, in_flight=calls)
        return report.frames / (time.perf_counter() - start)


def photos_rate(model, calls: int) -> float:
    """Images/s of run_images over PHOTOS (detections only) with *calls* detections at once."""
    kind, paths = source_items(str(PHOTOS))
    detector, calls = run.plan_calls(model, kind, paths, calls)
    start = time.perf_counter()
    report = run.run_images(paths, lambda images: detector.detect(images), [], in_flight=calls)
    return report.done / (time.perf_counter() - start)


def markdown(report: dict) -> str:
    lines = [f"## {report['cpu']}", "", f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores), "
             f"{report['torch_threads']} torch threads; yolov4-tiny 416, batch 1; medians of {report['rounds']} "
             f"interleaved rounds. OpenCV DNN loop (pedestrians.avi, MJPG written): "
             f"{report['opencv_loop_frames_per_s']} frames/s.", "",
             "| backend | what | one at a time | two at once | gain | two at once vs OpenCV loop |",
             "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        versus = f"{row['two_vs_opencv_loop']}×" if row.get("two_vs_opencv_loop") is not None else "–"
        lines.append(f"| {row['backend']} | {row['what']} | {row['one']} | {row['two']} | {row['gain']}× | {versus} |")
    return "\n".join(lines) + "\n"


WHAT = {"network": "network alone, runs/s", "video-mjpg": "video, annotated MJPG written, frames/s",
        "video-none": "video, detections only, frames/s", "photos": "158 photos, detections only, images/s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="darknet_py-bench-") as tmp:
        folder = Path(tmp)
        fp32, int8 = (_exported(CFG, WEIGHTS, 416, folder, quantised, ".onnx") for quantised in (False, True))
        models = {"torch": darknet_py.load(CFG, WEIGHTS),
                  "onnxruntime": darknet_py.load(fp32), "openvino": darknet_py.load(fp32, backend="openvino"),
                  "onnxruntime-int8": darknet_py.load(int8),
                  "openvino-int8": darknet_py.load(_exported(CFG, WEIGHTS, 416, folder, True, ".xml"))}
        rates: dict[tuple, list[float]] = {}
        for r in range(args.rounds):
            rates.setdefault(("opencv",), []).append(opencv_frames_per_s())
            for (name, calls), rate in network_rates(models).items():
                rates.setdefault((name, "network", calls), []).append(rate)
            for name, model in models.items():
                for calls in (1, 2):
                    rates.setdefault((name, "video-mjpg", calls), []).append(video_rate(model, calls, True))
                    rates.setdefault((name, "video-none", calls), []).append(video_rate(model, calls, False))
                    rates.setdefault((name, "photos", calls), []).append(photos_rate(model, calls))
            print(f"round {r + 1} done", flush=True)
    opencv = statistics.median(rates[("opencv",)])
    rows = []
    for name in models:
        for what in WHAT:
            one, two = (statistics.median(rates[(name, what, calls)]) for calls in (1, 2))
            rows.append({"backend": name, "what": WHAT[what], "one": round(one, 2), "two": round(two, 2),
                         "gain": round(two / one, 3),
                         "two_vs_opencv_loop": round(two / opencv, 3) if what == "video-mjpg" else None})
    report = {**machine_report(args.rounds), "opencv_loop_frames_per_s": round(opencv, 2),
              "note": "torch's network rows time detect() of a 416x416 image (the graphs' time run() alone); its twin is "
                      "the same model, each calling thread on its share of torch's threads (backends/torch_twin.py)",
              "rows": rows}
    save_per_cpu(Path(args.out), "in_flight", report, markdown)
    print(markdown(report))


if __name__ == "__main__":
    main()
