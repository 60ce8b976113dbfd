"""darknet's `-save_labels` files against darknet_py's `--save-labels` files (tests/test_save_labels.py and
benchmarks/save_labels.py): byte for byte, or, where a file differs, only by one value printed one unit apart in
its 4th decimal where darknet_py's unrounded value lies within 1e-6 of the rounding midpoint — the float noise of
two correct convolution implementations (torch's and darknet's -Ofast gemm differ by ~1e-6 in the last layer's
outputs), not another box, class or order."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from darknet_py.format.darknet_data import label_path
from darknet_py.media.darknet_labels import darknet_label_rows

MIDPOINT_MARGIN = 1e-6  # how close to a rounding midpoint a value may be for a flipped last digit to pass


@dataclass
class LabelComparison:
    """How darknet_py's label files compare with darknet's."""

    identical: int = 0
    flipped: list[str] = field(default_factory=list)  # files differing only by rounding flips (their names)
    flips: list[dict] = field(default_factory=list)  # each flip: file, darknet's line, ours, our unrounded values


def rounding_flip(ours: str, theirs: str, exact: tuple[float, ...]) -> bool:
    """Whether two label lines differ only in values our unrounded one puts within MIDPOINT_MARGIN of a midpoint."""
    a, b = ours.split(), theirs.split()
    if len(a) != len(b) or a[0] != b[0]:
        return False
    for mine, its, value in zip(a[1:], b[1:], exact):
        if mine != its:
            midway = abs(value * 1e4 - math.floor(value * 1e4) - 0.5) / 1e4
            if abs(float(mine) - float(its)) > 1.5e-4 or midway > MIDPOINT_MARGIN:
                return False
    return True


def compare_label_files(model, theirs: list[Path], ours: list[Path], detected: list[Path] | None = None) -> LabelComparison:
    """Each of darknet's label files (of the images *theirs*) against ours (of the same images, *ours*); an
    AssertionError names the first difference that rounding does not explain.

    Args:
        detected (list of Path, optional): the images whose detections give our unrounded values (default *ours*;
            *theirs* where ours are a lossy copy, as --save-frames' JPEGs are of the frames darknet was given).
    """
    result = LabelComparison()
    for their_image, our_image, detected_image in zip(theirs, ours, detected or ours):
        expected = Path(label_path(str(their_image))).read_bytes()
        written = Path(label_path(str(our_image))).read_bytes()
        if written == expected:
            result.identical += 1
            continue
        mine, its = written.decode().splitlines(), expected.decode().splitlines()
        exact = [row[1:] for row in darknet_label_rows(model.detect(str(detected_image), class_scores=True)[0])]
        assert len(mine) == len(its) == len(exact), (our_image.name, mine, its)
        for a, b, values in zip(mine, its, exact):
            assert a == b or rounding_flip(a, b, values), (our_image.name, a, b, values)
            if a != b:
                result.flips.append({"file": our_image.name, "darknet": b, "darknet_py": a,
                                     "unrounded": [round(v, 9) for v in values]})
        result.flipped.append(our_image.name)
    return result
