"""The detection pass both evaluations share (COCO's in coco_eval, darknet's `detector map` in
darknet_map): every image once, in order, with darknet's evaluation settings."""
from __future__ import annotations

from typing import Iterator, Sequence

from ..core.in_flight import in_order
from ..core.progress import Progress
from ..pipeline.detect import iter_batches
from ..pipeline.detections import Detections

MAP_THRESH = 0.005  # darknet detector map's score threshold
MAX_DETECTIONS = 100_000  # per image: darknet keeps every one (COCOeval keeps each category's best 100 itself)


def detect_paths(detector, paths: Sequence[str], thresh: float = MAP_THRESH, nms: float = 0.45, batch: int = 1,
                 progress: bool = True, label: str = "map", in_flight: int = 1, **options) -> Iterator[Detections]:
    """Detections of every image path, in order: darknet's multi-label rule and no cap on their number
    unless `options` say otherwise.

    Args:
        detector: a Backend (a Darknet, an OnnxDetector, ...); with *in_flight* above 1, one safe to call from that
            many threads at once (`Backend.concurrent`).
        paths (sequence of str): the images.
        thresh, nms (float): score and NMS thresholds.
        batch (int): images per detect() call.
        progress (bool): a progress line on stderr.
        label (str): the progress line's name.
        in_flight (int): detect() calls running at once (core.in_flight.in_order); the order stays the paths'.
        **options: DetectOptions fields.

    Yields:
        Detections: one per path, in order.
    """
    options = {"multi_label": True, "max_det": MAX_DETECTIONS, **options}
    meter = Progress(label, len(paths), unit="images") if progress else None
    with in_order(lambda chunk: detector.detect(chunk, thresh, nms, **options), iter_batches(paths, batch),
                  in_flight) as done:
        for chunk, found in done:
            yield from found
            if meter:
                meter.update(len(chunk))
    if meter:
        meter.close()
