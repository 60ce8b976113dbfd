"""darknet's `detector map` metrics (src/detector.c validate_detector_map), computed as darknet does.

Per image, in darknet's order of boxes (after its per-class NMS sorts: by the last class's score,
then the one before, …) and of classes within a box, every (box, class) above the threshold is one
detection. It is matched to the ground-truth box of its class with the highest IoU above
`iou_thresh`; with none, a `difficult` box it overlaps removes it. Detections above `conf_thresh`
count towards TP / FP and the average IoU there: a TP when matched to a truth no earlier detection
of that image matched. Then all detections, by score (stable), give each class its precision/recall
curve: a truth is a TP once, a second detection of it an FP. AP is the area under the curve with
the precision made monotone (`points` 0) or the mean of `points` interpolated precisions (11: VOC2007,
101: COCO). mAP averages all classes, those without ground truth included (AP 0), as darknet does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ..core.errors import InputError
from ..format.darknet_data import load_dataset
from ..pipeline.detections import Detections
from .detection_pass import MAP_THRESH, detect_paths

if TYPE_CHECKING:
    from ..pipeline.backend import Backend

POINTS = (0, 11, 101)


@dataclass
class ClassResult:
    """One class's line of `darknet detector map`.

    Attributes:
        id (int): the class id.
        name (str): the class name.
        ap (float): its average precision, a fraction.
        tp (int): its true positives at conf_thresh.
        fp (int): its false positives at conf_thresh.
    """

    id: int
    name: str
    ap: float  # a fraction
    tp: int  # at conf_thresh
    fp: int


@dataclass
class DarknetMap:
    """What `darknet detector map` reports (`darknet_text` prints it as darknet does).

    Attributes:
        iou_thresh (float): the IoU a detection needs with a truth to match it (-iou_thresh).
        points (int): 0 (area under the curve), 11 (VOC2007) or 101 (COCO) recall points (-points).
        conf_thresh (float): the score above which detections count towards TP, FP, FN and the average IoU.
        mean_ap (float): the mean of the classes' APs (those without ground truth count as 0), a fraction.
        precision (float): TP / (TP + FP) at conf_thresh (NaN for 0/0, darknet's -nan).
        recall (float): TP / truths at conf_thresh (NaN for 0/0).
        f1 (float): the F1 score of precision and recall (NaN when both are 0).
        tp (int): true positives at conf_thresh.
        fp (int): false positives at conf_thresh.
        fn (int): truths less true positives.
        average_iou (float): the TPs' IoUs summed, over TP + FP (darknet's average IoU), a fraction.
        classes (list of ClassResult): one per class, by id.
        detections (int): the (box, class) detections kept for the AP curves.
        truths (int): the ground-truth boxes.
    """

    iou_thresh: float
    points: int
    conf_thresh: float
    mean_ap: float  # a fraction
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    average_iou: float  # a fraction
    classes: list[ClassResult] = field(default_factory=list)
    detections: int = 0
    truths: int = 0

    def as_json(self) -> dict:
        """The report as a JSON-ready dict: the mAP under the key "mAP@IOU" (e.g. "mAP@0.50"), every other field
        under its name, and the classes as dicts (id, name, ap, tp, fp)."""
        return {f"mAP@{self.iou_thresh:.2f}": self.mean_ap, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "tp": self.tp, "fp": self.fp, "fn": self.fn, "average_iou": self.average_iou,
                "iou_thresh": self.iou_thresh, "points": self.points, "conf_thresh": self.conf_thresh,
                "detections": self.detections, "truths": self.truths,
                "classes": [{"id": c.id, "name": c.name, "ap": c.ap, "tp": c.tp, "fp": c.fp} for c in self.classes]}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """darknet's box_iou in float32 on centre boxes (x, y, w, h): a (n, 4) against b (m, 4) → (n, m).

    Args:
        a (np.ndarray): (n, 4) centre boxes.
        b (np.ndarray): (m, 4) centre boxes.

    Returns:
        np.ndarray: (n, m) float32 IoUs; 0 where the boxes do not overlap or the union is 0.
    """
    a, b = a.astype(np.float32)[:, None], b.astype(np.float32)[None]

    def overlap(c1, w1, c2, w2):
        left = np.maximum(c1 - w1 / 2, c2 - w2 / 2)
        right = np.minimum(c1 + w1 / 2, c2 + w2 / 2)
        return right - left

    w = overlap(a[..., 0], a[..., 2], b[..., 0], b[..., 2])
    h = overlap(a[..., 1], a[..., 3], b[..., 1], b[..., 3])
    inter = np.where((w < 0) | (h < 0), np.float32(0), w * h)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((inter == 0) | (union == 0), np.float32(0), inter / union).astype(np.float32)


def darknet_order(dets: Detections, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre boxes relative to the image (k, 4), scores after NMS (k, classes)) per box, in darknet's order
    after do_nms_sort: stable sorts by each class's score in turn, so by the last class's score first —
    scores as they were when sorted, before that class's NMS (Detections.class_scores, when present).

    Detections that share a box (`box_ids`, multi-label) become one row; boxes are the unclipped ones when recorded.

    Args:
        dets (Detections): one image's detections.
        classes (int): the model's class count.

    Returns:
        tuple of (np.ndarray, np.ndarray): (k, 4) float32 centre boxes (x, y, w, h) relative to the image, and
        (k, classes) float32 scores after NMS (0 for a class the box was not kept for), in darknet's order.
    """
    if len(dets) == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0, classes), np.float32)
    ids = np.arange(len(dets)) if dets.box_ids is None else dets.box_ids
    unique, first, slot = np.unique(ids, return_index=True, return_inverse=True)
    extents = (dets.boxes if dets.unclipped is None else dets.unclipped)[first].astype(np.float64)
    w, h = dets.image_size
    x1, y1, x2, y2 = extents[:, 0] / w, extents[:, 1] / h, extents[:, 2] / w, extents[:, 3] / h
    centre = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1).astype(np.float32)
    probs = np.zeros((len(unique), classes), np.float32)
    probs[slot, dets.class_ids] = dets.scores
    keys = probs if dets.class_scores is None else dets.class_scores[first]
    by_first = np.argsort(first, kind="stable")  # ties keep the best-first order of the boxes
    centre, probs, keys = centre[by_first], probs[by_first], keys[by_first]
    order = np.lexsort([-keys[:, c] for c in range(classes)])  # last key (the last class) sorts first
    return centre[order], probs[order]


class MapAccumulator:
    """darknet's map, one image at a time (in the valid list's order): memory holds the scored
    detections, not the images' Detections.

    Args:
        names (sequence of str): the class names; their count is the class count.
        iou_thresh (float): the IoU a detection needs with a truth to match it.
        points (int): 0, 11 or 101 recall points (see POINTS).
        conf_thresh (float): the score above which detections count towards TP, FP and the average IoU.

    Raises:
        InputError: *points* is not one of POINTS.
    """

    def __init__(self, names: Sequence[str], iou_thresh: float = 0.5, points: int = 0, conf_thresh: float = 0.25) -> None:
        if points not in POINTS:
            raise InputError(f"points {points}: darknet's mAP takes {POINTS} (0: every point, 11: VOC2007, 101: COCO)")
        self.names, self.iou_thresh, self.points, self.conf_thresh = list(names), iou_thresh, points, conf_thresh
        classes = len(self.names)
        self.truth_count = np.zeros(classes, np.int64)
        self.tp_at, self.fp_at = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
        self.scores: list[np.ndarray] = []  # every kept detection, in darknet's order
        self.class_of: list[np.ndarray] = []
        self.truth_of: list[np.ndarray] = []
        self.tp_ious: list[np.ndarray] = []  # IoUs of the TPs at conf_thresh, in order (darknet sums them as floats)
        self.unique_truths = 0

    def add(self, dets: Detections, truth: np.ndarray, difficult: np.ndarray | None = None) -> None:
        """One image: its Detections (multi-label, at darknet's 0.005) and truths (n, 5: class, x, y, w, h
        relative); `difficult` boxes in the same form.

        Args:
            dets (Detections): the image's detections.
            truth (np.ndarray): (n, 5) ground truth: class, then the centre box relative to the image.
            difficult (np.ndarray or None): (d, 5) difficult boxes: a detection of one, matched to no truth, is
                dropped rather than counted.
        """
        classes = len(self.names)
        iou_limit, conf_limit = np.float32(self.iou_thresh), np.float32(self.conf_thresh)  # darknet compares floats
        truth_class = truth[:, 0].astype(np.int64)
        np.add.at(self.truth_count, truth_class, 1)
        boxes, probs = darknet_order(dets, classes)
        box_of, cls = np.nonzero(probs > 0)  # boxes in order, each one's classes ascending
        score = probs[box_of, cls]
        rows = np.arange(len(cls))
        ious = box_iou(boxes, truth[:, 1:5])[box_of] if len(truth) else np.zeros((len(cls), 1), np.float32)
        # the truth of the same class with the highest IoU above the threshold (the first such on ties)
        fits = np.where((truth_class[None] == cls[:, None]) & (ious[:, : len(truth)] > iou_limit),
                        ious[:, : len(truth)], -np.inf) if len(truth) else np.full((len(cls), 1), -np.inf)
        matched = np.where(np.isfinite(fits).any(1), fits.argmax(1), -1)
        best_iou = np.where(matched >= 0, ious[rows, np.maximum(matched, 0)], 0).astype(np.float32)
        truth_index = np.where(matched >= 0, self.unique_truths + matched, -1)
        kept = np.ones(len(cls), bool)
        if difficult is not None and len(difficult):  # unmatched detections of a difficult box are dropped
            hard = (difficult[:, 0].astype(np.int64)[None] == cls[:, None]) & (box_iou(boxes, difficult[:, 1:5])[box_of] > iou_limit)
            kept = (matched >= 0) | ~hard.any(1)
        # at conf_thresh: a TP when it is the first kept detection of the image matched to its truth
        first = np.zeros(len(cls), bool)
        kept_at = np.flatnonzero(kept & (truth_index >= 0))
        first[kept_at[np.unique(truth_index[kept_at], return_index=True)[1]]] = True
        confident = score > conf_limit
        tp = confident & first
        np.add.at(self.tp_at, cls[tp], 1)
        np.add.at(self.fp_at, cls[confident & ~tp], 1)
        self.tp_ious.append(best_iou[tp])
        self.scores.append(score[kept])
        self.class_of.append(cls[kept])
        self.truth_of.append(truth_index[kept])
        self.unique_truths += len(truth)

    def result(self) -> DarknetMap:
        """The metrics over every image added so far.

        Returns:
            DarknetMap: the report.
        """
        classes = len(self.names)
        aps = _average_precisions(np.concatenate(self.scores + [np.zeros(0, np.float32)]),
                                  np.concatenate(self.class_of + [np.zeros(0, np.int64)]),
                                  np.concatenate(self.truth_of + [np.zeros(0, np.int64)]),
                                  self.truth_count, classes, self.points)
        tp, fp = int(self.tp_at.sum()), int(self.fp_at.sum())
        tp_ious = np.concatenate(self.tp_ious + [np.zeros(0, np.float32)])
        iou_sum = np.cumsum(tp_ious, dtype=np.float32)[-1] if len(tp_ious) else np.float32(0)
        precision, recall = _f32_ratio(tp, tp + fp), _f32_ratio(tp, self.unique_truths)
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = float(np.float32(2) * np.float32(precision) * np.float32(recall) / (np.float32(precision) + np.float32(recall)))
        return DarknetMap(
            iou_thresh=self.iou_thresh, points=self.points, conf_thresh=self.conf_thresh,
            mean_ap=float(np.mean(aps)) if classes else 0.0, precision=precision, recall=recall, f1=f1,
            tp=tp, fp=fp, fn=self.unique_truths - tp, average_iou=float(iou_sum / np.float32(tp + fp)) if tp + fp else 0.0,
            classes=[ClassResult(c, self.names[c], float(aps[c]), int(self.tp_at[c]), int(self.fp_at[c])) for c in range(classes)],
            detections=int(sum(len(s) for s in self.scores)), truths=self.unique_truths)


def evaluate(per_image: Iterable[Detections], truths: Sequence[np.ndarray], names: Sequence[str],
             difficult: Sequence[np.ndarray] | None = None, iou_thresh: float = 0.5, points: int = 0,
             conf_thresh: float = 0.25) -> DarknetMap:
    """darknet detector map over images: Detections and truths per image, in the valid list's order.

    Args:
        per_image (iterable of Detections): each image's detections, in order (consumed one at a time).
        truths (sequence of np.ndarray): each image's (n, 5) ground truth, in the same order.
        names (sequence of str): the class names.
        difficult (sequence of np.ndarray or None): each image's difficult boxes, if the dataset lists them.
        iou_thresh (float): the IoU a detection needs with a truth to match it.
        points (int): 0, 11 or 101 recall points.
        conf_thresh (float): the score above which detections count towards TP, FP and the average IoU.

    Returns:
        DarknetMap: the report.

    Raises:
        InputError: *points* is not one of POINTS.
    """
    accumulator = MapAccumulator(names, iou_thresh, points, conf_thresh)
    for i, dets in enumerate(per_image):
        accumulator.add(dets, truths[i], difficult[i] if difficult is not None else None)
    return accumulator.result()


def run_darknet_map(detector: Backend, data_file: str, iou_thresh: float = 0.5, points: int = 0,
                    conf_thresh: float = 0.25, thresh: float = MAP_THRESH, nms: float = 0.45, batch: int = 1,
                    progress: bool = True, in_flight: int = 1, **options: Any) -> DarknetMap:
    """`darknet detector map DATA CFG WEIGHTS -points N -iou_thresh T -thresh C` on a darknet-format
    dataset (darknet_data), with `detector` (a Darknet or an OnnxDetector; with *in_flight* above 1, one safe to
    call from that many threads: `Backend.concurrent`).

    Args:
        detector (Backend): the model.
        data_file (str): the dataset's .data file (its valid list, names, and optionally difficult list).
        iou_thresh (float): the IoU a detection needs with a truth to match it (-iou_thresh).
        points (int): 0, 11 or 101 recall points (-points).
        conf_thresh (float): the score above which detections count towards TP, FP and the average IoU (-thresh).
        thresh (float): the detection score threshold (darknet's 0.005).
        nms (float): the NMS overlap threshold.
        batch (int): images per detect() call.
        progress (bool): a progress line on stderr.
        in_flight (int): detect() calls running at once.
        **options: more detect() options (DetectOptions fields, tiles, tile_overlap, roi).

    Returns:
        DarknetMap: the report.

    Raises:
        InputError: the dataset cannot be read or does not fit the model's class count, or a detect() option out
            of range.
        InputError: *points* is not one of POINTS.
    """
    dataset = load_dataset(data_file, detector.num_classes)
    found = detect_paths(detector, dataset.images, thresh, nms, batch, progress, in_flight=in_flight,
                         class_scores=True, **options)
    return evaluate(found, dataset.truths, dataset.names, dataset.difficult, iou_thresh, points, conf_thresh)


def _f32_ratio(a: int, b: int) -> float:
    """darknet's (float)a / (float)b; 0/0 is NaN, as it prints (-nan)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float32(a) / np.float32(b))


def _average_precisions(scores: np.ndarray, class_of: np.ndarray, truth_of: np.ndarray, truth_count: np.ndarray,
                        classes: int, points: int) -> np.ndarray:
    """Per class AP over the detections sorted by score (stable, as glibc's merge-sort qsort)."""
    aps = np.zeros(classes, np.float64)
    if len(scores) == 0:
        return aps
    order = np.argsort(-scores, kind="stable")
    class_of, truth_of = class_of[order], truth_of[order]
    # a truth counts once, for its first detection by rank; later ones are false positives
    is_tp = np.zeros(len(order), bool)
    ranked = np.flatnonzero(truth_of >= 0)
    is_tp[ranked[np.unique(truth_of[ranked], return_index=True)[1]]] = True
    for c in np.unique(class_of):
        mine = class_of == c
        tp = np.cumsum(is_tp[mine]).astype(np.float64)
        fp = np.cumsum(~is_tp[mine]).astype(np.float64)
        precision = tp / (tp + fp)
        recall = tp / truth_count[c] if truth_count[c] > 0 else np.zeros_like(tp)
        if points == 0:
            # darknet walks the ranks backwards keeping the best precision seen: the area under that envelope
            envelope = np.maximum.accumulate(precision[::-1])[::-1]
            aps[c] = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope))
        else:
            # darknet's recall levels are point·(1/(points−1)): its -Ofast build hoists the division out of
            # the loop, so 0.3, 0.6, 0.7 (11 points) land one double above 3/10, 6/10, 7/10 and a class whose
            # recall reaches exactly those counts the next level's precision there — as darknet prints it
            levels = np.arange(points) * (1.0 / (points - 1))
            aps[c] = float(np.sum([precision[recall >= level].max(initial=0.0) for level in levels]) / points)
    return aps


def darknet_text(result: DarknetMap) -> str:
    """What `darknet detector map` prints, line for line (its progress chatter left out).

    Args:
        result (DarknetMap): the report.

    Returns:
        str: the per-class lines, then the precision/recall/F1, TP/FP/FN/average IoU and mAP lines (no final
        newline).
    """
    lines = [f"class_id = {c.id}, name = {c.name}, ap = {c.ap * 100:2.2f}%   \t (TP = {c.tp}, FP = {c.fp}) "
             for c in result.classes]
    lines += ["", f" for conf_thresh = {result.conf_thresh:1.2f}, precision = {_c_float(result.precision, '1.2f')}, "
                  f"recall = {_c_float(result.recall, '1.2f')}, F1-score = {_c_float(result.f1, '1.2f')} ",
              f" for conf_thresh = {result.conf_thresh:0.2f}, TP = {result.tp}, FP = {result.fp}, FN = {result.fn}, "
              f"average IoU = {result.average_iou * 100:2.2f} % ", "",
              f" IoU threshold = {result.iou_thresh * 100:2.0f} %, "
              + (f"used {result.points} Recall-points " if result.points else "used Area-Under-Curve for each unique Recall "),
              f" mean average precision (mAP@{result.iou_thresh:0.2f}) = {result.mean_ap:f}, or {result.mean_ap * 100:2.2f} % "]
    return "\n".join(lines)


def _c_float(value: float, spec: str) -> str:
    return "-nan" if value != value else format(value, spec)
