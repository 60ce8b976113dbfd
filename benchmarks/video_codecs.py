"""What each annotated-video codec costs: encoding ms per frame and bytes per frame, side by side.

The first FRAMES frames of the shared video (1280x720) are decoded once, then written with every codec of
`darknet_py.media.video_writer` (h264 through PyAV, mp4v and mjpg through OpenCV) in rounds that rotate the
order; figures are medians. Each file is read back with OpenCV to check it holds every frame.

    python -m benchmarks.video_codecs [--frames 100] [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from darknet_py.core.fileio import atomic_write
from darknet_py.media.video_writer import CODECS, open_video_writer

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "pedestrians.avi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()

    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < args.frames:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    size = (frames[0].shape[1], frames[0].shape[0])
    ms: dict[str, list[float]] = {name: [] for name in CODECS}
    sizes: dict[str, int] = {}
    names = list(CODECS)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "out" + CODECS[name].suffix)
                start = time.perf_counter()
                writer = open_video_writer(path, 50.0, size, name)
                for frame in frames:
                    writer.write(frame)
                writer.release()
                ms[name].append((time.perf_counter() - start) * 1000 / len(frames))
                sizes[name] = os.path.getsize(path)
                check = cv2.VideoCapture(path)
                count = 0
                while check.read()[0]:
                    count += 1
                assert count == len(frames), f"{name}: {count} of {len(frames)} frames read back"
            print(f"round {r + 1}: {name}: {ms[name][-1]:.1f} ms/frame", flush=True)

    result = {name: {"ms_per_frame": round(statistics.median(ms[name]), 2),
                     "kb_per_frame": round(sizes[name] / len(frames) / 1024, 1), "about": CODECS[name].describe}
              for name in CODECS}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "video_codecs.json", "w") as handle:
        json.dump({"video": VIDEO.name, "frames": len(frames), "size": size, "rounds": args.rounds,
                   "cpus": os.cpu_count(), "codecs": result}, handle, indent=1)
    lines = [f"Annotated-video writers, {len(frames)} frames of {VIDEO.name} ({size[0]}x{size[1]}), medians of "
             f"{args.rounds} rounds, {os.cpu_count()} cores:", "", "| codec | ms/frame | KB/frame | |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['ms_per_frame']:.1f} | {r['kb_per_frame']:.0f} | {r['about']} |" for name, r in result.items()]
    with atomic_write(out / "video_codecs.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
