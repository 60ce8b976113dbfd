"""Do the synthetic weights overflow fp16, or is fp16 wrong on the big models? A CPU answer (issue 29).

On a lent H200, fp16 heads differed from fp32 by 0.078 (P6 1280) and 1.0 (P7 1536) of their largest value,
against 0.009-0.013 for tiny, csp and P5, all with synthetic weights (weights_tools.synth). This checks, on the
CPU, what fp16 would do to each network at its native size, with dog.jpg as input:

- the largest |activation| of every layer in float32 (fp16's largest finite value is 65504);
- the heads' error when every layer's output is rounded to fp16 (an fp16 run's storage: values cast after each
  layer, arithmetic in float32), as max |fp16-rounded − fp32| / max |fp32| per head, the metric of the GPU run;
- the same for yolov4-tiny's official (trained) weights, for scale;
- under `before`, P6 and P7 with the synthesizer's former calibration (at 256 px, where P7's stride-128 maps
  are 2x2), which the GPU run used.

If a layer's activations pass 65504 the synthetic weights overflow fp16; if they stay small and the rounded run
keeps the error near tiny's, the large GPU error comes from the GPU's fp16 kernels or our fp16 path there, not
from the weights' range, and must be chased on a GPU.

    python -m benchmarks.fp16_range [--models yolov4-tiny:416,...] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO.parent / "shared" / "zoo"
IMAGE = REPO.parent / "shared" / "data" / "images" / "dog.jpg"
FP16_MAX = 65504.0
MODELS = "yolov4-tiny:416:official,yolov4-tiny:416,yolov4-csp:512,yolov4-csp:640,yolov4-p5:896,yolov4-p6:1280,cspx-p7-mish:1536"


def pixels(side: int) -> torch.Tensor:
    image = cv2.cvtColor(cv2.imread(str(IMAGE)), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)


def measure(cfg: Path, weights: Path, side: int) -> dict:
    model = darknet_py.load(cfg, weights, size=side, fast=False).eval()
    ranges: list[float] = []

    def record(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            ranges.append(float(output.abs().max()))

    def round_fp16(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            return output.half().float()  # storage in fp16: rounded, and inf beyond 65504
        return None

    x = pixels(side)
    hooks = [layer.register_forward_hook(record) for layer in model.layers]
    start = time.perf_counter()
    with torch.no_grad():
        exact = model.forward_heads(x)
    seconds = time.perf_counter() - start
    for hook in hooks:
        hook.remove()
    hooks = [layer.register_forward_hook(round_fp16) for layer in model.layers]
    with torch.no_grad():
        rounded = model.forward_heads(x.half().float())
    for hook in hooks:
        hook.remove()
    errors = [float((r - e).abs().max() / e.abs().max()) if torch.isfinite(r).all() else float("inf")
              for r, e in zip(rounded, exact)]
    largest = int(np.argmax(ranges))
    return {"layers": len(ranges), "max_abs_activation": round(max(ranges), 3), "at_layer": largest,
            "layers_over_fp16_max": sum(value > FP16_MAX for value in ranges),
            "layers_over_1000": sum(value > 1000 for value in ranges),
            "head_max_abs": [round(float(e.abs().max()), 3) for e in exact],
            "fp16_rounded_rel_error": [round(e, 5) for e in errors], "fp32_forward_s": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--before", default="yolov4-p6:1280,cspx-p7-mish:1536",
                        help="models also measured with the synthesizer's former calibration (every cfg at 256 px)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    from weights_tools import synth

    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpus": os.cpu_count(), "image": IMAGE.name,
              "torch": torch.__version__, "models": {}}
    runs = [(spec, "models") for spec in args.models.split(",")] + [(spec, "before") for spec in args.before.split(",")]
    report["before"] = {}  # the synthesizer as it was: every cfg calibrated at 256 px (its DEEPEST_MAP rule off)
    deepest = synth.DEEPEST_MAP
    with tempfile.TemporaryDirectory(prefix="dp-fp16-") as work:
        for spec, part in filter(lambda run: run[0], runs):
            name, side, *kind = spec.split(":")
            cfg = ZOO / "cfg" / f"{name}.cfg"
            if kind == ["official"]:
                weights, label = ZOO / "weights" / f"{name}.weights", f"{name} {side} official"
            else:
                weights, label = Path(work) / f"{name}-{part}.weights", f"{name} {side} synthetic"
                synth.DEEPEST_MAP = deepest if part == "models" else 1
                if not weights.exists():
                    synth.write_synthetic(cfg, weights)
            report[part][label] = measure(cfg, weights, int(side))
            print(part, label, json.dumps(report[part][label]), flush=True)
    synth.DEEPEST_MAP = deepest
    with atomic_write(Path(args.out) / "fp16_range.json", "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
