"""Every shared cfg exported at its own input size (synthetic weights) and run in onnxruntime at
batch 1 and 2 against the torch backend and against a float64 run of the same network (which
tells export errors from fp32 rounding). The test suite does this up to 640 px; this covers
the big ones too (P5 896, P6 1280, P7 1536), which take minutes on a small CPU.

    python -m benchmarks.onnx_zoo [--cfgs DIR] [--out benchmarks/results/onnx_zoo.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import darknet_py
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.core.fileio import atomic_write
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.format.names import default_names
from weights_tools.synth import synthesize

REPO = Path(__file__).resolve().parents[1]


def check(cfg: Path, folder: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        model = darknet_py.load(cfg)  # at the cfg's own size
    model.load_weight_array(synthesize(cfg, seed=0).weight_array())
    start = time.monotonic()
    path = folder / f"{cfg.stem}.onnx"
    export_onnx(model, path, default_names(model.num_classes), ExportOptions("raw"))
    export_s = time.monotonic() - start
    runtime = OnnxDetector(path)
    errors: dict[str, list[float]] = {"onnxruntime_vs_torch": [], "onnxruntime_vs_fp64": [], "torch_vs_fp64": []}
    exact = copy.deepcopy(model).double()  # float64: how far each fp32 engine is from the exact network
    for batch in (1, 2):
        x = np.random.default_rng(batch).uniform(0, 1, (batch, 3, model.height, model.width)).astype(np.float32)
        with torch.no_grad():
            expected = [h.numpy() for h in model(torch.from_numpy(x))]
            reference = [h.numpy() for h in exact(torch.from_numpy(x).double())]
        for got, ref, ref64 in zip(runtime.run(x), expected, reference):
            scale = np.abs(ref64).max()
            errors["onnxruntime_vs_torch"].append(float(np.abs(got - ref).max() / scale))
            errors["onnxruntime_vs_fp64"].append(float(np.abs(got - ref64).max() / scale))
            errors["torch_vs_fp64"].append(float(np.abs(ref - ref64).max() / scale))
    size_mb = path.stat().st_size / 1e6
    path.unlink()
    return {"cfg": cfg.name, "size": f"{model.width}x{model.height}", "export_s": round(export_s, 1),
            "onnx_mb": round(size_mb, 1), "checker": "passed",
            **{f"max_rel_{key}": float(f"{max(values):.3g}") for key, values in errors.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfgs", type=Path, default=REPO.parent / "shared" / "zoo" / "cfg")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "onnx_zoo.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for cfg in sorted(args.cfgs.glob("*.cfg")):
            row = check(cfg, Path(folder))
            rows.append(row)
            print(json.dumps(row), flush=True)
    with atomic_write(args.out, "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
