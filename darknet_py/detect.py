"""The detection pipeline: images → preprocess → model → decode → NMS → Detections.

Everything after the forward pass is batched tensor code on the model's device; NMS
runs once for the whole batch, grouping boxes by (image, class).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

import numpy as np
import torch

from .decode import decode
from .detections import Detections
from .errors import InputError
from .names import default_names
from .nms import GREEDY_DIOU_BETA, batched_nms
from .preprocess import Transform, as_bgr8, prepare, read_image

ImageLike = Union[np.ndarray, str, os.PathLike]
MAX_CANDIDATES = 30000  # per batch, by score, before NMS (bounds the pairwise matrix)


@dataclass(frozen=True)
class DetectOptions:
    conf_thresh: float = 0.25
    nms_thresh: float = 0.45
    multi_label: bool = False  # darknet keeps every class above threshold; default keeps the best class
    letterbox: bool | None = None  # None: the cfg's [net] letter_box
    classes: tuple[int, ...] | None = None  # keep only these class ids
    nms_kind: str | None = None  # None: the cfg's; "iou", "greedynms", "diounms", "none"
    max_det: int = 1000

    def validate(self) -> None:
        if not 0 <= self.conf_thresh <= 1:
            raise InputError(f"confidence threshold must be in [0, 1], got {self.conf_thresh}")
        if not 0 <= self.nms_thresh <= 1:
            raise InputError(f"NMS threshold must be in [0, 1], got {self.nms_thresh}")
        if self.nms_kind not in (None, "iou", "default", "greedynms", "diounms", "none"):
            raise InputError(f"unknown NMS kind '{self.nms_kind}'; use iou, greedynms, diounms or none")


def _load(item: ImageLike) -> tuple[np.ndarray, str]:
    if isinstance(item, np.ndarray):
        return as_bgr8(item), ""
    if isinstance(item, (str, os.PathLike)):
        return read_image(item), os.fspath(item)
    raise InputError(f"cannot detect on a {type(item).__name__}: give a BGR numpy array or an image path")


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if isinstance(images, (np.ndarray, str, os.PathLike)):
        return [images]
    return list(images)


def nms_settings(model, options: DetectOptions) -> tuple[str, float]:
    """(overlap kind, DIoU beta) from the option or the cfg's first [yolo] layer."""
    kind = options.nms_kind or (model.heads[0].nms_kind if model.head_indices else "default")
    if kind == "greedynms":
        return "diou", GREEDY_DIOU_BETA
    if kind == "diounms":
        return "diou", model.heads[0].beta_nms
    return ("none" if kind == "none" else "iou"), GREEDY_DIOU_BETA


def postprocess(model, heads: list[torch.Tensor], transforms: list[Transform], options: DetectOptions,
                names: list[str], sources: list[str], net_size: tuple[int, int]) -> list[Detections]:
    boxes, objectness, probs = decode(heads, model.heads, *net_size)
    scores = objectness.unsqueeze(-1) * probs  # N, M, C: darknet's objectness × class probability
    # darknet drops a box whose objectness is not above the threshold before looking at classes
    scores = scores * (objectness.unsqueeze(-1) > options.conf_thresh)
    if options.classes is not None:
        allowed = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
        allowed[[c for c in options.classes if 0 <= c < scores.shape[-1]]] = True
        scores = scores * allowed
    if options.multi_label:
        image_idx, box_idx, class_idx = (scores > options.conf_thresh).nonzero(as_tuple=True)
        chosen = scores[image_idx, box_idx, class_idx]
    else:
        best, best_class = scores.max(-1)
        image_idx, box_idx = (best > options.conf_thresh).nonzero(as_tuple=True)
        class_idx, chosen = best_class[image_idx, box_idx], best[image_idx, box_idx]
    if chosen.numel() > MAX_CANDIDATES:
        top = chosen.topk(MAX_CANDIDATES).indices
        image_idx, box_idx, class_idx, chosen = image_idx[top], box_idx[top], class_idx[top], chosen[top]
    candidate_boxes = boxes[image_idx, box_idx]
    kind, beta = nms_settings(model, options)
    if kind == "none":
        keep = chosen.argsort(descending=True)
    else:
        groups = image_idx * scores.shape[-1] + class_idx
        keep = batched_nms(candidate_boxes, chosen, groups, options.nms_thresh, kind, beta)
    kept_image = image_idx[keep].cpu().numpy()
    kept_boxes, kept_scores, kept_classes = (t[keep].cpu().numpy() for t in (candidate_boxes, chosen, class_idx))
    results = []
    for i, (transform, source) in enumerate(zip(transforms, sources)):
        mine = np.flatnonzero(kept_image == i)[: options.max_det]
        results.append(Detections(
            boxes=transform.to_image(kept_boxes[mine].astype(np.float32)).reshape(-1, 4),
            scores=kept_scores[mine].astype(np.float32),
            class_ids=kept_classes[mine].astype(np.int64),
            names=names,
            image_size=(transform.image_w, transform.image_h),
            source=source,
        ))
    return results


def detect(model, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
           *, names: list[str] | None = None, **options) -> list[Detections]:
    """Detect on one image or several (BGR arrays as cv2 reads them, or paths); one Detections per image."""
    opts = DetectOptions(conf_thresh=conf_thresh, nms_thresh=nms_thresh, **options)
    opts.validate()
    items = as_image_list(images)
    if not items:
        return []
    loaded = [_load(item) for item in items]
    letterbox = model.letter_box if opts.letterbox is None else opts.letterbox
    net_size = (model.width, model.height)
    prepared = [prepare(img, *net_size, letterbox) for img, _ in loaded]
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    batch = torch.from_numpy(np.stack([p for p, _ in prepared])).to(device=device, dtype=dtype)
    with torch.inference_mode():
        heads = [h.float() for h in model(batch)]
        return postprocess(model, heads, [t for _, t in prepared], opts, names or default_names(model.num_classes),
                           [s for _, s in loaded], net_size)


def iter_batches(items: Iterable, size: int) -> Iterable[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
