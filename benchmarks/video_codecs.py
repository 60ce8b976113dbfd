"""What each annotated-video writer costs and gives: CPU and wall time per frame, bytes per frame, and the
picture a player gets back (PSNR against the frames written), side by side.

The first FRAMES frames of the shared video (1280x720) are decoded once, then written by every codec of
`darknet_py.media.video_writer` (h264 through PyAV, mp4v and mjpg through OpenCV) and by the H.264 writer at
other x264 settings (the previous default, veryfast at CRF 23, and ultrafast), in rounds that rotate the order;
figures are medians. CPU time is the process's (x264's own threads included). Each file is read back with
OpenCV (what a player decodes): it must hold every frame, and its PSNR is over every pixel of every frame, BGR.

The BGR → YUV 4:2:0 conversion H.264 needs is timed apart: swscale's (PyAV's `from_ndarray(format="bgr24")`,
the writer's previous path) and OpenCV's `COLOR_BGR2YUV_I420` (its path now), each against the exact BT.601
limited-range formula with every 2x2 block's chroma averaged, computed in float64.

    python -m benchmarks.video_codecs [--frames 100] [--rounds 3] [--out benchmarks/results]

Writes benchmarks/results/video_codecs.json and .md, one run per CPU model (the other CPUs' runs kept).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.cpu_paths import machine_report, save_per_cpu
from darknet_py.media.video_writer import CODECS, H264Writer, open_video_writer

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "pedestrians.avi"
FPS = 50.0
# (row, codec, x264 preset and CRF or None for the codec's writer as the CLI opens it)
WRITERS = [
    ("h264", "h264", None),
    ("h264 veryfast crf 23 (previous default)", "h264", ("veryfast", "23")),
    ("h264 ultrafast crf 26", "h264", ("ultrafast", "26")),
    ("mp4v", "mp4v", None),
    ("mjpg", "mjpg", None),
]


def read_frames(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def write(path: str, codec: str, x264: tuple[str, str] | None, frames: list[np.ndarray]) -> tuple[float, float]:
    """Write *frames*; (wall ms, CPU ms) per frame, release() included."""
    size = (frames[0].shape[1], frames[0].shape[0])
    start, cpu = time.perf_counter(), time.process_time()
    writer = open_video_writer(path, FPS, size, codec) if x264 is None else H264Writer(path, FPS, size, *x264)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return ((time.perf_counter() - start) * 1000 / len(frames), (time.process_time() - cpu) * 1000 / len(frames))


def psnr_read_back(path: str, frames: list[np.ndarray]) -> float:
    """PSNR (dB) of what OpenCV decodes from *path* against *frames*, over all of them; every frame must be there."""
    capture, squared, count = cv2.VideoCapture(path), 0.0, 0
    while True:
        ok, decoded = capture.read()
        if not ok:
            break
        assert count < len(frames), f"{path}: more frames read back than written"
        squared += float(np.square(decoded.astype(np.float64) - frames[count]).sum())
        count += 1
    assert count == len(frames), f"{path}: {count} of {len(frames)} frames read back"
    return 10 * np.log10(255.0 ** 2 / (squared / (count * frames[0].size)))


def exact_i420(frame: np.ndarray) -> list[np.ndarray]:
    """BT.601 limited range (Y 16-235, chroma 16-240), chroma the mean of each 2x2 block, float64."""
    b, g, r = (frame[..., i].astype(np.float64) for i in range(3))
    h, w = frame.shape[:2]

    def mean2(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(h // 2, 2, w // 2, 2).mean((1, 3))

    return [16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255,
            mean2(128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255),
            mean2(128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255)]


def planes(i420: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    rest = i420[h:].reshape(-1)
    return [i420[:h], rest[:h * w // 4].reshape(h // 2, w // 2), rest[h * w // 4:].reshape(h // 2, w // 2)]


CONVERSIONS = {
    "swscale (PyAV bgr24 → yuv420p)": lambda f: av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuv420p").to_ndarray(),
    "OpenCV COLOR_BGR2YUV_I420": lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420),
}


def conversions(frames: list[np.ndarray], rounds: int) -> dict:
    """CPU ms per frame and the largest / mean error (levels) of each plane against exact_i420."""
    h, w = frames[0].shape[:2]
    out = {}
    for name, convert in CONVERSIONS.items():
        times = []
        for _ in range(rounds):
            cpu = time.process_time()
            for frame in frames:
                convert(frame)
            times.append((time.process_time() - cpu) * 1000 / len(frames))
        worst, mean = [0.0] * 3, [0.0] * 3
        for frame in frames[:: max(1, len(frames) // 10)]:
            for k, (got, exact) in enumerate(zip(planes(convert(frame), h, w), exact_i420(frame))):
                error = np.abs(got.astype(np.float64) - exact)
                worst[k], mean[k] = max(worst[k], float(error.max())), max(mean[k], float(error.mean()))
        out[name] = {"cpu_ms_per_frame": round(statistics.median(times), 2),
                     "max_error": [round(e, 2) for e in worst], "mean_error": [round(e, 3) for e in mean]}
    return out


def markdown(run: dict) -> str:
    lines = [f"## {run['cpu']}", "",
             f"Measured {run['date']} on {run['cpu']} ({run['cores']} cores): {run['frames']} frames of {run['video']} "
             f"({run['size'][0]}x{run['size'][1]}), medians of {run['rounds']} rounds; PSNR of what OpenCV reads back, BGR.", "",
             "| writer | CPU ms/frame | wall ms/frame | KB/frame | PSNR dB | |", "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['cpu_ms_per_frame']:.2f} | {r['wall_ms_per_frame']:.2f} | {r['kb_per_frame']:.1f} | "
              f"{r['psnr_db']:.2f} | {r['about']} |" for name, r in run["writers"].items()]
    lines += ["", "BGR → YUV 4:2:0 for H.264, against the exact BT.601 limited-range formula (levels, planes Y, U, V):", "",
              "| conversion | CPU ms/frame | max error | mean error (worst frame) |", "|---|---|---|---|"]
    lines += [f"| {name} | {c['cpu_ms_per_frame']:.2f} | {', '.join(f'{e:.2f}' for e in c['max_error'])} | "
              f"{', '.join(f'{e:.3f}' for e in c['mean_error'])} |" for name, c in run["conversions"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    frames = read_frames(args.frames)
    report = machine_report(args.rounds)
    wall: dict[str, list[float]] = {name: [] for name, _, _ in WRITERS}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in WRITERS}
    kb, psnr = {}, {}
    for r in range(args.rounds):
        for name, codec, x264 in WRITERS[r % len(WRITERS):] + WRITERS[:r % len(WRITERS)]:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "out" + CODECS[codec].suffix)
                ms, cpu_ms = write(path, codec, x264, frames)
                wall[name].append(ms)
                cpu[name].append(cpu_ms)
                kb[name] = os.path.getsize(path) / len(frames) / 1024
                if name not in psnr:
                    psnr[name] = psnr_read_back(path, frames)
            print(f"round {r + 1}: {name}: {cpu_ms:.1f} CPU ms/frame", flush=True)

    preset = {name: x264 or ((H264Writer.PRESET, H264Writer.CRF) if codec == "h264" else None) for name, codec, x264 in WRITERS}
    report.update(video=VIDEO.name, frames=len(frames), size=[frames[0].shape[1], frames[0].shape[0]], writers={
        name: {"cpu_ms_per_frame": round(statistics.median(cpu[name]), 2), "wall_ms_per_frame": round(statistics.median(wall[name]), 2),
               "kb_per_frame": round(kb[name], 1), "psnr_db": round(psnr[name], 2),
               "about": CODECS[codec].describe + (f"; x264 {preset[name][0]}, CRF {preset[name][1]}" if preset[name] else "")}
        for name, codec, _ in WRITERS}, conversions=conversions(frames, args.rounds))
    path = save_per_cpu(Path(args.out), "video_codecs", report, markdown)
    print(markdown(report))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
