"""`darknet-py slice`: a darknet training set cut into tiles, for small objects in large images — train on tiles at
the network's scale, then detect with `--tiles` (the same grid, pipeline.tiles.tile_grid).

Each image of the set's `train=` and `valid=` lists is cut into overlapping tiles of TILE source pixels a side; each
tile is written as `OUTPUT/tiles/STEM_X_Y.EXT` (X, Y: its top-left corner in the image) with its darknet label file
beside it: the image's boxes clipped to the tile, those that keep at least `min_visible` of their area (SAHI's
`min_area_ratio` rule), in the tile's own relative coordinates. `OUTPUT/train.txt` and `OUTPUT/valid.txt` list the
tiles (a line once its image and labels are whole), and `OUTPUT/obj.data` / `obj.names` (written first) point at
them, so that `darknet detector train OUTPUT/obj.data CFG WEIGHTS` trains on the tiles as they stand — also on those
of a slice stopped half way. A COCO-annotated folder (`slice_coco`) is cut the same way into a darknet set.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.fileio import LinesFile, atomic_write, write_image
from ..format.darknet_data import (
    LabelNotes,
    data_path,
    label_path,
    read_data_file,
    read_image_list,
    read_labels,
    write_data_files,
)
from ..format.names import read_names
from ..pipeline.tiles import DEFAULT_OVERLAP, MAX_OVERLAP, MIN_TILE, tile_grid

TILES_DIR = "tiles"
DEFAULT_MIN_VISIBLE = 0.1  # SAHI's min_area_ratio default: a box cut to less than this of its area is dropped
LISTS = ("train", "valid")


@dataclass(frozen=True)
class SliceOptions:
    """How a set is cut (`darknet-py slice`'s flags).

    Args:
        tile (int): the tiles' side, source pixels (at least MIN_TILE).
        overlap (float): the fraction of a tile that neighbours share, at least (0 to MAX_OVERLAP).
        min_visible (float): a box is kept in a tile when that much of its area lies inside it (0 < F <= 1).
        empty (float): the fraction of the tiles with no box that are kept, as negatives to train on, spread evenly
            over the set (1: every one, the default; 0: none; 0.25: one in four).
    """

    tile: int
    overlap: float = DEFAULT_OVERLAP
    min_visible: float = DEFAULT_MIN_VISIBLE
    empty: float = 1.0

    def check(self) -> None:
        """Raises InputError for values that cannot be meant."""
        if self.tile < MIN_TILE:
            raise InputError(f"--tile {self.tile}: give the tiles' side in pixels, {MIN_TILE} or more")
        if not 0 <= self.overlap <= MAX_OVERLAP:
            raise InputError(f"--overlap {self.overlap:g}: give a fraction of the tile from 0 to {MAX_OVERLAP}")
        if not 0 < self.min_visible <= 1:
            raise InputError(f"--min-visible {self.min_visible:g}: give the fraction of a box's area a tile must "
                             "hold, above 0 and at most 1")
        if not 0 <= self.empty <= 1:
            raise InputError(f"--empty {self.empty:g}: give the fraction of the tiles without a box to keep, 0 to 1")


@dataclass
class SliceReport:
    """What a slice wrote: images read, tiles written (each once, a list named twice in obj.data or not), tiles per
    list, boxes written, tiles left out as empty."""

    images: int = 0
    tiles: dict[str, int] = field(default_factory=dict)  # list name → tiles it lists
    boxes: int = 0
    empty_skipped: int = 0
    written: int = 0  # tiles on disk

    def summary(self) -> str:
        """The run's last line, e.g. `14 image(s) → 224 tile(s) (112 in train.txt, 112 in valid.txt), 623 box(es)`."""
        listed = ", ".join(f"{count} in {name}.txt" for name, count in self.tiles.items())
        skipped = f", {self.empty_skipped} empty tile(s) left out" if self.empty_skipped else ""
        return f"{self.images} image(s) → {self.written} tile(s) ({listed}), {self.boxes} box(es){skipped}"


def tile_boxes(truths: np.ndarray, image_size: tuple[int, int], window: Sequence[int],
               min_visible: float) -> np.ndarray:
    """The label rows of one tile: the image's boxes clipped to it, kept when at least *min_visible* of each box's
    area is inside, in the tile's relative coordinates.

    Args:
        truths (ndarray[N, 5]): the image's label rows: class, x centre, y centre, width, height (relative).
        image_size (tuple[int, int]): the image's width and height, pixels.
        window (sequence of int): the tile's x1, y1, x2, y2 in the image, pixels.
        min_visible (float): the fraction of a box's area the tile must hold.

    Returns:
        ndarray[M, 5]: class, x centre, y centre, width, height relative to the tile (float64).
    """
    width, height = image_size
    x1, y1, x2, y2 = (float(v) for v in window)
    cx, cy, w, h = truths[:, 1] * width, truths[:, 2] * height, truths[:, 3] * width, truths[:, 4] * height
    left, top, right, bottom = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    cut_left, cut_top = np.maximum(left, x1), np.maximum(top, y1)
    cut_right, cut_bottom = np.minimum(right, x2), np.minimum(bottom, y2)
    inside = (cut_right > cut_left) & (cut_bottom > cut_top)
    area = w * h
    cut_area = np.where(inside, (cut_right - cut_left) * (cut_bottom - cut_top), 0.0)
    keep = inside & (area > 0) & (cut_area >= min_visible * np.where(area > 0, area, 1.0))
    tile_w, tile_h = x2 - x1, y2 - y1
    rows = np.stack([truths[:, 0], ((cut_left + cut_right) / 2 - x1) / tile_w, ((cut_top + cut_bottom) / 2 - y1) / tile_h,
                     (cut_right - cut_left) / tile_w, (cut_bottom - cut_top) / tile_h], axis=1)
    return rows[keep]


def label_text(rows: np.ndarray) -> str:
    """Darknet label lines, `CLASS X Y W H` with six decimals."""
    return "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in rows.tolist())


def slice_dataset(data_file: str | os.PathLike[str], out: str | os.PathLike[str], options: SliceOptions,
                  progress: Callable[[int], None] | None = None) -> SliceReport:
    """Cut a darknet set (an obj.data) into tiles with their labels, lists, obj.data and obj.names in *out*.

    Args:
        data_file (str or PathLike): the set's obj.data (its `train=`, `valid=`, `names=`; `classes=` checked).
        out (str or PathLike): the folder to write (made if missing).
        options (SliceOptions): the tiles, their overlap, the visibility rule, whether empty tiles are kept.
        progress (callable or None): called with 1 after each image.

    Returns:
        SliceReport: what was written.

    Raises:
        InputError: a file obj.data names is missing, a label file is malformed, an image cannot be read.
    """
    options.check()
    data_file = os.fspath(data_file)
    settings = read_data_file(data_file)
    names = read_names(data_path(settings.get("names", "data/names.list"), data_file, "names"))
    declared = settings.get("classes")
    if declared is not None and (not declared.isdigit() or int(declared) != len(names)):
        raise InputError(f"{data_file}: classes={declared}, but its names file lists {len(names)} names")
    lists = {name: data_path(settings[name], data_file, name) for name in LISTS if name in settings}
    if not lists:
        raise InputError(f"{data_file}: neither train= nor valid= names an image list to slice")
    cutter = _Cutter(out, options, progress, names, {name: name for name in lists})
    notes, done = LabelNotes(), {}  # done: a list cut → the tiles it gave
    for name, listed in lists.items():
        if os.path.realpath(listed) in done:  # valid= the same list as train=: its tiles, listed again
            cutter.relist(name, done[os.path.realpath(listed)])
            continue
        images = read_image_list(listed, f"{name} list")
        done[os.path.realpath(listed)] = cutter.cut(name, ((path, _darknet_truths(path, len(names), notes))
                                                           for path in images))
    notes.warn()
    return cutter.report


def slice_coco(images: str | os.PathLike[str], annotations: str | os.PathLike[str], out: str | os.PathLike[str],
               options: SliceOptions, progress: Callable[[int], None] | None = None) -> SliceReport:
    """Cut a COCO-annotated folder (`--images`, `--annotations`, as `map` takes them) into a darknet set of tiles:
    classes in the order of the sorted category ids (as `map` numbers them), named by the categories; crowd regions
    left out (darknet's labels have none); one list, `train.txt`, that obj.data gives as `valid=` too.

    Args:
        images (str or PathLike): the image folder (each image's `file_name` is relative to it).
        annotations (str or PathLike): a COCO instances JSON.
        out (str or PathLike): the folder to write (made if missing).
        options (SliceOptions): the tiles, their overlap, the visibility rule, whether empty tiles are kept.
        progress (callable or None): called with 1 after each image.

    Returns:
        SliceReport: what was written.

    Raises:
        InputError: the annotation file is not COCO instances JSON, images are missing, an image cannot be read.
    """
    from ..evaluate.coco import category_ids, image_paths, load_ground_truth

    options.check()
    coco = load_ground_truth(annotations)
    categories = category_ids(coco)
    index = {category: k for k, category in enumerate(categories)}
    pairs = image_paths(coco, images)
    cutter = _Cutter(out, options, progress, [coco.cats[category]["name"] for category in categories],
                     {"train": "train", "valid": "train"})

    def truths(image_id: int) -> Callable[[int, int], np.ndarray]:
        boxes = [(index[a["category_id"]], *a["bbox"]) for a in coco.imgToAnns.get(image_id, []) if not a["iscrowd"]]
        return lambda width, height: np.array([(c, (x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
                                               for c, x, y, w, h in boxes], np.float64).reshape(-1, 5)

    cutter.cut("train", ((path, truths(image_id)) for image_id, path in pairs))
    return cutter.report


def _darknet_truths(image_path: str, classes: int, notes: LabelNotes) -> Callable[[int, int], np.ndarray]:
    """An image's label rows, read from its darknet label file (already relative: the image's size is not needed)."""
    rows = read_labels(label_path(image_path), classes, notes)
    return lambda width, height: rows


class _Cutter:
    """Writes a set of tiles: its folder, obj.data and obj.names first (a slice stopped half way — Ctrl-C, a bad
    label file further on — leaves a set darknet reads, of the tiles listed so far), then the tiles of images and
    their list files, counting in `report`; names tiles so that two images of one name (in different folders) do not
    share them.

    Args:
        out (str or PathLike): the folder (made if missing).
        options (SliceOptions): how images are cut.
        progress (callable or None): called with 1 after each image.
        names (list of str): the class names (obj.names).
        lists (mapping of str to str): obj.data's `train` / `valid` → the name of the list file (OUT/NAME.txt).
    """

    def __init__(self, out: str | os.PathLike[str], options: SliceOptions, progress: Callable[[int], None] | None,
                 names: list[str], lists: Mapping[str, str]) -> None:
        self.out, self.options, self.progress = Path(out).resolve(), options, progress
        (self.out / TILES_DIR).mkdir(parents=True, exist_ok=True)
        write_data_files(self.out, names, {key: self.out / f"{name}.txt" for key, name in lists.items()})
        self.report = SliceReport()
        self._stems: dict[str, int] = {}  # each image stem → how many images had it (a second one gets -2)
        self._empty_seen = 0  # tiles without a box so far: the kept ones are spread evenly over them

    def cut(self, name: str, images: Iterable[tuple[str, Callable[[int, int], np.ndarray]]]) -> list[str]:
        """Cut *images* (each a path and its label rows for its width and height) into OUT/NAME.txt's tiles."""
        tiles: list[str] = []
        list_file = LinesFile(self.out / f"{name}.txt")
        list_file.append([])  # made, even if it ends up empty
        self.report.tiles[name] = 0
        try:
            for image_path, truths in images:
                written = self._slice_image(image_path, truths)
                list_file.append(written)  # each tile's line once its image and labels are whole
                tiles += written
                self.report.tiles[name] += len(written)
                if self.progress is not None:
                    self.progress(1)
        finally:
            list_file.close()
        return tiles

    def relist(self, name: str, tiles: list[str]) -> None:
        """OUT/NAME.txt listing tiles already cut (a list obj.data names twice)."""
        list_file = LinesFile(self.out / f"{name}.txt")
        list_file.append(tiles)
        list_file.close()
        self.report.tiles[name] = len(tiles)

    def _slice_image(self, image_path: str, truths_for: Callable[[int, int], np.ndarray]) -> list[str]:
        options, report, out = self.options, self.report, self.out
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{image_path}: cannot read the image")
        report.images += 1
        height, width = image.shape[:2]
        truths = truths_for(width, height)
        stem, suffix = Path(image_path).stem, (".png" if image_path.lower().endswith(".png") else ".jpg")
        self._stems[stem] = self._stems.get(stem, 0) + 1
        stem = stem if self._stems[stem] == 1 else f"{stem}-{self._stems[stem]}"
        written = []
        for window in tile_grid(width, height, options.tile, options.tile, options.overlap).tolist():
            rows = tile_boxes(truths, (width, height), window, options.min_visible)
            if not len(rows):
                self._empty_seen += 1
                # kept when the running share of kept empty tiles falls below `empty`: evenly spread, deterministic
                if math.floor(self._empty_seen * options.empty) == math.floor((self._empty_seen - 1) * options.empty):
                    report.empty_skipped += 1
                    continue
            x1, y1, x2, y2 = window
            tile = out / TILES_DIR / f"{stem}_{x1}_{y1}{suffix}"
            write_image(tile, np.ascontiguousarray(image[y1:y2, x1:x2]))
            with atomic_write(tile.with_suffix(".txt"), "w") as handle:
                handle.write(label_text(rows))
            report.boxes += len(rows)
            report.written += 1
            written.append(str(tile))
        return written

