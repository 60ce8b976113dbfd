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

from .layers import layer_type
from .network import Network
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


def layer_rows(model: Network) -> list[LayerRow]:
    rows = []
    for info, layer in zip(model.infos, model.layers):
        detail, bflops, params = layer_type(info.type).describe(layer, info)  # each layer module says (its registration)
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
