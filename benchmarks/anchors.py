"""How long `darknet-py anchors` takes on a large training set, beside the peer: darknet's own `detector calc_anchors`
(the reference build, its time() hooked to the same seed: benchmarks/oracle/calc_anchors_hooks.c), in the same run.

The set: FILES label files of BOXES_PER_FILE boxes (written in a temporary folder, never kept), their sizes drawn
from the COCO subset's boxes, each scaled by a random factor (log-normal, σ 0.1) so that no two are alike; 9 clusters
at 416×416. Both commands are timed whole, as a user runs them (start-up, reading every label file, k-means, the
average IoU), in interleaved rounds; their printed lines must be identical in every round. Beside them, this run's
own split: the reading of the labels and the k-means rounds, in process.

    python -m benchmarks.anchors [--files 20000] [--rounds 3] [--seed 5] [--out benchmarks/results]
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

import numpy as np

from benchmarks.oracle.darknet_commands import calc_anchors as darknet_calc_anchors
from benchmarks.oracle.darknet_reference import build_darknet
from benchmarks.report import write_json
from darknet_py.core.errors import DarknetWarning
from darknet_py.core.machine import cpu_model
from darknet_py.model.anchors import darknet_kmeans, read_label_boxes

REPO = Path(__file__).resolve().parents[1]
COCO = REPO.parent / "shared" / "data" / "coco-val2017-subset" / "instances_val2017_subset.json"
BOXES_PER_FILE = 10
CLUSTERS, SIZE = 9, 416


def write_set(folder: Path, files: int) -> Path:
    """A darknet set of *files* label files (no images: calc_anchors never opens them); its obj.data."""
    data = json.loads(COCO.read_text())
    images = {image["id"]: image for image in data["images"]}
    relative = np.array([(box["bbox"][2] / images[box["image_id"]]["width"],
                          box["bbox"][3] / images[box["image_id"]]["height"])
                         for box in data["annotations"] if not box.get("iscrowd", 0) and box["bbox"][2] > 0
                         and box["bbox"][3] > 0])
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    paths = []
    for n in range(files):
        sizes = relative[rng.integers(0, len(relative), BOXES_PER_FILE)] * rng.lognormal(0, 0.1, (BOXES_PER_FILE, 2))
        sizes = np.clip(sizes, 0.001, 1)
        centres = rng.uniform(0.2, 0.8, (BOXES_PER_FILE, 2))
        path = folder / "images" / f"{n:07d}.jpg"
        path.with_suffix(".txt").write_text("".join(
            f"{rng.integers(0, 80)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for (x, y), (w, h) in zip(centres, sizes)))
        paths.append(str(path))
    (folder / "train.txt").write_text("".join(path + "\n" for path in paths))
    (folder / "obj.data").write_text(f"classes = 80\ntrain = {folder / 'train.txt'}\n")
    return folder / "obj.data"


def ours(data: Path, seed: int) -> tuple[float, list[str]]:
    """`darknet-py anchors` as a user runs it: seconds, and its printed lines."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "darknet_py.cli", "anchors", str(data), "--clusters", str(CLUSTERS),
                           "--size", str(SIZE), "--seed", str(seed)], capture_output=True, text=True, check=True,
                          cwd=REPO)
    return time.perf_counter() - start, done.stdout.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    darknet = build_darknet()
    seconds: dict[str, list[float]] = {"darknet-py anchors": [], "darknet detector calc_anchors": []}
    split: dict[str, list[float]] = {"read labels": [], "k-means": []}
    with tempfile.TemporaryDirectory(prefix="anchors-bench-") as folder:
        data = write_set(Path(folder) / "set", args.files)
        ours(data, args.seed)  # a first run of each, untimed: the files in the page cache, darknet's hooks compiled
        darknet_calc_anchors(darknet, data, CLUSTERS, SIZE, SIZE, args.seed, Path(folder) / "dn")
        for round_index in range(args.rounds):
            for kind in (list(seconds) if round_index % 2 == 0 else list(seconds)[::-1]):
                if kind == "darknet-py anchors":
                    took, lines = ours(data, args.seed)
                else:
                    start = time.perf_counter()
                    printed = darknet_calc_anchors(darknet, data, CLUSTERS, SIZE, SIZE, args.seed, Path(folder) / "dn")
                    took, theirs = time.perf_counter() - start, printed.lines
                seconds[kind].append(took)
                print(f"round {round_index + 1}, {kind}: {took:.2f} s", flush=True)
            assert lines == theirs, (lines, theirs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DarknetWarning)
                start = time.perf_counter()
                boxes = read_label_boxes(data, SIZE, SIZE)
                read = time.perf_counter()
                _, rounds = darknet_kmeans(boxes.sizes, CLUSTERS, args.seed)
                split["read labels"].append(read - start)
                split["k-means"].append(time.perf_counter() - read)
    medians = {kind: round(statistics.median(values), 3) for kind, values in seconds.items()}
    results = {"cpu": cpu_model(), "rounds": args.rounds, "files": args.files, "boxes": len(boxes.sizes),
               "clusters": CLUSTERS, "size": SIZE, "seed": args.seed, "kmeans_rounds": rounds,
               "identical_lines": True, "anchors": lines[-1], "seconds": medians,
               "seconds_rounds": {kind: [round(v, 3) for v in values] for kind, values in seconds.items()},
               "ratio_to_darknet": round(medians["darknet-py anchors"] / medians["darknet detector calc_anchors"], 2),
               "in_process_seconds": {part: round(statistics.median(values), 3) for part, values in split.items()}}
    write_json(Path(args.out), "anchors.json", results)


if __name__ == "__main__":
    main()
