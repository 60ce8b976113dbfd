"""What drawing and encoding the annotated video in a thread of its own (darknet_py/media/background_writer.py) does
to the video loop's frames/s, against drawing and encoding in the detection loop as before. (Runs before 2026-12-05
afternoon drew in the loop in both cases: only encoding had moved.)

pedestrians.avi (341 frames, 1280x720), yolov4-tiny 416 (official weights), batch 1, `run_video` as
`darknet-py detect VIDEO` runs it, writing MJPG (.avi) and H.264 (.mp4), with the torch backend (fp32) and
onnxruntime int8 (a static-quantised export, calibrated on the shared photos); each with the encoder thread and
with the writer called inline (the same writer behind a pass-through). Rounds run every case once, in the same
order; figures are medians of frames/s over the rounds, with the OpenCV DNN loop (read → detect → draw → write
MJPG, benchmarks.run.opencv_video_loop) in the same rounds as the reference.

    python -m benchmarks.background_encoding [--rounds 2]

Writes benchmarks/results/background_encoding.json and .md, one run per CPU model (the other CPUs' runs kept).
About 5 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import darknet_py
from benchmarks.cpu_paths import machine_report, save_per_cpu
from benchmarks.run import REPO, SHARED, _exported, opencv_video_loop
from darknet_py.media import background_writer, sinks, video

VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
CODECS = {"mjpg": ".avi", "h264": ".mp4"}


class InlineWriter:
    """The writer called in the detection loop's thread, as before the encoder thread (BackgroundWriter's interface)."""

    def __init__(self, inner) -> None:
        self.inner, self.written = inner, 0

    def write(self, frame) -> None:
        self.inner.write(frame() if callable(frame) else frame)  # drawn here too, as before the encoder thread
        self.written += 1

    def release(self) -> None:
        self.inner.release()


def frames_per_s(model, codec: str, background: bool) -> float:
    sinks.BackgroundWriter = background_writer.BackgroundWriter if background else InlineWriter
    try:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            report = video.run_video(str(VIDEO), lambda images: model.detect(images),
                                     output=str(Path(folder) / f"out{CODECS[codec]}"), codec=codec)
            return report.frames / (time.perf_counter() - start)
    finally:
        sinks.BackgroundWriter = background_writer.BackgroundWriter


def opencv_frames_per_s() -> float:
    with tempfile.TemporaryDirectory() as folder:
        frames, seconds = opencv_video_loop(VIDEO, CFG, WEIGHTS, 416, Path(folder) / "cv.avi")
    return frames / seconds


def markdown(report: dict) -> str:
    lines = [f"## {report['cpu']}", "", f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores), "
             f"{report['torch_threads']} torch threads; {VIDEO.name}, yolov4-tiny 416, batch 1; frames/s, medians of "
             f"{report['rounds']} rounds. OpenCV DNN loop (MJPG): {report['opencv_loop_frames_per_s']} frames/s.", "",
             "| backend | codec | drawn and encoded inline | in the encoder thread | gain | encoder thread vs OpenCV loop |",
             "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['backend']} | {row['codec']} | {row['inline_frames_per_s']} | "
                     f"{row['background_frames_per_s']} | {row['gain']}× | {row['background_vs_opencv_loop']}× |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="darknet_py-bench-") as tmp:
        models = {"torch": darknet_py.load(CFG, WEIGHTS),
                  "onnxruntime-int8": darknet_py.load(_exported(CFG, WEIGHTS, 416, Path(tmp), True, ".onnx"))}
        fps: dict[tuple, list[float]] = {}
        for r in range(args.rounds):
            fps.setdefault(("opencv",), []).append(opencv_frames_per_s())
            for name, model in models.items():
                for codec in CODECS:
                    for background in (False, True):
                        fps.setdefault((name, codec, background), []).append(frames_per_s(model, codec, background))
            print(f"round {r + 1}: " + ", ".join(f"{k}: {v[-1]:.2f}" for k, v in fps.items()), flush=True)
    opencv = statistics.median(fps[("opencv",)])
    rows = []
    for name in models:
        for codec in CODECS:
            inline, background = (statistics.median(fps[(name, codec, b)]) for b in (False, True))
            rows.append({"backend": name, "codec": codec, "inline_frames_per_s": round(inline, 2),
                         "background_frames_per_s": round(background, 2), "gain": round(background / inline, 3),
                         "background_vs_opencv_loop": round(background / opencv, 3)})
    report = {**machine_report(args.rounds), "opencv_loop_frames_per_s": round(opencv, 2), "rows": rows}
    save_per_cpu(Path(args.out), "background_encoding", report, markdown)
    print(markdown(report))


if __name__ == "__main__":
    main()
