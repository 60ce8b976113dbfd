"""The detection pipeline: images → preprocess → model → decode → NMS → Detections.

Everything after the forward pass is batched tensor code on the model's device; NMS
runs once for the whole batch, grouping boxes by (image, class). The defaults are
`darknet detector test`'s: threshold 0.25, the cfg's NMS kind at 0.45, darknet's resize, and
every class above the threshold listed for each box (multi-label). Boxes are compared where
darknet compares them, in coordinates relative to the image (its DIoU depends on that frame).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.in_flight import iter_batches
from ..format.names import class_filter, default_names
from ..model.layers.head import HeadSpec
from . import darknet_resize
from .backend import Backend, Gated
from .buffers import ThreadBuffers
from .detections import Detections
from .nms import GREEDY_DIOU_BETA, batched_nms
from .preprocess import (
    DEFAULT_RESIZE,
    ENCODED,
    ImageLike,
    Transform,
    check_resize,
    decode_image,
    is_pil_image,
    network_image,
    pil_array,
    prepare,
    read_image,
    tensor_array,
    transform_for,
)
from .tiles import DEFAULT_OVERLAP, WindowOptions, detect_in_windows, forward_size

MAX_INPUT_PIXELS_PER_CALL = 64 * 416 * 416  # network input pixels of one detect() batch (see images_per_call)
PREPROCESS_THREADS = 8  # at most; image decoding and resizing scale with cores until memory bandwidth binds
HOST_NMS_MAX = 2048  # candidates up to which a GPU batch runs its NMS on the CPU (milliseconds there)
MAX_CANDIDATES = 30000  # per image, by score, before NMS (bounds the NMS work at very low thresholds)


OPTION_ALIASES = {"thresh": "conf_thresh", "conf": "conf_thresh", "score_thresh": "conf_thresh",
                  "nms": "nms_thresh", "iou": "nms_thresh", "iou_thresh": "nms_thresh"}  # other tools' names


@dataclass(frozen=True)
class DetectOptions:
    conf_thresh: float = 0.25
    nms_thresh: float = 0.45
    # None: darknet's rule, every class above the threshold (one per box where a backend cannot: an ONNX
    # graph with NMS inside); False: the best class of each box only
    multi_label: bool | None = None
    letterbox: bool | None = None  # None: the cfg's [net] letter_box
    resize: str | None = None  # None: the model's ("darknet" unless loaded otherwise); "darknet" | "opencv"
    classes: tuple[int, ...] | None = None  # keep only these class ids (detect() also takes names)
    nms_kind: str | None = None  # None: the cfg's; "iou", "greedynms", "diounms", "none"
    max_det: int = 1000
    class_scores: bool = False  # also return each box's scores over all classes before NMS (Detections.class_scores)
    # darknet compares boxes relative to the image in `detector test` and `map`, in image pixels in `detector
    # valid`; IoU does not care, its DIoU (greedynms, diounms) does
    nms_in_pixels: bool = False

    @classmethod
    def given(cls, **options) -> DetectOptions:
        """The options of a detect() call; a keyword that is none of them is an InputError naming it (a dataclass
        would raise a TypeError about DetectOptions.__init__, a name the caller never wrote)."""
        known = [f.name for f in dataclasses.fields(cls)]
        for name in options:
            if name not in known:
                close = OPTION_ALIASES.get(name) or next(iter(difflib.get_close_matches(name, known, 1)), None)
                hint = f" (did you mean {close}?)" if close else ""
                raise InputError(f"detect() has no option '{name}'{hint}; it takes {', '.join(known)}, names, tiles, "
                                 "tile_overlap and roi")
        return cls(**options)

    def validate(self, num_classes: int) -> None:
        """InputError for an option out of range; `num_classes`: the model's (a filter on a class it lacks would find
        nothing, silently)."""
        for name, value in (("confidence threshold", self.conf_thresh), ("NMS threshold", self.nms_thresh)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
        if isinstance(self.max_det, bool) or not isinstance(self.max_det, numbers.Integral) or self.max_det < 1:
            raise InputError(f"max_det must be a whole number of detections, 1 or more, got {self.max_det!r}")
        if self.nms_kind not in (None, "iou", "default", "greedynms", "diounms", "none"):
            raise InputError(f"unknown NMS kind '{self.nms_kind}'; use iou, greedynms, diounms or none")
        if self.resize is not None:
            check_resize(self.resize)
        unknown = [c for c in self.classes or () if not 0 <= c < num_classes]
        if unknown:
            raise InputError(f"classes {unknown}: not class ids of this model (it has {num_classes}: 0..{num_classes - 1})")


IMAGE_KINDS = "a BGR numpy array, an image path, an image file's bytes, a (C, H, W) RGB tensor or a PIL image"


def load_image(item: ImageLike, channels: int = 3) -> tuple[np.ndarray, str]:
    """An image as a network with *channels* input channels reads it (preprocess.network_image, read_image,
    decode_image), and its path ("" for an array or bytes).

    Args:
        item (ImageLike): an array, a path, an image file's bytes, a (C, H, W) RGB tensor or a PIL image.
        channels (int): the network's input channels.

    Returns:
        tuple: (pixels, source path or "").

    Raises:
        InputError: anything else, or an image that cannot be read.
    """
    if isinstance(item, np.ndarray):
        return network_image(item, channels), ""
    if isinstance(item, (str, os.PathLike)):
        return read_image(item, channels), hide_credentials(os.fspath(item))  # an image URL's password: not kept
    if isinstance(item, ENCODED):
        return decode_image(item, channels), ""
    if isinstance(item, torch.Tensor):
        return network_image(tensor_array(item, channels), channels, "tensor image"), ""
    if is_pil_image(item):
        return network_image(pil_array(item), channels, "PIL image"), ""
    raise _not_an_image(item)


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    """The images of one argument: a single image (an array, a path, bytes, a tensor, a PIL image) or a batch (a
    list, an (N, H, W, C) array, an (N, C, H, W) tensor)."""
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        return list(images)
    if isinstance(images, (np.ndarray, torch.Tensor, str, os.PathLike, *ENCODED)) or is_pil_image(images):
        return [images]
    try:
        return list(images)
    except TypeError:  # not iterable: one image of a kind load_image refuses, with its words
        raise _not_an_image(images) from None


def _not_an_image(value: object) -> InputError:
    return InputError(f"cannot read a {type(value).__name__} as an image: give {IMAGE_KINDS}, or a list of them")


def nms_settings(specs: Sequence[HeadSpec], options: DetectOptions) -> tuple[str, float]:
    """(overlap kind, DIoU beta) from the option or the cfg's last detection layer (darknet's detector
    test/map read nms_kind from the last [yolo], [region] or [Gaussian_yolo]; [region] has none: IoU)."""
    kind = options.nms_kind or (specs[-1].nms_kind if specs else "default")
    if kind == "greedynms":
        return "diou", GREEDY_DIOU_BETA
    if kind == "diounms":
        return "diou", specs[-1].beta_nms
    return ("none" if kind == "none" else "iou"), GREEDY_DIOU_BETA


class Chosen(NamedTuple):
    """What passes the thresholds, flat over the batch: one row per (candidate box, class) NMS sees."""

    image_idx: torch.Tensor  # (K,) image of each row
    box_idx: torch.Tensor  # (K,) candidate box within its image
    class_idx: torch.Tensor  # (K,)
    scores: torch.Tensor  # (K,) the score compared with the threshold
    boxes: torch.Tensor  # (K, 4) xyxy relative to the image (PreparedBatch.relative)
    num_classes: int
    gated: Gated  # the boxes above the objectness threshold, every class score (for DetectOptions.class_scores)
    gated_row: torch.Tensor  # (K,) each row's box among `gated`, on gated's device
    allowed: torch.Tensor | None  # (C,) the DetectOptions.classes gate, if any


def choose(gated: Gated, batch: PreparedBatch, options: DetectOptions) -> Chosen:
    """The boxes above the objectness threshold (`Backend.candidates_above`) → the (box, class) rows above the
    score threshold, with the classes asked for; multi-label or the best class of each box.

    Args:
        gated (Gated): darknet drops a box whose objectness is not above the threshold before looking at its classes.
        batch (PreparedBatch): the images' transforms (boxes come out relative to each image).
        options (DetectOptions): conf_thresh, classes, multi_label.

    Returns:
        Chosen: on the CPU when a GPU batch has few enough rows (see HOST_NMS_MAX).
    """
    if _rows_on_host(gated):
        return _choose_on_host(gated, batch, options)
    scores = gated.scores  # (B, C)
    allowed = None
    if options.classes is not None:
        allowed = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
        allowed[[c for c in options.classes if 0 <= c < scores.shape[-1]]] = True
        scores = scores * allowed
    if options.multi_label is not False:
        row, class_idx = (scores > options.conf_thresh).nonzero(as_tuple=True)
        chosen = scores[row, class_idx]
    else:
        best, best_class = scores.max(-1)
        row = (best > options.conf_thresh).nonzero().squeeze(1)
        class_idx, chosen = best_class[row], best[row]
    image_idx = gated.image_idx[row]
    if chosen.numel() > MAX_CANDIDATES:
        top = _top_per_image(image_idx, chosen, MAX_CANDIDATES)
        row, image_idx, class_idx, chosen = row[top], image_idx[top], class_idx[top], chosen[top]
    box_idx, candidate_boxes = gated.box_idx[row], batch.relative(image_idx, gated.boxes[row])
    if candidate_boxes.is_cuda and len(chosen) <= HOST_NMS_MAX:
        # NMS over a few hundred boxes is dozens of tiny kernels and several syncs on a GPU (2.2 ms
        # per image on an H100 host), microseconds of arithmetic on the CPU: bring the candidates over once
        image_idx, box_idx, class_idx, chosen, candidate_boxes = (
            t.cpu() for t in (image_idx, box_idx, class_idx, chosen, candidate_boxes))
    return Chosen(image_idx, box_idx, class_idx, chosen, candidate_boxes, gated.scores.shape[-1], gated, row, allowed)


def _rows_on_host(gated: Gated) -> bool:
    return gated.scores.device.type == "cpu" and gated.scores.dtype == torch.float32 and gated.boxes.dtype == torch.float32


def _choose_on_host(gated: Gated, batch: PreparedBatch, options: DetectOptions) -> Chosen:
    """`choose` in numpy, for CPU float32 rows: the same selections and floats (indexing, comparisons and one
    subtraction and division per coordinate), in a dozen calls of a microsecond each where torch's dispatch took
    tens (0.3 ms of detect() right after the network on 2 cores)."""
    scores = gated.scores.numpy()
    allowed = None
    if options.classes is not None:
        allowed = np.zeros(scores.shape[-1], bool)
        allowed[[c for c in options.classes if 0 <= c < scores.shape[-1]]] = True
        scores = scores * allowed
    threshold = np.float32(options.conf_thresh)
    if options.multi_label is not False:
        row, class_idx = np.nonzero(scores > threshold)
        chosen = scores[row, class_idx]
    else:
        best_class = scores.argmax(-1)
        best = np.take_along_axis(scores, best_class[:, None], -1)[:, 0]
        row = np.flatnonzero(best > threshold)
        class_idx, chosen = best_class[row], best[row]
    image_idx = gated.image_idx.numpy()[row]
    if chosen.size > MAX_CANDIDATES:
        top = _top_per_image(torch.from_numpy(image_idx), torch.from_numpy(chosen), MAX_CANDIDATES).numpy()
        row, image_idx, class_idx, chosen = row[top], image_idx[top], class_idx[top], chosen[top]
    boxes = batch.relative_on_host(image_idx, gated.boxes.numpy()[row])
    return Chosen(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (image_idx, gated.box_idx.numpy()[row], class_idx, chosen, boxes)),
                  scores.shape[-1], gated, torch.from_numpy(row), None if allowed is None else torch.from_numpy(allowed))


def suppress(specs: Sequence[HeadSpec], chosen: Chosen, batch: PreparedBatch, options: DetectOptions) -> torch.Tensor:
    """NMS per (image, class) with the cfg's overlap kind (nms_settings).

    Args:
        specs (Sequence[HeadSpec]): the network's detection heads (the last one names the NMS kind).
        chosen (Chosen): from `choose`.
        batch (PreparedBatch): the images' sizes (for `nms_in_pixels`).
        options (DetectOptions): nms_thresh, nms_kind, nms_in_pixels.

    Returns:
        Tensor: indices into `chosen` of the kept rows, best first within each group.
    """
    kind, beta = nms_settings(specs, options)
    if kind == "none":
        return chosen.scores.argsort(descending=True, stable=True)
    groups = chosen.image_idx * chosen.num_classes + chosen.class_idx
    frame = batch.pixel_boxes(chosen.image_idx, chosen.boxes) if options.nms_in_pixels else chosen.boxes
    return batched_nms(frame, chosen.scores, groups, options.nms_thresh, kind, beta)


def finish(chosen: Chosen, keep: torch.Tensor, batch: PreparedBatch, options: DetectOptions,
           names: list[str]) -> list[Detections]:
    """The kept rows → one Detections per image, with class_scores when asked for.

    Args:
        chosen (Chosen): from `choose`.
        keep (Tensor): indices into `chosen`, from `suppress`.
        batch (PreparedBatch): the images' sizes and sources (PreparedBatch.results).
        options (DetectOptions): max_det, class_scores, conf_thresh.
        names (list[str]): class names.

    Returns:
        list[Detections]: one per image of the batch, in its order.
    """
    class_scores = None
    if options.class_scores:  # darknet's det.prob: every class above the threshold, as it was before NMS
        # (a kept row's box passed the objectness gate: its class scores as they are, less the classes not asked for)
        every = chosen.gated.scores[chosen.gated_row[keep.to(chosen.gated_row.device)]]
        if chosen.allowed is not None:
            every = every * chosen.allowed
        class_scores = every * (every > options.conf_thresh)
    return batch.results(chosen.image_idx[keep], chosen.boxes[keep], chosen.scores[keep], chosen.class_idx[keep],
                         names, options.max_det, chosen.box_idx[keep], class_scores)


def select(specs: Sequence[HeadSpec], gated: Gated, batch: PreparedBatch, options: DetectOptions,
           names: list[str]) -> list[Detections]:
    """The boxes above the objectness threshold (`Backend.candidates_above`) → Detections per image: `choose`,
    then `suppress` (NMS), then `finish` (the stages benchmarks/pipeline.py times apart)."""
    chosen = choose(gated, batch, options)
    return finish(chosen, suppress(specs, chosen, batch, options), batch, options, names)


def _top_per_image(image_idx: torch.Tensor, scores: torch.Tensor, cap: int) -> torch.Tensor:
    """Indices of the `cap` best candidates of each image (so results never depend on batch-mates)."""
    order = scores.argsort(descending=True)
    order = order[image_idx[order].argsort(stable=True)]  # by image, best first within each
    counts = torch.bincount(image_idx[order])
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order), device=order.device) - starts[image_idx[order]]
    return order[rank < cap]


@dataclass
class PreparedBatch:
    """Network-ready images and what it takes to map boxes back onto each original."""

    pixels: np.ndarray | torch.Tensor  # N, C, H, W float32 in [0, 1], RGB (a tensor when made on the model's GPU)
    transforms: list[Transform]
    sources: list[str]

    def relative(self, image_idx: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """xyxy boxes in network pixels → relative to their image (0..1 across it; not clipped), as
        darknet's correct_yolo_boxes gives them: the frame its NMS and `map` compare boxes in."""
        frame = torch.tensor([[t.pad_x, t.pad_y, t.scale_x * t.image_w, t.scale_y * t.image_h] for t in self.transforms],
                             dtype=torch.float32, device=boxes.device)[image_idx]
        offset, extent = frame[:, :2].repeat(1, 2), frame[:, 2:].repeat(1, 2)
        return (boxes.float() - offset) / extent

    def relative_on_host(self, image_idx: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """`relative` in numpy for float32 boxes: the same floats."""
        frame = np.array([[t.pad_x, t.pad_y, t.scale_x * t.image_w, t.scale_y * t.image_h] for t in self.transforms],
                         np.float32)[image_idx]
        return (boxes - np.tile(frame[:, :2], 2)) / np.tile(frame[:, 2:], 2)

    def pixel_boxes(self, image_idx: torch.Tensor, relative: torch.Tensor) -> torch.Tensor:
        """Relative boxes → image pixels (not clipped)."""
        size = torch.tensor([[t.image_w, t.image_h] for t in self.transforms], dtype=torch.float32,
                            device=relative.device)[image_idx]
        return relative * size.repeat(1, 2)

    def results(self, image_idx: torch.Tensor, boxes: torch.Tensor, scores: torch.Tensor, class_ids: torch.Tensor,
                names: list[str], max_det: int, box_ids: torch.Tensor | None = None,
                class_scores: torch.Tensor | None = None) -> list[Detections]:
        """Kept detections (flat, sorted by score within each image; boxes relative to the image, as
        `relative` makes them) → one Detections per image. `box_ids` name the candidate box each
        detection came from: several classes of one box share it."""
        kept_image = image_idx.cpu().numpy()
        kept_boxes, kept_scores, kept_classes = (t.cpu().numpy() for t in (boxes, scores, class_ids))
        kept_ids = None if box_ids is None else box_ids.cpu().numpy()
        kept_class_scores = None if class_scores is None else class_scores.cpu().numpy()
        out = []
        for i, (transform, source) in enumerate(zip(self.transforms, self.sources)):
            mine = np.flatnonzero(kept_image == i)[:max_det]
            size = np.array([transform.image_w, transform.image_h] * 2, np.float32)
            unclipped = (kept_boxes[mine].astype(np.float32) * size).reshape(-1, 4)
            out.append(Detections(
                boxes=np.minimum(np.maximum(unclipped, 0), size),
                scores=kept_scores[mine].astype(np.float32),
                class_ids=kept_classes[mine].astype(np.int64),
                names=names,
                image_size=(transform.image_w, transform.image_h),
                source=source,
                unclipped=unclipped,
                box_ids=None if kept_ids is None else kept_ids[mine].astype(np.int64),
                class_scores=None if kept_class_scores is None else kept_class_scores[mine].astype(np.float32),
            ))
        return out


def prepare_batch(images: ImageLike | Sequence[ImageLike], width: int, height: int, letterbox: bool,
                  resize: str = DEFAULT_RESIZE, device: torch.device | None = None, channels: int = 3,
                  reuse: bool = False) -> PreparedBatch:
    """Read and pre-process every image into one batch; several images in threads (OpenCV, numpy and
    torch release the GIL), one in the caller's. Errors come in input order.

    With darknet's resize, a colour network and a CUDA `device`, the images go up as uint8 and are resized
    there: `pixels` is then a tensor on that device. Otherwise pixels are a numpy array. `channels`: the
    network's input channels (1: grey, read as darknet reads it; see preprocess). `reuse`: host pixels go into
    this thread's buffer of that shape, which the next reusing call overwrites (detect(): the batch is done
    with before it returns); otherwise into a new array the caller may keep.
    """
    items = as_image_list(images)
    threaded = len(items) > 1
    if resize == "darknet" and device is not None and device.type == "cuda" and channels == 3:
        loaded = list(_preprocess_pool().map(load_image, items)) if threaded else [load_image(item) for item in items]
        pixels, _ = darknet_resize.prepare_batch_on_device([image for image, _ in loaded], width, height, letterbox, device,
                                                           _preprocess_pool().map if threaded else map)
        transforms = [transform_for(image.shape[1], image.shape[0], width, height, letterbox, resize) for image, _ in loaded]
        return PreparedBatch(pixels, transforms, [source for _, source in loaded])
    shape = (len(items), channels, height, width)
    pixels = _input_buffers.get("pixels", shape) if reuse else np.empty(shape, np.float32)

    def one(i: int) -> tuple[Transform, str]:
        image, source = load_image(items[i], channels)
        return prepare(image, width, height, letterbox, out=pixels[i], resize=resize)[1], source

    done = list(_preprocess_pool().map(one, range(len(items)))) if threaded else [one(i) for i in range(len(items))]
    return PreparedBatch(pixels, [t for t, _ in done], [s for _, s in done])


_input_buffers = ThreadBuffers()  # detect()'s network inputs (prepare_batch's reuse)


@functools.cache
def _preprocess_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(PREPROCESS_THREADS, os.cpu_count() or 1), thread_name_prefix="darknet_py-prep")


os.register_at_fork(after_in_child=_preprocess_pool.cache_clear)  # a forked child has none of the parent's threads


def detect(backend: Backend, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25,
           nms_thresh: float = 0.45, *, names: list[str] | None = None, tiles: int | str | None = None,
           tile_overlap: float = DEFAULT_OVERLAP, roi: tuple[int, int, int, int] | None = None,
           **options) -> list[Detections]:
    """The detection pipeline around any backend: images → pre-process → `backend.candidates` → thresholds
    and NMS → Detections.

    Args:
        backend (Backend): what runs the network (darknet_py.backends: torch, onnxruntime, OpenVINO).
        images: an image path, a BGR uint8 array (H, W, 3) as cv2 reads it, an image file's bytes, a (C, H, W) RGB
            tensor as torchvision's (uint8, or float in [0, 1]), a PIL image, or a list of them (or an (N, H, W, 3)
            array, an (N, C, H, W) tensor); a grey network, `channels=1`, reads files as grey and converts the
            others (see darknet_py.pipeline.preprocess).
        conf_thresh (float): score threshold; a box's objectness must exceed it too (darknet's rule).
        nms_thresh (float): NMS overlap threshold.
        names (list[str], optional): class names (default: the backend's, else COCO's for 80 classes).
        tiles (int or "auto", optional): detect in overlapping tiles of this side in source pixels ("auto": about
            the network's input size) plus the whole image, run together and merged (darknet_py.pipeline.tiles).
        tile_overlap (float): fraction of the tile side neighbouring tiles share (default 0.2).
        roi (tuple[int, int, int, int], optional): x1, y1, x2, y2: detect in this region of each image only;
            boxes stay in image pixels.
        **options: the other DetectOptions fields (multi_label, letterbox, resize, classes, nms_kind, max_det, ...);
            `classes` may name classes (["dog", 7]) as the command line's --classes does.

    Returns:
        list[Detections]: one per image, in input order.

    Raises:
        InputError: an option out of range, such as a class id the model does not have.
    """
    if names is not None and len(names) < backend.num_classes:  # a class beyond them would be labelled by its number
        raise InputError(f"names: {len(names)} given for a model of {backend.num_classes} classes")
    names = names or backend.names or default_names(backend.num_classes)
    if options.get("classes") is not None:
        options["classes"] = class_filter(options["classes"], names)
    opts = DetectOptions.given(conf_thresh=conf_thresh, nms_thresh=nms_thresh, **options)
    opts.validate(backend.num_classes)
    windows = WindowOptions(tiles, tile_overlap, roi)
    windows.validate()
    items = as_image_list(images)  # once: a generator of images is read through a single time
    if not items:
        return []
    if windows.wanted:
        if windows.tiles is not None and backend.stateful:  # a recurrent state runs per batch slot, frame to frame
            raise InputError("tiles need a model without recurrent layers: its state would pass from tile to tile")
        loaded = [load_image(item, backend.channels) for item in items]
        return detect_in_windows(loaded, windows, backend.width, backend.height,
                                 lambda crops: _detect_whole(backend, crops, opts, names), opts.nms_thresh, opts.max_det,
                                 forward_size(backend.traits.device))
    return _detect_in_parts(backend, items, opts, names)


def images_per_call(width: int, height: int) -> int:
    """How many images one network call takes at most at this input size: MAX_INPUT_PIXELS_PER_CALL worth (64 at
    416x416, 4 at P7's 1536x1536), so that a long list given to detect() cannot take all the memory at once."""
    return max(1, MAX_INPUT_PIXELS_PER_CALL // (width * height))


def _detect_in_parts(backend: Backend, items: list[ImageLike], opts: DetectOptions,
                     names: list[str]) -> list[Detections]:
    """The plain pass over a list of any length: parts of `images_per_call` images, one after another (a list of
    1,000 paths went through the network as one batch: about 14 MB per 416x416 image, 14 GB at once). A recurrent
    network's list stays one batch: each image is a batch slot whose state runs on to the next call."""
    per_call = len(items) if backend.stateful else images_per_call(backend.width, backend.height)
    if len(items) <= per_call:
        return _detect_whole(backend, items, opts, names)
    return [dets for part in iter_batches(items, per_call) for dets in _detect_whole(backend, part, opts, names)]


def _detect_whole(backend: Backend, images: ImageLike | Sequence[ImageLike], opts: DetectOptions,
                  names: list[str]) -> list[Detections]:
    """The plain pass: each image whole through the network, one batch."""
    letterbox = backend.letter_box if opts.letterbox is None else opts.letterbox
    batch = prepare_batch(images, backend.width, backend.height, letterbox, opts.resize or backend.resize,
                          backend.input_device, backend.channels, reuse=True)
    return select(backend.heads, backend.candidates_above(batch.pixels, opts.conf_thresh), batch, opts, names)
