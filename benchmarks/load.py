"""Loading a model, side by side with OpenCV: `darknet_py.load(cfg, weights)` (the default: batch norm folded,
channels-last) against `cv2.dnn.readNetFromDarknet(cfg, weights)`, and writing the weights back
(`Darknet.save_weights`, what `weights_tools convert` and `synth` do), for yolov4-tiny (official weights) and
synthetic weights of yolov4 (64 M floats), yolov4-p6 (127 M) and yolov4-p7 (cspx-p7-mish, 276 M).

Each measurement runs in a fresh process (what a user's first call costs: nothing cached but the file in the
page cache, read once beforehand): seconds for the call and its peak memory above the process after imports
(VmHWM − VmRSS, /proc/self/status, the high-water mark reset just before the call). OpenCV's DNN reads the file and prepares the network at its first
forward pass, so the time to a first detection (load, then detect() on dog.jpg at the cfg's size) is measured
too, for both. Interleaved rounds, medians. OpenCV refuses P7's cfg as darknet ships it
(num=16 with 20 anchors listed, tests/oracle.py): its row says so.

    python -m benchmarks.load [--rounds 5] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model

REPO = Path(__file__).resolve().parents[1]
MODELS = ("yolov4-tiny", "yolov4", "yolov4-p6", "cspx-p7-mish")
OFFICIAL = {"yolov4-tiny"}
KINDS = ("load", "opencv", "load+detect", "opencv+detect", "save")

# One measurement in a fresh interpreter: the import cost is not counted, the call's time and peak memory are.
CHILD = r"""
import json, sys, time, warnings
from pathlib import Path
import cv2, torch
from darknet_py.api import load  # the package's imports are not the call's: `import cv2` is not counted either

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

what, cfg, weights, out, image = sys.argv[1:6]
warnings.simplefilter("ignore")
model = load(cfg, weights, fast=False) if what == "save" else None
Path("/proc/self/clear_refs").write_text("5")  # VmHWM restarts from here: the peaks before (imports, a load) are not the call's
base = status("VmRSS")
start = time.perf_counter()
if what == "load":
    load(cfg, weights)
elif what == "opencv":
    cv2.dnn.readNetFromDarknet(cfg, weights)
elif what == "load+detect":
    load(cfg, weights).detect(image)
elif what == "opencv+detect":  # OpenCV's DNN prepares the network at its first forward, not when it reads the file
    net = cv2.dnn_DetectionModel(cv2.dnn.readNetFromDarknet(cfg, weights))
    side = [int(line.split("=")[1]) for line in open(cfg) if line.replace(" ", "").startswith(("width=", "height="))][:2]
    net.setInputParams(scale=1 / 255, size=tuple(side), swapRB=True)
    net.detect(cv2.imread(image), 0.25, 0.45)
else:
    model.save_weights(out)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_bytes": status("VmHWM") - base}))
"""


def measure(what: str, cfg: Path, weights: Path, out: Path, image: Path) -> dict | str:
    """One fresh-process measurement, or OpenCV's refusal (its error's first line)."""
    result = subprocess.run([sys.executable, "-c", CHILD, what, str(cfg), str(weights), str(out), str(image)], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        if what.startswith("opencv"):
            return "refuses: " + next((line.strip() for line in result.stderr.splitlines() if "error" in line.lower()),
                                      result.stderr.strip().splitlines()[-1])
        raise RuntimeError(f"{what} {cfg.name}: {result.stderr.strip()}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def weights_for(name: str, zoo: Path, folder: Path) -> Path:
    if name in OFFICIAL:
        return zoo / "weights" / f"{name}.weights"
    from weights_tools.synth import synthesize

    path = folder / f"{name}.weights"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        synthesize(zoo / "cfg" / f"{name}.cfg", seed=0).save_weights(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--image", type=Path, default=REPO.parent / "shared" / "data" / "images" / "dog.jpg")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite load.md from load.json")
    parser.add_argument("--zoo", type=Path, default=REPO.parent / "shared" / "zoo", help="official cfgs and weights")
    args = parser.parse_args()
    if args.markdown_only:
        report = json.loads((args.out / "load.json").read_text())
        with atomic_write(args.out / "load.md", "w") as handle:
            handle.write(markdown(report))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        folder = Path(tmp)
        for name in args.models:
            cfg, weights = args.zoo / "cfg" / f"{name}.cfg", weights_for(name, args.zoo, folder)
            weights.read_bytes()  # in the page cache for every measurement alike
            samples: dict[str, list] = {what: [] for what in KINDS}
            for _ in range(args.rounds):
                for what in samples:
                    samples[what].append(measure(what, cfg, weights, folder / "saved.weights", args.image))
            row = {"model": name, "weights": "official" if name in OFFICIAL else "synthetic",
                   "floats": (weights.stat().st_size - 20) // 4}
            for what, runs in samples.items():
                if any(isinstance(r, str) for r in runs):
                    row[what] = next(r for r in runs if isinstance(r, str))
                    continue
                row[what] = {"seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
                             "peak_mib_median": round(statistics.median(r["peak_bytes"] for r in runs) / 2**20, 1),
                             "seconds": [round(r["seconds"], 3) for r in runs]}
            for ours, theirs in (("load", "opencv"), ("load+detect", "opencv+detect")):
                if isinstance(row[theirs], dict):
                    row[f"{ours}_vs_opencv"] = round(row[ours]["seconds_median"] / row[theirs]["seconds_median"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "machine": cpu_model(), "isa": cpu_flags(),
              "torch": torch.__version__, "opencv": cv2.__version__, "rounds": args.rounds, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out / "load.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(args.out / "load.md", "w") as handle:
        handle.write(markdown(report))
    print(markdown(report))


def cell(value: dict | str, key: str) -> str:
    return value[key] if isinstance(value, dict) else "—"


def refusal(value: dict | str) -> str:
    """The table's word for a runtime that refused the cfg (the JSON keeps its error)."""
    return "refuses the cfg" if isinstance(value, str) else ""


def markdown(report: dict) -> str:
    lines = [f"Measured {report['date']} on {report['machine']} (torch {report['torch']}, OpenCV {report['opencv']}); "
             f"each call in a fresh process, medians of {report['rounds']} interleaved rounds, seconds; peak memory "
             "(MiB) above the process after its imports. First detection: the load, then one image (dog.jpg) at the "
             "cfg's size, where OpenCV prepares its network.", "",
             "| model | floats | load() | peak | OpenCV read | peak | vs OpenCV | load + first detect() | OpenCV read "
             "+ first detect | vs OpenCV | save_weights | peak |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        cells = [f"{row['model']} ({row['weights']})", f"{row['floats']:,}"]
        for kind, ratio in (("load", None), ("opencv", "load_vs_opencv"), ("load+detect", None),
                            ("opencv+detect", "load+detect_vs_opencv"), ("save", None)):
            value = row[kind]
            if kind in ("load+detect", "opencv+detect"):
                cells.append(str(cell(value, "seconds_median")))
            else:
                cells += [str(cell(value, "seconds_median")), str(cell(value, "peak_mib_median"))]
            if ratio:
                cells.append(f"{row[ratio]}×" if ratio in row else refusal(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
