"""The detection pass both evaluations share (COCO's in coco_eval, darknet's `detector map` in
darknet_map): every image once, in order, with darknet's evaluation settings."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from ..core.errors import DarknetWarning, InputError
from ..core.in_flight import in_order, iter_batches
from ..core.progress import Progress
from ..pipeline.darknet_image import BLANK_SIDE, unreadable_stand_in
from ..pipeline.detections import Detections

if TYPE_CHECKING:
    from ..pipeline.backend import Backend

MAP_THRESH = 0.005  # darknet detector map's score threshold
MAX_DETECTIONS = 100_000  # per image: darknet keeps every one (COCOeval keeps each category's best 100 itself)


def detect_paths(detector: Backend, paths: Sequence[str], thresh: float = MAP_THRESH, nms: float = 0.45, batch: int = 1,
                 progress: bool = True, label: str = "map", in_flight: int = 1, **options: Any) -> Iterator[Detections]:
    """Detections of every image path, in order: darknet's multi-label rule and no cap on their number
    unless `options` say otherwise.

    An image that cannot be read is detected on as darknet's stand-in, a blank 10x10 image (its objects count as
    missed), with a DarknetWarning; each Detections' `source` is its path.

    Args:
        detector (Backend): a Darknet, an OnnxDetector, ...; with *in_flight* above 1, one safe to call from that
            many threads at once (`Backend.concurrent`).
        paths (sequence of str): the images.
        thresh (float): the score threshold.
        nms (float): the NMS overlap threshold.
        batch (int): images per detect() call.
        progress (bool): a progress line on stderr.
        label (str): the progress line's name.
        in_flight (int): detect() calls running at once (core.in_flight.in_order); the order stays the paths'.
        **options: DetectOptions fields.

    Yields:
        Detections: one per path, in order.

    Raises:
        InputError: a detect() option out of range.
    """
    options = {"multi_label": True, "max_det": MAX_DETECTIONS, **options}
    meter = Progress(label, len(paths), unit="images") if progress else None

    def detect(chunk: list[str]) -> list[Detections]:
        found = detector.detect([_image_or_blank(path, detector.channels) for path in chunk], thresh, nms, **options)
        for dets, path in zip(found, chunk):
            dets.source = path
        return found

    with in_order(detect, iter_batches(paths, batch), in_flight) as done:
        for chunk, found in done:
            yield from found
            if meter:
                meter.update(len(chunk))
    if meter:
        meter.close()


def _image_or_blank(path: str, channels: int) -> np.ndarray:
    """The image as detect() reads it, or for one that cannot be read darknet's stand-in, a black 10x10 image
    (load_image_stb and load_image_cv both return make_image(10, 10, c) after "Cannot load image"): the evaluation
    goes on, its objects count as missed, and the figures stay darknet's."""
    from ..pipeline.preprocess import read_image  # with torch: not at the top, so that `map --help` needs none

    try:
        return read_image(path, channels)
    except InputError as exc:
        warnings.warn(f"{exc}: evaluated as darknet does an image it cannot load, a blank {BLANK_SIDE}x{BLANK_SIDE} "
                      "one (its objects count as missed)", DarknetWarning, stacklevel=2)
        return unreadable_stand_in(channels)
