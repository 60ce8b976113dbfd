"""What the default torch path's CPU kernels save: oneDNN's pre-packed convolutions (darknet_py/model/layers/
prepacked.py), the C mish kernel (layers/mish_kernel.py) and activations in place (layers/activations.py IN_PLACE).

Per model (yolov4-tiny 416 official, yolov4-csp 512 and yolov4-csp-swish 512 synthetic), in one process, the same
loaded model with each piece switched off in turn and all of them off (the default torch path before issue 29's
kernels), and OpenCV DNN beside them, in interleaved rounds (medians):
- forward at batch 1 (the network alone) and detect() on dog.jpg;
- how far each path's heads are from the default path's (0: bit-identical).

    python -m benchmarks.prepacked [--rounds 15] [--models yolov4-tiny:416,yolov4-csp:512,yolov4-csp-swish:512]

Writes benchmarks/results/prepacked.json and prepacked.md, one run per CPU model (the other CPUs' runs kept).
About 6 minutes on 2 cores.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from benchmarks.cpu_paths import machine_report, paths_table, run_models, save_per_cpu, timed_paths
from benchmarks.run import PHOTO, Backend, make_backends, model_files
from darknet_py.model.layers import activations, mish_kernel, prepacked

DEFAULT = "default (all three)"
NONE = "none of them"


@contextlib.contextmanager
def pieces(packed: bool = True, kernel: bool = True, in_place: bool = True):
    """The default path with the pieces named False switched off for the duration."""
    saved = dict(activations.IN_PLACE)
    prepacked.enabled, mish_kernel.enabled = packed, kernel
    if not in_place:
        activations.IN_PLACE.clear()
    try:
        yield
    finally:
        prepacked.enabled = mish_kernel.enabled = True
        activations.IN_PLACE.update(saved)


def paths_for(model) -> dict[str, dict[str, bool]]:
    """The paths worth timing for this model: a piece it cannot use is not switched off on its own."""
    names = {m.name for m in model.modules() if isinstance(m, activations.Activation)}
    paths = {DEFAULT: {}, "eager F.conv2d": {"packed": False}}
    if "mish" in names:
        paths["F.mish"] = {"kernel": False}
    if names & set(activations.IN_PLACE):
        paths["not in place"] = {"in_place": False}
        paths[NONE] = {"packed": False, "kernel": False, "in_place": False}
    return paths


def bench_model(spec: str, rounds: int, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    model = darknet_py.load(cfg, weights, size=side)
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (side, side), swapRB=True)
    x = torch.from_numpy(blob)

    def switched(switches: dict[str, bool], call):
        def run(arg):
            with pieces(**switches), torch.inference_mode():
                return call(arg)
        return run
    paths = paths_for(model)
    backends = [Backend(label, switched(switches, lambda _: model(x)), switched(switches, model.detect), 0.0)
                for label, switches in paths.items()]
    backends += make_backends(["opencv"], cfg, weights, side, folder, "cpu")
    default = backends[0].forward(None)
    difference = {}
    for backend in backends[1:len(paths)]:
        heads = backend.forward(None)
        difference[backend.name] = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(heads, default, strict=True))
    print(f"{name} {side} ({kind} weights): heads vs the default path {difference}; timing…", flush=True)
    rows = timed_paths(backends, blob, image, rounds)
    before = rows[NONE if NONE in rows else "eager F.conv2d"]
    return {"model": name, "size": side, "weights": kind, "relative_difference_from_default": difference,
            "paths": rows, "before": NONE if NONE in rows else "eager F.conv2d",
            "forward_ratio": round(rows[DEFAULT]["forward_ms"] / before["forward_ms"], 3),
            "detect_ratio": round(rows[DEFAULT]["detect_ms"] / before["detect_ms"], 3)}


def run_markdown(report: dict) -> str:
    lines = paths_table(report, f"{report['torch_threads']} torch threads, torch {report['torch']}")
    for m in report["models"]:
        differences = ", ".join(f"{path} {'bit-identical' if d == 0 else f'{d:.1e}'}"
                                for path, d in m["relative_difference_from_default"].items())
        lines.append(f"- {m['model']}: default / {m['before']}: forward {m['forward_ratio']}×, detect() "
                     f"{m['detect_ratio']}×. Heads vs the default path's, relative to the largest: {differences}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    args, models = run_models(__doc__.splitlines()[0], 15, bench_model,
                              "yolov4-tiny:416,yolov4-csp:512,yolov4-csp-swish:512")
    report = {**machine_report(args.rounds), "torch": torch.__version__, "numpy": np.__version__, "models": models}
    path = save_per_cpu(Path(args.out), "prepacked", report, run_markdown)
    print(f"wrote {path} and prepacked.md")


if __name__ == "__main__":
    main()
