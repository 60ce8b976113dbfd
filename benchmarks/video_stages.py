"""The video loop stage by stage (issue 29): where `darknet-py detect VIDEO` spends each frame, beside an OpenCV
DNN loop's.

pedestrians.avi (1280x720), yolov4-tiny 416 (official weights), batch 1. darknet_py's loop is `run_video`, as the
CLI runs it, writing the annotated video as MJPG (.avi: the OpenCV loop's writer, like for like) and as H.264
(.mp4: darknet_py's default for it, through PyAV). Timers are put around its parts for the run:

    decode   capture.read() in the reader thread (a thread of its own: it overlaps the rest)
    detect   the detect_batch call: pre-processing, network, decoding, NMS
    network  the network call inside it (TorchRunner._forward)
    draw     Detections.draw, the annotated frame
    encode   the video writer's write() (darknet_py: in the encoder thread, media/background_writer.py: it overlaps
             the rest too)
    rest     the main loop's time outside detect and draw: waiting for a decoded frame, handing the frame to the
             encoder (waiting when its queue is full), results, progress

Each is reported as ms per frame (its total over the run / frames) beside the run's wall time per frame, so the
main-loop stages add up to the wall time and decode and encode show how much they overlap. The OpenCV loop (read →
dnn_DetectionModel.detect → draw → VideoWriter.write, one thread) is timed the same way. Rounds alternate
between the runs; figures are medians over rounds.

    python -m benchmarks.video_stages [--rounds 3] [--out benchmarks/results]

Writes benchmarks/results/video_stages.json and video_stages.md. About two minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import cv2
import torch

import darknet_py
from benchmarks.pipeline import timed_network
from benchmarks.run import REPO, SHARED, opencv_video_loop
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from darknet_py.media import sinks, video, video_source
from darknet_py.pipeline.detections import Detections

VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
STAGES = ("decode", "detect", "network", "draw", "encode", "rest")


class _TimedCalls:
    """Wraps an object so the named methods add their seconds to `spent[stage]`; the rest passes through."""

    def __init__(self, inner, methods: dict[str, str], spent: dict[str, float]) -> None:
        self._inner, self._methods, self._spent = inner, methods, spent

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        stage = self._methods.get(name)
        if stage is None:
            return attribute

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._spent[stage] += time.perf_counter() - start
        return timed


@contextmanager
def timers(spent: dict[str, float]) -> Iterator[None]:
    """Times run_video's capture reads, drawing and video writes into `spent` while the block runs."""
    open_capture, open_writer, draw = video_source.open_capture, sinks.open_video_writer, Detections.draw

    def timed_draw(self, image):
        start = time.perf_counter()
        try:
            return draw(self, image)
        finally:
            spent["draw"] += time.perf_counter() - start
    video_source.open_capture = lambda source: _TimedCalls(open_capture(source), {"read": "decode"}, spent)
    sinks.open_video_writer = lambda *a, **k: _TimedCalls(open_writer(*a, **k), {"write": "encode"}, spent)
    Detections.draw = timed_draw
    try:
        yield
    finally:
        video_source.open_capture, sinks.open_video_writer, Detections.draw = open_capture, open_writer, draw


def ours(model, network_seconds: list[float], out: Path) -> dict[str, float]:
    """One run_video over the file; ms per frame of each stage and of the whole run. `network_seconds[0]` is what
    timed_network adds the model's network calls to."""
    spent = {stage: 0.0 for stage in STAGES}

    def detect_batch(images):
        start = time.perf_counter()
        try:
            return model.detect(images)
        finally:
            spent["detect"] += time.perf_counter() - start
    network_seconds[0] = 0.0
    with timers(spent):
        start = time.perf_counter()
        report = video.run_video(str(VIDEO), detect_batch, output=str(out))
        wall = time.perf_counter() - start
    spent["network"] = network_seconds[0]
    spent["rest"] = wall - spent["detect"] - spent["draw"]  # encoding runs in its own thread
    return per_frame(spent, wall, report.frames)


def opencv(out: Path) -> dict[str, float]:
    spent = {stage: 0.0 for stage in STAGES}
    last = [time.perf_counter()]

    def clock(stage: str) -> None:
        now = time.perf_counter()
        if stage != "start":
            spent[stage] += now - last[0]
        last[0] = now
    frames, wall = opencv_video_loop(VIDEO, CFG, WEIGHTS, 416, out, clock)
    spent["network"] = float("nan")  # inside OpenCV's detect(), not separable here
    spent["rest"] = wall - spent["decode"] - spent["detect"] - spent["draw"] - spent["encode"]  # set-up, the last read
    return per_frame(spent, wall, frames)


def per_frame(spent: dict[str, float], wall: float, frames: int) -> dict[str, float]:
    row = {f"{stage}_ms": round(seconds / frames * 1000, 3) for stage, seconds in spent.items() if seconds == seconds}
    return {**row, "wall_ms": round(wall / frames * 1000, 3), "frames": frames, "frames_per_s": round(frames / wall, 2)}


def median_rows(rows: list[dict]) -> dict:
    return {key: (statistics.median(r[key] for r in rows) if key != "frames" else rows[0][key]) for key in rows[0]}


def markdown(report: dict) -> str:
    lines = [f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores), {report['torch_threads']} torch "
             f"threads; {report['video']}, {report['model']}, batch 1; ms per frame (a stage's total over the run / "
             f"frames), medians of {report['rounds']} rounds.", "",
             "| run | decode (reader thread) | detect | network (in detect) | draw | encode (darknet-py: encoder thread) | "
             "rest of the loop | "
             "wall | frames/s | vs OpenCV loop |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["runs"].items():
        lines.append(f"| {name} | {r['decode_ms']} | {r['detect_ms']} | {r.get('network_ms', '–')} | {r['draw_ms']} | "
                     f"{r['encode_ms']} | {r['rest_ms']} | {r['wall_ms']} | {r['frames_per_s']} | {r['vs_opencv_loop']}× |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    model = darknet_py.load(CFG, WEIGHTS)
    network_seconds = [0.0]
    timed_network(model.runner(), "_forward", network_seconds)
    runs: dict[str, Callable[[Path], dict]] = {
        "opencv loop (MJPG)": lambda folder: opencv(folder / "cv.avi"),
        "darknet-py detect, torch (MJPG)": lambda folder: ours(model, network_seconds, folder / "ours.avi"),
        "darknet-py detect, torch (H.264)": lambda folder: ours(model, network_seconds, folder / "ours.mp4"),
    }
    rows: dict[str, list[dict]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory(prefix="darknet_py-video-stages-") as tmp:
        for r in range(args.rounds):
            for i, (name, run) in enumerate(runs.items()):
                folder = Path(tmp) / f"round{r}-run{i}"
                folder.mkdir()
                rows[name].append(run(folder))
                print(f"round {r + 1}: {name}: {json.dumps(rows[name][-1])}", flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "opencv": cv2.__version__, "video": VIDEO.name,
              "model": "yolov4-tiny:416", "rounds": args.rounds, "load_average": round(os.getloadavg()[0], 2),
              "runs": {name: median_rows(r) for name, r in rows.items()}, "every_round": rows}
    reference = report["runs"]["opencv loop (MJPG)"]["frames_per_s"]
    for entry in report["runs"].values():
        entry["vs_opencv_loop"] = round(entry["frames_per_s"] / reference, 3)
    out = Path(args.out)
    with atomic_write(out / "video_stages.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "video_stages.md", "w") as handle:
        handle.write(markdown(report) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
