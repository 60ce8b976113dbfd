"""What rewriting mish for onnxruntime's CPU provider saves (darknet_py/backends/onnx_mish.py).

Per model, in one process and interleaved rounds (medians): onnxruntime on the exported file as it is
(Softplus·Tanh·Mul) and with the rewrite darknet_py's onnxruntime backend applies, fp32 and int8 (onnxruntime's
static quantisation, calibrated on the shared photos as benchmarks/run.py does), beside the default torch path
and OpenCV DNN: forward at batch 1 and detect() on dog.jpg. Then one profiled run of each onnxruntime graph:
milliseconds per operator type (onnxruntime's own profiler), how far the rewritten graph's outputs are from
the standard graph's and from the torch model's (relative to the largest), and the seconds opening the file takes.

    python -m benchmarks.onnx_mish [--rounds 9] [--models yolov4-csp:512,yolov4-tiny:416]

Writes benchmarks/results/onnx_mish.json and onnx_mish.md, one run per CPU model (the other CPUs' runs kept).
About 3 minutes on 2 cores.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch

import darknet_py
from benchmarks.cpu_paths import machine_report, paths_table, run_models, save_per_cpu, timed_paths
from benchmarks.run import PHOTO, Backend, _exported, make_backends, model_files
from darknet_py.backends import onnx_mish
from darknet_py.backends.onnxruntime import OnnxDetector, session_options
from darknet_py.pipeline.decode import decode

STANDARD, REWRITTEN = "Softplus·Tanh·Mul", "rewritten"


@contextlib.contextmanager
def rewrite(on: bool):
    """The onnxruntime backend with the mish rewrite on or off for the duration."""
    onnx_mish.enabled = on
    try:
        yield
    finally:
        onnx_mish.enabled = True


def op_times(payload, feed: np.ndarray, runs: int = 3) -> dict[str, float]:
    """Milliseconds per operator type in one run (the mean of `runs` after a warm-up), by onnxruntime's profiler."""
    options = session_options()
    options.enable_profiling = True
    session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    session.run(None, {name: feed})
    for _ in range(runs):
        session.run(None, {name: feed})
    trace = session.end_profiling()
    try:
        events = json.loads(Path(trace).read_text())
    finally:
        os.remove(trace)
    totals: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1000 / (runs + 1)
    return {op: round(ms, 2) for op, ms in totals.most_common()}


def open_times(path: Path, rounds: int = 5) -> dict:
    """Seconds to open the fp32 file as an OnnxDetector, as it is and rewritten (medians of interleaved rounds)."""
    times: dict[str, list[float]] = {STANDARD: [], REWRITTEN: []}
    for _ in range(rounds):
        for variant, on in ((STANDARD, False), (REWRITTEN, True)):
            with rewrite(on):
                start = time.perf_counter()
                OnnxDetector(path)
                times[variant].append(time.perf_counter() - start)
    return {"file_mb": round(path.stat().st_size / 1e6, 1),
            **{f"open_s ({variant})": round(statistics.median(t), 2) for variant, t in times.items()}}


def _relative(ours, reference) -> float:
    return max(float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())
               for a, b in zip(ours, reference, strict=True))


def bench_model(spec: str, rounds: int, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (side, side), swapRB=True)
    backends, graphs, rewritten = [], {}, {}
    for int8 in (False, True):
        path = _exported(cfg, weights, side, folder, int8, ".onnx")
        label = "onnxruntime-int8" if int8 else "onnxruntime"
        payload = onnx_mish.for_cpu(path)  # what the backend opens
        rewritten[label] = onnx_mish.rewrite_mish(onnx.load(path).graph)
        for variant, on in ((STANDARD, False), (REWRITTEN, True)):
            with rewrite(on):
                detector = OnnxDetector(path)
            graphs[f"{label} ({variant})"] = payload if on else path
            backends.append(Backend(f"{label} ({variant})", detector.run, detector.detect, 0.0))
    opening = open_times(_exported(cfg, weights, side, folder, False, ".onnx"))
    backends += make_backends(["torch", "opencv"], cfg, weights, side, folder, "cpu")
    model = darknet_py.load(cfg, weights, size=side)
    # the boxes export decodes the heads: its outputs against the standard graph's and torch's decoding
    with torch.inference_mode():
        boxes, objectness, scores = decode(model(torch.from_numpy(blob)), model.heads, model.width, model.height)
    reference = [boxes.numpy(), scores.numpy(), objectness.numpy()]  # the boxes export's output order
    outputs = {b.name: b.forward(blob) for b in backends[:4]}
    difference = {}
    for label in ("onnxruntime", "onnxruntime-int8"):
        standard, fast = outputs[f"{label} ({STANDARD})"], outputs[f"{label} ({REWRITTEN})"]
        difference[label] = {"rewritten_vs_standard": _relative(fast, standard)}
        if label == "onnxruntime":
            difference[label] |= {"standard_vs_torch": _relative(standard, reference),
                                  "rewritten_vs_torch": _relative(fast, reference)}
    print(f"{name} {side} ({kind} weights): mish rewritten {rewritten}; differences {difference}; timing…", flush=True)
    rows = timed_paths(backends, blob, image, rounds)
    profiles = {label: op_times(payload, blob) for label, payload in graphs.items()}
    return {"model": name, "size": side, "weights": kind, "mish_rewritten": rewritten, "difference": difference,
            "paths": rows, "op_ms": profiles, "opening": opening}


def run_markdown(report: dict) -> str:
    lines = paths_table(report, f"onnxruntime {report['onnxruntime']}, torch {report['torch']}")
    for m in report["models"]:
        rewritten = ", ".join(f"{label} {count}" for label, count in m["mish_rewritten"].items())
        differences = "; ".join(f"{label}: " + ", ".join(f"{pair.replace('_', ' ')} {d:.1e}" for pair, d in pairs.items())
                                for label, pairs in m["difference"].items())
        lines.append(f"- {m['model']}: mish activations rewritten: {rewritten}. Outputs (boxes, scores, objectness), "
                     f"relative to the largest: {differences}.")
        for label, ops in m["op_ms"].items():
            top = ", ".join(f"{op} {ms}" for op, ms in list(ops.items())[:6])
            lines.append(f"  - {label}, ms per operator type in one forward: {top}.")
        lines.append(f"  - opening the fp32 file ({m['opening']['file_mb']} MB): "
                     + ", ".join(f"{k} {v} s" for k, v in m["opening"].items() if k != "file_mb") + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    args, models = run_models(__doc__.splitlines()[0], 9, bench_model, "yolov4-csp:512,yolov4-tiny:416")
    report = {**machine_report(args.rounds), "onnxruntime": ort.__version__, "torch": torch.__version__,
              "models": models}
    path = save_per_cpu(Path(args.out), "onnx_mish", report, run_markdown)
    print(f"wrote {path} and onnx_mish.md")


if __name__ == "__main__":
    main()
