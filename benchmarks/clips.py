"""What `--clips` costs: the whole `darknet-py detect` command on pedestrians.avi (341 frames, 1280x720, yolov4-tiny at
its 416) without clips, with `--clips 2` (people are in view throughout: one clip of the whole video, its lead-in
held in the ring first) and, for scale, writing the annotated video instead (the default). Each a fresh process, frames
per second over the whole command (start-up and model load included), medians of interleaved rounds (rotating which
runs first); and the lead-in ring's own figures on the video's annotated frames: a frame's JPEG size and encode time
(medians), so the memory a lead-in of SECONDS holds at the video's rate.

    python -m benchmarks.clips [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.media.clips import RING_JPEG_QUALITY

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "video" / "pedestrians.avi"
ZOO = REPO.parent / "shared" / "zoo"
SECONDS = 2.0
RUNS = {"no outputs (--no-save)": ["--no-save"],
        f"--no-save --clips {SECONDS:g}": ["--no-save", "--clips", f"{SECONDS:g}"],
        "annotated video (the default)": []}


def run(flags: list[str]) -> float:
    """Seconds for the whole command with *flags* into a fresh folder."""
    out = Path(tempfile.mkdtemp(prefix="clips-bench-"))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(VIDEO), *flags, "--output", str(out),
                        "--exist-ok"], check=True, cwd=REPO, env={**os.environ, "DARKNET_PY_ZOO": str(ZOO)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out)


def ring_figures() -> dict:
    """A 1280x720 frame's JPEG in the ring: bytes and encode milliseconds (medians over the video's frames, as decoded),
    and the megabytes a lead-in holds at 25 frames a second (the video's rate: its header says 50, for half as many
    frames as it has) — a second of it, and SECONDS."""
    capture = cv2.VideoCapture(str(VIDEO))
    sizes, times = [], []
    while (got := capture.read())[0]:
        started = time.perf_counter()
        ok, jpeg = cv2.imencode(".jpg", got[1], [cv2.IMWRITE_JPEG_QUALITY, RING_JPEG_QUALITY])
        times.append((time.perf_counter() - started) * 1000)
        sizes.append(len(jpeg))
    capture.release()
    size = statistics.median(sizes)
    return {"frames": len(sizes), "jpeg_quality": RING_JPEG_QUALITY, "jpeg_kb_median": round(size / 1024, 1),
            "encode_ms_median": round(statistics.median(times), 2),
            "lead_in_mb_per_second_at_25_fps": round(size * 25 / 2**20, 2),
            f"lead_in_mb_of_{SECONDS:g}_s_at_25_fps": round(size * 25 * SECONDS / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    ring = ring_figures()
    frames = ring["frames"]  # as decoded, as the command counts them (the header says twice as many)
    seconds: dict[str, list[float]] = {name: [] for name in RUNS}
    for round_index in range(args.rounds):
        names = list(RUNS)
        names = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in names:
            seconds[name].append(run(RUNS[name]))
        print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    fps = {name: round(frames / statistics.median(values), 2) for name, values in seconds.items()}
    base = fps["no outputs (--no-save)"]
    result = {"cpu": cpu_model(), "video": VIDEO.name, "frames": frames, "model": "yolov4-tiny 416",
              "rounds": args.rounds, "seconds": {name: [round(v, 2) for v in values] for name, values in seconds.items()},
              "frames_per_second_median": fps,
              "relative_to_no_outputs": {name: round(value / base, 3) for name, value in fps.items()},
              "ring": ring, "date": time.strftime("%Y-%m-%d")}
    write_json(args.out, "clips.json", result, indent=2)


if __name__ == "__main__":
    main()
