"""Anchors for a training set: darknet's `detector calc_anchors`, number for number (src/detector.c calc_anchors,
src/matrix.c do_kmeans).

The boxes of the set's `train=` list (their label files, by darknet's path rules), as sizes in network pixels, are
clustered by k-means with 1 - IoU (both boxes centred on one point) as the distance, from k of the boxes picked at
random — glibc's `rand()` after `srand(seed)`, where darknet seeds with the time (core.c_random) — until no box
changes cluster (1,000 rounds at most). The centres, sorted by area, are the anchors; each box's best IoU with them,
averaged, says how well they fit. Every step computes in float32, in darknet's order (sums added one box after
another, the first of equally close centres chosen, a mean as darknet's -Ofast build computes it), so a seed gives
darknet's anchors to the last bit.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.c_random import CRandom
from ..core.errors import DarknetWarning, InputError
from ..format.cfg import Section, parse_text
from ..format.darknet_data import LabelNotes, data_path, label_path, read_data_file, read_image_list, read_labels

MAX_ROUNDS = 1000  # do_kmeans: at most this many rounds of assignment and update

try:  # built by setup.py where a compiler is; the numpy path computes the same bits without it, slower
    from . import _kmeans as _kernel
except ImportError:  # pragma: no cover - depends on the install
    _kernel = None

use_kernel = True  # tests turn it off to compare with the numpy path
ANCHOR_LAYERS = ("yolo", "Gaussian_yolo")  # the sections whose anchors= are in network pixels


@dataclass
class LabelBoxes:
    """The boxes of a training set, as calc_anchors reads them.

    Attributes:
        sizes (np.ndarray): (n, 2) float32 width and height of each box in network pixels (relative size × the
            network's width or height), in the order of the list and of each label file.
        per_class (list of int): how many boxes each class has (class 0 first).
        images (int): the images of the list.
    """

    sizes: np.ndarray
    per_class: list[int]
    images: int


@dataclass
class Anchors:
    """calc_anchors' result.

    Attributes:
        centers (np.ndarray): (k, 2) float32 anchor widths and heights in network pixels, smallest area first.
        rounds (int): the k-means rounds until no box changed cluster (darknet's `iterations`).
        average_iou (float): the boxes' best IoU with an anchor, averaged, in percent (as darknet prints it).
        boxes (LabelBoxes): what they were computed from.
        width (int): the network width the sizes are in (darknet prints anchors rounded to pixels above 32).
        height (int): the network height.
    """

    centers: np.ndarray
    rounds: int
    average_iou: float
    boxes: LabelBoxes
    width: int
    height: int

    def text(self) -> str:
        """The anchors as darknet writes them to anchors.txt (what an `anchors=` line takes): `w,h, w,h, …`,
        rounded to whole pixels for a network wider than 32 (else 4 decimals: grid units of a [region] layer)."""
        form = "%3.0f,%3.0f" if self.width > 32 else "%2.4f,%2.4f"
        return ", ".join(form % (float(w), float(h)) for w, h in self.centers)

    def darknet_lines(self) -> list[str]:
        """The lines darknet prints with its result: the boxes of each class, the average IoU, the anchors."""
        return [f"counters_per_class = {', '.join(str(n) for n in self.boxes.per_class)}",
                f"avg IoU = {self.average_iou:2.2f} %", f"anchors = {self.text()}"]


def read_label_boxes(data_file: str | os.PathLike[str], width: int, height: int,
                     on_image: Callable[[], None] = lambda: None) -> LabelBoxes:
    """The boxes of an obj.data's `train=` list, as calc_anchors collects them.

    A missing label file is an image without boxes (one warning counts them); a box whose centre or size lies
    outside (0, 1] — darknet's "Wrong label" — is used as it is, as darknet does (one warning counts them).

    Args:
        data_file (str or PathLike): the set's .data file (its `train=`, default data/train.list, and `classes=`).
        width (int): the network's input width; box widths are scaled to it.
        height (int): the network's input height; box heights are scaled to it.
        on_image (callable): called after each image's labels are read (progress).

    Returns:
        LabelBoxes: the sizes in network pixels and the boxes per class.

    Raises:
        InputError: the files cannot be read, a label line is malformed or its class is beyond `classes=`.
    """
    data_file = os.fspath(data_file)
    options = read_data_file(data_file)
    declared = options.get("classes", "1")
    if not declared.isdigit() or int(declared) < 1:
        raise InputError(f"{data_file}: classes={declared}: expected the number of classes, 1 or more")
    classes = int(declared)
    images = read_image_list(data_path(options.get("train", "data/train.list"), data_file, "train"), "train list")
    notes, rows, paths = LabelNotes(), [], []
    for image in images:
        paths.append(label_path(image))
        rows.append(read_labels(paths[-1], classes, notes))
        on_image()
    notes.outside = 0  # darknet's own rule for wrong boxes is said below
    notes.warn()
    table = (np.concatenate(rows) if rows else np.zeros((0, 5))).astype(np.float32)  # darknet reads "%f": floats
    wrong = np.flatnonzero(((table[:, 1:] > 1) | (table[:, 1:] <= 0)).any(axis=1))
    if wrong.size:
        ends = np.cumsum([len(r) for r in rows])
        file = int(np.searchsorted(ends, wrong[0], side="right"))
        box = int(wrong[0] - (ends[file - 1] if file else 0))
        warnings.warn(f"{wrong.size} label box(es) with a centre or size outside (0, 1] (darknet's 'Wrong label'), "
                      f"used as they are, as darknet's calc_anchors does (first: {paths[file]}, box {box + 1})",
                      DarknetWarning, stacklevel=2)
    sizes = np.stack([table[:, 3] * np.float32(width), table[:, 4] * np.float32(height)], axis=1)
    per_class = np.bincount(table[:, 0].astype(np.int64), minlength=classes).tolist()
    return LabelBoxes(sizes.astype(np.float32), per_class, len(images))


def _smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C's `(a < b) ? a : b` (with a NaN, b: not np.minimum's NaN)."""
    return np.where(a < b, a, b)


def _iou(sizes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n, k) float32 IoU of each box with each centre, both centred on one point, in matrix.c dist()'s steps."""
    x, y = sizes[:, None, :], centers[None, :, :]
    inter = _smaller(x[..., 0], y[..., 0]) * _smaller(x[..., 1], y[..., 1])
    return inter / ((x[..., 0] * x[..., 1] + y[..., 0] * y[..., 1]) - inter)


def _distances(sizes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n, k) float32 1 - IoU of each box with each centre (matrix.c dist)."""
    return np.float32(1) - _iou(sizes, centers)


def _closest(distances: np.ndarray) -> np.ndarray:
    """Each box's closest centre: the first of equally close ones, and a NaN distance (a box of no size) never
    closer (matrix.c closest_center's `<` from centre 0)."""
    best = np.zeros(len(distances), np.int64)
    best_distance = distances[:, 0].copy()
    for j in range(1, distances.shape[1]):
        closer = distances[:, j] < best_distance
        best[closer], best_distance[closer] = j, distances[closer, j]
    return best


def closest_anchor(sizes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The anchor each box is closest to by 1 - IoU (both centred on one point), the first of equals.

    Args:
        sizes (np.ndarray): (n, 2) float32 box widths and heights.
        centers (np.ndarray): (k, 2) float32 anchors.

    Returns:
        np.ndarray: (n,) int64 anchor indices.
    """
    return _closest(_distances(sizes, centers))


def _update(sizes: np.ndarray, assignments: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """kmeans_maximization: each centre the mean of its boxes (float32 sums in box order), a component that comes
    out 0 (no boxes) keeping its old value."""
    sums = np.zeros_like(centers)
    np.add.at(sums, assignments, sizes)  # one box after another, as darknet's loop adds them (no pairwise sums)
    counts = np.bincount(assignments, minlength=len(centers)).astype(np.float32)
    # darknet's Makefile builds with -Ofast: `centre[j] /= count` for both components becomes a product with
    # 1/count (-freciprocal-math), a rounding more than a division — its centres' last bits are that product's
    reciprocal = np.float32(1) / np.maximum(counts, np.float32(1))
    means = np.where(counts[:, None] > 0, sums * reciprocal[:, None], sums).astype(np.float32)
    return np.where(means == 0, centers, means)


def darknet_kmeans(sizes: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, int]:
    """do_kmeans: the centres from k boxes picked at random (matrix.c sample: a shuffle by glibc's `rand()` after
    `srand(seed)`), then rounds of assignment and update until no box changes cluster.

    Args:
        sizes (np.ndarray): (n, 2) float32 box sizes, n ≥ clusters.
        clusters (int): k.
        seed (int): the `srand` seed (darknet: the time).

    Returns:
        tuple: the (k, 2) float32 centres in the order k-means leaves them, and the rounds (`iterations`).
    """
    rand, order = CRandom(seed), list(range(len(sizes)))
    for i in range(len(order) - 1, -1, -1):  # matrix.c sample: a Fisher-Yates shuffle from the end
        j = rand.rand() % (i + 1)
        order[i], order[j] = order[j], order[i]
    centers = sizes[order[:clusters]].copy()
    assignments = np.zeros(len(sizes), np.int64)
    if _kernel is not None and use_kernel:
        return centers, _kernel.rounds(np.ascontiguousarray(sizes, np.float32), centers, assignments, MAX_ROUNDS)
    if clusters == 1:
        centers = _update(sizes, assignments, centers)
    rounds = 0
    while rounds < MAX_ROUNDS:
        closest = _closest(_distances(sizes, centers))
        converged = bool((closest == assignments).all())
        assignments = closest
        if converged:
            break
        centers = _update(sizes, assignments, centers)
        rounds += 1
    return centers, rounds


def average_iou(sizes: np.ndarray, centers: np.ndarray) -> float:
    """calc_anchors' avg IoU: each box's IoU with its closest anchor (the first of equals; none, IoU 0, where every
    distance is NaN), added in box order in float32, × 100 / the boxes — an IoU outside 0..1 left out of the sum (darknet
    prints "Wrong label" for it), not of the count."""
    iou = _iou(sizes, centers)
    distance = np.float32(1) - iou
    best = np.zeros(len(sizes), np.float32)
    least = np.full(len(sizes), np.finfo(np.float32).max, np.float32)  # FLT_MAX, as darknet starts
    for j in range(len(centers)):
        closer = distance[:, j] < least
        least[closer], best[closer] = distance[closer, j], iou[closer, j]
    best = np.where((best > 1) | (best < 0), np.float32(0), best)
    total = np.add.accumulate(best, dtype=np.float32)[-1]  # accumulate: strictly one after another
    return float(np.float32(np.float32(100) * total) / np.float32(len(sizes)))


def check_anchor_request(clusters: int, width: int, height: int, seed: int) -> None:
    """Refuse what calc_anchors cannot take, before any label is read.

    Args:
        clusters (int): how many anchors, 1 or more.
        width (int): the network's input width, 1 or more.
        height (int): the network's input height, 1 or more.
        seed (int): srand's seed, 0 to 2^32 - 1.

    Raises:
        InputError: saying which value is wrong and what it takes.
    """
    if clusters < 1:
        raise InputError(f"{clusters} clusters: give how many anchors to compute, 1 or more")
    if width < 1 or height < 1:
        raise InputError(f"network size {width}x{height}: give the width and height the network is trained at")
    if not 0 <= seed <= 0xFFFFFFFF:
        raise InputError(f"seed {seed}: srand takes 0 to {0xFFFFFFFF}")


def calc_anchors(data_file: str | os.PathLike[str], clusters: int, width: int, height: int, seed: int = 0,
                 on_image: Callable[[], None] = lambda: None) -> Anchors:
    """darknet's `detector calc_anchors DATA -num_of_clusters K -width W -height H` with `srand(seed)`.

    Args:
        data_file (str or PathLike): the set's .data file.
        clusters (int): how many anchors (k), 1 or more.
        width (int): the network's input width.
        height (int): the network's input height.
        seed (int): glibc's `srand` seed, 0 to 2^32 - 1 (darknet seeds with the time, so its anchors differ between
            runs; the same seed gives the same anchors, darknet's with it).
        on_image (callable): called after each image's labels are read (progress).

    Returns:
        Anchors: the anchors, sorted by area, with the rounds and average IoU.

    Raises:
        InputError: unreadable files, malformed labels, or fewer boxes than clusters.
    """
    check_anchor_request(clusters, width, height, seed)
    boxes = read_label_boxes(data_file, width, height, on_image)
    if len(boxes.sizes) < clusters:
        raise InputError(f"{os.fspath(data_file)}: its train list has {len(boxes.sizes)} label box(es), fewer than "
                         f"the {clusters} clusters asked for")
    centers, rounds = darknet_kmeans(boxes.sizes, clusters, seed)
    centers = centers[np.argsort(centers[:, 0] * centers[:, 1], kind="stable")]  # qsort by area: glibc's is stable
    return Anchors(centers, rounds, average_iou(boxes.sizes, centers), boxes, width, height)


def anchor_layers(cfg_text: str, path: str) -> list[Section]:
    """The [yolo] and [Gaussian_yolo] sections of a cfg (whose anchors are network pixels)."""
    return [section for section in parse_text(cfg_text, path) if section.type in ANCHOR_LAYERS]


def cfg_size_and_count(cfg_text: str, path: str, need_count: bool = True) -> tuple[int, int, int | None]:
    """What anchors for a cfg default to: its [net] width and height (0 where it has none) and its [yolo] layers'
    anchor count (their num=, else their anchors' count).

    Args:
        cfg_text (str): the cfg.
        path (str): its path, for messages.
        need_count (bool): the count is wanted (False: None is returned for it, and a cfg without [yolo] layers
            or with layers that disagree is not refused here).

    Returns:
        tuple: width, height, count.

    Raises:
        InputError: the count is wanted and the cfg has no [yolo] layer, or its layers' counts differ.
    """
    sections = parse_text(cfg_text, path)
    width, height = sections[0].get_int("width", 0), sections[0].get_int("height", 0)
    if not need_count:
        return width, height, None
    layers = [section for section in sections if section.type in ANCHOR_LAYERS]
    if not layers:
        raise InputError(f"{os.path.basename(path)}: no [yolo] layer to take anchors: give --clusters")
    counts = {section.get_int("num", len(section.get_floats("anchors", [])) // 2) for section in layers}
    if len(counts) != 1:
        raise InputError(f"{os.path.basename(path)}: its [yolo] layers' num differ ({sorted(counts)}): give --clusters")
    return width, height, counts.pop()


def check_cfg_takes(cfg_text: str, path: str, count: int) -> list[Section]:
    """Whether a cfg can take *count* anchors in its [yolo] layers; those layers.

    Args:
        cfg_text (str): the cfg.
        path (str): its path, for messages.
        count (int): how many anchors.

    Returns:
        list of Section: its [yolo] and [Gaussian_yolo] sections.

    Raises:
        InputError: the cfg has no [yolo] layer, a layer has no anchors= line, or a mask= names an anchor beyond
            *count*.
    """
    layers = anchor_layers(cfg_text, path)
    if not layers:
        raise InputError(f"{os.path.basename(path)}: no [yolo] layer to take anchors (anchors in pixels: "
                         f"[{'], ['.join(ANCHOR_LAYERS)}])")
    for section in layers:
        if not section.has("anchors"):
            raise InputError(f"{section.where()}: has no anchors= line to replace")
        masks = section.get_ints("mask", [])
        if masks and max(masks) >= count:
            raise InputError(f"{section.where('mask')}: mask={section.options['mask']} names anchor {max(masks)}, "
                             f"beyond the {count} computed: give --clusters {max(masks) + 1} or more, or edit the masks")
    return layers


def cfg_with_anchors(cfg_text: str, path: str, anchors: Anchors) -> str:
    """The cfg's text with each [yolo] layer's `anchors=` line (and `num=`) set to *anchors*; everything else as
    written, comments included.

    Args:
        cfg_text (str): the cfg.
        path (str): its path, for messages.
        anchors (Anchors): the anchors; their count is each layer's num.

    Returns:
        str: the new cfg.

    Raises:
        InputError: what check_cfg_takes refuses.
    """
    count = len(anchors.centers)
    layers = check_cfg_takes(cfg_text, path, count)
    lines = cfg_text.splitlines(keepends=True)
    for section in layers:
        _set_line(lines, section.option_lines["anchors"], f"anchors = {anchors.text()}")
        if section.has("num"):
            _set_line(lines, section.option_lines["num"], f"num={count}")
    return "".join(lines)


def _set_line(lines: list[str], number: int, text: str) -> None:
    """Line *number* (1-based) of *lines* replaced by *text*, its line ending kept."""
    old = lines[number - 1]
    ending = old[len(old.rstrip("\r\n")):] or "\n"
    lines[number - 1] = text + ending
