"""Cameras that stay up, measured: lag behind a camera faster than the model, reconnect time, many cameras.

Everything runs `darknet-py detect` as a user does (a subprocess, `--serve` for /health) against a real RTSP
server (GStreamer's: tests/rtsp_server.py, the camera the tests use), sending car_traffic_small.mp4 at 640×360,
25 frames/s, H.264, looped.

- **lag**: yolov4-csp at 512 (synthetic weights: weights_tools.synth), a model several times slower than the
  camera. /health's `lag_s` (how long before a frame's results were written the camera sent it, by the stream's
  clock) sampled every 0.25 s for DURATION seconds, with the default newest frame and with --keep-all-frames.
  With the newest frame, each frame's lag is its own detection time plus its age when the loop took it, and
  that age must stay under one frame interval + one frame's decode (timed here); the frames' detection times
  come from the run's `frames-detected N` events. With every frame kept the lag grows for as long as the
  buffers between camera and model (ours, FFmpeg's, the sockets', the server's) hold frames.
- **reconnect**: yolov4-tiny 416; the server is killed, stays away for each outage, and starts again on the
  same port; from its ready line to the run's `source-reconnected N` event and to its next detected frame
  (darknet_py.core.events). The backoff (1 s doubling to 30 s) sets most of it: a try comes at 1, 3, 7, 15 s.
- **four cameras**: yolov4-tiny 416 on four connections to the server: one `detect` with four sources (one
  model, batches of the frames ready) against four `detect` processes with one each (four models), as they
  start by default and with OMP_NUM_THREADS=1 (four processes' default threads oversubscribe the cores); frames
  detected per second over WINDOW seconds, summed, and each source's lag.

    python -m benchmarks.cameras [--duration 120] [--window 60] [--out benchmarks/results]

Writes cameras.json (the figures, then every /health sample under `samples`), cameras.md and cameras.png (the lag over time), naming the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np

from darknet_py.core.events import EVENTS
from darknet_py.core.fileio import atomic_path, atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from tests.event_pipe import EventPipe
from tests.rtsp_camera import RtspCamera

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEO = SHARED / "data" / "video" / "car_traffic_small.mp4"
ZOO = SHARED / "zoo"
SIZE, FPS = "640x360", 25
POLL_S = 0.25
WARM_FRAMES = 3  # sampling starts after these: the first forward passes are slower (allocation, oneDNN's kernels)
LIMIT_S = 300  # a hang guard for any one wait: the runs answer within seconds


class Detect:
    """`darknet-py detect` in a subprocess with --serve; its stderr lines kept; its /health read on demand."""

    def __init__(self, sources: list[str], model: list[str], *extra: str, env: dict | None = None) -> None:
        command = [sys.executable, "-m", "darknet_py.cli", "detect", *sources, *model, "--serve", "0", "--no-save",
                   *extra]
        self.process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.page = self._wait_line(r"live view: (http://127\.0\.0\.1:\d+/)").group(1)

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_line(self, pattern: str) -> re.Match:
        while True:
            line = self.lines.get(timeout=LIMIT_S)
            if line is None:
                raise RuntimeError("detect ended:\n" + "".join(self.seen))
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def health(self) -> list[dict]:
        with urllib.request.urlopen(self.page + "health", timeout=LIMIT_S) as response:
            return json.loads(response.read())["sources"]

    def wait_frames(self, count: int) -> list[dict]:
        """Poll /health until every source has detected *count* frames."""
        end = time.monotonic() + LIMIT_S
        while True:
            sources = self.health()
            if all(source["frames"] >= count for source in sources):
                return sources
            if time.monotonic() > end or self.process.poll() is not None:
                raise RuntimeError(f"no {count} frames: {sources}\n" + "".join(self.seen))
            time.sleep(POLL_S)

    def stop(self) -> dict:
        """Ctrl-C; the exit code and how long the stop took."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=LIMIT_S)
        finally:
            self.process.kill()
        took = time.monotonic() - start
        while (line := self.lines.get(timeout=LIMIT_S)) is not None:
            self.seen.append(line)
        return {"exit": code, "stop_s": round(took, 3)}


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quantiles(values: list[float]) -> dict:
    ordered = sorted(values)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731 - nearest rank
    return {"p50": round(statistics.median(ordered), 3), "p95": round(pick(0.95), 3), "max": round(ordered[-1], 3),
            "n": len(ordered)}


def decode_ms() -> float:
    """One 640×360 H.264 frame's decode on this CPU (PyAV, as the reader decodes), median ms over the file."""
    times = []
    with av.open(str(VIDEO)) as container:
        stream = container.streams.video[0]
        frames = container.decode(stream)
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            frame.to_ndarray(format="bgr24")
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


class StampedEvents:
    """The run's events (darknet_py.core.events) with the moment each was read: a FIFO and a thread reading it."""

    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="dp-cameras-events-")
        self.path = Path(self.folder.name) / "events"
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDWR)  # read-write: reads wait for lines, never see an end
        self.stamps: dict[str, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        partial = b""
        while True:
            try:
                partial += os.read(self.fd, 65536)
            except OSError:
                return
            now = time.monotonic()
            *lines, partial = partial.split(b"\n")
            for line in lines:
                self.stamps.setdefault(line.decode(), now)

    def env(self) -> dict[str, str]:
        return {EVENTS: str(self.path)}

    def close(self) -> None:
        os.close(self.fd)
        self.folder.cleanup()


def sample_lag(run: Detect, events: StampedEvents, duration: float) -> tuple[dict, list[dict]]:
    """/health every POLL_S for *duration* s from the WARM_FRAMES-th frame: the lag, frames and frames dropped.

    Each sample's lag is its last frame's (N); the run's `frames-detected N` events give that frame's own
    detection time (from the frame before's event to its own: the loop picks the newest frame, detects it, writes
    it, takes the next). With the newest frame, a frame's lag less its own detection time is how old the frame
    was when the loop took it: at most one frame interval + one decode, if the reader keeps up with the camera.
    """
    (first,) = run.wait_frames(WARM_FRAMES)
    start = time.monotonic()
    samples = []
    while (elapsed := time.monotonic() - start) < duration:
        (source,) = run.health()
        samples.append({"t": round(elapsed, 3), "lag_s": source["lag_s"], "frames": source["frames"],
                        "dropped_frames": source["dropped_frames"]})
        time.sleep(POLL_S)
    stopped = run.stop()
    frames = samples[-1]["frames"] - first["frames"]
    rate = frames / samples[-1]["t"]
    lags = [s["lag_s"] for s in samples if s["lag_s"] is not None]
    third = len(lags) // 3
    stamp = events.stamps.get
    detect_s = {n: stamp(f"frames-detected {n}") - stamp(f"frames-detected {n - 1}")
                for n in {s["frames"] for s in samples} if stamp(f"frames-detected {n}") and stamp(f"frames-detected {n - 1}")}
    taken_at_age = [s["lag_s"] - detect_s[s["frames"]] for s in samples if s["frames"] in detect_s and s["lag_s"] is not None]
    return {"frames_per_s": round(rate, 3), "model_ms": round(1000 / rate, 1), "lag": quantiles(lags),
            "lag_first_third": quantiles(lags[:third]), "lag_last_third": quantiles(lags[-third:]),
            "frame_detect_s": quantiles(list(detect_s.values())), "age_when_taken_s": quantiles(taken_at_age),
            "dropped_frames": samples[-1]["dropped_frames"], **stopped}, samples


def lag_benchmark(url: str, duration: float, work: Path) -> dict:
    from weights_tools.synth import write_synthetic

    weights = work / "yolov4-csp.weights"
    write_synthetic(ZOO / "cfg" / "yolov4-csp.cfg", weights)
    model = ["--cfg", str(ZOO / "cfg" / "yolov4-csp.cfg"), "--weights", str(weights), "--size", "512"]
    report = {"model": "yolov4-csp 512 (synthetic weights)", "decode_ms": decode_ms(), "samples": {}}
    for mode, extra in (("newest frame", []), ("keep all frames", ["--keep-all-frames"])):
        print(f"lag: {mode}, {duration:g} s", file=sys.stderr, flush=True)
        events = StampedEvents()
        try:
            report[mode], report["samples"][mode] = sample_lag(Detect([url], model, *extra, env=events.env()), events,
                                                               duration)
        finally:
            events.close()
    # a frame's lag, less its own detection time, is its age when the loop took it: bounded by one frame interval
    # and one decode when the newest frame is taken
    report["bound_s"] = round((1000 / FPS + report["decode_ms"]) / 1000, 3)
    report["newest_frame_within_bound"] = report["newest frame"]["age_when_taken_s"]["p95"] <= report["bound_s"]
    return report


def reconnect_benchmark(camera: RtspCamera, outages: list[float]) -> dict:
    model = ["--cfg", str(ZOO / "cfg" / "yolov4-tiny.cfg"), "--weights", str(ZOO / "weights" / "yolov4-tiny.weights")]
    trials = []
    with EventPipe() as events:
        run = Detect([camera.url], model, env=events.env())
        run.wait_frames(5)
        for number, outage in enumerate(outages, 1):
            print(f"reconnect: outage {outage:g} s", file=sys.stderr, flush=True)
            camera.kill()
            killed = time.monotonic()
            events.wait_for(f"source-dropped {number}", run.process)
            noticed = time.monotonic()
            threading.Event().wait(max(outage - (noticed - killed), 0))  # the outage's length: the scenario itself
            camera.start()
            back = time.monotonic()
            events.wait_for(f"source-reconnected {number}", run.process)
            reconnected = time.monotonic()
            (source,) = run.health()
            events.wait_for(f"frames-detected {source['frames'] + 1}", run.process)
            detected = time.monotonic()
            line = run._wait_line(r"reconnected after ([\d.]+) s \((\d+) tr")
            trials.append({"outage_s": round(back - killed, 3), "drop_noticed_s": round(noticed - killed, 3),
                           "back_to_reconnected_s": round(reconnected - back, 3),
                           "back_to_first_detection_s": round(detected - back, 3),
                           "tries": int(line.group(2)), "reported_s": float(line.group(1))})
        report = run.stop()
    return {"model": "yolov4-tiny 416", "trials": trials, **report}


MODES = ("one process, four sources", "four processes", "four processes, one thread each")


def four_cameras(url: str, window: float) -> dict:
    model = ["--cfg", str(ZOO / "cfg" / "yolov4-tiny.cfg"), "--weights", str(ZOO / "weights" / "yolov4-tiny.weights")]
    report = {"model": "yolov4-tiny 416", "window_s": window}
    for mode in MODES:
        print(f"four cameras: {mode}, {window:g} s", file=sys.stderr, flush=True)
        one_thread = {"OMP_NUM_THREADS": "1"} if "one thread" in mode else {}
        runs = ([Detect([url] * 4, model)] if mode.startswith("one") else
                [Detect([url], model, env=one_thread) for _ in range(4)])
        try:
            for run in runs:
                run.wait_frames(5)
            before = [run.health() for run in runs]
            start = time.monotonic()
            lags: list[float] = []
            while time.monotonic() - start < window:
                lags += [s["lag_s"] for run in runs for s in run.health() if s["lag_s"] is not None]
                time.sleep(POLL_S)
            after = [run.health() for run in runs]
            took = time.monotonic() - start
            rss = sum(rss_mb(run.process.pid) for run in runs)
        finally:
            stops = [run.stop() for run in runs]
        per_source = [(a["frames"] - b["frames"]) / took for ran, done in zip(before, after) for b, a in zip(ran, done)]
        report[mode] = {"frames_per_s": round(sum(per_source), 2),
                        "per_source_frames_per_s": [round(rate, 2) for rate in per_source], "lag": quantiles(lags),
                        "memory_mb": round(rss),
                        "exits": [stop["exit"] for stop in stops], "stop_s": max(stop["stop_s"] for stop in stops)}
    report["one_over_four"] = round(report[MODES[0]]["frames_per_s"] / report[MODES[1]]["frames_per_s"], 3)
    report["one_over_four_one_thread"] = round(report[MODES[0]]["frames_per_s"] / report[MODES[2]]["frames_per_s"], 3)
    return report


def chart(report: dict, width: int = 880, height: int = 360) -> np.ndarray:
    """The lag over time, newest frame against every frame kept: a line each, seconds on both axes."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 40, 50
    series = {mode: [(s["t"], s["lag_s"]) for s in report["samples"][mode] if s["lag_s"] is not None]
              for mode in ("newest frame", "keep all frames")}
    t_max = max(t for points in series.values() for t, _ in points)
    y_max = max(lag for points in series.values() for _, lag in points) * 1.05
    to_px = lambda t, y: (int(left + t / t_max * (width - left - right)),  # noqa: E731
                          int(height - bottom - y / y_max * (height - top - bottom)))
    black, grey = (0, 0, 0), (200, 200, 200)
    step = 10 if y_max > 30 else 5 if y_max > 10 else 1
    for y in np.arange(0, y_max, step):
        cv2.line(canvas, to_px(0, y), to_px(t_max, y), grey, 1)
        cv2.putText(canvas, f"{y:g}", (to_px(0, y)[0] - 40, to_px(0, y)[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black)
    for t in range(0, int(t_max) + 1, 20 if t_max > 60 else 5):
        cv2.putText(canvas, f"{t}", (to_px(t, 0)[0] - 8, height - bottom + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black)
    cv2.line(canvas, to_px(0, 0), to_px(t_max, 0), black, 1)
    cv2.line(canvas, to_px(0, 0), to_px(0, y_max), black, 1)
    colours = {"newest frame": (40, 140, 30), "keep all frames": (30, 30, 200)}
    for mode, points in series.items():
        cv2.polylines(canvas, [np.array([to_px(t, y) for t, y in points], np.int32)], False, colours[mode], 2,
                      cv2.LINE_AA)
    cv2.putText(canvas, f"lag behind the camera, s ({report['lag']['model']}, 25 frames/s RTSP, {report['cpu']})",
                (left, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(canvas, "seconds of the run", (width // 2 - 60, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black)
    for row, (mode, colour) in enumerate(colours.items()):
        at = (left + 20, top + 25 + 22 * row)
        cv2.line(canvas, at, (at[0] + 30, at[1]), colour, 3)
        label = "default: the newest frame" if mode == "newest frame" else "--keep-all-frames"
        cv2.putText(canvas, label, (at[0] + 40, at[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, black, 1, cv2.LINE_AA)
    return canvas


def markdown(report: dict) -> str:
    lag, reconnect, four = report["lag"], report["reconnect"], report["four_cameras"]
    lines = [f"# Cameras ({report['date']}, {report['cpu']}, {report['cpus']} CPUs)", "",
             f"RTSP camera: GStreamer's server, {SIZE} H.264 at {FPS} frames/s. `python -m benchmarks.cameras`.", "",
             f"## Lag: {lag['model']}, {report['duration_s']:g} s each", "",
             "| | frames/s | lag p50 s | lag p95 s | lag max s | first third p50 | last third p50 | frames dropped |",
             "|---|---|---|---|---|---|---|---|"]
    for mode in ("newest frame", "keep all frames"):
        row = lag[mode]
        lines.append(f"| {mode} | {row['frames_per_s']} | {row['lag']['p50']} | {row['lag']['p95']} | "
                     f"{row['lag']['max']} | {row['lag_first_third']['p50']} | {row['lag_last_third']['p50']} | "
                     f"{row['dropped_frames']} |")
    lines += ["", "Each sampled frame's lag less its own detection time (from the frame before's `frames-detected` event "
              "to its own): its age when the loop took it.", "",
              "| | frame's detection s, p50 / p95 | age when taken s, p50 / p95 / max |", "|---|---|---|"]
    for mode in ("newest frame", "keep all frames"):
        row = lag[mode]
        lines.append(f"| {mode} | {row['frame_detect_s']['p50']} / {row['frame_detect_s']['p95']} | "
                     f"{row['age_when_taken_s']['p50']} / {row['age_when_taken_s']['p95']} / "
                     f"{row['age_when_taken_s']['max']} |")
    lines += ["", f"Bound on the age when taken, newest frame: frame interval {1000 / FPS:g} ms + decode "
              f"{lag['decode_ms']} ms = {lag['bound_s']} s; p95 within it: {lag['newest_frame_within_bound']}.", "",
              f"## Reconnect ({reconnect['model']})", "",
              "| outage s | drop noticed s | server back → reconnected s | → first detection s | tries |",
              "|---|---|---|---|---|"]
    for trial in reconnect["trials"]:
        lines.append(f"| {trial['outage_s']} | {trial['drop_noticed_s']} | {trial['back_to_reconnected_s']} | "
                     f"{trial['back_to_first_detection_s']} | {trial['tries']} |")
    lines += ["", f"## Four cameras ({four['model']}, {four['window_s']:g} s)", "",
              "| | frames/s, all four | per source | lag p50 s | lag p95 s | memory MB | Ctrl-C exit, stop s |",
              "|---|---|---|---|---|---|---|"]
    for mode in MODES:
        row = four[mode]
        lines.append(f"| {mode} | {row['frames_per_s']} | {', '.join(map(str, row['per_source_frames_per_s']))} | "
                     f"{row['lag']['p50']} | {row['lag']['p95']} | {row['memory_mb']} | "
                     f"{', '.join(map(str, row['exits']))}; {row['stop_s']} |")
    lines += ["", f"One process over four: {four['one_over_four']}× (over four of one thread each: "
              f"{four['one_over_four_one_thread']}×).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of lag sampled per mode")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the four-camera comparison")
    parser.add_argument("--outages", default="2,5,10", help="the reconnect trials' outages, seconds")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpus": os.cpu_count(),
              "camera": {"video": VIDEO.name, "size": SIZE, "fps": FPS}, "duration_s": args.duration}
    with tempfile.TemporaryDirectory(prefix="dp-cameras-") as work, RtspCamera(VIDEO, SIZE, FPS) as camera:
        report["lag"] = lag_benchmark(camera.url, args.duration, Path(work))
        report["samples"] = report["lag"].pop("samples")  # apart: the docs' figures are checked against the rest
        report["four_cameras"] = four_cameras(camera.url, args.window)
        report["reconnect"] = reconnect_benchmark(camera, [float(v) for v in args.outages.split(",")])
    report["load_average"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    with atomic_write(out / "cameras.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "cameras.md", "w") as handle:
        handle.write(markdown(report))
    with atomic_path(out / "cameras.png", ".png") as tmp_png:
        cv2.imwrite(tmp_png, chart(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
