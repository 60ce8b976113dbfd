"""The detection pass both evaluations share (COCO's in coco_eval, darknet's `detector map` in
darknet_map): every image once, in order, with darknet's evaluation settings."""
from __future__ import annotations

from typing import Iterator, Sequence

from ..core.progress import Progress
from ..pipeline.detect import iter_batches
from ..pipeline.detections import Detections

MAP_THRESH = 0.005  # darknet detector map's score threshold
MAX_DETECTIONS = 100_000  # per image: darknet keeps every one (COCOeval keeps each category's best 100 itself)


def detect_paths(detector, paths: Sequence[str], thresh: float = MAP_THRESH, nms: float = 0.45, batch: int = 1,
                 progress: bool = True, label: str = "map", **options) -> Iterator[Detections]:
    """Detections of every image path, in order: darknet's multi-label rule and no cap on their number
    unless `options` say otherwise. `detector`: a Darknet or an OnnxDetector."""
    options = {"multi_label": True, "max_det": MAX_DETECTIONS, **options}
    meter = Progress(label, len(paths), unit="images") if progress else None
    for chunk in iter_batches(paths, batch):
        yield from detector.detect(list(chunk), thresh, nms, **options)
        if meter:
            meter.update(len(chunk))
    if meter:
        meter.close()
