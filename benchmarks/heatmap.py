"""What `--heatmap` costs, beside the peer: supervision's HeatMapAnnotator on the same boxes, in the same run.

pedestrians.avi's people (yolov4-tiny, every frame) are detected once; then, in interleaved rounds, each frame's
boxes go through `HeatmapSink.write` (the map; its picture and files once, at the end, timed apart) and through
supervision's `HeatMapAnnotator.annotate` (its heat, and its picture of every frame: how supervision makes a heat-map
video) — the two maps must be equal (ours in seconds, its in frames). Beside them, the whole command as a user runs
it: `darknet-py detect pedestrians.avi --classes person --no-save` with and without `--heatmap`, frames/s.

    python -m benchmarks.heatmap [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

import darknet_py
from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.media.heatmap_sink import HeatmapOptions, HeatmapSink
from darknet_py.media.sinks import Result

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
ZOO = SHARED / "zoo"
RADIUS = 22  # our default at 720p; supervision's default is 40


def detected_frames() -> tuple[list[np.ndarray], list]:
    """Every frame of the video and its people, as the run detects them."""
    model = darknet_py.load(ZOO / "cfg" / "yolov4-tiny.cfg", ZOO / "weights" / "yolov4-tiny.weights")
    capture = cv2.VideoCapture(str(VIDEO))
    frames, detections = [], []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
        detections.append(model.detect(frame, classes=("person",))[0])
    return frames, detections


def ours(frames: list[np.ndarray], detections: list, folder: Path) -> tuple[float, float, np.ndarray]:
    """Seconds for every frame's write, seconds for finish (the picture and the files), and the map."""
    sink = HeatmapSink(folder, HeatmapOptions("bottom", RADIUS))
    start = time.perf_counter()
    for index, (frame, dets) in enumerate(zip(frames, detections)):
        sink.write(Result(str(VIDEO), index, frame, dets, fps=25.0))
    written = time.perf_counter()
    sink.finish()
    assert sink.map is not None
    return written - start, time.perf_counter() - written, sink.map.heat


def theirs(frames: list[np.ndarray], detections: list) -> tuple[float, np.ndarray]:
    """Seconds for supervision's annotate() of every frame, and its heat."""
    annotator = sv.HeatMapAnnotator(position=sv.Position.BOTTOM_CENTER, radius=RADIUS)
    start = time.perf_counter()
    for frame, dets in zip(frames, detections):
        annotator.annotate(frame.copy(), sv.Detections(xyxy=dets.boxes.astype(np.float64)))
    return time.perf_counter() - start, annotator.heat_mask


def command(heatmap: bool, folder: Path) -> float:
    """`darknet-py detect` on the video as a user runs it; its frames/s from its last progress line."""
    flags = ["--heatmap"] if heatmap else []
    done = subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(VIDEO), "--classes", "person",
                           "--no-save", *flags, "--output", str(folder), "--exist-ok"], capture_output=True, text=True,
                          check=True, cwd=REPO, env={**os.environ, "DARKNET_PY_ZOO": str(ZOO)})
    rates = re.findall(r"([\d.]+) frames/s", done.stderr)
    return float(rates[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    frames, detections = detected_frames()
    ms: dict[str, list[float]] = {"ours: write() a frame": [], "ours: picture and files, once": [],
                                  "supervision: annotate() a frame": []}
    rates: dict[str, list[float]] = {"detect --no-save": [], "detect --no-save --heatmap": []}
    with tempfile.TemporaryDirectory(prefix="heatmap-bench-") as folder:
        for round_index in range(args.rounds):
            order = [0, 1] if round_index % 2 == 0 else [1, 0]
            for which in order:
                if which == 0:
                    write_s, finish_s, heat = ours(frames, detections, Path(folder))
                    ms["ours: write() a frame"].append(write_s / len(frames) * 1000)
                    ms["ours: picture and files, once"].append(finish_s * 1000)
                else:
                    took, counts = theirs(frames, detections)
                    ms["supervision: annotate() a frame"].append(took / len(frames) * 1000)
            assert np.abs(heat - counts.astype(np.float64) / 25).max() < 1e-9  # the same map: seconds vs frames
            for heatmap in ((False, True) if round_index % 2 == 0 else (True, False)):
                rate = command(heatmap, Path(folder) / "run")
                rates["detect --no-save --heatmap" if heatmap else "detect --no-save"].append(rate)
                print(f"round {round_index + 1}, heatmap={heatmap}: {rate:.2f} frames/s", flush=True)
    medians = {kind: round(statistics.median(values), 3) for kind, values in ms.items()}
    frame_rates = {kind: round(statistics.median(values), 2) for kind, values in rates.items()}
    results = {"cpu": cpu_model(), "video": VIDEO.name, "frames": len(frames),
               "boxes": int(sum(len(d) for d in detections)), "radius": RADIUS, "rounds": args.rounds,
               "same_map_as_supervision": True, "milliseconds": medians,
               "milliseconds_rounds": {kind: [round(v, 3) for v in values] for kind, values in ms.items()},
               "frames_per_second": frame_rates,
               "frames_per_second_rounds": {kind: [round(v, 2) for v in values] for kind, values in rates.items()},
               "ratio_with_heatmap": round(frame_rates["detect --no-save --heatmap"] / frame_rates["detect --no-save"],
                                           3)}
    write_json(Path(args.out), "heatmap.json", results)


if __name__ == "__main__":
    main()
