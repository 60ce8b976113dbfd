"""The real darknet's `detector test`, `detector map`, `detector valid` and `detector calc_anchors`, run and read back
(for the oracle tests and benchmarks/darknet_parity.py). Each run gets its own output paths under `work`."""
from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.oracle.darknet_reference import DarknetProgram


def detector_test(darknet: DarknetProgram, cfg: Path, weights: Path, images: list[Path], work: Path,
                  data: str = "cfg/coco.data") -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """`darknet detector test DATA CFG WEIGHTS -dont_show -ext_output -out result.json < list`:
    ({image path: objects of result.json}, {image path: its -ext_output lines})."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "result.json"
    done = darknet.run("detector", "test", data, cfg, weights, "-dont_show", "-ext_output", "-out", out,
                       stdin="".join(f"{p}\n" for p in images))
    records = {r["filename"]: r["objects"] for r in json.loads(out.read_text())}
    lines: dict[str, list[str]] = {}
    current = None
    for line in done.stdout.splitlines():
        if "Predicted in" in line:  # "Enter Image Path: PATH: Predicted in …"
            current = line.split(": Predicted in")[0].split("Enter Image Path: ")[-1]
            lines[current] = []
        elif current is not None and "(left_x:" in line:
            lines[current].append(line)
    return records, lines


@dataclass
class MapPrint:
    """What `darknet detector map` prints, parsed."""

    classes: list[tuple[int, str, float, int, int]]  # id, name, ap (%), TP, FP
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    average_iou: float  # %
    mean_ap: float  # a fraction, as its first figure
    lines: list[str]  # the lines darknet_py prints too


_CLASS = re.compile(r"class_id = (\d+), name = (.*), ap = ([\d.]+)%\s+\(TP = (\d+), FP = (\d+)\)")
_PRF = re.compile(r"for conf_thresh = [\d.]+, precision = ([-\w.]+), recall = ([-\w.]+), F1-score = ([-\w.]+)")
_COUNTS = re.compile(r"for conf_thresh = [\d.]+, TP = (\d+), FP = (\d+), FN = (\d+), average IoU = ([\d.]+) %")
_MAP = re.compile(r"mean average precision \(mAP@[\d.]+\) = ([\d.]+), or")


def parse_map(text: str) -> MapPrint:
    classes = [(int(m[1]), m[2], float(m[3]), int(m[4]), int(m[5])) for m in _CLASS.finditer(text)]
    prf, counts, mean = _PRF.search(text), _COUNTS.search(text), _MAP.search(text)
    assert classes and prf and counts and mean, f"not darknet map output: {text[-500:]}"
    keep = ("class_id =", " for conf_thresh", " IoU threshold", " mean average precision")
    lines = []
    for line in text.splitlines():
        at = min((line.find(k) for k in keep if k in line), default=-1)
        if at >= 0:
            lines.append(line[at:])
    return MapPrint(classes, *(float(v) for v in prf.groups()), int(counts[1]), int(counts[2]), int(counts[3]),
                    float(counts[4]), float(mean[1]), lines)


def detector_map(darknet: DarknetProgram, data: Path, cfg: Path, weights: Path, points: int = 0) -> MapPrint:
    done = darknet.run("detector", "map", data, cfg, weights, "-dont_show", "-points", str(points))
    return parse_map(done.stdout)


def detector_valid(darknet: DarknetProgram, data: Path, cfg: Path, weights: Path, name: str) -> list[dict]:
    """`darknet detector valid` on an eval=coco data file whose results= folder is private: its COCO results."""
    darknet.run("detector", "valid", data, cfg, weights, "-out", name)
    results = next(line.split("=", 1)[1].strip() for line in data.read_text().splitlines() if line.startswith("results"))
    return json.loads((Path(results) / f"{name}.json").read_text())


HOOKS = Path(__file__).with_name("calc_anchors_hooks.c")


@dataclass
class CalcAnchorsPrint:
    """What `darknet detector calc_anchors` printed: its result lines (counters_per_class, avg IoU, anchors) as
    written, its k-means rounds, and the centres' float32 bits (as %a text) in the order k-means left them."""

    lines: list[str]
    iterations: int
    centers: list[tuple[str, str]]


def calc_anchors(darknet: DarknetProgram, data: Path, clusters: int, width: int, height: int, seed: int,
                 work: Path) -> CalcAnchorsPrint:
    """darknet's calc_anchors with `srand(seed)` (its time() hooked to *seed*; benchmarks/oracle/calc_anchors_hooks.c,
    built into *work*), run in *work* (it writes anchors.txt and counters_per_class.txt where it runs)."""
    work.mkdir(parents=True, exist_ok=True)
    hooks = work / "calc_anchors_hooks.so"
    if not hooks.exists():
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(hooks), str(HOOKS), "-ldl"], check=True,
                       capture_output=True, text=True, timeout=120)
    env = {**os.environ, "LD_PRELOAD": str(hooks), "FIXED_TIME": str(seed), "DUMP_CENTERS": "1"}
    done = subprocess.run([str(darknet.darknet), "detector", "calc_anchors", str(data), "-num_of_clusters",
                           str(clusters), "-width", str(width), "-height", str(height)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    printed = done.stdout.replace("\r", "\n").splitlines()
    lines = [line.strip() for line in printed if line.strip().startswith(("counters_per_class =", "avg IoU =",
                                                                               "anchors ="))]
    iterations = int(next(re.search(r"iterations = (\d+)", line)[1] for line in printed if "iterations =" in line))
    centers = [tuple(line.split()[1:3]) for line in done.stderr.splitlines() if line.startswith("center ")]
    assert (work / "anchors.txt").read_text() == lines[-1][len("anchors = "):], "anchors.txt differs from its print"
    return CalcAnchorsPrint(lines, iterations, centers)  # type: ignore[arg-type]
