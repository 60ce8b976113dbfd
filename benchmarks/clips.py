"""What `--clips` costs: the whole `darknet-py detect` command on pedestrians.avi (341 frames, 1280x720, yolov4-tiny at
its 416) without clips, with `--clips 2` (people are in view throughout: one clip of the whole video, its lead-in
held in the ring first) and, for scale, writing the annotated video instead (the default). Each a fresh process, frames
per second over the whole command (start-up and model load included), medians of interleaved rounds (rotating which
runs first); and the lead-in ring's own figures on the video's annotated frames: a frame's JPEG size and encode time
(medians), so the memory a lead-in of SECONDS holds at the video's rate.

    python -m benchmarks.clips [--rounds 3] [--out benchmarks/results]
    python -m benchmarks.clips --picture docs/clips.jpg    # only the docs' picture: clips around a door's crossings
    python -m benchmarks.clips --page-picture docs/recent.jpg   # the --serve page listing them (headless Chromium)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

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


PICTURE_FLAGS = ["--track", "--classes", "person", "--line", "door=0.5,0,0.5,1", "--clips", "1", "--clip-on", "events",
                 "--no-save"]
WIDTH, THUMB = 1200, 220  # the picture's width; a clip's first frame, this wide above its bar


def picture(path: Path) -> None:
    """The docs' picture: pedestrians.avi counted at a door line with `--clips 1 --clip-on events`, on a time line —
    each crossing a tick, each clip a bar (its lead-in and tail lighter), each clip's first frame above it."""
    out = Path(tempfile.mkdtemp(prefix="clips-picture-"))
    try:
        subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(VIDEO), *PICTURE_FLAGS, "--output",
                        str(out), "--exist-ok"], check=True, cwd=REPO, env={**os.environ, "DARKNET_PY_ZOO": str(ZOO)},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        clips = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
        firsts = [cv2.VideoCapture(str(out / clip["file"])).read()[1] for clip in clips]
    finally:
        shutil.rmtree(out)
    duration = ring_figures()["frames"] / 25.0
    left, right = 60, WIDTH - 30
    x = lambda t: int(left + (right - left) * t / duration)  # noqa: E731 - a scale, used below only
    thumb_h = THUMB * 720 // 1280
    height = thumb_h + 190
    canvas = np.full((height, WIDTH, 3), 255, np.uint8)
    tick_y, bar_y, axis_y = thumb_h + 50, thumb_h + 70, thumb_h + 150
    font = cv2.FONT_HERSHEY_SIMPLEX
    free_x = 0
    for k, (clip, first) in enumerate(zip(clips, firsts)):
        start, end = clip["time"], clip["time"] + clip["seconds"]
        triggers = [e["time"] for e in events if start <= e["time"] <= end]
        cv2.rectangle(canvas, (x(start), bar_y), (x(end), bar_y + 24), (200, 230, 200), -1)
        cv2.rectangle(canvas, (x(min(triggers)), bar_y), (x(max(triggers)), bar_y + 24), (60, 160, 60), -1)
        cv2.putText(canvas, f"clip {k + 1}: {clip['frames']} frames", (x(start), bar_y + 44), font, 0.45, (40, 40, 40), 1,
                    cv2.LINE_AA)
        tx = max(min(x(start), WIDTH - THUMB), free_x)  # above its bar, right of the thumbnail before
        if tx + THUMB <= WIDTH:
            canvas[10:10 + thumb_h, tx:tx + THUMB] = cv2.resize(first, (THUMB, thumb_h), interpolation=cv2.INTER_AREA)
            cv2.line(canvas, (tx + THUMB // 2, 10 + thumb_h), (x(start), bar_y), (150, 150, 150), 1, cv2.LINE_AA)
            free_x = tx + THUMB + 10
    for event in events:
        cv2.line(canvas, (x(event["time"]), tick_y - 14), (x(event["time"]), tick_y + 6), (40, 40, 200), 2)
    cv2.putText(canvas, "door crossings", (4, tick_y - 2), font, 0.45, (40, 40, 200), 1, cv2.LINE_AA)
    legend = [((200, 230, 200), "a clip: from 1 s before its first crossing ..."),
              ((60, 160, 60), "... through its crossings (less than 1 s apart: one clip) ..."),
              ((200, 230, 200), "... to 1 s after its last; above it, its first frame")]
    for k, (colour, text) in enumerate(legend):
        cv2.rectangle(canvas, (10, 20 + 26 * k), (34, 36 + 26 * k), colour, -1)
        cv2.putText(canvas, text, (42, 34 + 26 * k), font, 0.45, (40, 40, 40), 1, cv2.LINE_AA)
    cv2.line(canvas, (left, axis_y), (right, axis_y), (0, 0, 0), 1)
    for second in range(0, int(duration) + 1, 2):
        cv2.line(canvas, (x(second), axis_y), (x(second), axis_y + 5), (0, 0, 0), 1)
        cv2.putText(canvas, f"{second} s", (x(second) - 8, axis_y + 22), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"{path}: {len(clips)} clips around {len(events)} crossings", file=sys.stderr)


def page_picture(path: Path) -> None:
    """The docs' picture of the --serve page once pedestrians.avi has ended, counted at the door line with clips
    around its crossings: the last frame, the counts, and the recent crossings and clips with their links."""
    from tests.chromium import Chromium, wait_for
    from tests.test_live import LiveRun

    out = Path(tempfile.mkdtemp(prefix="clips-page-"))
    run = LiveRun(str(VIDEO), *PICTURE_FLAGS, "--serve", "0", "--keep-serving", "--output", str(out), "--exist-ok")
    try:
        base = run.url("live view")
        with Chromium(out / "chromium") as browser:
            browser.goto(base)
            browser.evaluate(wait_for("document.getElementById('state').className === 'finished' && "
                                      "document.querySelectorAll('#recent tbody tr[data-type=clip]').length === 2",
                                      "true", timeout_s=600))
            png = browser.screenshot()
    finally:
        run.finish(interrupt=True)
        shutil.rmtree(out)
    if path.suffix.lower() in (".jpg", ".jpeg"):  # a screenshot of a video frame: a third of the PNG's bytes
        cv2.imwrite(str(path), cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    else:
        path.write_bytes(png)
    print(f"{path}: the page with its recent crossings and clips", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--picture", type=Path, help="draw the docs' picture there instead of measuring")
    parser.add_argument("--page-picture", type=Path, help="take the docs' picture of the --serve page there instead")
    args = parser.parse_args()
    if args.picture or args.page_picture:
        if args.picture:
            picture(args.picture)
        if args.page_picture:
            page_picture(args.page_picture)
        return
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
