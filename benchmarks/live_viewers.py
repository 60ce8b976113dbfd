"""Does a viewer of the live view slow detection? Frames/s and memory of the `detect --serve` loop, side by side:

- no viewer: the server is up, nobody watches (the loop publishes each frame: a reference swap);
- stalled viewer: a viewer (another process, as a browser would be) reads a few MJPEG frames, then stops
  reading for STALL seconds with its connection open, then reads on to the end;
- reading viewer: a viewer reads the MJPEG stream all along (JPEG encoding then takes CPU beside detection);
- no server: the same loop without the live view, for scale.

All four run the same frames of the shared video (yolov4-tiny 416, torch, CPU, no video written) through
`video.run_video` — the loop `darknet-py detect` runs — in rounds that rotate the order; figures are medians.
The stalled viewer's effect is measured where it acts: frames/s over the frames detected while it was
stalled, against the no-viewer run's frames/s over the same frames. Memory: the process's resident set,
sampled every 0.2 s; "growth during stall" is its highest value during the stall minus its value when the
stall began; "growth after frame 20" is its highest value after the 20th frame minus its value then.

    python -m benchmarks.live_viewers [--rounds 3] [--stall 10] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import threading
import time
from pathlib import Path

import torch

import darknet_py
from darknet_py.core.fileio import atomic_write
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.video import run_video

SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
MODES = ["no viewer", "stalled viewer", "reading viewer", "no server"]
WARM_FRAMES = 20


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _viewer(port: int, stall_after: int, stall_s: float, report) -> None:
    """A viewer process: reads MJPEG parts; after *stall_after* of them (0: never) stops reading for *stall_s*."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /mjpeg HTTP/1.1\r\nHost: bench\r\n\r\n")
    body = sock.makefile("rb")
    while body.readline().strip():  # status line and headers
        pass
    parts, stall = 0, None
    while True:
        line = body.readline()
        if not line:
            break
        if line.strip() != b"--mjpegstream":
            continue
        length = 0
        while (header := body.readline().strip()):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        body.read(length)
        parts += 1
        if parts == stall_after:
            start = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process on this machine
            time.sleep(stall_s)  # the point of this viewer: it stops reading, its connection stays open
            stall = (start, time.monotonic())
    report.send({"parts": parts, "stall": stall})


def _one_run(model, mode: str, stall_s: float, frames: int | None) -> dict:
    times: list[float] = []
    rss: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss.append((time.monotonic(), _rss_mb()))
            done.wait(0.2)

    def detect_batch(images):
        if frames is not None and len(times) >= frames:
            raise KeyboardInterrupt  # run_video stops cleanly: the same as Ctrl-C
        return model.detect(images)

    live = LiveView(LiveOptions(serve=0)) if mode != "no server" else None
    viewer = receiver = None
    if mode in ("stalled viewer", "reading viewer"):
        receiver, sender = multiprocessing.get_context("spawn").Pipe(duplex=False)
        port = int(live.urls["serve"].rsplit(":", 1)[1].rstrip("/"))
        viewer = multiprocessing.get_context("spawn").Process(
            target=_viewer, args=(port, 10 if mode == "stalled viewer" else 0, stall_s, sender), daemon=True)
        viewer.start()
        live.feed.wait_for_viewers(1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    report = run_video(str(VIDEO), detect_batch, None, on_frame=lambda i, d: times.append(time.monotonic()),
                       on_image=live.publish if live else None)
    elapsed = time.monotonic() - start
    if live:
        live.finish()
    seen = receiver.recv() if receiver is not None else None
    if viewer is not None:
        viewer.join(60)
    if live:
        live.close()
    done.set()
    sampler.join()
    warm = times[min(WARM_FRAMES, len(times)) - 1]  # the allocator's pools fill over the first frames
    settled = [v for t, v in rss if t >= warm] or [rss[-1][1]]
    result = {"frames": report.frames, "fps": report.frames / elapsed, "times": times,
              "rss_start_mb": rss[0][1], "rss_max_mb": max(v for _, v in rss), "rss_end_mb": rss[-1][1],
              "rss_growth_after_warmup_mb": max(settled) - settled[0]}
    if seen:
        result["viewer_parts"] = seen["parts"]
        if seen["stall"]:
            begin, end = seen["stall"]
            during = [v for t, v in rss if begin <= t <= end]
            before = [v for t, v in rss if t <= begin]
            result["stall"] = {"begin": begin - start, "end": end - start,
                               "frames": [i for i, t in enumerate(times) if begin <= t <= end],
                               "rss_growth_mb": (max(during) - before[-1]) if during and before else float("nan")}
    return result


def _fps_over(times: list[float], first: int, last: int) -> float:
    return (last - first) / (times[last] - times[first]) if last > first else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stall", type=float, default=10.0, help="seconds the stalled viewer stops reading")
    parser.add_argument("--frames", type=int, help="frames per run (default: the whole video, 341)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    model = darknet_py.load(str(CFG), str(WEIGHTS))
    model.detect(str(SHARED / "data" / "images" / "dog.jpg"))  # warm-up
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for r in range(args.rounds):
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            result = _one_run(model, mode, args.stall, args.frames)
            runs[mode].append(result)
            extra = f", stalled {result['stall']['end'] - result['stall']['begin']:.1f} s over {len(result['stall']['frames'])} frames" if "stall" in result else ""
            print(f"round {r + 1}: {mode}: {result['frames']} frames, {result['fps']:.2f} frames/s, "
                  f"RSS {result['rss_start_mb']:.0f}→{result['rss_max_mb']:.0f} MB{extra}", flush=True)

    # the stall's effect: frames/s over the frames detected while the viewer was stalled, against the
    # no-viewer run of the same round over the same frames
    ratios, growth = [], []
    for stalled, quiet in zip(runs["stalled viewer"], runs["no viewer"]):
        window = stalled.get("stall", {}).get("frames", [])
        if len(window) >= 2 and window[-1] < len(quiet["times"]):
            ratios.append(_fps_over(stalled["times"], window[0], window[-1]) / _fps_over(quiet["times"], window[0], window[-1]))
            growth.append(stalled["stall"]["rss_growth_mb"])
    summary = {mode: {"fps_median": statistics.median(r["fps"] for r in results),
                      "rss_max_mb_median": statistics.median(r["rss_max_mb"] for r in results),
                      "rss_growth_mb_median": statistics.median(r["rss_growth_after_warmup_mb"] for r in results)}
               for mode, results in runs.items()}
    result = {
        "video": VIDEO.name, "model": "yolov4-tiny:416 (torch, CPU)", "rounds": args.rounds, "stall_s": args.stall,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform()},
        "summary": summary,
        "stall_fps_ratio_per_round": ratios,
        "stall_fps_ratio_median": statistics.median(ratios) if ratios else None,
        "stall_rss_growth_mb_per_round": growth,
        "viewer_parts": {mode: [r.get("viewer_parts") for r in runs[mode]] for mode in ("stalled viewer", "reading viewer")},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "live_viewers.json", "w") as handle:
        json.dump(result, handle, indent=1)
    lines = [f"Live view, {VIDEO.name}, yolov4-tiny 416 (torch, CPU, {os.cpu_count()} cores), medians of {args.rounds} rounds:",
             "", f"| mode | frames/s | RSS max (MB) | RSS growth after frame {WARM_FRAMES} (MB) |", "|---|---|---|---|"]
    for mode, s in summary.items():
        lines.append(f"| {mode} | {s['fps_median']:.2f} | {s['rss_max_mb_median']:.0f} | {s['rss_growth_mb_median']:.1f} |")
    if ratios:
        lines += ["", f"Stalled viewer ({args.stall:g} s without reading): frames/s over the frames detected during the stall "
                  f"= {statistics.median(ratios):.3f} × the no-viewer run's over the same frames "
                  f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)}); RSS growth during the stall: "
                  f"{', '.join(f'{g:.1f}' for g in growth)} MB."]
    with atomic_write(out / "live_viewers.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
