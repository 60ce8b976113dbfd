"""Model scaling as Scaled-YOLOv4 does it: width (channels), depth (CSP residual units), input size.

- width W: every convolution's filters × W, rounded to a multiple of 8 (at least 8); the
  convolutions that feed a detection layer keep their filters (a [yolo]'s (classes + 5) × anchors, a [region]'s or
  [Gaussian_yolo]'s own), and so does a classifier's class convolution (the last one, when only [avgpool],
  [softmax], [dropout] and [cost] follow it: darknet19's 1000 ImageNet classes stay 1000);
- depth D: each CSPDarknet stage (found by `structure.find_blocks`) gets round(n × D) residual
  units (at least 1): the last unit is copied or units are dropped from the end, and every
  route/shortcut reference is rewritten to the new layer numbers;
- size S: the [net] width and height.

The new cfg is built by the engine before it is returned, so a scale that cannot work (a size
that is not a multiple of the total stride, say) fails with the engine's error, not later.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

from ..core.errors import CfgError, InputError
from ..format.cfg import Section, parse_text
from .info import blocks as find_model_blocks
from .network import Network

REFERENCE_KEYS = ("layers", "from")  # options that name other layers (route, shortcut, sam, scale_channels)
HEAD_TYPES = ("yolo", "region", "Gaussian_yolo")  # detection layers: the convolution before one keeps its filters
CLASSIFIER_TAIL = ("avgpool", "softmax", "dropout", "cost")  # what may follow a classifier's class convolution


@dataclass(frozen=True)
class ScaleSpec:
    width: float = 1.0
    depth: float = 1.0
    size: int | None = None

    def __post_init__(self) -> None:
        for name in ("width", "depth"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 16):
                raise InputError(f"--{name} must be a multiple in (0, 16], got {value}")
        if self.size is not None and not 32 <= self.size <= 4096:
            raise InputError(f"--size must be 32..4096, got {self.size}")


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def scaled_filters(filters: int, width: float) -> int:
    return max(8, 8 * _round_half_up(filters * width / 8))


@dataclass
class _Entry:
    section: Section
    old_index: int
    copy: bool  # a copied residual unit: its relative references keep their offsets


def _residual_units(model: Network, layers: tuple[int, ...]) -> list[range]:
    """Each residual unit of a CSPDarknet stage: the layers after the shortcut's `from` up to the shortcut."""
    units = []
    for index in layers:
        section = model.sections[index]
        if section.type == "shortcut":
            (target,) = [t for t in model.infos[index].sources if t != index - 1] or [index - 1]
            units.append(range(target + 1, index + 1))
    return units


def _same_unit(model: Network, a: range, b: range) -> bool:
    return len(a) == len(b) and all(
        model.sections[i].type == model.sections[j].type and model.sections[i].options == model.sections[j].options
        for i, j in zip(a, b))


def _depth_plan(model: Network, depth: float) -> tuple[set[int], dict[int, tuple[range, int]]]:
    """(layers to drop, {last layer of a stage's last unit: (that unit, copies to append after it)})."""
    drop: set[int] = set()
    extra: dict[int, tuple[range, int]] = {}
    if depth == 1:
        return drop, extra
    stages = [block for block in find_model_blocks(model) if block.type == "CSPDark"]
    if not stages:
        raise InputError(f"--depth scales the residual units of CSPDarknet stages, and "
                         f"{os.path.basename(model.cfg_path)} has none")
    for block in stages:
        units = _residual_units(model, block.layers)
        if any(not _same_unit(model, units[-1], unit) for unit in units):
            first = model.sections[units[0].start]
            raise first.error("cannot scale depth: the residual units of this CSP stage differ")
        wanted = max(1, _round_half_up(len(units) * depth))
        for unit in units[wanted:]:
            drop.update(unit)
        if wanted > len(units):
            extra[units[-1].stop - 1] = (units[-1], wanted - len(units))
    return drop, extra


def _copy(section: Section, options: dict[str, str] | None = None) -> Section:
    return Section(section.type, section.line, section.path, section.index,
                   dict(section.options if options is None else options), dict(section.option_lines))


def _sequence(model: Network, drop: set[int], extra: dict[int, tuple[range, int]]) -> list[_Entry]:
    entries: list[_Entry] = []
    for index, section in enumerate(model.sections):
        if index in drop:
            continue
        entries.append(_Entry(section, index, False))
        unit, copies = extra.get(index, (range(0), 0))
        for _ in range(copies):
            entries.extend(_Entry(model.sections[i], i, True) for i in unit)
    return entries


def _rewrite_references(entries: list[_Entry]) -> list[Section]:
    new_index = {e.old_index: n for n, e in enumerate(entries) if not e.copy}
    result = []
    for n, entry in enumerate(entries):
        options = dict(entry.section.options)
        for key in REFERENCE_KEYS:
            if key not in options or entry.section.type not in ("route", "shortcut", "sam", "scale_channels"):
                continue
            refs = entry.section.get_ints(key)
            rewritten = []
            for ref in refs:
                if ref < 0 and entry.copy:
                    rewritten.append(ref)
                    continue
                target = entry.old_index + ref if ref < 0 else ref
                if target not in new_index:
                    raise entry.section.error(f"{key}={ref} points to layer {target}, which depth scaling removes", key)
                rewritten.append(new_index[target] - n if ref < 0 else new_index[target])
            options[key] = ",".join(str(r) for r in rewritten)
        result.append(_copy(entry.section, options))
    return result


def _outputs(sections: list[Section]) -> set[int]:
    """The convolutions whose filters the model's outputs fix: each one feeding a detection layer, and a classifier's
    class convolution (the last convolution, followed only by CLASSIFIER_TAIL sections)."""
    convolutions = [i for i, section in enumerate(sections) if section.type in ("convolutional", "conv")]
    kept = {i for i in convolutions if i + 1 < len(sections) and sections[i + 1].type in HEAD_TYPES}
    if convolutions and len(sections) > convolutions[-1] + 1 \
            and all(section.type in CLASSIFIER_TAIL for section in sections[convolutions[-1] + 1:]):
        kept.add(convolutions[-1])
    return kept


def _scale_widths(sections: list[Section], width: float) -> None:
    if width == 1:
        return
    outputs = _outputs(sections)
    for index, section in enumerate(sections):
        if section.type not in ("convolutional", "conv") or index in outputs:
            continue
        filters = section.get_int("filters", 1)
        new = scaled_filters(filters, width)
        section.options["filters"] = str(new)
        if section.get_int("groups", 1) == filters > 1:  # depthwise stays depthwise
            section.options["groups"] = str(new)


def to_text(net: Section, sections: list[Section], header: str) -> str:
    parts = [f"# {line}" for line in header.splitlines()]
    for section in [net, *sections]:
        parts.append("")
        parts.append(f"[{section.type}]")
        parts.extend(f"{key}={value}" for key, value in section.options.items())
    return "\n".join(parts) + "\n"


def scale(model: Network, spec: ScaleSpec, header: str, name: str = "scaled.cfg") -> tuple[str, Network]:
    """The scaled cfg's text and the engine's model of it (built to prove the cfg is sound)."""
    drop, extra = _depth_plan(model, spec.depth)
    sections = _rewrite_references(_sequence(model, drop, extra))
    _scale_widths(sections, spec.width)
    net = _copy(model.net)
    # The size the base model was built at (a --size given to it included) unless S is given.
    net.options["width"] = str(spec.size or model.width)
    net.options["height"] = str(spec.size or model.height)
    text = to_text(net, sections, header)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the base cfg's own quirks were reported when it loaded
            scaled = Network(parse_text(text, name))
    except CfgError as exc:
        raise CfgError(f"the scaled cfg does not build: {exc}") from None
    return text, scaled
