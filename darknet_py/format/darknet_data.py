"""Darknet-format datasets, read as darknet reads them: an `obj.data` file, its `valid=` image list,
YOLO label files found by darknet's path rules, and an optional `difficult=` list.

- obj.data (src/option_list.c read_data_cfg): `key=value` lines, all whitespace removed, lines starting
  with #, ; or nothing skipped; the first occurrence of a key wins.
- image lists (src/data.c get_paths): one path per line, as written (relative paths are relative to the
  working folder, as darknet opens them); blank lines are skipped here.
- label paths (src/utils.c replace_image_to_label): /images/train2017/ → /labels/train2017/ (and val2017,
  train2014, val2014, also with backslashes), /JPEGImages/ → /labels/, then the image extension
  (.jpg .jpeg .png .bmp .ppm .tiff, lower or upper case) becomes .txt: a label file sits beside its
  image unless one of those folder names is in the path.
- label files (src/data.c read_boxes): `class x_center y_center width height` per line, relative to the
  image. darknet reads a missing label file as an image without objects (and says so); so does this,
  counting them. A malformed line or a class id outside the model's classes is an error here (darknet
  would read past its arrays).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..core.errors import DarknetWarning, InputError
from ..core.fileio import atomic_write, read_bytes
from .names import read_names

_FOLDER_RULES = (  # src/utils.c replace_image_to_label, in its order; each replaces the first occurrence
    ("/images/train2017/", "/labels/train2017/"), ("/images/val2017/", "/labels/val2017/"),
    ("/JPEGImages/", "/labels/"),
    ("\\images\\train2017\\", "\\labels\\train2017\\"), ("\\images\\val2017\\", "\\labels\\val2017\\"),
    ("\\images\\train2014\\", "\\labels\\train2014\\"), ("\\images\\val2014\\", "\\labels\\val2014\\"),
    ("/images/train2014/", "/labels/train2014/"), ("/images/val2014/", "/labels/val2014/"),
    ("\\JPEGImages\\", "\\labels\\"),
)
_IMAGE_EXTENSIONS = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP", ".ppm", ".PPM", ".tiff", ".TIFF")
_WHITESPACE = re.compile(r"[ \t\r\n]")


def read_data_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """An obj.data file's options, parsed as darknet does."""
    path = os.fspath(path)
    text = read_bytes(path, InputError, "data file").decode("utf-8", errors="replace")
    options: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = _WHITESPACE.sub("", raw)
        if not line or line[0] in "#;":
            continue
        if "=" not in line or line.endswith("="):
            raise InputError(f"{path}:{number}: expected key=value, found {raw.strip()!r}")
        key, value = line.split("=", 1)
        options.setdefault(key, value)
    return options


def read_image_list(path: str | os.PathLike[str], what: str = "image list") -> list[str]:
    """A darknet image list: one path per line, kept as written (a trailing \\r dropped, as fgetl does)."""
    path = os.fspath(path)
    text = read_bytes(path, InputError, what).decode("utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n") if line.rstrip("\r").strip()]


def label_path(image_path: str) -> str:
    """darknet's replace_image_to_label: the label file of an image."""
    out = image_path
    for old, new in _FOLDER_RULES:
        out = out.replace(old, new, 1)
    out = out.strip(" \t")
    for extension in _IMAGE_EXTENSIONS:
        if out.endswith(extension):
            out = out[: -len(extension)] + ".txt"
    if not out.endswith(".txt"):
        raise InputError(f"cannot name the label file of {image_path}: darknet knows the image extensions "
                         f"{', '.join(e for e in _IMAGE_EXTENSIONS if e.islower())} (and their upper case)")
    return out


@dataclass
class LabelNotes:
    """What reading labels found that darknet lets pass: counted, then reported once."""

    missing: list[str] = field(default_factory=list)
    outside: int = 0  # boxes whose centre or size lies outside [0, 1]
    outside_example: str = ""

    def warn(self) -> None:
        if self.missing:
            warnings.warn(f"{len(self.missing)} label file(s) not found, read as images without objects, as darknet "
                          f"does (first: {self.missing[0]})", DarknetWarning, stacklevel=3)
        if self.outside:
            warnings.warn(f"{self.outside} label box(es) with coordinates outside 0..1, used as they are, as darknet's "
                          f"map does (first: {self.outside_example})", DarknetWarning, stacklevel=3)


def read_labels(path: str, classes: int, notes: LabelNotes) -> np.ndarray:
    """(n, 5) float64 rows class, x, y, w, h of one label file; a missing file has none (counted in `notes`)."""
    data = read_bytes(path, InputError, "label file", missing_ok=True)  # one open: sets run to a million of them
    if data is None:
        notes.missing.append(path)
        return np.zeros((0, 5))
    rows, numbers = [], []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError
            class_id, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            raise InputError(f"{path}:{number}: expected 'class x_center y_center width height', found "
                             f"{line.strip()!r}") from None
        if not 0 <= class_id < classes:
            raise InputError(f"{path}:{number}: class id {class_id} is outside the {classes} classes (0..{classes - 1})")
        rows.append([class_id, *values])
        numbers.append(number)
    table = np.array(rows, np.float64).reshape(-1, 5)
    outside = np.flatnonzero(~((table[:, 1:] >= 0) & (table[:, 1:] <= 1)).all(axis=1))  # NaN is outside too
    if outside.size:
        notes.outside += int(outside.size)
        notes.outside_example = notes.outside_example or f"{path}:{numbers[outside[0]]}"
    return table


@dataclass
class DarknetDataset:
    """The images of an obj.data's valid= list with their ground truth (and difficult boxes, if listed)."""

    data_file: str
    images: list[str]
    truths: list[np.ndarray]  # per image (n, 5): class, x, y, w, h relative
    difficult: list[np.ndarray] | None
    names: list[str]
    classes: int


def load_dataset(data_file: str | os.PathLike[str], model_classes: int) -> DarknetDataset:
    """Read obj.data, its valid list, names and labels, checked against the model's class count."""
    data_file = os.fspath(data_file)
    options = read_data_file(data_file)
    names = read_names(data_path(options.get("names", "data/names.list"), data_file, "names"))
    declared = options.get("classes")
    if declared is not None and (not declared.isdigit() or int(declared) != model_classes):
        raise InputError(f"{data_file}: classes={declared}, but the model predicts {model_classes} classes")
    if len(names) != model_classes:
        raise InputError(f"{data_file}: its names file lists {len(names)} names, the model predicts {model_classes} "
                         "classes (darknet stops here too)")
    images = read_image_list(data_path(options.get("valid", "data/train.txt"), data_file, "valid"), "valid list")
    if not images:
        raise InputError(f"{data_file}: the valid list names no images")
    notes = LabelNotes()
    truths = [read_labels(label_path(image), model_classes, notes) for image in images]
    difficult = None
    if "difficult" in options:
        hard = read_image_list(data_path(options["difficult"], data_file, "difficult"), "difficult list")
        if len(hard) < len(images):
            raise InputError(f"{data_file}: the difficult list names {len(hard)} images, the valid list {len(images)}; "
                             "darknet pairs them line by line")
        difficult = [read_labels(label_path(image), model_classes, notes) for image in hard[: len(images)]]
    notes.warn()
    return DarknetDataset(data_file, images, truths, difficult, names, model_classes)


def data_path(target: str, data_file: str, key: str) -> str:
    """A path named in obj.data: as darknet opens it (from the working folder), else beside the data file."""
    for candidate in (target, os.path.join(os.path.dirname(data_file), target)):
        if os.path.isfile(candidate):
            return candidate
    raise InputError(f"{data_file}: {key}={target} not found (darknet opens it from the working folder, {Path.cwd()})")


DATA_FILE, NAMES_FILE, BACKUP_DIR = "obj.data", "obj.names", "backup"  # the names darknet's README gives them


def write_data_files(folder: str | os.PathLike[str], names: Sequence[str], lists: Mapping[str, str | os.PathLike[str]]
                     ) -> Path:
    """A set's `obj.names` and `obj.data` in *folder*, and the `backup/` folder darknet saves its weights in while
    training (it stops at the first save without one), so that `darknet detector train FOLDER/obj.data …` reads the
    set as it stands. A folder whose path has spaces gets a warning: darknet reads .data files without them.

    Args:
        folder (str or PathLike): where the set is.
        names (sequence of str): the class names, in class-id order.
        lists (mapping of str to path): `train` and/or `valid` → the image list's path.

    Returns:
        Path: the obj.data file.
    """
    folder = Path(folder).resolve()
    if _WHITESPACE.search(str(folder)):  # read_data_cfg removes every space of a line, paths' included
        warnings.warn(f"{DATA_FILE}: darknet reads .data files without their spaces, and {folder} has some: move the "
                      "set to a path without spaces (or edit the paths) before training on it", DarknetWarning,
                      stacklevel=2)
    (folder / BACKUP_DIR).mkdir(exist_ok=True)
    with atomic_write(folder / NAMES_FILE, "w") as handle:
        handle.write("".join(f"{name}\n" for name in names))
    listed = "".join(f"{key} = {Path(path).resolve()}\n" for key, path in lists.items())
    with atomic_write(folder / DATA_FILE, "w") as handle:
        handle.write(f"classes = {len(names)}\n{listed}names = {folder / NAMES_FILE}\nbackup = {folder / BACKUP_DIR}/\n")
    return folder / DATA_FILE
