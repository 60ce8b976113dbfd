"""Tracking and counting measured: each tracker on generated sequences with known trajectories, scored by
independent scorers, and what tracking costs.

1. Sequences (benchmarks/tracking_sequences.py): crossing, enter_leave, pan, crowd, rendered from two sets of
   seeds: TUNE seeds to choose our defaults, TEST seeds to report them (so the figures are not the ones the
   defaults were fitted to).
2. Detections: official yolov4-tiny at 416 on every frame, person class only (the ground truth's), darknet's
   default threshold 0.25 (what `detect` gives a tracker); made once, kept in --work.
3. Trackers on those detections: `trackers` 2.6.1's ByteTrack, OC-SORT and SORT with the library's defaults
   ("stock") and with ours ("tuned": darknet_py.pipeline.tracking.adapters), and a naive floor that links a box
   to the previous frame's box it overlaps most (IoU >= 0.3), with no motion model and no memory.
4. Scores: py-motmetrics (MOTA, IDF1, ID switches, ...) and TrackEval (HOTA, and its own MOTA/IDF1 as a cross-
   check), on the same data: ground truth rows with consider=0 (a person less than 25% visible) are removed,
   with the tracker boxes they match at IoU >= 0.5 (MOTChallenge's treatment of such rows). Counts: our
   LineCounter/ZoneCounter on the tracks against the counts the generator derived from the true paths.
5. Tuning: a grid over each tracker's settings on the TUNE sequences, ranked by the number of sequences whose
   counts are all exact, then mean IDF1, then fewer ID switches.
6. Cost: TrackingStage (tracker + two lines + two zones + trails) ms per frame at 50 objects, split into the
   library's update and ours; `darknet-py detect VIDEO --no-save` frames/s with and without `--track` on the
   first frames of the shared pedestrians.avi, rounds interleaved, medians.

Writes benchmarks/results/tracking.json and tracking.md.

    python -m benchmarks.tracking [--tune-seeds 1] [--test-seeds 2 3] [--skip-tuning] [--skip-cost]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from benchmarks import tracking_sequences as generator
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_model
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.tracking import (
    DEFAULT_TRACKER,
    LineCounter,
    ZoneCounter,
    counts_of,
    make_tracker,
    parse_line,
    parse_zone,
)
from darknet_py.pipeline.tracking.adapters.bytetrack import ByteTrack
from darknet_py.pipeline.tracking.adapters.ocsort import OcSort
from darknet_py.pipeline.tracking.adapters.sort import Sort

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL = (SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights")
VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
TRACKERS = {"bytetrack": ByteTrack, "ocsort": OcSort, "sort": Sort}
MATCH_IOU = 0.5  # a tracker box is a hit on a ground-truth box at IoU >= 0.5 (MOTChallenge's)
GRIDS = {  # the values tried for each setting when tuning (the library's keywords; iou and state by name)
    "bytetrack": {"track_activation_threshold": [0.25, 0.35, 0.5, 0.6, 0.7], "high_conf_det_threshold": [0.3, 0.4, 0.5, 0.6],
                  "minimum_consecutive_frames": [1, 2, 3], "lost_track_buffer": [15, 30, 60, 90],
                  "minimum_iou_threshold": [-0.3, -0.1, 0.05, 0.1, 0.2, 0.3], "iou": ["iou", "giou", "diou", "biou"],
                  "state": ["xyxy", "xcycsr"]},
    "ocsort": {"high_conf_det_threshold": [0.25, 0.35, 0.45, 0.6], "minimum_consecutive_frames": [1, 2, 3],
               "lost_track_buffer": [15, 30, 60, 90], "minimum_iou_threshold": [-0.3, -0.1, 0.1, 0.2, 0.3],
               "iou": ["iou", "giou", "diou", "biou"], "direction_consistency_weight": [0.0, 0.2, 0.5], "delta_t": [1, 3, 5],
               "state": ["xyxy", "xcycsr"]},
    "sort": {"track_activation_threshold": [0.25, 0.4, 0.5, 0.6], "minimum_consecutive_frames": [1, 2, 3],
             "lost_track_buffer": [15, 30, 60, 90], "minimum_iou_threshold": [-0.3, -0.1, 0.1, 0.2, 0.3],
             "iou": ["iou", "giou", "diou", "biou"], "state": ["xyxy", "xcycsr"]},
}
JOINT = ("state", "iou", "minimum_iou_threshold")
LIBRARY_DEFAULTS = {  # trackers 2.6.1's own defaults (its classes' signatures), where the search starts
    "bytetrack": {"track_activation_threshold": 0.7, "high_conf_det_threshold": 0.6, "minimum_consecutive_frames": 2,
                  "lost_track_buffer": 30, "minimum_iou_threshold": 0.1, "iou": "iou", "state": "xyxy"},
    "ocsort": {"high_conf_det_threshold": 0.6, "minimum_consecutive_frames": 3, "lost_track_buffer": 30,
               "minimum_iou_threshold": 0.3, "iou": "iou", "direction_consistency_weight": 0.2, "delta_t": 3,
               "state": "xcycsr"},
    "sort": {"track_activation_threshold": 0.25, "minimum_consecutive_frames": 3, "lost_track_buffer": 30,
             "minimum_iou_threshold": 0.3, "iou": "iou", "state": "xyxy"},
}


# -- the floor --------------------------------------------------------------------------------------------
class NaiveIoU:
    """The floor: each box takes the id of the previous frame's box it overlaps most (IoU >= 0.3, greedy, best
    pairs first); anything else starts a new id. No motion model, no memory of a missed frame. A `Tracker`
    (darknet_py.pipeline.tracking.base) in a few lines, to show what the real ones add."""

    name = "naive-iou"

    def __init__(self, threshold: float = 0.3) -> None:
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self._boxes, self._ids, self._next = np.zeros((0, 4)), np.zeros(0, np.int64), 1

    def update(self, detections: Detections) -> np.ndarray:
        boxes = detections.boxes.astype(np.float64)
        ids = np.full(len(boxes), -1, np.int64)
        overlap = iou_matrix(self._boxes, boxes)
        for flat in np.argsort(-overlap, axis=None):
            row, col = np.unravel_index(flat, overlap.shape)
            if overlap[row, col] < self.threshold:
                break
            if ids[col] < 0 and self._ids[row] not in ids:
                ids[col] = self._ids[row]
        for col in np.flatnonzero(ids < 0):
            ids[col], self._next = self._next, self._next + 1
        self._boxes, self._ids = boxes, ids
        return ids


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box of *a* with every one of *b*."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


# -- sequences, detections, tracks ------------------------------------------------------------------------
def sequences(work: Path, seeds: list[int], sprites) -> list[Path]:
    """The generated sequences for *seeds* (made once into work/seed-N/NAME)."""
    folders = []
    for seed in seeds:
        for name in generator.SEQUENCES:
            folder = work / f"seed-{seed}" / name
            if not (folder / "expected_counts.json").exists():
                generator.make(name, folder.parent, seed, sprites=sprites)
            folders.append(folder)
    return folders


def detections(model, folder: Path) -> list[Detections]:
    """yolov4-tiny's person detections on every frame of a sequence (cached in folder/detections.json)."""
    cache = folder / "detections.json"
    if not cache.exists():
        frames = sorted((folder / "img1").glob("*.jpg"))
        records = []
        for path in frames:
            dets = model.detect(cv2.imread(str(path)), 0.25, 0.45, classes=(0,))[0]
            records.append({"width": dets.image_size[0], "height": dets.image_size[1], "detections": dets.to_list()})
        with atomic_write(cache, "w") as handle:
            json.dump(records, handle)
    found = []
    for record in json.loads(cache.read_text()):
        items = record["detections"]
        found.append(Detections(np.array([d["box"] for d in items], np.float32).reshape(-1, 4),
                                np.array([d["score"] for d in items], np.float32),
                                np.array([d["class_id"] for d in items], np.int64), ["person"],
                                (record["width"], record["height"])))
    return found


def track(tracker, frames: list[Detections]) -> list[Detections]:
    """Each frame's detections with the track ids *tracker* gives them, in order."""
    tracked = []
    for dets in frames:
        ids = tracker.update(dets)
        tracked.append(Detections(dets.boxes, dets.scores, dets.class_ids, dets.names, dets.image_size, track_ids=ids))
    return tracked


def tracker_rows(tracked: list[Detections]) -> list[tuple]:
    """(frame from 1, id, x, y, w, h) of every tracked box (one per track and frame)."""
    rows = []
    for frame, dets in enumerate(tracked, 1):
        seen = set()
        for (x1, y1, x2, y2), track_id in zip(dets.boxes.tolist(), dets.track_ids.tolist()):
            if track_id >= 0 and track_id not in seen:
                seen.add(track_id)
                rows.append((frame, track_id, x1, y1, x2 - x1, y2 - y1))
    return rows


def ground_truth(folder: Path) -> list[tuple]:
    """gt.txt rows: (frame, id, x, y, w, h, consider)."""
    rows = []
    for line in (folder / "gt" / "gt.txt").read_text().split():
        frame, track, x, y, w, h, consider, _, _ = line.split(",")
        rows.append((int(frame), int(track), float(x), float(y), float(w), float(h), int(consider)))
    return rows


def without_ignored(gt: list[tuple], ts: list[tuple]) -> tuple[dict, dict]:
    """Per frame {frame: (ids, xywh boxes)} of the ground truth to score and of the tracker boxes: rows with
    consider=0 are dropped, and so are the tracker boxes that the optimal IoU >= 0.5 matching gives them."""
    frames = sorted({row[0] for row in gt} | {row[0] for row in ts})
    kept_gt, kept_ts = {}, {}
    for frame in frames:
        g = [row for row in gt if row[0] == frame]
        t = [row for row in ts if row[0] == frame]
        g_boxes = np.array([row[2:6] for row in g], np.float64).reshape(-1, 4)
        t_boxes = np.array([row[2:6] for row in t], np.float64).reshape(-1, 4)
        overlap = iou_matrix(_xyxy(g_boxes), _xyxy(t_boxes))
        drop = set()
        if overlap.size:
            rows, cols = linear_sum_assignment(-overlap)
            drop = {c for r, c in zip(rows, cols) if overlap[r, c] >= MATCH_IOU and not g[r][6]}
        keep_g = [i for i, row in enumerate(g) if row[6]]
        keep_t = [i for i in range(len(t)) if i not in drop]
        kept_gt[frame] = (np.array([g[i][1] for i in keep_g], np.int64), g_boxes[keep_g])
        kept_ts[frame] = (np.array([t[i][1] for i in keep_t], np.int64), t_boxes[keep_t])
    return kept_gt, kept_ts


def _xyxy(xywh: np.ndarray) -> np.ndarray:
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def motmetrics_scores(gt: dict, ts: dict) -> dict:
    """py-motmetrics' CLEAR-MOT and identity scores."""
    import motmetrics as mm

    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame in sorted(gt):
        g_ids, g_boxes = gt[frame]
        t_ids, t_boxes = ts[frame]
        # motmetrics' own iou_matrix calls np.asfarray, gone in NumPy 2: the same 1 - IoU, NaN below the match
        overlap = iou_matrix(_xyxy(g_boxes), _xyxy(t_boxes))
        distances = np.where(overlap >= MATCH_IOU, 1 - overlap, np.nan)
        accumulator.update(g_ids.tolist(), t_ids.tolist(), distances, frameid=frame)
    names = ["mota", "idf1", "num_switches", "precision", "recall", "num_false_positives", "num_misses",
             "mostly_tracked", "num_unique_objects", "num_fragmentations"]
    summary = mm.metrics.create().compute(accumulator, metrics=names, name="sequence")
    return {name: _plain(summary[name].iloc[0]) for name in names}


def trackeval_scores(gt: dict, ts: dict) -> dict:
    """TrackEval's HOTA (and its own MOTA, IDF1, IDSW, as a check on motmetrics')."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    frames = sorted(gt)
    gt_map = {v: i for i, v in enumerate(sorted({int(x) for f in frames for x in gt[f][0]}))}
    ts_map = {v: i for i, v in enumerate(sorted({int(x) for f in frames for x in ts[f][0]}))}
    data = {"num_timesteps": len(frames), "num_gt_ids": len(gt_map), "num_tracker_ids": len(ts_map),
            "gt_ids": [np.array([gt_map[int(x)] for x in gt[f][0]], int) for f in frames],
            "tracker_ids": [np.array([ts_map[int(x)] for x in ts[f][0]], int) for f in frames],
            "similarity_scores": [iou_matrix(_xyxy(gt[f][1]), _xyxy(ts[f][1])) for f in frames],
            "num_gt_dets": sum(len(gt[f][0]) for f in frames), "num_tracker_dets": sum(len(ts[f][0]) for f in frames)}
    with contextlib.redirect_stdout(io.StringIO()):
        hota, clear, identity = (HOTA().eval_sequence(data), CLEAR().eval_sequence(data), Identity().eval_sequence(data))
    return {"hota": float(np.mean(hota["HOTA"])), "deta": float(np.mean(hota["DetA"])), "assa": float(np.mean(hota["AssA"])),
            "mota": float(clear["MOTA"]), "idf1": float(identity["IDF1"]), "idsw": int(clear["IDSW"])}


def _plain(value):
    return int(value) if float(value).is_integer() else round(float(value), 6)


def counted(tracked: list[Detections], expected: dict) -> dict:
    """counts.json of our counters on *tracked*, for the sequence's --line/--zone shapes."""
    width, height = tracked[0].image_size
    counters = []
    for text in expected["shapes"]["lines"]:
        counters.append(LineCounter(parse_line(text).name, *parse_line(text).in_pixels(width, height)))
    for text in expected["shapes"]["zones"]:
        counters.append(ZoneCounter(parse_zone(text).name, parse_zone(text).in_pixels(width, height)))
    for frame, dets in enumerate(tracked):
        for counter in counters:
            counter.update(dets, frame)
    return counts_of(counters)


def score(folder: Path, frames: list[Detections], tracker, fps: float, with_hota: bool = True) -> dict:
    """One tracker on one sequence: its scores and whether its counts are exact."""
    tracker.reset()
    started = time.perf_counter()
    tracked = track(tracker, frames)
    seconds = time.perf_counter() - started
    gt, ts = without_ignored(ground_truth(folder), tracker_rows(tracked))
    expected = json.loads((folder / "expected_counts.json").read_text())
    counts = counted(tracked, expected)
    truth = {"lines": expected["lines"], "zones": expected["zones"]}
    crossings = {key: truth[key] for key in truth}
    result = {"motmetrics": motmetrics_scores(gt, ts), "counts": counts, "counts_exact": counts == crossings,
              "crossings_exact": _crossings(counts) == _crossings(truth), "ms_per_frame": 1000 * seconds / len(frames)}
    if with_hota:
        result["trackeval"] = trackeval_scores(gt, ts)
    return result


def _crossings(counts: dict) -> dict:
    """The counts without max_inside (which also depends on every person being detected in the same frame)."""
    return {"lines": counts["lines"], "zones": {name: {k: v for k, v in zone.items() if k != "max_inside"}
                                                 for name, zone in counts["zones"].items()}}


# -- tuning ------------------------------------------------------------------------------------------------
ORDERS = {  # how tuning ranks settings (smaller is better)
    "bar": lambda e: (-e["meets_bar"], -e["exact"], -e["idf1"], e["idsw"]),
    "idf1": lambda e: (-e["idf1"], e["idsw"]),
}


def tune(name: str, tuning: list[tuple[Path, list[Detections]]], fps: float, passes: int = 2,
         objective: str = "bar") -> dict:
    """Search over GRIDS[name] on the TUNE sequences, from the library's defaults: every combination of the JOINT
    settings (how boxes are matched and what the Kalman filter keeps), then each setting in turn takes its best
    value with the others held, *passes* times round.

    Ranked by the issue's bar, sequence by sequence: the sequences where IDF1 is at least the best of the three
    stock trackers' and there are fewer ID switches than stock SORT's; then the sequences whose crossings and
    entries are all counted exactly; then mean IDF1; then fewer ID switches."""
    stock = {tracker: [score(folder, frames, make_tracker(tracker, fps, stock=True), fps, with_hota=False)["motmetrics"]
                       for folder, frames in tuning] for tracker in TRACKERS}
    bar = [(max(stock[t][i]["idf1"] for t in TRACKERS), stock["sort"][i]["num_switches"]) for i in range(len(tuning))]
    cache: dict[str, dict] = {}

    def rank(settings: dict) -> dict:
        key = json.dumps(settings, sort_keys=True)
        if key not in cache:
            results = [score(folder, frames, make_tracker(name, fps, stock=True, **settings), fps, with_hota=False)
                       for folder, frames in tuning]
            scores = [r["motmetrics"] for r in results]
            cache[key] = {"settings": dict(settings),
                          "meets_bar": sum(m["idf1"] >= idf1 and m["num_switches"] < switches
                                           for m, (idf1, switches) in zip(scores, bar)),
                          "exact": sum(r["crossings_exact"] for r in results),
                          "idf1": round(statistics.mean(m["idf1"] for m in scores), 4),
                          "idsw": sum(m["num_switches"] for m in scores)}
        return cache[key]

    def order(entry: dict) -> tuple:
        return ORDERS[objective](entry)

    start = best = rank(dict(LIBRARY_DEFAULTS[name]))
    joint = [setting for setting in JOINT if setting in GRIDS[name]]
    for values in itertools.product(*(GRIDS[name][setting] for setting in joint)):  # these work together: all pairs
        candidate = rank({**start["settings"], **dict(zip(joint, values))})
        if order(candidate) < order(best):
            best = candidate
    for _ in range(passes):
        for setting, values in GRIDS[name].items():
            for value in values:
                candidate = rank({**best["settings"], setting: value})
                if order(candidate) < order(best):
                    best = candidate
    tried = sorted(cache.values(), key=order)
    return {"library_defaults": start, "best": best, "tried": len(tried), "top5": tried[:5], "sequences": len(tuning)}


# -- cost -----------------------------------------------------------------------------------------------------
def stage_cost(objects: int = 50, frames: int = 400) -> dict:
    """TrackingStage ms per frame with *objects* boxes walking across a 1920x1080 frame (two lines, two zones,
    trails), and how much of it is the tracking library's own update (timed inside the same calls); medians
    after 50 warm-up frames."""
    from darknet_py.media.sinks import Result
    from darknet_py.media.tracking_sinks import TrackingStage

    rng = np.random.default_rng(0)
    start = rng.uniform((0, 100), (1800, 900), (objects, 2))
    velocity = rng.uniform(-4, 4, (objects, 2))
    image = np.zeros((1080, 1920, 3), np.uint8)
    lines = [parse_line("a=960,0,960,1080"), parse_line("b=0,540,1920,540")]
    zones = [parse_zone("c=100,100,800,100,800,500,100,500"), parse_zone("d=0.5,0.5,0.9,0.5,0.9,0.9,0.5,0.9")]
    stage = TrackingStage(DEFAULT_TRACKER, lines=lines, zones=zones)
    stage.process(Result("synthetic", 0, image, _walkers(start, velocity, rng, 0), fps=25.0))
    library = stage.tracker._tracker
    inner: list[float] = []
    update = library.update

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return update(*args, **kwargs)
        finally:
            inner.append(time.perf_counter() - began)

    library.update = timed
    whole = []
    for frame in range(1, frames):
        dets = _walkers(start, velocity, rng, frame)
        began = time.perf_counter()
        stage.process(Result("synthetic", frame, image, dets, fps=25.0))
        whole.append(time.perf_counter() - began)
    whole_ms, inner_ms = [1000 * v for v in whole[50:]], [1000 * v for v in inner[50:]]
    ours = [a - b for a, b in zip(whole_ms, inner_ms)]
    return {"tracker": DEFAULT_TRACKER, "objects": objects, "frames_timed": len(whole_ms), "stage_ms_median": round(statistics.median(whole_ms), 3),
            "library_update_ms_median": round(statistics.median(inner_ms), 3),
            "ours_ms_median": round(statistics.median(ours), 3),
            "tracks_at_the_end": len({t for t in stage.tracker._tracker.tracks if t.tracker_id >= 0})}


def _walkers(start: np.ndarray, velocity: np.ndarray, rng: np.random.Generator, frame: int) -> Detections:
    """Boxes of people walking in straight lines (with a pixel of jitter), best score first."""
    centre = start + velocity * frame + rng.normal(0, 1, start.shape)
    boxes = np.concatenate([centre - (20, 50), centre + (20, 50)], axis=1).astype(np.float32)
    scores = np.sort(rng.uniform(0.3, 0.95, len(start))).astype(np.float32)[::-1].copy()
    return Detections(boxes, scores, np.zeros(len(start), np.int64), ["person"], (1920, 1080))


def video_cost(work: Path, frames: int, rounds: int) -> dict:
    """`darknet-py detect CLIP --no-save` with and without `--track` (and a line and a zone), each in its own
    process, rounds interleaved. Frames/s of the video loop from the moments each frame is done (the run's
    `frames-detected N` events, timestamped here as they arrive), from the 10th frame to the last, so the start-up
    (loading the model; with --track, importing the tracking library) is left out; the whole command's seconds too."""
    clip = work / f"pedestrians-{frames}.avi"
    if not clip.exists():
        capture = cv2.VideoCapture(str(VIDEO))
        ok, frame = capture.read()
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 50, (frame.shape[1], frame.shape[0]))
        for _ in range(frames):
            writer.write(frame)
            ok, frame = capture.read()
            if not ok:
                break
        writer.release()
    base = [str(REPO / ".venv" / "bin" / "darknet-py"), "detect", str(clip), "--no-save", "--exist-ok"]
    variants = {"without --track": [], "--track": ["--track", "--line", "door=0.5,0,0.5,1", "--zone",
                                                   "hall=0.1,0.1,0.5,0.1,0.5,0.9,0.1,0.9"]}
    loop: dict[str, list[float]] = {name: [] for name in variants}
    whole: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            began = time.perf_counter()
            moments = _frame_moments(base + ["--output", str(work / "video-cost")] + variants[name])
            whole[name].append(time.perf_counter() - began)
            done = sorted(moments)
            loop[name].append((done[-1] - 10) / (moments[done[-1]] - moments[10]))
    fps = {name: round(statistics.median(values), 3) for name, values in loop.items()}
    return {"video": f"{VIDEO.name}, first {frames} frames (1280x720), yolov4-tiny 416, torch CPU", "rounds": rounds,
            "loop_frames_per_s": {k: [round(v, 3) for v in values] for k, values in loop.items()},
            "loop_frames_per_s_median": fps, "command_seconds": {k: [round(v, 2) for v in values] for k, values in whole.items()},
            "slowdown_percent": round(100 * (1 - fps["--track"] / fps["without --track"]), 2)}


def _frame_moments(command: list[str]) -> dict[int, float]:
    """Run *command* with its events sent to a FIFO read here; when each `frames-detected N` arrived."""
    import select
    import tempfile

    from darknet_py.core.events import EVENTS

    moments: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="dp-bench-") as folder:
        fifo = Path(folder) / "events"
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # read-write: no end of file between the writer's opens
        env = {**os.environ, "DARKNET_PY_ZOO": str(SHARED / "zoo"), EVENTS: str(fifo)}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        partial = b""
        try:
            while True:
                running = process.poll() is None
                if select.select([fd], [], [], 0.01)[0]:
                    now = time.perf_counter()
                    with contextlib.suppress(BlockingIOError):
                        partial += os.read(fd, 65536)
                    *lines, partial = partial.split(b"\n")
                    for line in lines:
                        if line.startswith(b"frames-detected "):
                            moments[int(line.split()[1])] = now
                elif not running:
                    break
        finally:
            os.close(fd)
            if process.wait() != 0:
                raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return moments


# -- the run -----------------------------------------------------------------------------------------------
def tune_all(work: Path, tune_seeds: list[int], objective: str) -> dict:
    """Tune every tracker on the TUNE sequences; what each search found (the adapters' `tuned` should be it)."""
    import darknet_py

    model = darknet_py.load(*MODEL)
    tuning = [(folder, detections(model, folder)) for folder in sequences(work, tune_seeds, generator.walker_sprites())]
    found = {"seeds": tune_seeds, "objective": objective, "trackers": {}}
    for name in TRACKERS:
        found["trackers"][name] = tune(name, tuning, generator.FPS, objective=objective)
        print(f"tuned {name}: {found['trackers'][name]['best']}", flush=True)
    return found


def evaluate(work: Path, test_seeds: list[int]) -> dict:
    import darknet_py

    model = darknet_py.load(*MODEL)
    sprites = generator.walker_sprites()
    fps = generator.FPS
    testing = [(folder, detections(model, folder)) for folder in sequences(work, test_seeds, sprites)]
    variants = {"naive-iou": lambda: NaiveIoU()}
    for name in TRACKERS:
        variants[f"{name} stock"] = lambda name=name: make_tracker(name, fps, stock=True)
        variants[f"{name} tuned"] = lambda name=name: make_tracker(name, fps)
    table = {}
    for variant, make in variants.items():
        per_sequence = {}
        for folder, frames in testing:
            per_sequence[f"{folder.parent.name}/{folder.name}"] = score(folder, frames, make(), fps)
        table[variant] = {"sequences": per_sequence, **summarise(per_sequence)}
        print(f"{variant}: {json.dumps({k: v for k, v in table[variant].items() if k != 'sequences'})}", flush=True)
    for row in table.values():  # the bar, per sequence: IDF1 >= the best stock one, fewer switches than stock SORT
        row["meets_the_bar"] = sum(
            scores["motmetrics"]["idf1"] >= max(table[f"{t} stock"]["sequences"][key]["motmetrics"]["idf1"] for t in TRACKERS)
            and scores["motmetrics"]["num_switches"] < table["sort stock"]["sequences"][key]["motmetrics"]["num_switches"]
            for key, scores in row["sequences"].items())
    return {"default_tracker": DEFAULT_TRACKER, "results": table,
            "shipped_defaults": {name: cls.tuned for name, cls in TRACKERS.items()},
            "sequences": {f"{folder.parent.name}/{folder.name}": _describe(folder, frames) for folder, frames in testing}}


def summarise(per_sequence: dict) -> dict:
    values = list(per_sequence.values())
    return {"idf1_mean": round(statistics.mean(v["motmetrics"]["idf1"] for v in values), 4),
            "mota_mean": round(statistics.mean(v["motmetrics"]["mota"] for v in values), 4),
            "hota_mean": round(statistics.mean(v["trackeval"]["hota"] for v in values), 4),
            "id_switches": sum(v["motmetrics"]["num_switches"] for v in values),
            "sequences_with_exact_crossings": sum(v["crossings_exact"] for v in values),
            "sequences_with_exact_counts": sum(v["counts_exact"] for v in values), "sequence_count": len(values),
            "meets_the_bar": None}


def _describe(folder: Path, frames: list[Detections]) -> dict:
    expected = json.loads((folder / "expected_counts.json").read_text())
    return {"frames": len(frames), "people": expected["people"], "detections": sum(len(d) for d in frames),
            "expected": {"lines": expected["lines"], "zones": expected["zones"]}, "shapes": expected["shapes"]}



def markdown(report: dict) -> str:
    lines = ["# Tracking and counting", "",
             f"CPU: {report['cpu']} ({report['cpus']} cores, load average {report['load_average']} at the start). "
             f"Test sequences: {', '.join(report['sequences'])}. The default tracker: {report['default_tracker']}. "
             "Meets the bar: sequences where IDF1 is at least the best stock tracker's and ID switches are fewer than "
             "stock SORT's.", "",
             "| tracker | IDF1 | MOTA | HOTA | ID switches | exact crossings | exact counts | meets the bar |",
             "|---|---|---|---|---|---|---|---|"]
    for variant, row in report["results"].items():
        count = row["sequence_count"]
        lines.append(f"| {variant} | {row['idf1_mean']:.3f} | {row['mota_mean']:.3f} | {row['hota_mean']:.3f} | "
                     f"{row['id_switches']} | {row['sequences_with_exact_crossings']}/{count} | "
                     f"{row['sequences_with_exact_counts']}/{count} | {row['meets_the_bar']}/{count} |")
    if report.get("cost"):
        cost = report["cost"]
        lines += ["", f"Stage at {cost['stage']['objects']} objects: {cost['stage']['stage_ms_median']} ms per frame "
                      f"(the library's {cost['stage'].get('tracker', 'bytetrack')} update "
                      f"{cost['stage']['library_update_ms_median']} ms)."]
        if "video" in cost:
            lines.append(f"Video loop: {cost['video']['loop_frames_per_s_median']} frames/s; slowdown "
                         f"{cost['video']['slowdown_percent']}%.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--test-seeds", type=int, nargs="+", default=[5, 6])
    parser.add_argument("--objective", choices=list(ORDERS), default="idf1", help="how tuning ranks settings")
    parser.add_argument("--tune-only", action="store_true", help="tune, write tracking_tuning.json, stop")
    parser.add_argument("--skip-tuning", action="store_true", help="use the tracking_tuning.json already written")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--cost-only", action="store_true",
                        help="measure only the cost, into the tracking.json already written (quality rows kept)")
    parser.add_argument("--video-frames", type=int, default=150)
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--work", default="runs/tracking-bench", help="sequences and cached detections")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    if args.cost_only:
        report = json.loads((out / "tracking.json").read_text())
        report.update(cpu=cpu_model(), cpus=os.cpu_count(), load_average=[round(v, 2) for v in os.getloadavg()])
        _measure_cost(report, work, args)
        _write(report, out)
        return
    tuning_file = out / "tracking_tuning.json"
    if args.skip_tuning:
        tuning = json.loads(tuning_file.read_text())
    else:
        tuning = {"cpu": cpu_model(), **tune_all(work, args.tune_seeds, args.objective)}
        with atomic_write(tuning_file, "w") as handle:
            json.dump(tuning, handle, indent=1)
        if args.tune_only:
            return
    overlap = set(tuning["seeds"]) & set(args.test_seeds)
    if overlap:
        raise SystemExit(f"test seeds {sorted(overlap)} were used for tuning: report on others")
    report = {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
              "trackers_version": _version("trackers"), "motmetrics_version": _version("motmetrics"),
              "trackeval_version": _version("trackeval"), "tune_seeds": tuning["seeds"], "test_seeds": args.test_seeds,
              "tuning": {name: {k: found[k] for k in ("library_defaults", "best", "tried")}
                         for name, found in tuning["trackers"].items()}}
    report.update(evaluate(work, args.test_seeds))
    report["shipped_equals_tuned"] = {name: report["shipped_defaults"][name] == found["best"]["settings"]
                                      for name, found in tuning["trackers"].items()}
    if not args.skip_cost:
        _measure_cost(report, work, args)
    _write(report, out)


def _measure_cost(report: dict, work: Path, args: argparse.Namespace) -> None:
    report["cost"] = {"stage": stage_cost()}
    print(f"stage cost: {report['cost']['stage']}", flush=True)
    report["cost"]["video"] = video_cost(work, args.video_frames, args.video_rounds)
    print(f"video cost: {report['cost']['video']}", flush=True)


def _write(report: dict, out: Path) -> None:
    with atomic_write(out / "tracking.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "tracking.md", "w") as handle:
        handle.write(markdown(report))
    print(markdown(report))


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
