"""What oneDNN's pre-packed convolutions (darknet_py/model/layers/prepacked.py) save the default torch path on the CPU.

Per model (yolov4-tiny 416 official, yolov4-csp 512 synthetic), in one process, the same loaded model with the
pre-packed path on and off (`prepacked.enabled`), and OpenCV DNN beside them, in interleaved rounds (medians):
- forward at batch 1 (the network alone) and detect() on dog.jpg;
- whether the heads are bit-identical with the path on and off, and their largest difference.

    python -m benchmarks.prepacked [--rounds 15] [--models yolov4-tiny:416,yolov4-csp:512]

Writes benchmarks/results/prepacked.json and prepacked.md, one run per CPU model (the other CPUs' runs kept).
About 3 minutes on 2 cores.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from benchmarks.cpu_paths import machine_report, run_models, save_per_cpu
from benchmarks.run import PHOTO, Backend, interleaved, make_backends, model_files
from darknet_py.model.layers import prepacked


def switched(model, on: bool, call):
    """`call` with the pre-packed path on or off for its duration."""
    def run(arg):
        prepacked.enabled = on
        try:
            return call(arg)
        finally:
            prepacked.enabled = True
    return run


def bench_model(spec: str, rounds: int, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    model = darknet_py.load(cfg, weights, size=side)
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (side, side), swapRB=True)
    x = torch.from_numpy(blob)

    def forward(_):
        with torch.inference_mode():
            return model(x)
    backends = [Backend(f"{label}", switched(model, on, forward), switched(model, on, model.detect), 0.0)
                for label, on in (("prepacked", True), ("eager F.conv2d", False))]
    backends += make_backends(["opencv"], cfg, weights, side, folder, "cpu")
    packed, plain = backends[0].forward(None), backends[1].forward(None)
    identical = all(torch.equal(a, b) for a, b in zip(packed, plain, strict=True))
    largest = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(packed, plain, strict=True))
    print(f"{name} {side} ({kind} weights): heads {'bit-identical' if identical else f'within {largest:.1e}'}; timing…",
          flush=True)
    interleaved(backends, "forward", lambda b: b.forward(blob), rounds)
    interleaved(backends, "detect", lambda b: b.detect(image), rounds)
    opencv = statistics.median(backends[-1].times["detect"])
    rows = {b.name: {"forward_ms": round(statistics.median(b.times["forward"]) * 1000, 2),
                     "detect_ms": round(statistics.median(b.times["detect"]) * 1000, 2),
                     "detect_vs_opencv": round(statistics.median(b.times["detect"]) / opencv, 3)} for b in backends}
    for row, entry in rows.items():
        print(f"  {row:<16} forward {entry['forward_ms']:8.2f} ms  detect {entry['detect_ms']:8.2f} ms "
              f"({entry['detect_vs_opencv']:.3f}x OpenCV)", flush=True)
    on, off = rows["prepacked"], rows["eager F.conv2d"]
    return {"model": name, "size": side, "weights": kind, "bit_identical": identical,
            "largest_relative_difference": largest, "paths": rows,
            "forward_ratio": round(on["forward_ms"] / off["forward_ms"], 3),
            "detect_ratio": round(on["detect_ms"] / off["detect_ms"], 3)}


def run_markdown(report: dict) -> str:
    lines = [f"## {report['cpu']}", "",
             f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores; {', '.join(report['cpu_flags'])}), "
             f"{report['torch_threads']} torch threads, torch {report['torch']}; dog.jpg, batch 1, medians of "
             f"{report['rounds']} interleaved rounds.", "",
             "| model | path | forward ms | detect() ms | detect() vs OpenCV |", "|---|---|---|---|---|"]
    for m in report["models"]:
        for path, e in m["paths"].items():
            lines.append(f"| {m['model']} {m['size']} ({m['weights']}) | {path} | {e['forward_ms']} | {e['detect_ms']} | "
                         f"{e['detect_vs_opencv']}× |")
    lines.append("")
    for m in report["models"]:
        same = "bit-identical" if m["bit_identical"] else f"within {m['largest_relative_difference']:.1e} of the largest"
        lines.append(f"- {m['model']}: pre-packed / eager forward {m['forward_ratio']}×, detect() {m['detect_ratio']}×; "
                     f"heads {same}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    args, models = run_models(__doc__.splitlines()[0], 15, bench_model)
    report = {**machine_report(args.rounds), "torch": torch.__version__, "numpy": np.__version__, "models": models}
    path = save_per_cpu(Path(args.out), "prepacked", report, run_markdown)
    print(f"wrote {path} and prepacked.md")


if __name__ == "__main__":
    main()
