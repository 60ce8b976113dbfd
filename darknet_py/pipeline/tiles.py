"""Tiles and regions: detection on large images in windows about the network's size, merged into one result.

A 4000-pixel photo squeezed into a 416-pixel network loses every object under ~40 pixels. With
`tiles`, the image (or the `roi` region of it) is cut into overlapping tiles of `tiles` source pixels
a side ("auto": the fewest tiles at most AUTO_MAX_SCALE times the network's input size, so that a tile
goes through the network at about its own resolution), plus one window over the whole region, which
keeps the objects larger than a tile::

    windows = tile_grid(1920, 1440, 416, 416, overlap=0.2)      # 6 x 5 tiles, evenly spaced, corners included
    model.detect(image, tiles="auto", tile_overlap=0.2)         # 5 x 4 tiles of 458 x 424 + the whole image

Every window is detected exactly as a whole image is (the same resize, thresholds and the cfg's NMS,
darknet's rules) by whichever backend runs the network, the windows of an image together (one batch on
an accelerator; CPU_WINDOWS_PER_FORWARD at a time on a CPU, where larger batches are slower); the
windows' detections are then merged into one `Detections` in image pixels (`merge`).

How boxes from different windows are merged (the choice, and why; benchmarks/tiles.py measured it):

* A tile sees only the part of an object inside it; the whole-image window sees all of it, coarser. So a
  detection whose side lies on a tile edge inside the image (within EDGE_MARGIN of it) is a *cut piece*:
  the object may go on past that side. Every other detection saw its object whole.
* Two detections of one class from different windows are compared *in the region both windows saw*:
  each box is clipped to the intersection of the two windows and the clipped boxes' IoU is tested
  against the NMS threshold. A piece of a person cut by a tile edge then matches the whole person seen
  by the neighbouring tile or by the whole-image pass (they agree inside the tile), and two pieces of an
  object larger than the overlap match each other (they agree in the overlap) — while a big box never
  swallows a small object of the same class inside it, as matching by intersection over the smaller
  box (SAHI's IOS) does.
* Matches are resolved greedily, as NMS, with whole detections before cut pieces and by score within
  each: a cut piece merges into the whole detection it agrees with, which takes the piece's score when
  that is higher (the tile saw the object at full resolution) but keeps its own box (it saw all of it).
  Cut pieces that match no whole detection merge into the best of them, whose cut sides take the
  farthest extent of the pieces merged into it (DarkHelp's joining of boxes split by tile edges, only
  where a box was cut); its other sides keep their own coordinates.

SAHI's default, GREEDYNMM with IOS (every overlapping box merged into the union, with the best score),
grows boxes wherever two overlap and, at an evaluation's low threshold, merges real objects into the
low-score boxes around them (SAHI itself switches to NMS/IoU below a 0.1 threshold). Plain IoU NMS across
windows keeps cut pieces beside the whole box. DarkHelp's tiles do not overlap and have no whole-image
pass: it joins boxes cut by tile edges, but an object larger than a tile is seen only in pieces.
docs/tiles.md has the measurements (benchmarks/tiles.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.errors import ImageFitError, InputError
from .detections import Detections

MIN_TILE = 32  # pixels: below this a tile holds too little for any detector
MAX_OVERLAP = 0.9  # of the tile side; 0.9 already makes 100 tiles of every 10
DEFAULT_OVERLAP = 0.2  # SAHI's default too
AUTO_MAX_SCALE = 1.25  # "auto" tiles: the fewest per axis whose side is at most this times the network's
EDGE_MARGIN = 0.02  # of the window side (at least 2 pixels): a box side this close to a tile edge was cut by it
WINDOWS_PER_FORWARD = 64  # windows in one network batch at most (an image with more is run in several)
# on a CPU, torch is cheapest per window at batch 4 and slower past it, once the activations leave the caches
# (benchmarks/tiles.py, yolov4-tiny 416, 2 cores: 33 ms a window at 4, 43 one at a time, 42 at 31; onnxruntime
# about flat): windows go 4 at a time there
CPU_WINDOWS_PER_FORWARD = 4
_MATCH_ROWS = 512  # rows of the pairwise overlap computed at once (bounds memory at any detection count)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class WindowOptions:
    """Where in an image to detect: tiles and/or a region.

    Args:
        tiles (int, "auto" or None): tile side in source pixels; "auto": about the network's input size
            (auto_tile_side); None: no tiles.
        overlap (float): fraction of the tile side that neighbouring tiles share, in [0, MAX_OVERLAP].
        roi (tuple[int, int, int, int] or None): x1, y1, x2, y2 in image pixels: detect in this region
            only (boxes still in image pixels); None: the whole image.
    """

    tiles: int | str | None = None
    overlap: float = DEFAULT_OVERLAP
    roi: Box | None = None

    @property
    def wanted(self) -> bool:
        """Whether detection runs in windows at all (without tiles or a region it is the plain pass)."""
        return self.tiles is not None or self.roi is not None

    def validate(self) -> None:
        """Raise InputError, one line, for a bad tile side, overlap or region."""
        check_tiles(self.tiles)
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, (int, float)) or \
                not 0 <= self.overlap <= MAX_OVERLAP:
            raise InputError(f"tile overlap {self.overlap!r}: give a fraction of the tile side from 0 to {MAX_OVERLAP}")
        if self.roi is not None:
            check_roi(self.roi)

    def tile_size(self, width: int, height: int, net_w: int, net_h: int) -> tuple[int, int] | None:
        """(width, height) of a tile in source pixels for a width x height region and a network of
        net_w x net_h (see `auto_tile_side`); None without tiles."""
        if self.tiles is None:
            return None
        if self.tiles == "auto":
            return auto_tile_side(width, net_w, self.overlap), auto_tile_side(height, net_h, self.overlap)
        return int(self.tiles), int(self.tiles)


def auto_tile_side(side: int, net: int, overlap: float) -> int:
    """The "auto" tile side along one axis: the fewest tiles that cover `side` pixels with `overlap`
    and are at most AUTO_MAX_SCALE times the network's input `net`, as large as covering needs.
    So a tile goes through the network at about its own resolution (shrunk by at most 1/AUTO_MAX_SCALE),
    and a side up to AUTO_MAX_SCALE times the network's is not tiled at all."""
    if side <= AUTO_MAX_SCALE * net:
        return side
    count = math.ceil((side / (AUTO_MAX_SCALE * net) - overlap) / (1 - overlap))
    return math.ceil(side / (count - (count - 1) * overlap))


def check_tiles(tiles: object) -> None:
    """`tiles` must be None, "auto" or a whole number of pixels of at least MIN_TILE."""
    if tiles is None or tiles == "auto":
        return
    if isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < MIN_TILE:
        raise InputError(f"tiles {tiles!r}: give 'auto' (tiles about the network's input size) or a tile side of "
                         f"at least {MIN_TILE} pixels")


def check_roi(roi: object) -> None:
    """`roi` must be four whole numbers x1, y1, x2, y2 with 0 <= x1 < x2 and 0 <= y1 < y2."""
    if not isinstance(roi, (tuple, list)) or len(roi) != 4 or \
            not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in roi):
        raise InputError(f"region {roi!r}: give four whole pixel coordinates x1, y1, x2, y2")
    x1, y1, x2, y2 = roi
    if min(roi) < 0:
        raise InputError(f"region {x1},{y1},{x2},{y2}: coordinates are pixels from the top-left corner, 0 or more")
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"region {x1},{y1},{x2},{y2} is empty: x2 must exceed x1 and y2 must exceed y1")


def parse_tiles(text: str) -> int | str:
    """`--tiles` text → "auto" or a tile side in pixels (InputError, one line, otherwise)."""
    value: int | str = text.strip().lower()
    if value != "auto":
        try:
            value = int(value)
        except ValueError:
            raise InputError(f"--tiles {text}: give 'auto' or a tile side in pixels, e.g. --tiles 640") from None
    try:
        check_tiles(value)
    except InputError as exc:
        raise InputError(f"--{exc}") from None
    return value


def parse_roi(text: str) -> Box:
    """`--roi X1,Y1,X2,Y2` text → the region (InputError, one line, otherwise)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        roi = tuple(int(part) for part in parts)
    except ValueError:
        roi = ()
    if len(roi) != 4:
        raise InputError(f"--roi {text}: give the region as X1,Y1,X2,Y2 in whole pixels, e.g. --roi 0,100,1280,720")
    try:
        check_roi(roi)
    except InputError as exc:
        raise InputError(f"--roi: {exc}") from None
    return roi  # type: ignore[return-value]


def tile_grid(width: int, height: int, tile_w: int, tile_h: int, overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """The tiles covering a width x height image.

    Along each axis, as few tiles as keep neighbours sharing at least `overlap` of a tile, spread
    evenly from one edge to the other (the first at 0, the last ending at the edge). A side shorter
    than the tile is covered by one tile of that side.

    Args:
        width, height (int): the image (or region) size, pixels.
        tile_w, tile_h (int): tile size, pixels.
        overlap (float): fraction of the tile side neighbours share, at least.

    Returns:
        ndarray[T, 4]: int64 x1, y1, x2, y2 of each tile, row by row.
    """
    xs, ys = _starts(width, tile_w, overlap), _starts(height, tile_h, overlap)
    w, h = min(tile_w, width), min(tile_h, height)
    return np.array([(x, y, x + w, y + h) for y in ys for x in xs], np.int64).reshape(-1, 4)


def _starts(side: int, tile: int, overlap: float) -> list[int]:
    if side <= tile:
        return [0]
    count = math.ceil((side - tile) / (tile * (1 - overlap)) - 1e-9) + 1  # neighbours share overlap·tile at least
    return [round(i * (side - tile) / (count - 1)) for i in range(count)]


def windows_for(image_w: int, image_h: int, options: WindowOptions, net_w: int, net_h: int) -> np.ndarray:
    """The windows to detect in: the tiles of the region, then the whole region (when it takes more than one tile).

    Args:
        image_w, image_h (int): the image size, pixels.
        options (WindowOptions): tiles, overlap and region.
        net_w, net_h (int): the network's input size ("auto" tiles take it).

    Returns:
        ndarray[T, 4]: int64 x1, y1, x2, y2 in image pixels; the last one is the whole region.
    """
    region = np.array(region_of(image_w, image_h, options.roi), np.int64)
    width, height = int(region[2] - region[0]), int(region[3] - region[1])
    size = options.tile_size(width, height, net_w, net_h)
    if size is None:
        return region[None]
    tiles = tile_grid(width, height, *size, options.overlap)
    if len(tiles) == 1:
        return region[None]
    return np.concatenate([tiles + np.tile(region[:2], 2), region[None]])


def region_of(image_w: int, image_h: int, roi: Box | None) -> Box:
    """The region to detect in: `roi`, which must lie inside the image, or the whole image."""
    if roi is None:
        return (0, 0, image_w, image_h)
    x1, y1, x2, y2 = roi
    if x2 > image_w or y2 > image_h:
        raise ImageFitError(f"region {x1},{y1},{x2},{y2} reaches outside the {image_w}x{image_h} image "
                         f"(x2 at most {image_w}, y2 at most {image_h})")
    return (x1, y1, x2, y2)


def detect_in_windows(images: Sequence[tuple[np.ndarray, str]], options: WindowOptions, net_w: int, net_h: int,
                      run: Callable[[list[np.ndarray]], list[Detections]], nms_thresh: float,
                      max_det: int, per_forward: int = WINDOWS_PER_FORWARD) -> list[Detections]:
    """Detections of each image, detected in its windows and merged.

    Args:
        images: (BGR uint8 image, source path or "") per image.
        options (WindowOptions): tiles, overlap, region.
        net_w, net_h (int): the network's input size.
        run: the plain detection of a list of BGR images (one Detections per image, in image pixels);
            it is called with the windows of as many whole images as fit `per_forward`.
        nms_thresh (float): overlap above which detections of different windows are one object.
        max_det (int): detections kept per image, best first.
        per_forward (int): windows per call of `run` at most (see `forward_size`).

    Returns:
        list[Detections]: one per image, boxes in the image's pixels.
    """
    plans = [_windows_of(image, source, options, net_w, net_h) for image, source in images]
    found: list[list[Detections]] = []
    for group in _forward_groups([len(p) for p in plans], per_forward):
        crops = [_crop(images[i][0], window) for i in group for window in plans[i]]
        per_window = [d for start in range(0, len(crops), per_forward) for d in run(crops[start:start + per_forward])]
        for i in group:
            found.append(per_window[:len(plans[i])])
            per_window = per_window[len(plans[i]):]
    out = []
    for (image, source), windows, dets in zip(images, plans, found):
        size = (image.shape[1], image.shape[0])
        merged = _shift(dets[0], windows[0], size) if len(windows) == 1 else \
            merge(dets, windows, windows[-1], size, nms_thresh, max_det)
        merged.source = source
        out.append(merged)
    return out


def _windows_of(image: np.ndarray, source: str, options: WindowOptions, net_w: int, net_h: int) -> np.ndarray:
    """windows_for an image, an error naming the image's file where there is one (a folder's images differ)."""
    try:
        return windows_for(image.shape[1], image.shape[0], options, net_w, net_h)
    except ImageFitError as error:
        if not source:
            raise
        raise ImageFitError(f"{source}: {error}") from None


def forward_size(device: str) -> int:
    """Windows per network call on `device` (a backend's traits.device): all of an image's on an
    accelerator, CPU_WINDOWS_PER_FORWARD on a CPU."""
    return CPU_WINDOWS_PER_FORWARD if device.lower().startswith("cpu") else WINDOWS_PER_FORWARD


def _forward_groups(counts: list[int], per_forward: int) -> list[list[int]]:
    """Images grouped so that each group's windows fill at most `per_forward` (an image with more
    windows is a group alone): the windows of an image go through the network together when they fit."""
    groups: list[list[int]] = []
    held = 0
    for i, count in enumerate(counts):
        if not groups or held + count > per_forward:
            groups.append([])
            held = 0
        groups[-1].append(i)
        held += count
    return groups


def _crop(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (int(v) for v in window)
    if (x1, y1, x2, y2) == (0, 0, image.shape[1], image.shape[0]):
        return image
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def _shift(dets: Detections, window: np.ndarray, image_size: tuple[int, int]) -> Detections:
    """A window's Detections in the whole image's pixels (the window's own clipping kept)."""
    offset = np.tile(window[:2].astype(np.float32), 2)
    return Detections(boxes=dets.boxes + offset, scores=dets.scores, class_ids=dets.class_ids, names=dets.names,
                      image_size=image_size, source=dets.source,
                      unclipped=None if dets.unclipped is None else dets.unclipped + offset,
                      box_ids=dets.box_ids, class_scores=dets.class_scores)


def merge(per_window: Sequence[Detections], windows: np.ndarray, region: np.ndarray, image_size: tuple[int, int],
          nms_thresh: float, max_det: int = 1000) -> Detections:
    """One image's detections from several windows → one Detections (see the module's docstring).

    Args:
        per_window (sequence of Detections): each window's detections, in the window's pixels.
        windows (ndarray[T, 4]): each window's x1, y1, x2, y2 in image pixels.
        region (ndarray[4]): the region the windows cover; window edges on it are not tile cuts.
        image_size (tuple[int, int]): the image's width and height.
        nms_thresh (float): IoU, within the region both windows saw, above which two detections are one.
        max_det (int): detections kept, best first.

    Returns:
        Detections: boxes in image pixels, best first; each detection its own box (box_ids), no class_scores.
    """
    names = per_window[0].names if per_window else []
    counts = [len(d) for d in per_window]
    window_of = np.repeat(np.arange(len(per_window)), counts)
    views = windows[window_of].astype(np.float32)
    boxes = np.concatenate([d.boxes for d in per_window] + [np.zeros((0, 4), np.float32)]) + views[:, [0, 1, 0, 1]]
    scores = np.concatenate([d.scores for d in per_window] + [np.zeros(0, np.float32)])
    classes = np.concatenate([d.class_ids for d in per_window] + [np.zeros(0, np.int64)])
    cut = cut_sides(boxes, views, np.asarray(region, np.float32))
    # whole detections stand before cut pieces, best first within each (ties: window order, then the window's)
    order = np.lexsort((-scores, cut.any(1)))
    boxes, scores, classes, views, window_of, cut = (a[order] for a in (boxes, scores, classes, views, window_of, cut))
    absorber = greedy_merge(_matches(boxes, views, window_of, classes, nms_thresh))
    best = scores.copy()
    np.maximum.at(best, absorber, scores)  # a whole detection takes the score of a better piece merged into it
    kept = np.flatnonzero(absorber == np.arange(len(absorber)))
    kept = kept[np.argsort(-best[kept], kind="stable")][:max_det]
    merged = _extend(boxes, absorber, cut)[kept]
    return Detections(boxes=merged, scores=best[kept], class_ids=classes[kept], names=names, image_size=image_size,
                      unclipped=merged.copy(), box_ids=np.arange(len(kept), dtype=np.int64))


def cut_sides(boxes: np.ndarray, views: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(n, 4) bool: which sides (x1, y1, x2, y2) of each box lie on an edge of its window inside the region."""
    side = np.maximum(2.0, EDGE_MARGIN * (views[:, 2:] - views[:, :2]))
    margin = np.concatenate([side, side], 1)
    inner = np.concatenate([views[:, :2] > region[:2], views[:, 2:] < region[2:]], 1)
    distance = np.abs(boxes - views)
    return inner & (distance <= margin)


def _matches(boxes: np.ndarray, views: np.ndarray, window_of: np.ndarray, classes: np.ndarray,
             threshold: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, first, second): pairs first < second (in the order boxes stand) of one class from different windows whose
    boxes, clipped to the region both windows saw, overlap by IoU above `threshold`."""
    import torch  # here, not at the top: the command line reads --tiles' defaults from this module without torch

    from .nms import overlap

    n = len(boxes)
    firsts, seconds = [], []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        b, v = torch.from_numpy(boxes[members]), torch.from_numpy(views[members])
        w = torch.from_numpy(window_of[members])
        for start in range(0, len(members), _MATCH_ROWS):
            rows = slice(start, start + _MATCH_ROWS)
            shared = torch.cat([torch.maximum(v[rows, None, :2], v[None, :, :2]),
                                torch.minimum(v[rows, None, 2:], v[None, :, 2:])], -1)
            ours = torch.cat([torch.maximum(b[rows, None, :2], shared[..., :2]),
                              torch.minimum(b[rows, None, 2:], shared[..., 2:])], -1)
            theirs = torch.cat([torch.maximum(b[None, :, :2], shared[..., :2]),
                                torch.minimum(b[None, :, 2:], shared[..., 2:])], -1)
            later = torch.arange(len(members))[None] > torch.arange(start, start + len(ours))[:, None]
            hit = (overlap(ours, theirs) > threshold) & later & (w[rows, None] != w[None])
            i, j = hit.nonzero(as_tuple=True)
            firsts.append(members[(i + start).numpy()])
            seconds.append(members[j.numpy()])
    empty = np.zeros(0, np.int64)
    return n, np.concatenate(firsts + [empty]), np.concatenate(seconds + [empty])


def greedy_merge(matches: tuple[int, np.ndarray, np.ndarray]) -> np.ndarray:
    """NMS's greedy rule over matching pairs (first < second in the order boxes stand): the absorber of
    each box — itself when it stands, else the first standing box that matches it."""
    n, first, second = matches
    absorber = np.arange(n)
    if len(first) == 0:
        return absorber
    by_first = np.lexsort((second, first))
    first, second = first[by_first], second[by_first]
    starts = np.searchsorted(first, np.arange(n + 1))
    removed = np.zeros(n, bool)
    for i in np.unique(first):
        if removed[i]:
            continue
        partners = second[starts[i]:starts[i + 1]]
        partners = partners[~removed[partners]]
        removed[partners] = True
        absorber[partners] = i
    return absorber


def _extend(boxes: np.ndarray, absorber: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Each standing box with its cut sides moved to the farthest extent of the boxes merged into it."""
    farthest = boxes.copy()
    merged = np.flatnonzero(absorber != np.arange(len(absorber)))
    into = absorber[merged]
    for side, reduce in ((0, np.minimum), (1, np.minimum), (2, np.maximum), (3, np.maximum)):
        column = farthest[:, side].copy()
        reduce.at(column, into, boxes[merged, side])
        farthest[:, side] = column
    return np.where(cut, farthest, boxes)
