"""Detection heads: the layers whose input the detector decodes ([yolo], [region], [Gaussian_yolo]).

A head passes its input through unchanged; what it means (boxes, scores) is decoded in
darknet_py.pipeline.decode, chosen by the type of the head's spec. Specs are small frozen dataclasses
registered here by kind, so an ONNX export can write them into its metadata and a runtime can
rebuild them (`spec_to_dict` / `spec_from_dict`) without knowing every kind in advance.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Callable, Protocol, TypeVar

from torch import Tensor

from ...core.errors import InputError
from .registry import Description, Layer, LayerInfo


class HeadSpec(Protocol):
    """What every head spec offers the pipeline (decoding, NMS, exports)."""

    kind: str
    anchors: tuple[tuple[float, float], ...]  # one per prediction per cell (units: the decoder's)
    classes: int
    nms_kind: str
    beta_nms: float


class DetectionHead(Layer):
    """A detection layer: identity at forward time; `spec` says how to decode its input."""

    def __init__(self, spec: HeadSpec) -> None:
        super().__init__()
        self.spec = spec

    def forward(self, x: Tensor) -> Tensor:
        return x

    def extra_repr(self) -> str:
        return f"classes={self.spec.classes}, anchors={list(self.spec.anchors)}"

    @property
    def detail_suffix(self) -> str:
        """More words for the layer table (a [region] with a class tree says so)."""
        return ""


def describe_head(layer: DetectionHead, info: LayerInfo) -> Description:
    return Description(f"       {layer.spec.classes} classes, {len(layer.spec.anchors)} anchors{layer.detail_suffix}", 0.0, 0)


_KINDS: dict[str, type] = {}
S = TypeVar("S")


def head_spec(kind: str) -> Callable[[type[S]], type[S]]:
    """Register a spec dataclass under `kind` (the name exports record)."""

    def decorate(cls: type[S]) -> type[S]:
        if kind in _KINDS:
            raise ValueError(f"head spec kind '{kind}' is registered twice")
        cls.kind = kind  # type: ignore[attr-defined]
        _KINDS[kind] = cls
        return cls

    return decorate


def spec_to_dict(spec: HeadSpec) -> dict[str, Any]:
    return {"kind": spec.kind, **asdict(spec)}  # type: ignore[call-overload]


def spec_from_dict(data: dict[str, Any]) -> HeadSpec:
    """The spec a dict from spec_to_dict describes (no "kind": a [yolo] spec, as older exports wrote)."""
    kind = data.get("kind", "yolo")
    if kind not in _KINDS:
        raise InputError(f"unknown detection head kind '{kind}' (known: {', '.join(sorted(_KINDS))}); "
                         "the file was written by a newer darknet_py")
    cls = _KINDS[kind]
    names = {f.name for f in fields(cls)}
    return cls(**{k: _tuples(v) for k, v in data.items() if k in names})


def _tuples(value: Any) -> Any:
    """JSON lists back into the tuples frozen specs hold."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
