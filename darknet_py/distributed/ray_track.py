"""`detect --ray --track`: tracking a Ray run's records on the driver, in frame order, once every shard is in.

The actors detect frames in parallel chunks; a tracker must see them one after another. Tracking is cheap
next to detection, so the driver does it after the merge, from the records themselves: each frame's record
becomes `Detections` again and goes through the same `TrackingStage` and tracking sinks as a run without
--ray (media/tracking_sinks.py). The tracker reads boxes and scores at a record's precision either way
(tracking.base.tracked_boxes), so the ids and counts are the ones a run without --ray gives.

`detections.jsonl` is rewritten with each frame's `time` and each detection's `track_id`; a resumed run merges
the shards again and tracks them again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import InputError
from ..media.sequence import ImageSequence
from ..media.sinks import Result, Sink, finish_all, write_all
from ..media.tracking_sinks import RecordsJsonlSink, TrackingStage
from ..pipeline.detections import Detections
from .shards import RESULT_FILE

NO_PIXELS = np.zeros((0, 0, 3), np.uint8)  # the driver has records, not frames: no annotated output here


def frames_of(records: list[dict], source: str | ImageSequence) -> list[dict]:
    """The records of one video (by frame) or of a sequence's images (in its order), error records left out.

    Raises:
        InputError: the run holds no readable frame of the source.
    """
    if isinstance(source, ImageSequence):
        by_path = {record["source"]: record for record in records if "error" not in record}
        frames = [by_path[path] for path in source.paths if path in by_path]
    else:
        frames = sorted((r for r in records if r.get("source") == source and "error" not in r), key=lambda r: r["frame"])
    if not frames:
        raise InputError(f"--track: the run holds no readable frame of {source}")
    return frames


def record_detections(record: dict, names: list[str]) -> Detections:
    """A record (sinks.detection_record) as Detections again: boxes, scores, classes and the image size."""
    found = record["detections"]
    return Detections(np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
                      np.array([d["score"] for d in found], np.float32),
                      np.array([d["class_id"] for d in found], np.int64), names,
                      (int(record["width"]), int(record["height"])), record["source"])


def track_records(output: Path, source: str | ImageSequence, stage: TrackingStage, sinks: Sequence[Sink], fps: float,
                  names: list[str]) -> int:
    """Track the frames of *source* in `output/detections.jsonl` and write the tracking outputs.

    Args:
        output (Path): the run folder, its records merged.
        source (str or ImageSequence): the video (as the records name it) or the sequence of images.
        stage (TrackingStage): the tracker and counters.
        sinks (sequence of Sink): the tracking outputs (MOT, counts.json, events.jsonl); the tracked records
            replace detections.jsonl.
        fps (float): the frame rate (each frame's time, the tracker's lost-track budget).
        names (list[str]): the class names.

    Returns:
        int: frames tracked.
    """
    path = output / RESULT_FILE
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frames = frames_of(records, source)
    sinks = [RecordsJsonlSink(path), *sinks]
    try:
        for index, record in enumerate(frames):
            result = Result(str(source), index, NO_PIXELS, record_detections(record, names), fps=fps)
            write_all(sinks, stage.process(result))
    finally:
        finish_all([stage, *sinks])
    return len(frames)
