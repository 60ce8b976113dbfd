"""What `--vid-stride N` saves on a video: the whole `darknet-py detect` command on pedestrians.avi (341 frames, 1280x720,
official yolov4-tiny 416, this machine's CPU), every frame against every 3rd and every 5th, with records only
(`--no-save --save-json`) and with the annotated H.264 video written; medians of interleaved rounds, each a fresh
process (model load included, as a user runs it). The frames between the detected ones are still decoded (H.264 and
MPEG-4 frames depend on the ones before), so the saving is below N.

    python -m benchmarks.vid_stride [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
STRIDES = (1, 3, 5)
MODES = {"records": ["--no-save", "--save-json"], "annotated_h264": ["--save-json"]}


def run_once(stride: int, flags: list[str], out: Path) -> float:
    """Seconds of one `darknet-py detect` process, start to exit."""
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(VIDEO), "--vid-stride", str(stride), *flags,
               "--output", str(out), "--exist-ok"]
    env = {**os.environ, "DARKNET_PY_ZOO": str(SHARED / "zoo")}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"detect failed:\n{done.stderr[-2000:]}")
    records = json.loads((out / "detections.json").read_text())
    if [r["frame"] for r in records] != list(range(0, 341, stride)):
        raise SystemExit(f"--vid-stride {stride}: unexpected frames in detections.json")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    times: dict[str, dict[int, list[float]]] = {mode: {s: [] for s in STRIDES} for mode in MODES}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for mode, flags in MODES.items():
                for stride in STRIDES:
                    times[mode][stride].append(run_once(stride, flags, Path(folder) / f"{mode}-{stride}"))
    result: dict = {"cpu": cpu_model(), "model": "yolov4-tiny 416", "video": "pedestrians.avi (341 frames, 1280x720)",
                    "rounds": args.rounds, "date": time.strftime("%Y-%m-%d"), "modes": {}}
    for mode in MODES:
        base = statistics.median(times[mode][1])
        result["modes"][mode] = {
            str(stride): {"seconds_median": round(statistics.median(runs), 2),
                          "source_frames_per_s": round(341 / statistics.median(runs), 1),
                          "time_vs_every_frame": round(statistics.median(runs) / base, 3)}
            for stride, runs in times[mode].items()}
    write_json(args.out, "vid_stride.json", result, indent=2)


if __name__ == "__main__":
    main()
