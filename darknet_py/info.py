"""What a cfg costs: darknet's layer table with BFLOPs and parameters, and the totals.

BFLOPs use darknet's formulas: a convolution counts 2 × weights × output positions (an xnor=1
one a 32nd of that), a max/local-average pool size² × channels × output positions (darknet adds
both to its total); other layers count 0. Parameters are the trainable ones: kernel weights, biases (or BN
shifts) and BN scales — not BN's running mean and variance, which .weights files also hold.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from torch import nn

from .layers.combine import Route, Shortcut
from .layers.conv import ConvLayer
from .layers.gaussian_yolo import GaussianYoloHead
from .layers.pooling import LocalAvgPool, MaxPool
from .layers.region import RegionHead
from .layers.resample import DepthToSpace, SpaceToDepth, Upsample
from .layers.xnor import XnorConvLayer
from .layers.yolo import YoloHead
from .model import Darknet, LayerInfo
from .structure import Block, find_blocks, format_blocks


@dataclass(frozen=True)
class LayerRow:
    index: int
    type: str
    detail: str  # filters/size/stride, sources, … as darknet prints them
    input: str
    output: str
    bflops: float
    params: int


def _conv(layer: ConvLayer, info: LayerInfo) -> tuple[str, float, int]:
    conv = layer.conv
    kh, kw = conv.kernel_size
    groups = f" /g{conv.groups}" if conv.groups > 1 else ""
    stride = f"{conv.stride[1]}x{conv.stride[0]}" if conv.stride[0] != conv.stride[1] else str(conv.stride[0])
    detail = f"{conv.out_channels:5d}  {kw} x {kh}/{stride}{groups} {layer.act.name}"
    positions = info.out_shape.h * info.out_shape.w
    trainable = conv.weight.numel() + conv.out_channels * (1 if layer.bn is None else 2)
    return detail, 2.0 * conv.weight.numel() * positions / 1e9, trainable


def _xnor(layer: XnorConvLayer, info: LayerInfo) -> tuple[str, float, int]:
    detail, bflops, params = _conv(layer, info)
    return detail + " xnor", bflops / 32, params  # darknet: l.bflops / 32 for xnor layers


def _pool(layer: MaxPool | LocalAvgPool, info: LayerInfo) -> tuple[str, float, int]:
    out = info.out_shape
    return f"       {layer.size} x {layer.size}/{layer.stride[0]}", layer.size ** 2 * out.c * out.h * out.w / 1e9, 0


def _sources(layer: nn.Module, info: LayerInfo) -> tuple[str, float, int]:
    return "       " + ", ".join(str(s) for s in info.sources), 0.0, 0


def _upsample(layer: Upsample, info: LayerInfo) -> tuple[str, float, int]:
    return f"       {layer.stride}x", 0.0, 0


def _reorg(layer: SpaceToDepth | DepthToSpace, info: LayerInfo) -> tuple[str, float, int]:
    return f"       /{layer.stride}" if isinstance(layer, SpaceToDepth) else f"       {layer.stride}x", 0.0, 0


def _head(layer: YoloHead | RegionHead | GaussianYoloHead, info: LayerInfo) -> tuple[str, float, int]:
    spec = layer.spec
    tree = ", tree" if getattr(spec, "tree", None) else ""
    return f"       {spec.classes} classes, {len(spec.anchors)} anchors{tree}", 0.0, 0


DESCRIBE: dict[type, Callable[[nn.Module, LayerInfo], tuple[str, float, int]]] = {
    ConvLayer: _conv, XnorConvLayer: _xnor, MaxPool: _pool, LocalAvgPool: _pool, Route: _sources, Shortcut: _sources,
    Upsample: _upsample, SpaceToDepth: _reorg, DepthToSpace: _reorg,
    YoloHead: _head, RegionHead: _head, GaussianYoloHead: _head,
}


def layer_rows(model: Darknet) -> list[LayerRow]:
    rows = []
    for info, layer in zip(model.infos, model.layers):
        describe = DESCRIBE.get(type(layer))
        detail, bflops, params = describe(layer, info) if describe else ("", 0.0, 0)
        inputs = " + ".join(str(s) for s in info.in_shapes) if len(info.in_shapes) <= 2 else f"{len(info.in_shapes)} inputs"
        rows.append(LayerRow(info.index, info.type, detail, inputs, str(info.out_shape), bflops, params))
    return rows


def blocks(model: Darknet, rows: list[LayerRow] | None = None) -> list[Block]:
    return find_blocks(model, [r.bflops for r in rows or layer_rows(model)])


def summary(model: Darknet) -> dict:
    """{"bflops", "params", "input", "layers": [row dicts], "blocks": [block dicts]}
    (what `darknet-py info --json` prints)."""
    rows = layer_rows(model)
    return {"cfg": model.cfg_path, "input": f"{model.width}x{model.height}x{model.channels}",
            "bflops": sum(r.bflops for r in rows), "params": sum(r.params for r in rows),
            "layers": [asdict(r) for r in rows], "blocks": [b.as_dict() for b in blocks(model, rows)]}


def format_table(model: Darknet) -> str:
    """The layer table, its totals, then the block summary."""
    rows = layer_rows(model)
    lines = [f"{'layer':>5} {'type':<14} {'filters size/strd':<30} {'input':>22}  ->  {'output':<12} {'BFLOPs':>8} {'params':>10}"]
    for r in rows:
        flops = f"{r.bflops:8.3f}" if r.bflops else " " * 8
        params = f"{r.params:10,d}" if r.params else " " * 10
        lines.append(f"{r.index:5d} {r.type:<14} {r.detail:<30} {r.input:>22}  ->  {r.output:<12} {flops} {params}")
    total = sum(r.bflops for r in rows)
    lines.append(f"Total BFLOPs {total:.3f}, params {sum(r.params for r in rows):,} "
                 f"({model.width}x{model.height}, {len(rows)} layers)")
    return "\n".join(lines) + "\n\n" + format_blocks(blocks(model, rows))
