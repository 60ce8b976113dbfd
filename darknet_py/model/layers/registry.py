"""Section type → builder. Each layer module registers the section types it serves.

A builder receives its Section and a BuildContext (the shapes built so far) and returns
a Built: the torch module, the layers it reads, and its output shape. Shape inference
happens here, before any weights are read, so size errors surface with file and line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from torch import nn

from ...core.errors import CfgError
from ...format.cfg import Section


class Shape(NamedTuple):
    c: int
    h: int
    w: int

    def __str__(self) -> str:
        return f"{self.w}x{self.h}x{self.c}"


NETWORK_INPUT = -1  # source index meaning "the image fed to the network"
MAX_LAYER_ELEMENTS = 1 << 31  # values in one layer's output for one image (8 GiB of float32): refuse beyond


@dataclass(frozen=True)
class LayerInfo:
    """What the layer table shows: one row per cfg section."""

    index: int
    type: str
    line: int
    sources: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    n_weights: int


@dataclass
class BuildContext:
    index: int
    shapes: list[Shape]
    input_shape: Shape
    net: Section
    notices: dict[str, list[str]] = field(default_factory=dict)
    modules: list[nn.Module] = field(default_factory=list)  # the layers built so far

    def notice(self, kind: str, message: str) -> None:
        """Record a cfg quirk; the model reports each kind once per network."""
        self.notices.setdefault(kind, []).append(message)

    @property
    def prev(self) -> int:
        return self.index - 1

    @property
    def prev_shape(self) -> Shape:
        return self.shape_of(self.prev)

    def shape_of(self, index: int) -> Shape:
        return self.input_shape if index == NETWORK_INPUT else self.shapes[index]

    def resolve(self, section: Section, key: str) -> list[int]:
        """Layer references (negative = relative) as absolute indices of earlier layers."""
        result = []
        for ref in section.get_ints(key):
            absolute = self.index + ref if ref < 0 else ref
            if not 0 <= absolute < self.index:
                raise section.error(
                    f"{key}={ref} points to layer {absolute}, but only layers 0..{self.index - 1} exist before this one",
                    key,
                )
            result.append(absolute)
        return result


@dataclass
class Built:
    module: nn.Module
    out_shape: Shape
    sources: tuple[int, ...]
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)  # filled by the model


Builder = Callable[[Section, BuildContext], Built]
_BUILDERS: dict[str, Builder] = {}


def register(*types: str) -> Callable[[Builder], Builder]:
    """Register a builder for one or more section types (e.g. "maxpool", "max")."""

    def decorate(builder: Builder) -> Builder:
        for name in types:
            if name in _BUILDERS:
                raise ValueError(f"section type [{name}] is registered twice")
            _BUILDERS[name] = builder
        return builder

    return decorate


def supported_types() -> list[str]:
    return sorted(_BUILDERS)


def builder_for(section: Section) -> Builder:
    try:
        return _BUILDERS[section.type]
    except KeyError:
        raise CfgError(
            f"{section.where()}: section type [{section.type}] is not supported; "
            f"supported: {', '.join('[' + t + ']' for t in supported_types())}"
        ) from None


def reject_enabled(section: Section, features: dict[str, str]) -> None:
    """Fail clearly on options that change inference and that the engine does not implement."""
    for key, what in features.items():
        if section.has(key) and section.get_str(key) not in ("0", "none"):
            raise section.error(f"option '{key}' ({what}) is not supported by darknet_py", key)


def require_positive(section: Section, **values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise section.error(f"option '{key}' must be at least 1, found {value}", key)
