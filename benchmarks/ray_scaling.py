"""Images/s of `detect --ray` with 1 and 2 model workers, beside single-process detect, in one run.

Each configuration runs the whole COCO subset (158 images, yolov4-tiny 416, torch backend)
into a fresh output folder on one local Ray started once; rounds rotate the order and the
figures are medians. A run's time counts everything a user waits for after the model is
loaded: actor start-up (the model shipped to each actor), reading, pre-processing, inference,
NMS and the shard files. Each Ray configuration is also timed on the first 16 images alone:
the difference of the two runs gives the steady rate once the actors are up, which is what
a large collection sees. Single-process detect is the same loop `darknet-py detect` runs
(read → detect, batch 1, torch's default threads) over the same images.

    python -m benchmarks.ray_scaling [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.distributed.ray_detect import RayOptions, detect_on_ray

SHARED = Path(__file__).resolve().parents[2] / "shared"
COCO_IMAGES = SHARED / "data" / "coco-val2017-subset" / "images"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
SMALL = 16  # images in the start-up run
CONFIGS = {  # name: (workers, threads per worker); None = single process
    "single process (2 threads)": None,
    "ray, 1 worker × 2 threads": (1, 2),
    "ray, 1 worker × 1 thread": (1, 1),
    "ray, 2 workers × 1 thread": (2, 1),
    "ray, 2 workers × 2 threads": (2, 2),
}


def _single(model, paths: list[str]) -> float:
    start = time.perf_counter()
    for path in paths:
        model.detect(path)
    return time.perf_counter() - start


def _ray(model, paths: list[str], workers: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        detect_on_ray(paths, out, model,
                      ray_options=RayOptions(workers=workers, worker_threads=threads, shard_size=16, progress=False))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    import ray

    # a private Ray (address="local"), also beside one running on the machine; 2 actors + room to read
    ray.init(address="local", num_cpus=3, include_dashboard=False, logging_level="WARNING")
    model = darknet_py.load(CFG, WEIGHTS)
    paths = sorted(str(p) for p in COCO_IMAGES.iterdir())
    names = list(CONFIGS)
    head = paths[:SMALL]
    times: dict[str, list[float]] = {name: [] for name in names}
    small: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:  # rotate the order
            config = CONFIGS[name]
            if config is None:
                times[name].append(_single(model, paths))
            else:
                small[name].append(_ray(model, head, *config))
                times[name].append(_ray(model, paths, *config))
            print(f"round {round_ + 1}: {name}: {len(paths) / times[name][-1]:.1f} images/s", flush=True)
    rows = []
    for name in names:
        total = statistics.median(times[name])
        steady = (len(paths) - SMALL) / (total - statistics.median(small[name])) if small[name] else len(paths) / total
        rows.append({"config": name, "images_per_s": round(len(paths) / total, 2), "steady_images_per_s": round(steady, 2),
                     "seconds": [round(t, 2) for t in times[name]], "seconds_16": [round(t, 2) for t in small[name]]})
    result = {"images": len(paths), "model": "yolov4-tiny 416 (torch)", "rounds": args.rounds,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "torch": torch.__version__, "rows": rows}
    out = Path(args.out)
    with atomic_write(out / "ray.json", "w") as handle:
        json.dump(result, handle, indent=1)
    table = [f"| configuration | images/s, whole run of {len(paths)} | images/s, steady (actors up) |", "|---|---|---|"]
    table += [f"| {row['config']} | {row['images_per_s']:.1f} | {row['steady_images_per_s']:.1f} |" for row in rows]
    with atomic_write(out / "ray.md", "w") as handle:
        handle.write("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
