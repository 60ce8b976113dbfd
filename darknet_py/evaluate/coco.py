"""COCO mAP of a detector over an image folder and an instances annotation file (pycocotools).

Defaults follow darknet's `detector map`: score threshold 0.005, per-class NMS 0.45 of the
cfg's kind, the cfg's letterbox, and one detection per class above threshold (multi-label); boxes
are compared in image pixels as darknet's `detector valid` (its COCO results writer) compares them.
With its settings (thresh 0.001, NMS 0.6) the results are those of `darknet detector valid`.
Darknet class i is COCO category sorted(category ids)[i] (80 classes, ids 1..90 with gaps).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..core.errors import InputError
from ..core.fileio import read_bytes
from .detection_pass import MAP_THRESH, detect_paths

if TYPE_CHECKING:
    from pycocotools.coco import COCO

    from ..pipeline.backend import Backend

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass
class MapReport:
    """What `run_map` found: the COCO metrics and the results they were computed from.

    Attributes:
        metrics (dict of str to float): AP, AP50, AP75, APs, APm, APl as fractions (-1: COCOeval had no ground
            truth for it, e.g. no small objects).
        results (list of dict): the COCO results entries (image_id, category_id, score, bbox), in image order.
        images (int): the annotated images detected on.
        detections (int): the results entries.
    """

    metrics: dict[str, float]
    results: list[dict]  # COCO results entries
    images: int
    detections: int


def load_ground_truth(path: str | os.PathLike[str]) -> COCO:
    """A pycocotools COCO object; files without info/licenses are fine, missing essentials are not.

    Annotations without `area`, `iscrowd` or `id` get the bbox's area, 0 and their 1-based position.

    Args:
        path (str or PathLike): a COCO instances annotation file (JSON).

    Returns:
        COCO: the ground truth, indexed.

    Raises:
        InputError: the file cannot be read or is not JSON, is not a JSON object, lacks "images", "annotations" or
            "categories" (or they are not lists), or has an annotation without image_id, category_id or a bbox of
            4 numbers.
    """
    from pycocotools.coco import COCO

    path = os.fspath(path)
    try:
        data = json.loads(read_bytes(path, InputError, "annotation file"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a COCO instances object, found a JSON {type(data).__name__}")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise InputError(f"{path}: not a COCO instances file (no {', '.join(missing)})")
    if not all(isinstance(data[key], list) for key in ("images", "annotations", "categories")):
        raise InputError(f"{path}: images, annotations and categories must each be a JSON list")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= ann.keys():
            raise InputError(f"{path}: annotation {i} lacks image_id, category_id or bbox")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise InputError(f"{path}: annotation {i}: bbox must be [x, y, width, height] (4 numbers), found {box!r}")
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann.setdefault("iscrowd", 0)
        ann.setdefault("id", i + 1)
    data.setdefault("info", {})
    data.setdefault("licenses", [])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
        coco.createIndex()
    return coco


def category_ids(coco: COCO) -> list[int]:
    """Darknet class index → COCO category id: the annotation file's sorted ids.

    Args:
        coco (COCO): the ground truth.

    Returns:
        list of int: the category ids in ascending order; class i is the i-th.
    """
    return sorted(coco.getCatIds())


def image_paths(coco: COCO, folder: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(image id, path) for every annotated image; a clear error when files are missing.

    Args:
        coco (COCO): the ground truth; each image's `file_name` is taken relative to *folder*.
        folder (str or PathLike): the image folder.

    Returns:
        list of (int, str): every image of the annotation file, by ascending id.

    Raises:
        InputError: the folder does not exist, or images are missing from it (how many, the first three named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder not found: {folder}")
    pairs = [(image["id"], str(folder / image["file_name"])) for image in sorted(coco.dataset["images"], key=lambda i: i["id"])]
    missing = [path for _, path in pairs if not os.path.isfile(path)]
    if missing:
        shown = ", ".join(Path(p).name for p in missing[:3]) + (" …" if len(missing) > 3 else "")
        raise InputError(f"{len(missing)} of the {len(pairs)} annotated images are missing from {folder}: {shown}")
    return pairs


def evaluate(coco: COCO, results: Sequence[dict]) -> dict[str, float]:
    """COCOeval (bbox) → {AP, AP50, AP75, APs, APm, APl}; no detections at all gives zeros.

    Every image of the ground truth is evaluated (one without results counts its objects as missed); pycocotools'
    printing is silenced.

    Args:
        coco (COCO): the ground truth.
        results (sequence of dict): COCO results entries (image_id, category_id, score, bbox); not changed.

    Returns:
        dict of str to float: the six metrics of METRICS, as fractions (-1 where COCOeval has no ground truth).
    """
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {key: 0.0 for key in METRICS}
    with contextlib.redirect_stdout(io.StringIO()):
        detections = coco.loadRes([dict(r) for r in results])  # loadRes adds keys: keep ours clean
        evaluator = COCOeval(coco, detections, "bbox")
        evaluator.params.imgIds = sorted(coco.getImgIds())
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {key: float(value) for key, value in zip(METRICS, evaluator.stats[:6])}


def run_map(detector: Backend, images: str | os.PathLike[str], annotations: str | os.PathLike[str],
            thresh: float = MAP_THRESH, nms: float = 0.45, batch: int = 1, progress: bool = True, in_flight: int = 1,
            **options: Any) -> MapReport:
    """Detect on every annotated image and evaluate. `detector`: a Darknet or an OnnxDetector (with *in_flight*
    above 1, one safe to call from that many threads: `Backend.concurrent`); `options` go to its detect() (e.g.
    tiles="auto", tile_overlap: darknet_py.pipeline.tiles).

    Detection is multi-label, uncapped and compares boxes in image pixels for NMS (as darknet's `detector valid`)
    unless `options` say otherwise; class i is reported as the i-th sorted category id.

    Args:
        detector (Backend): the model.
        images (str or PathLike): the image folder.
        annotations (str or PathLike): the COCO instances annotation file.
        thresh (float): the score threshold (darknet's `detector map`: 0.005).
        nms (float): the NMS overlap threshold.
        batch (int): images per detect() call.
        progress (bool): a progress line on stderr.
        in_flight (int): detect() calls running at once.
        **options: more detect() options (DetectOptions fields, tiles, tile_overlap, roi).

    Returns:
        MapReport: the metrics and the results entries.

    Raises:
        InputError: an unreadable or malformed annotation file, a model whose class count is not the number of
            categories, a missing image folder or images, or a detect() option out of range.
    """
    coco = load_ground_truth(annotations)
    categories = category_ids(coco)
    if detector.num_classes != len(categories):
        raise InputError(f"the model predicts {detector.num_classes} classes but {annotations} lists "
                         f"{len(categories)} categories; class i must map to the i-th sorted category id")
    pairs = image_paths(coco, images)
    results: list[dict] = []
    options = {"nms_in_pixels": True, **options}  # as darknet's `detector valid`, which writes COCO results
    for (image_id, _), dets in zip(pairs, detect_paths(detector, [path for _, path in pairs], thresh, nms, batch,
                                                       progress, in_flight=in_flight, **options)):
        results.extend(dets.to_coco(image_id, categories))
    return MapReport(evaluate(coco, results), results, len(pairs), len(results))


def metrics_table(metrics: dict[str, float]) -> str:
    """The metrics as two lines of text: the names, then the values in percent ("n/a" for a negative one).

    Args:
        metrics (dict of str to float): at least the six keys of METRICS, as fractions.

    Returns:
        str: the header line and the values line, columns 6 characters wide.
    """
    header = " ".join(f"{key:>6}" for key in METRICS)
    values = " ".join(f"{metrics[key] * 100:6.2f}" if metrics[key] >= 0 else f"{'n/a':>6}" for key in METRICS)
    return f"{header}\n{values}"


__all__ = ["METRICS", "MapReport", "category_ids", "evaluate", "image_paths", "load_ground_truth", "metrics_table",
           "run_map"]
