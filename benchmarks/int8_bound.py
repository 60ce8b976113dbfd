"""What this CPU allows an int8 yolov4-tiny, against issue 29's int8 bound (detect() ≤ 0.25× OpenCV DNN's).

yolov4-tiny 416 (official weights) as `darknet-py export -o model.xml --int8` makes it (NNCF, calibrated on the
shared photos), on OpenVINO, in one process:
- forward at batch 1 and detect() on dog.jpg, with OpenCV DNN's detect() (fp32) in the same interleaved rounds
  (medians), and detect()'s time outside the network, measured within each call;
- OpenVINO's own counters over one forward (medians of 20 after 50 warm-up runs): each convolution's time, and
  the rest of the graph (quantise, concat, pools, decoding);
- the best rate any int8 convolution of the network reaches (multiply-accumulates per second, among those of
  50 M or more) and the floor it gives: every int8 convolution at that rate, the fp32 ones in front of each [yolo]
  at their own time, nothing else. No int8 yolov4-tiny on OpenVINO goes much under it here;
- what 0.25× OpenCV's detect() leaves the network once detect()'s time outside it is taken off, and the share of
  that floor's rate the network would need.

    python -m benchmarks.int8_bound [--rounds 15]

Writes benchmarks/results/int8_bound.json and int8_bound.md, one run per CPU model (the others kept).
About a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import darknet_py
from benchmarks.cpu_paths import machine_report, save_per_cpu
from benchmarks.run import CALIBRATION, PHOTO, REPO, SHARED, Backend, interleaved, make_backends
from darknet_py.backends.openvino import OpenVinoDetector
from darknet_py.export.onnx import ExportOptions
from darknet_py.export.openvino import export_openvino
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import default_names
from darknet_py.model.info import layer_rows

TARGET = 0.25  # issue 29: int8 detect() ≤ 0.25× OpenCV's end-to-end time
RATE_FLOOR_MACS = 50_000_000  # convolutions smaller than this are too short for their counter to give a rate


def network_macs(model) -> dict[int, int]:
    """Multiply-accumulates of each convolutional layer, by layer index (darknet's BFLOPs count, as
    `darknet-py info` prints it, is two operations per multiply-accumulate)."""
    return {row.index: round(row.bflops * 1e9 / 2) for row in layer_rows(model) if row.type == "convolutional"}


def node_profile(path: Path, blob: np.ndarray, runs: int = 20) -> tuple[dict[int, float], float]:
    """(milliseconds per forward of each convolution, by darknet layer index; of everything else), medians of
    `runs` forwards by OpenVINO's own counters after a warm-up."""
    import openvino as ov

    compiled = ov.Core().compile_model(ov.Core().read_model(path), "CPU", {
        "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(50):  # the first tens of runs are slower here (seen in the counters: 19.8 ms falling to 15.1)
        request.infer({0: blob})
    convolutions: dict[int, list[float]] = {}
    rest: list[float] = []
    for _ in range(runs):
        request.infer({0: blob})
        other, seen = 0.0, {}
        for node in request.get_profiling_info():
            if node.status.name != "EXECUTED":
                continue
            ms = node.real_time.total_seconds() * 1000
            layer = re.match(r"/model/layers\.(\d+)/", node.node_name)
            if node.node_type == "Convolution" and layer:
                seen[int(layer.group(1))] = seen.get(int(layer.group(1)), 0.0) + ms
            else:
                other += ms
        for index, ms in seen.items():
            convolutions.setdefault(index, []).append(ms)
        rest.append(other)
    return {index: statistics.median(times) for index, times in convolutions.items()}, statistics.median(rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    cfg, weights = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
    model = darknet_py.load(cfg, weights, size=416)
    macs = network_macs(model)
    heads = {index - 1 for index in model.head_indices}  # their convolutions stay fp32
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (416, 416), swapRB=True)
    with tempfile.TemporaryDirectory(prefix="darknet_py-int8-bound-") as tmp:
        path = Path(tmp) / "yolov4-tiny-int8.xml"
        export_openvino(model, path, default_names(80), ExportOptions("boxes"), str(weights), Int8Options(str(CALIBRATION)))
        detector = OpenVinoDetector(path)
        inside: list[float] = []
        infer = detector._infer

        def timed_infer(feeds):  # the network's share of each detect() call
            start = time.perf_counter()
            try:
                return infer(feeds)
            finally:
                inside.append(time.perf_counter() - start)
        detector._infer = timed_infer
        outside: list[float] = []

        def detect(picture):
            inside.clear()
            start = time.perf_counter()
            result = detector.detect(picture)
            outside.append(time.perf_counter() - start - sum(inside))
            return result
        network = Backend("openvino-int8", detector.run, detect, 0.0)
        opencv = make_backends(["opencv"], cfg, weights, 416, Path(tmp), "cpu")[0]
        interleaved([network, opencv], "forward", lambda b: b.forward(blob), args.rounds)
        outside.clear()
        interleaved([network, opencv], "detect", lambda b: b.detect(image), args.rounds)
        outside_ms = statistics.median(outside[-args.rounds:]) * 1000
        convolutions, rest = node_profile(path, blob)

    def median_ms(backend: Backend, metric: str) -> float:
        return statistics.median(backend.times[metric]) * 1000

    rates = {index: macs[index] / ms / 1e6 for index, ms in convolutions.items()
             if index not in heads and macs[index] >= RATE_FLOOR_MACS}
    best = max(rates.values())  # GMAC/s
    int8_macs = sum(v for k, v in macs.items() if k not in heads)
    int8_ms = sum(ms for k, ms in convolutions.items() if k not in heads)
    fp32_ms = sum(ms for k, ms in convolutions.items() if k in heads)
    floor = int8_macs / best / 1e6 + fp32_ms
    forward, detect_ms, opencv_detect = median_ms(network, "forward"), median_ms(network, "detect"), median_ms(opencv, "detect")
    budget = TARGET * opencv_detect - outside_ms
    report = {**machine_report(args.rounds), "model": "yolov4-tiny 416 (official weights), OpenVINO int8 IR (NNCF)",
              "network_gmac": {"int8": round(int8_macs / 1e9, 3), "fp32": round(sum(macs[k] for k in heads) / 1e9, 3)},
              "counters_ms": {"int8 convolutions": round(int8_ms, 3), "fp32 convolutions": round(fp32_ms, 3),
                              "everything else": round(rest, 3)},
              "int8_rate_gmac_per_s": {"best convolution": round(best, 1), "layer": max(rates, key=rates.get),
                                       "all int8 convolutions": round(int8_macs / int8_ms / 1e6, 1)},
              "floor_forward_ms": round(floor, 2), "forward_ms": round(forward, 2), "detect_ms": round(detect_ms, 2),
              "share_of_floor_rate": round(floor / forward, 3),
              "opencv_detect_ms": round(opencv_detect, 2), "detect_vs_opencv": round(detect_ms / opencv_detect, 3),
              "target_vs_opencv": TARGET, "target_detect_ms": round(TARGET * opencv_detect, 2),
              "outside_network_ms": round(outside_ms, 2), "network_budget_ms": round(budget, 2),
              "share_needed": round(floor / budget, 3) if budget > 0 else None}
    path = save_per_cpu(Path(args.out), "int8_bound", report, run_markdown)
    print(run_markdown(report))
    print(f"wrote {path} and int8_bound.md")


def run_markdown(r: dict) -> str:
    rate, counters = r["int8_rate_gmac_per_s"], r["counters_ms"]
    needed = "unreachable" if r["share_needed"] is None else format(r["share_needed"], ".0%")
    lines = [f"## {r['cpu']}", "",
             f"Measured {r['date']} on {r['cpu']} ({r['cores']} cores; {', '.join(r['cpu_flags'])}); {r['model']}; dog.jpg, "
             f"batch 1, medians of {r['rounds']} interleaved rounds.", "",
             "| | value |", "|---|---|",
             f"| the network's GMAC: int8 / fp32 (in front of [yolo]) | {r['network_gmac']['int8']} / {r['network_gmac']['fp32']} |",
             f"| one forward by OpenVINO's counters: int8 convolutions / fp32 / everything else (ms) | "
             f"{counters['int8 convolutions']} / {counters['fp32 convolutions']} / {counters['everything else']} |",
             f"| int8 rate: the best convolution (layer {rate['layer']}) / all of them (GMAC/s) | "
             f"{rate['best convolution']} / {rate['all int8 convolutions']} |",
             f"| the floor: every int8 convolution at the best rate, fp32 ones as measured, nothing else | {r['floor_forward_ms']} ms |",
             f"| OpenVINO int8 forward / the floor's share of it | {r['forward_ms']} ms / {r['share_of_floor_rate']:.0%} |",
             f"| OpenVINO int8 detect() / vs OpenCV's | {r['detect_ms']} ms / {r['detect_vs_opencv']}× |",
             f"| detect() outside the network (within each call) | {r['outside_network_ms']} ms |",
             f"| OpenCV DNN detect() (fp32) | {r['opencv_detect_ms']} ms |",
             f"| the issue's bound: {r['target_vs_opencv']}× OpenCV's detect() / left for the network | "
             f"{r['target_detect_ms']} ms / {r['network_budget_ms']} ms |",
             f"| the floor over what is left (above 100%: out of reach) | {needed} |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
