"""The blocks a cfg is built from: cross-stage-partial (CSP) blocks found in the layer graph.

A CSP block splits a feature map S into two parts, sends one through a body of layers,
and concatenates the two again (Scaled-YOLOv4, section 3). In a darknet cfg that is a
[route] with two sources X (end of the body) and Y (the short part), where

- Y is a 1×1 convolution of S and the body starts with another 1×1 convolution of S
  (directly or through `[route] layers=S`): CSPDarknet stages, the reversed-CSP (rCSP)
  blocks of the CSP-PAN neck and CSPSPP; or
- Y is S itself and the body starts with a partial route of S (`groups=2 group_id=1`):
  YOLOv4-tiny's CSPOSA;

and the body is closed: every body layer reads only S or other body layers. A 1×1
convolution right after the concatenation is the block's transition. The block also takes
the layers just before it that only feed it (a downsampling convolution or pool, the
upsample and lateral path of a CSPUp, the strided path of a CSPDown). Whatever remains is
grouped into plain blocks (Conv, Res, SPP, Up, Head), split at each downsampling layer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .layers.combine import Route, Shortcut
from .layers.conv import ConvLayer
from .layers.head import DetectionHead
from .layers.pooling import MaxPool
from .layers.resample import Upsample
from .network import Network

CSP_TYPES = ("CSPDark", "CSPSPP", "CSPOSA", "CSPUp", "CSPDown", "rCSP")


@dataclass(frozen=True)
class Block:
    index: int
    type: str
    layers: tuple[int, ...]
    depth: int  # residual units where the body has shortcuts, else 3×3 convolutions (maxpools for SPP)
    width: int  # output channels
    stride: int  # output stride relative to the network input
    bflops: float
    inputs: tuple[int, ...]  # blocks read by this one; -1 is the network input

    @property
    def stage(self) -> str:
        return f"P{int(math.log2(self.stride))}" if self.stride & (self.stride - 1) == 0 else f"/{self.stride}"

    def as_dict(self) -> dict:
        return {**asdict(self), "layers": list(self.layers), "inputs": list(self.inputs), "stage": self.stage}


class _Graph:
    """Sources, consumers and ancestors of every layer."""

    def __init__(self, model: Network) -> None:
        self.model = model
        self.layers = list(model.layers)
        self.sources = [tuple(s for s in info.sources if s >= 0) for info in model.infos]
        self.consumers: list[set[int]] = [set() for _ in self.layers]
        self.ancestors: list[frozenset[int]] = []
        for index, sources in enumerate(self.sources):
            for source in sources:
                self.consumers[source].add(index)
            self.ancestors.append(frozenset().union(*(self.ancestors[s] | {s} for s in sources)))

    def conv(self, i: int, size: int | None = None) -> bool:
        layer = self.layers[i]
        return isinstance(layer, ConvLayer) and (size is None or layer.conv.kernel_size == (size, size))

    def route(self, i: int, partial: bool) -> bool:
        """A one-source route: partial (a channel group) or identity."""
        layer, info = self.layers[i], self.model.infos[i]
        if not isinstance(layer, Route) or len(self.sources[i]) != 1:
            return False
        (start, stop), = layer.slices
        return ((start, stop) != (0, info.in_shapes[0].c)) == partial

    def concat(self, i: int) -> bool:
        return isinstance(self.layers[i], Route) and len(self.sources[i]) >= 2

    def origin(self, i: int) -> int:
        while self.route(i, partial=False):
            (i,) = self.sources[i]
        return i

    def downsamples(self, i: int) -> bool:
        info = self.model.infos[i]
        return bool(info.in_shapes) and info.out_shape.w < info.in_shapes[0].w

    def count(self, layers, kind: type, size: int | None = None) -> int:
        return sum(isinstance(self.layers[i], kind) and (size is None or self.conv(i, size)) for i in layers)


@dataclass
class _Core:
    split: int
    layers: set[int]
    body: set[int]
    entry_partial: bool


def _match(g: _Graph, concat: int, x: int, y: int) -> _Core | None:
    """The CSP core of `concat` with body ending at x and short part y, or None."""
    partial = not g.conv(y, 1)
    split = y if partial else g.origin(g.sources[y][0]) if g.sources[y] else -1
    if split < 0 or split >= x:
        return None
    body = {m for m in g.ancestors[x] | {x} if m > split}
    if y in body or len(body) < 2 or any(s != split and s not in body for m in body for s in g.sources[m]):
        return None
    entries = [m for m in body if split in g.sources[m]]
    if len(entries) != 1:
        return None
    (entry,) = entries
    if partial:
        if not g.route(entry, partial=True):
            return None
    elif not (g.conv(entry, 1) or (g.route(entry, partial=False) and any(g.conv(c, 1) for c in g.consumers[entry]))):
        return None
    short = {y} if partial else {y} | {m for m in g.ancestors[y] if m > split}
    layers = body | {concat} | (short - {split})
    after = concat + 1
    if after < len(g.layers) and g.conv(after, 1) and g.sources[after] == (concat,):
        layers.add(after)  # transition
    return _Core(split, layers, body, partial)


def _cores(g: _Graph) -> list[_Core]:
    cores: list[_Core] = []
    taken: set[int] = set()
    for index in range(len(g.layers)):
        if not g.concat(index) or len(g.sources[index]) != 2:
            continue
        a, b = g.sources[index]
        core = _match(g, index, a, b) or _match(g, index, b, a)
        if core and not core.layers & taken:
            cores.append(core)
            taken |= core.layers
    return cores


def _prefix(g: _Graph, core: _Core, taken: set[int]) -> list[int]:
    """Layers just before the core's split that only feed this block. A downsampling layer
    opens the block: past it only routes are taken (the source pick of a CSPDown)."""
    members, prefix, opened = set(core.layers), [], False
    for i in range(core.split, -1, -1):
        if i in taken or isinstance(g.layers[i], (Shortcut, DetectionHead)) or (opened and not isinstance(g.layers[i], Route)):
            break
        if i != core.split and (i not in g.ancestors[core.split] or not g.consumers[i] <= members):
            break
        opened = opened or g.downsamples(i)
        prefix.append(i)
        members.add(i)
    return prefix


def _csp_type(g: _Graph, core: _Core, prefix: list[int]) -> tuple[str, int]:
    body = core.body
    if g.count(body, Shortcut):
        return "CSPDark", g.count(body, Shortcut)
    if g.count(body, MaxPool):
        return "CSPSPP", g.count(body, ConvLayer, 3)
    if core.entry_partial:
        return "CSPOSA", g.count(body, ConvLayer, 3)
    if g.count(prefix, Upsample):
        return "CSPUp", g.count(body, ConvLayer, 3)
    if any(g.downsamples(i) for i in prefix) and any(g.concat(i) for i in prefix):
        return "CSPDown", g.count(body, ConvLayer, 3)
    return "rCSP", g.count(body, ConvLayer, 3)


def _plain_type(g: _Graph, layers: list[int]) -> tuple[str, int]:
    if g.count(layers, DetectionHead):
        return "Head", g.count(layers, ConvLayer)
    if g.count(layers, Shortcut):
        return "Res", g.count(layers, Shortcut)
    same_size_pools = [i for i in layers if isinstance(g.layers[i], MaxPool) and not g.downsamples(i)]
    if len(same_size_pools) >= 2:
        return "SPP", len(same_size_pools)
    if g.count(layers, Upsample):
        return "Up", g.count(layers, ConvLayer)
    return "Conv", g.count(layers, ConvLayer)


def _plain_runs(g: _Graph, taken: set[int]) -> list[list[int]]:
    """Unassigned layers in index order; a run ends at a gap or a [yolo], and a downsampling
    layer starts a new one unless the run so far only routes."""
    runs: list[list[int]] = []
    for i in range(len(g.layers)):
        if i in taken:
            continue
        run = runs[-1] if runs else None
        starts = (run is None or run[-1] != i - 1 or isinstance(g.layers[run[-1]], DetectionHead)
                  or (g.downsamples(i) and not all(isinstance(g.layers[j], Route) for j in run)))
        if starts:
            runs.append([i])
        else:
            run.append(i)
    return [part for run in runs for part in _split_after_residuals(g, run)]


def _split_after_residuals(g: _Graph, run: list[int]) -> list[list[int]]:
    """A residual stage ends at its last shortcut (darknet-53's last stage runs into the neck)."""
    shortcuts = [n for n, i in enumerate(run) if isinstance(g.layers[i], Shortcut)]
    if not shortcuts or shortcuts[-1] == len(run) - 1:
        return [run]
    return [run[:shortcuts[-1] + 1], run[shortcuts[-1] + 1:]]


def find_blocks(model: Network, bflops: list[float]) -> list[Block]:
    """Every layer in exactly one block, blocks ordered by their first layer; `bflops` per layer."""
    g = _Graph(model)
    cores = _cores(g)
    taken = set().union(*(c.layers for c in cores)) if cores else set()
    found: list[tuple[list[int], str, int]] = []
    for core in cores:
        prefix = _prefix(g, core, taken)
        taken |= set(prefix)
        kind, depth = _csp_type(g, core, prefix)
        found.append((sorted(core.layers | set(prefix)), kind, depth))
    for run in _plain_runs(g, taken):
        found.append((run, *_plain_type(g, run)))
    found.sort(key=lambda item: item[0][0])

    owner = {layer: number for number, (layers, _, _) in enumerate(found) for layer in layers}
    blocks = []
    for number, (layers, kind, depth) in enumerate(found):
        last = model.infos[layers[-1]].out_shape
        reads = {owner.get(s, -1) if s >= 0 else -1 for i in layers for s in model.infos[i].sources}
        blocks.append(Block(number, kind, tuple(layers), depth, last.c, max(1, model.width // last.w),
                            sum(bflops[i] for i in layers), tuple(sorted(reads - {number}))))
    return blocks


def _span(layers: tuple[int, ...]) -> str:
    contiguous = layers[-1] - layers[0] + 1 == len(layers)
    return f"{layers[0]}-{layers[-1]}" + ("" if contiguous else "*") if len(layers) > 1 else str(layers[0])


def format_blocks(blocks: list[Block]) -> str:
    lines = [f"{'block':>5} {'type':<8} {'layers':<10} {'stage':<5} {'depth':>5} {'width':>6} {'stride':>6} {'BFLOPs':>8}"]
    for b in blocks:
        lines.append(f"{b.index:5d} {b.type:<8} {_span(b.layers):<10} {b.stage:<5} {b.depth:5d} {b.width:6d} "
                     f"{b.stride:6d} {b.bflops:8.3f}")
    counts: dict[str, int] = {}
    for b in blocks:
        counts[b.type] = counts.get(b.type, 0) + 1
    found = ", ".join(f"{n} {t}" for t, n in counts.items() if t in CSP_TYPES) or "none"
    gaps = any("*" in _span(b.layers) for b in blocks)
    lines.append(f"CSP blocks: {found}" + ("  (* = layers not contiguous)" if gaps else ""))
    return "\n".join(lines)


def to_dot(blocks: list[Block], title: str) -> str:
    """The block graph in Graphviz dot: one node per block, an edge per block read."""
    quote = title.replace('"', "'")
    lines = [f'digraph "{quote}" {{', "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];',
             '  input [label="input", shape=ellipse];']
    for b in blocks:
        shape = ', style=filled, fillcolor="#dbe9f6"' if b.type in CSP_TYPES else ""
        label = f"{b.type} ×{b.depth}\\nlayers {_span(b.layers)}\\n{b.width} ch, {b.stage}\\n{b.bflops:.3f} BFLOPs"
        lines.append(f'  b{b.index} [label="{label}"{shape}];')
    for b in blocks:
        for source in b.inputs:
            lines.append(f"  {'input' if source < 0 else f'b{source}'} -> b{b.index};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def csp_depths(blocks: list[Block], kind: str = "CSPDark") -> list[int]:
    """Depths of the blocks of one type, in network order (e.g. residual units per CSPDarknet stage)."""
    return [b.depth for b in blocks if b.type == kind]

