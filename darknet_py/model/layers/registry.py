"""The layer contract: section type → (builder, description). Each layer module registers the
section types it serves, in one place, with everything the rest of the engine needs from it:

    @register("maxpool", "max", describe=describe_pool)
    def build_maxpool(s: Section, ctx: BuildContext) -> Built: ...

A builder receives its Section and a BuildContext (the shapes built so far) and returns a Built:
the torch module (a `Layer`), the layers it reads, and its output shape. Shape inference happens
here, before any weights are read, so size errors surface with file and line. A description gives
`darknet-py info` its row: the detail text darknet prints, BFLOPs as darknet counts them, and the
trainable parameters. Registering a type without one is an error at import, so a new layer cannot
silently show 0 BFLOPs. Modules in this package are imported (and so registered) automatically:
a new layer is one new file. A layer makes the torch modules that hold its weights (nn.Conv2d, nn.Linear)
through `weights_module`, so that a network whose weights are written right after it is built skips
torch's random initialisation of them (see `weights_follow`).
"""
from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable, ClassVar, NamedTuple, Sequence, TypeVar

from torch import Tensor, nn

from ...core.errors import CfgError
from ...core.scoped_flag import ScopedFlag
from ...format.cfg import Section


class Shape(NamedTuple):
    c: int
    h: int
    w: int

    def __str__(self) -> str:
        return f"{self.w}x{self.h}x{self.c}"


_WEIGHTS_FOLLOW = ScopedFlag("darknet_py_weights_follow")
ModuleT = TypeVar("ModuleT", bound=nn.Module)


def weights_follow() -> AbstractContextManager[None]:
    """Layers built inside leave their weights uninitialised: the caller writes every one of them next (a
    .weights file, synthetic weights). torch's random initialisation of them is otherwise wasted, and for
    the largest networks it was about half the load time (yolov4-p7: 276 M floats;
    benchmarks/results/load_before.json).
    A network built at the same time in another thread is not affected (core.scoped_flag).
    """
    return _WEIGHTS_FOLLOW.raised()


def weights_module(factory: type[ModuleT], *args, **kwargs) -> ModuleT:
    """`factory(*args, **kwargs)`: a torch module that holds a layer's weights (nn.Conv2d, nn.Linear, a subclass),
    with its parameters left uninitialised inside `weights_follow`.

    Args:
        factory (type): the module's class; its constructor initialises the parameters by calling
            `reset_parameters()`, as torch's own layers do.
        *args, **kwargs: its constructor's arguments.

    Returns:
        nn.Module: an instance of `factory`.
    """
    if not _WEIGHTS_FOLLOW:
        return factory(*args, **kwargs)
    # Not torch.nn.utils.skip_init: it builds on the meta device, whose first use imports sympy (0.3 s here, more than
    # the init it saves on yolov4-tiny). The constructor runs with reset_parameters() a no-op (the tensors stay
    # torch.empty's), then the module becomes the factory's own class again: it pickles and prints as one.
    module = _without_reset(factory)(*args, **kwargs)
    module.__class__ = factory
    return module


@functools.cache
def _without_reset(factory: type[ModuleT]) -> type[ModuleT]:
    return type(f"Uninitialised{factory.__name__}", (factory,), {"reset_parameters": lambda self: None})


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


class Layer(nn.Module):
    """What every module a builder returns offers the network; the defaults suit a layer without weights.

    Subclasses override what applies: `darknet_tensors` (the tensors in .weights order), `after_build`
    (behaviour that depends on which layers read this one), and the flags below.
    """

    fixed_size: ClassVar[bool] = False  # its weights fix the input size (ONNX exports refuse --dynamic-size)
    detection_layer: ClassVar[bool] = False  # forward_heads returns this layer's input (YOLOv1 [detection])
    shares_weights: bool = False  # share_index: its tensors are another layer's (not in the .weights file twice)

    def darknet_tensors(self) -> list[Tensor]:
        """This layer's tensors in the order the .weights file holds them ([] for none)."""
        return []

    def after_build(self, index: int, infos: Sequence[LayerInfo]) -> None:
        """Called once the whole network is built, with this layer's index and every layer's LayerInfo."""


class Description(NamedTuple):
    """One row of the layer table, as far as the layer itself knows it."""

    detail: str  # filters, size/stride, sources, … as darknet prints them
    bflops: float  # darknet's count (billions of floating-point operations per image)
    params: int  # trainable parameters (not batch norm's running statistics)


NO_DESCRIPTION = Description("", 0.0, 0)


def describe_nothing(layer: nn.Module, info: LayerInfo) -> Description:
    """For layers darknet prints no detail for and counts no BFLOPs (an explicit choice, not an omission)."""
    return NO_DESCRIPTION


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
    module: Layer
    out_shape: Shape
    sources: tuple[int, ...]
    weight_shapes: list[tuple[int, ...]] = field(default_factory=list)  # filled by the model


Builder = Callable[[Section, BuildContext], Built]
Describer = Callable[[nn.Module, LayerInfo], Description]


@dataclass(frozen=True)
class LayerType:
    """A registered section type: how to build it and how to describe what was built."""

    name: str
    build: Builder
    describe: Describer


_TYPES: dict[str, LayerType] = {}


def register(*types: str, describe: Describer | None = None) -> Callable[[Builder], Builder]:
    """Register a builder and its description for one or more section types (e.g. "maxpool", "max").

    Args:
        *types (str): the section names it serves, aliases included.
        describe (Describer): (built module, LayerInfo) → Description; required (`describe_nothing` for
            layers darknet gives no detail or BFLOPs).

    Returns:
        the decorator, which returns the builder unchanged.
    """
    if not callable(describe):
        raise TypeError(f"section type(s) {', '.join('[' + t + ']' for t in types)} registered without describe=: "
                        "every layer type gives `info` its row (see darknet_py.model.layers.registry)")

    def decorate(builder: Builder) -> Builder:
        for name in types:
            if name in _TYPES:
                raise ValueError(f"section type [{name}] is registered twice")
            _TYPES[name] = LayerType(name, builder, describe)
        return builder

    return decorate


def supported_types() -> list[str]:
    return sorted(_TYPES)


def layer_type(name: str) -> LayerType:
    """The registration of a section type (KeyError when it has none)."""
    return _TYPES[name]


def builder_for(section: Section) -> Builder:
    try:
        return _TYPES[section.type].build
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
