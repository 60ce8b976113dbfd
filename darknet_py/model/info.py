"""What a cfg costs: darknet's layer table with BFLOPs and parameters, and the totals.

BFLOPs use darknet's formulas: a convolution counts 2 × weights × output positions (an xnor=1
one a 32nd of that), a max/local-average pool size² × channels × output positions, a [shortcut] one
add per output value and `from` layer, a [crnn] or [conv_lstm] its convolutions (plus the LSTM's
element-wise work); darknet adds these to its total, and counts 0 for other layers ([connected],
[rnn], [gru], [lstm], [softmax] included). Parameters are the trainable ones: kernel weights, biases
(or BN shifts) and BN scales — not BN's running mean and variance, which .weights files also hold; a
convolution sharing another's weights (share_index) adds none.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from torch import nn

from .layers.combine import Route, Shortcut
from .layers.connected import ConnectedLayer
from .layers.conv import ConvLayer
from .layers.gaussian_yolo import GaussianYoloHead
from .layers.pooling import LocalAvgPool, MaxPool
from .layers.recurrent import CRNN, GRU, LSTM, RNN, ConvLSTM, Recurrent
from .layers.region import RegionHead
from .layers.registry import Shape
from .layers.resample import DepthToSpace, SpaceToDepth, Upsample
from .layers.softmax import Softmax, TreeSoftmax
from .layers.xnor import XnorConvLayer
from .layers.yolo import YoloHead
from .network import LayerInfo, Network
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
    shared = " (shared)" if layer.shares_weights else ""
    detail = f"{conv.out_channels:5d}  {kw} x {kh}/{stride}{groups} {layer.act.name}{shared}"
    trainable = 0 if layer.shares_weights else _trainable(layer)
    return detail, _conv_bflops(layer, info.out_shape), trainable


def _conv_bflops(layer: ConvLayer, out: Shape) -> float:
    return 2.0 * layer.conv.weight.numel() * out.h * out.w / 1e9


def _trainable(layer: ConvLayer | ConnectedLayer) -> int:
    """Kernel or matrix weights, biases (or BN shifts) and BN scales."""
    core = layer.conv if isinstance(layer, ConvLayer) else layer.linear
    return core.weight.numel() + core.weight.shape[0] * (1 if layer.bn is None else 2)


def _shortcut(layer: Shortcut, info: LayerInfo) -> tuple[str, float, int]:
    out = info.out_shape  # darknet counts one add per output value and `from` layer
    return _sources(layer, info)[0], out.c * out.h * out.w * len(layer.from_shapes) / 1e9, 0


def _connected(layer: ConnectedLayer, info: LayerInfo) -> tuple[str, float, int]:
    detail = f"{layer.linear.out_features:5d}  {layer.linear.in_features} -> {layer.linear.out_features} {layer.act.name}"
    return detail, 0.0, _trainable(layer)  # darknet gives [connected] no BFLOPs


def _recurrent(layer: Recurrent, info: LayerInfo) -> tuple[str, float, int]:
    """Sub-layers' parameters; BFLOPs as darknet counts them: its convolutions (crnn, conv_lstm, plus
    9 or, with peepholes, 12 element-wise operations per output value for conv_lstm), none for rnn/gru/lstm."""
    subs = layer.weight_layers()
    convs = [m for m in subs if isinstance(m, ConvLayer)]
    out = info.out_shape
    bflops = sum(_conv_bflops(m, out) for m in convs)
    if isinstance(layer, ConvLSTM):
        bflops += (12 if layer.peephole else 9) * out.c * out.h * out.w / 1e9
    detail = f"{out.c:5d}  {len(subs)} {'convolutions' if convs else 'connected'}, recurrent"
    return detail, bflops, sum(_trainable(m) for m in subs)


def _softmax(layer: Softmax | TreeSoftmax, info: LayerInfo) -> tuple[str, float, int]:
    groups = f"{len(layer.tree.groups)} tree groups" if isinstance(layer, TreeSoftmax) else f"{layer.groups} group(s)"
    temperature = f", t={layer.temperature:g}" if layer.temperature != 1 else ""
    return f"       {groups}{temperature}", 0.0, 0


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
    ConvLayer: _conv, XnorConvLayer: _xnor, MaxPool: _pool, LocalAvgPool: _pool, Route: _sources, Shortcut: _shortcut,
    Upsample: _upsample, SpaceToDepth: _reorg, DepthToSpace: _reorg,
    YoloHead: _head, RegionHead: _head, GaussianYoloHead: _head,
    ConnectedLayer: _connected, Softmax: _softmax, TreeSoftmax: _softmax,
    RNN: _recurrent, GRU: _recurrent, LSTM: _recurrent, CRNN: _recurrent, ConvLSTM: _recurrent,
}


def layer_rows(model: Network) -> list[LayerRow]:
    rows = []
    for info, layer in zip(model.infos, model.layers):
        describe = DESCRIBE.get(type(layer))
        detail, bflops, params = describe(layer, info) if describe else ("", 0.0, 0)
        inputs = " + ".join(str(s) for s in info.in_shapes) if len(info.in_shapes) <= 2 else f"{len(info.in_shapes)} inputs"
        rows.append(LayerRow(info.index, info.type, detail, inputs, str(info.out_shape), bflops, params))
    return rows


def blocks(model: Network, rows: list[LayerRow] | None = None) -> list[Block]:
    return find_blocks(model, [r.bflops for r in rows or layer_rows(model)])


def summary(model: Network) -> dict:
    """{"bflops", "params", "input", "layers": [row dicts], "blocks": [block dicts]}
    (what `darknet-py info --json` prints)."""
    rows = layer_rows(model)
    return {"cfg": model.cfg_path, "input": f"{model.width}x{model.height}x{model.channels}",
            "bflops": sum(r.bflops for r in rows), "params": sum(r.params for r in rows),
            "layers": [asdict(r) for r in rows], "blocks": [b.as_dict() for b in blocks(model, rows)]}


def format_table(model: Network) -> str:
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
