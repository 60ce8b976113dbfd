"""Class names: COCO's 80 by default, or a darknet .names / .data file."""
from __future__ import annotations

import numbers
import os
from typing import Iterable, Sequence

from ..core.errors import InputError

COCO_NAMES = (
    "person bicycle car motorbike aeroplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair sofa pottedplant bed diningtable toilet tvmonitor laptop mouse remote "
    "keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()
COCO_NAMES = [n.replace("_", " ") for n in COCO_NAMES]  # darknet's coco.names spelling


def read_names(path: str | os.PathLike[str]) -> list[str]:
    """The class names of a darknet .names file: one a line, in class-id order.

    Lines are stripped and blank ones skipped; bytes that are not UTF-8 are replaced, not refused.

    Args:
        path (str or PathLike): the .names file.

    Returns:
        list of str: the names; the first is class 0.

    Raises:
        InputError: the file cannot be read, or lists no names.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            names = [line.strip() for line in handle if line.strip()]
    except OSError as exc:
        raise InputError(f"cannot read names file {path}: {exc.strerror or exc}") from None
    if not names:
        raise InputError(f"names file {path} lists no class names")
    return names


def names_from_data(path: str | os.PathLike[str]) -> list[str]:
    """The class names of the names file a darknet .data file points at with `names = …`.

    The path is tried as given (relative to the cwd), then relative to the .data file's folder, then as its base
    name in that folder; the first that is a file is read with `read_names`.

    Args:
        path (str or PathLike): the .data file.

    Returns:
        list of str: the names; the first is class 0.

    Raises:
        InputError: the .data file cannot be read, has no `names =` line, or its names file is not found (or
            cannot be read, or lists no names).
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            entries = dict(line.split("=", 1) for line in handle if "=" in line)
    except OSError as exc:
        raise InputError(f"cannot read data file {path}: {exc.strerror or exc}") from None
    entries = {k.strip(): v.strip() for k, v in entries.items()}
    target = entries.get("names", "")
    if not target:
        raise InputError(f"{path} has no 'names =' line")
    candidates = [target, os.path.join(os.path.dirname(path), target), os.path.join(os.path.dirname(path), os.path.basename(target))]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return read_names(candidate)
    raise InputError(f"{path}: names file '{target}' not found")


def default_names(num_classes: int) -> list[str]:
    """Names for a model given none: COCO's 80 when it has 80 classes, else "class_0", "class_1", ...

    Args:
        num_classes (int): the classes the model predicts.

    Returns:
        list of str: *num_classes* names.
    """
    return list(COCO_NAMES) if num_classes == len(COCO_NAMES) else [f"class_{i}" for i in range(num_classes)]


def resolve_names(num_classes: int, names_file: str | None = None, data_file: str | None = None) -> list[str]:
    """A model's class names: from the names file if given, else the .data file's, else `default_names`.

    Args:
        num_classes (int): the classes the model predicts.
        names_file (str or None): a .names file (--names); it wins over *data_file*.
        data_file (str or None): a darknet .data file whose `names =` line is read.

    Returns:
        list of str: the names, at least *num_classes* of them (a file may list more).

    Raises:
        InputError: a file cannot be read or lists no names, or fewer names than the model's classes were given.
    """
    names = read_names(names_file) if names_file else names_from_data(data_file) if data_file else default_names(num_classes)
    if len(names) < num_classes:
        raise InputError(f"the model predicts {num_classes} classes but only {len(names)} names were given")
    return names


def class_ids(wanted: Iterable[str], names: Sequence[str], flag: str) -> set[int]:
    """Class ids from names or ids as given on the command line (`person`, `0`, `traffic light`).

    Args:
        wanted (iterable of str): class names, or class ids as digits.
        names (sequence of str): the model's class names.
        flag (str): the option, for errors (e.g. "--blur").

    Returns:
        set[int]: the class ids.

    Raises:
        InputError: a name the model does not have, or an id out of range.
    """
    ids = set()
    for item in wanted:
        if item in names:
            ids.add(names.index(item))
        elif item.isascii() and item.isdigit() and int(item) < len(names):  # "²" is a digit int() refuses
            ids.add(int(item))
        else:
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            raise InputError(f"{flag} {item}: not a class of this model ({len(names)} classes: {shown}); give class "
                             f"names or ids 0..{len(names) - 1}")
    return ids


def class_filter(classes: Iterable[int | str], names: Sequence[str], flag: str = "classes") -> tuple[int, ...]:
    """detect()'s `classes` as the class ids DetectOptions holds: ids, or names as the command line's --classes
    takes them (["dog", 7]), in any iterable (a list, a tuple, a set).

    Args:
        classes (iterable of int or str): class ids, or names of *names*.
        names (sequence of str): the model's class names.
        flag (str): what the caller calls the option, for errors ("classes", the server's "classes=").

    Returns:
        tuple of int: the class ids, each once: sorted when names were given, else in the order given.

    Raises:
        InputError: a name the model does not have or an id out of range, given as text (class_ids), or a value that
            is neither; ids given as numbers are checked against the model by DetectOptions.validate.
    """
    # one name or one id alone ("dog", 16) is that class, not the characters of a string nor an error about iterables
    given = [classes] if isinstance(classes, (str, numbers.Integral)) else list(classes)
    if any(isinstance(c, str) for c in given):  # names as the command line takes them
        return tuple(sorted(class_ids([str(c) for c in given], names, flag)))
    # numbers.Integral: Python's and numpy's ints (bool is one too, but no class id)
    wrong = [c for c in given if isinstance(c, bool) or not isinstance(c, numbers.Integral)]
    if wrong:
        raise InputError(f"{flag}: {wrong[0]!r} is neither a class id nor a class name")
    return tuple(dict.fromkeys(int(c) for c in given))  # in the order given (an error names them so), each once
