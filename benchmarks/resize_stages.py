"""darknet's resize of a 1280x720 video frame to 416x416, step by step, right after the network and back to back.

detect() spends several milliseconds more on darknet's resize inside the video loop than the same resize costs
repeated on its own (benchmarks/results/pipeline.json, int8_video_resize.md). This times each step of
darknet_resize's host path (the rows read, BGR → RGBA words, the column gather, the split, v/255 by table, the
horizontal pass, the vertical pass) on pedestrians.avi's frames: once with yolov4-tiny's network (torch, CPU) run
before every frame, as in the loop, and once back to back. The steps replicate darknet_resize._gather_on_host and
_interpolate (the same calls, timed one by one); cv2.resize is timed the same way for scale, and so is the C
kernel (darknet_resize's default on the CPU since it was added; `resize_image_into_ms` is the tensor path).

Then what the network leaves behind: the C kernel timed right after each of several kinds of preceding work
(nothing; the network; the network then a 5 ms sleep; the network on one thread; 32 MB streamed through the
caches by numpy; the network, then the kernel once untimed), to tell cache contents, threads and time apart.

    python -m benchmarks.resize_stages [--frames 40] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from darknet_py.pipeline import darknet_resize as dr

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
STEPS = ("rows", "bgr_to_rgba", "column_gather", "split", "divide_by_table", "horizontal_mul", "horizontal_add",
         "vertical_select", "vertical_mul", "vertical_add")


def resize_steps(frame: np.ndarray, p: dr.Plan, out: torch.Tensor, top: torch.Tensor, bottom: torch.Tensor) -> list[float]:
    """darknet_resize's host path for one frame, each step timed (ms)."""
    scratch, times = dr._scratch, []
    clock = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        times.append((now - clock[0]) * 1000)
        clock[0] = now

    rows = frame if len(p.rows) == frame.shape[0] else frame[p.rows]  # every row read: no copy (720 → 416 reads all)
    tick()
    n_rows, n_cols = len(p.rows), len(p.cols)
    words = scratch.get("words", (n_rows, frame.shape[1], 4), np.uint8)
    cv2.cvtColor(rows, cv2.COLOR_BGR2RGBA, dst=words)
    tick()
    picked = scratch.get("picked", (n_rows, n_cols), np.uint32)
    np.take(words.view(np.uint32)[..., 0], p.cols, axis=1, out=picked, mode="clip")
    tick()
    split = [scratch.get(f"plane{c}", (n_rows, n_cols), np.uint8) for c in range(4)]
    cv2.split(picked.view(np.uint8).reshape(n_rows, n_cols, 4), split)
    tick()
    out_w = n_cols // 2
    planes = scratch.get("planes", (2, 3, n_rows, out_w), np.float32)
    for c in range(3):
        for side in range(2):
            cv2.LUT(split[c][:, side * out_w:(side + 1) * out_w], dr._byte_quotients(), dst=planes[side, c])
    tick()
    left, right = torch.from_numpy(planes[0]), torch.from_numpy(planes[1])
    left.mul_(p.wx0)
    right.mul_(p.wx1)
    tick()
    left.add_(right)
    tick()
    torch.index_select(left, -2, p.row0, out=top)
    torch.index_select(left, -2, p.row1, out=bottom)
    tick()
    top.mul_(p.wy0)
    bottom.mul_(p.wy1)
    tick()
    torch.add(top, bottom, out=out)
    tick()
    return times


def kernel_after(model, network_input: torch.Tensor, frames: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median ms of the C kernel on each frame right after each kind of preceding work, interleaved frame by frame."""
    stream = np.ones(32 * 2**20 // 4, np.float32)
    threads = torch.get_num_threads()

    def one_thread_network() -> None:
        torch.set_num_threads(1)
        model.forward_heads(network_input)
        torch.set_num_threads(threads)

    before = {
        "nothing": lambda frame: None,
        "the network": lambda frame: model.forward_heads(network_input),
        "the network, then 5 ms asleep": lambda frame: (model.forward_heads(network_input), time.sleep(0.005)),
        "the network on one thread": lambda frame: one_thread_network(),
        "32 MB streamed by numpy": lambda frame: np.add(stream, 1, out=stream),
        "the network, then the kernel once": lambda frame: (model.forward_heads(network_input),
                                                            dr.resize_image_into(frame, out)),
    }
    out = torch.from_numpy(np.empty((3, 416, 416), np.float32))
    times: dict[str, list[float]] = {name: [] for name in before}
    for _ in range(rounds):
        for frame in frames:
            for name, work in before.items():
                work(frame)
                start = time.perf_counter()
                dr.resize_image_into(frame, out)
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    model = darknet_py.load(CFG, WEIGHTS)
    capture = cv2.VideoCapture(str(VIDEO))
    frames = [capture.read()[1] for _ in range(args.frames)]
    height, width = frames[0].shape[:2]
    p = dr.plan(width, height, 416, 416, torch.device("cpu"))
    out, top, bottom = (torch.from_numpy(np.empty((3, 416, 416), np.float32)) for _ in range(3))
    check = torch.from_numpy(np.empty((3, 416, 416), np.float32))
    network_input = torch.zeros(1, 3, 416, 416)
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpus": os.cpu_count(),
              "torch_threads": torch.get_num_threads(), "frame": f"{width}x{height}", "rows_read": len(p.rows),
              "float_planes_mb": round(2 * 3 * len(p.rows) * (len(p.cols) // 2) * 4 / 2**20, 2)}
    dr.use_kernel = False  # the steps and `resize_image_into_ms`: the tensor path (the kernel is timed apart)
    with torch.no_grad():
        for label, after_network in (("after the network", True), ("back to back", False)):
            steps: dict[str, list[float]] = {step: [] for step in STEPS}
            whole, opencv = [], []
            for _ in range(args.rounds):
                for frame in frames:
                    if after_network:
                        model.forward_heads(network_input)
                    for step, ms in zip(STEPS, resize_steps(frame, p, out, top, bottom)):
                        steps[step].append(ms)
                    dr.resize_image_into(frame, check)
                    assert torch.equal(check, out), "the timed steps must compute what darknet_resize computes"
                    if after_network:
                        model.forward_heads(network_input)
                    start = time.perf_counter()
                    dr.resize_image_into(frame, check)
                    whole.append((time.perf_counter() - start) * 1000)
                    if after_network:
                        model.forward_heads(network_input)
                    start = time.perf_counter()
                    cv2.resize(frame, (416, 416), interpolation=cv2.INTER_LINEAR)
                    opencv.append((time.perf_counter() - start) * 1000)
            medians = {step: round(statistics.median(values), 3) for step, values in steps.items()}
            report[label] = {"steps_ms": medians, "steps_sum_ms": round(sum(medians.values()), 3),
                             "resize_image_into_ms": round(statistics.median(whole), 3),
                             "cv2_resize_ms": round(statistics.median(opencv), 3)}
            print(label, json.dumps(report[label]), flush=True)
        dr.use_kernel = True
        report["kernel_after_ms"] = kernel_after(model, network_input, frames, args.rounds)
        print("kernel after", json.dumps(report["kernel_after_ms"]), flush=True)
    with atomic_write(Path(args.out) / "resize_stages.json", "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
