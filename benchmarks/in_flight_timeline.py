"""What each thread of the video loop does, frame after frame, with one detection at a time and with two at once:
the picture on docs/performance.md ("Two detections at once").

pedestrians.avi, yolov4-tiny 416 int8 (OpenVINO IR, calibrated on the shared photos), annotated MJPG written,
`run_video` as `darknet-py detect` runs it. Each stage is timed where it runs (wrappers around the reader's
`read()`, the detect call, the loop's hand-over to the sinks, and the encoder thread's drawing and encoding, two
spans a frame on one row), then a window of WINDOW_MS in the middle of the run is drawn as one row per thread.

    python -m benchmarks.in_flight_timeline

Writes benchmarks/results/in_flight_timeline.json (every span, and frames/s of each run) and docs/in-flight.png.
Under a minute on 2 cores.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

import darknet_py
from benchmarks.background_encoding import CFG, VIDEO, WEIGHTS
from benchmarks.cpu_paths import machine_report
from benchmarks.run import REPO, _exported
from darknet_py.core.fileio import atomic_path, atomic_write
from darknet_py.media import background_writer, video, video_source
from darknet_py.media.run import plan_calls
from darknet_py.pipeline.detections import Detections

WINDOW_MS = 300  # the stretch of the run drawn
ROWS = ("decode", "detect, call 1", "detect, call 2", "results to the sinks", "draw + encode")
COLOURS = {"decode": (160, 160, 160), "detect": (40, 140, 30), "results to the sinks": (200, 120, 30),
           "draw + encode": (30, 30, 200)}


class Spans:
    """(row, start s, end s) of every timed stage, from any thread."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()
        self._workers: dict[int, str] = {}

    def timed(self, row: str, call):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                with self._lock:
                    name = row
                    if row == "detect":  # one row per worker thread, in the order they first ran
                        ident = threading.get_ident()
                        name = self._workers.setdefault(ident, f"detect, call {len(self._workers) + 1}")
                    self.spans.append((name, start, time.perf_counter()))
        return wrapper


def timed_run(model, calls: int) -> tuple[list[tuple[str, float, float]], float]:
    """One run of the video with *calls* detections at once; its spans and frames/s."""
    spans = Spans()
    detector, calls = plan_calls(model, "video", str(VIDEO), calls)
    opened, write_all, writer_init = video_source.open_capture, video.write_all, background_writer.BackgroundWriter.__init__
    draw = Detections.draw

    class Capture:  # the reader thread's reads, timed
        def __init__(self, capture) -> None:
            self.capture = capture
            self.read = spans.timed("decode", capture.read)

        def __getattr__(self, name):
            return getattr(self.capture, name)

    class Inner:  # the encoder thread's encoding of each frame
        def __init__(self, inner) -> None:
            self.release = inner.release
            self.write = spans.timed("draw + encode", inner.write)

    def writer(self, inner, *args) -> None:
        writer_init(self, Inner(inner), *args)

    video_source.open_capture = lambda source: Capture(opened(source))
    video.write_all = spans.timed("results to the sinks", write_all)
    background_writer.BackgroundWriter.__init__ = writer
    Detections.draw = spans.timed("draw + encode", draw)  # only the video sink draws here: in the encoder thread
    try:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            report = video.run_video(str(VIDEO), spans.timed("detect", lambda images: detector.detect(images)),
                                     output=str(Path(folder) / "out.avi"), codec="mjpg", in_flight=calls)
            rate = report.frames / (time.perf_counter() - start)
    finally:
        video_source.open_capture, video.write_all = opened, write_all
        background_writer.BackgroundWriter.__init__ = writer_init
        Detections.draw = draw
    return [(row, s - start, e - start) for row, s, e in spans.spans], rate


def chart(runs: dict, width: int = 900, row_px: int = 22) -> np.ndarray:
    """One panel per run: a row per thread, the spans of WINDOW_MS in the middle of the run."""
    left, top, gap = 170, 30, 46
    panel = len(ROWS) * row_px
    height = top + len(runs) * (panel + gap) - gap + 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    black, scale = (0, 0, 0), (width - left - 20) / WINDOW_MS
    for index, (title, run) in enumerate(runs.items()):
        y0 = top + index * (panel + gap)
        ends = [e for _, _, e in run["spans"]]
        middle = (max(ends) / 2) * 1000
        window = (middle - WINDOW_MS / 2, middle + WINDOW_MS / 2)
        cv2.putText(canvas, f"{title}: {run['frames_per_s']} frames/s", (10, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    black, 1, cv2.LINE_AA)
        for r, row in enumerate(ROWS):
            y = y0 + r * row_px
            cv2.putText(canvas, row, (10, y + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, black, 1, cv2.LINE_AA)
            cv2.line(canvas, (left, y + row_px - 2), (width - 20, y + row_px - 2), (225, 225, 225), 1)
        for row, start, end in run["spans"]:
            if row not in ROWS:
                continue
            a, b = (max(window[0], start * 1000), min(window[1], end * 1000))
            if b <= a:
                continue
            y = y0 + ROWS.index(row) * row_px
            colour = COLOURS["detect" if row.startswith("detect") else row]
            x0, x1 = int(left + (a - window[0]) * scale), int(left + (b - window[0]) * scale)
            cv2.rectangle(canvas, (x0, y + 3), (max(x1 - 2, x0), y + row_px - 5), colour, -1)  # a gap ends each call
    for ms in range(0, WINDOW_MS + 1, 50):
        x = int(left + ms * scale)
        cv2.putText(canvas, f"{ms} ms", (min(x - 15, width - 55), height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, black, 1,
                    cv2.LINE_AA)
    return canvas


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="darknet_py-bench-") as tmp:
        model = darknet_py.load(_exported(CFG, WEIGHTS, 416, Path(tmp), True, ".xml"))
        timed_run(model, 1)  # warm-up: the first run pays for caches and the OpenVINO plugin
        runs = {}
        for calls, title in ((1, "one detection at a time (--in-flight 1)"), (2, "two at once (--in-flight 2)")):
            spans, rate = timed_run(model, calls)
            runs[title] = {"frames_per_s": round(rate, 2), "spans": [(row, round(s, 6), round(e, 6)) for row, s, e in spans]}
    report = {**machine_report(1), "model": "yolov4-tiny 416 int8 (OpenVINO IR)", "video": VIDEO.name,
              "window_ms": WINDOW_MS, "runs": runs}
    out = REPO / "benchmarks" / "results" / "in_flight_timeline.json"
    with atomic_write(out, "w") as handle:
        json.dump(report, handle)
    with atomic_path(REPO / "docs" / "in-flight.png", ".png") as tmp_png:
        cv2.imwrite(tmp_png, chart(runs))
    print({title: run["frames_per_s"] for title, run in runs.items()})


if __name__ == "__main__":
    main()
