"""A classifier's output layers: [softmax] (groups, temperature, tree) and the training-only [cost].

darknet's softmax works on the flat C·H·W values of each image (forward_softmax_layer on the CPU):
`groups` equal consecutive runs, each normalised on its own, as exp(x/t − max/t) / Σ; with `tree=`
the runs are the tree's sibling groups instead (softmax_tree). Its output keeps the input's layout.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from ...format.cfg import Section
from ...format.softmax_tree import SoftmaxTree, read_tree, resolve_tree_path
from .registry import BuildContext, Built, Description, Layer, LayerInfo, describe_nothing, register, require_positive


class Softmax(Layer):
    """Softmax over `groups` equal runs of the flattened input, at `temperature`."""

    def __init__(self, groups: int, temperature: float) -> None:
        super().__init__()
        self.groups, self.temperature = groups, temperature

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], self.groups, -1)
        if self.temperature != 1:
            flat = flat / self.temperature
        return torch.softmax(flat, -1).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, temperature={self.temperature}"


class TreeSoftmax(Layer):
    """Softmax within each sibling group of a class hierarchy (consecutive runs of different sizes).

    The runs are laid out as rows of one (groups × longest run) matrix by a fixed gather, padding
    with −inf (exp gives 0), so the whole layer is a Gather, a Softmax and a Gather back: the same
    graph at any batch size, and one ONNX can express."""

    def __init__(self, tree: SoftmaxTree, temperature: float) -> None:
        super().__init__()
        self.tree, self.temperature = tree, temperature
        runs = [(start, size) for start, size in tree.groups if size > 0]
        longest = max(size for _, size in runs)
        classes = len(tree.parents)
        rows = torch.full((len(runs), longest), classes, dtype=torch.long)  # `classes` indexes the −inf pad
        back = torch.empty(classes, dtype=torch.long)
        for row, (start, size) in enumerate(runs):
            rows[row, :size] = torch.arange(start, start + size)
            back[start : start + size] = row * longest + torch.arange(size)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("back", back, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if self.temperature != 1:
            flat = flat / self.temperature
        padded = torch.cat([flat, torch.full_like(flat[:, :1], float("-inf"))], 1)[:, self.rows]
        probs = torch.softmax(padded, -1).reshape(x.shape[0], -1)
        return probs[:, self.back].reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{len(self.tree.parents)} classes in {len(self.tree.groups)} groups, temperature={self.temperature}"


def describe_softmax(layer: Softmax | TreeSoftmax, info: LayerInfo) -> Description:
    groups = f"{len(layer.tree.groups)} tree groups" if isinstance(layer, TreeSoftmax) else f"{layer.groups} group(s)"
    temperature = f", t={layer.temperature:g}" if layer.temperature != 1 else ""
    return Description(f"       {groups}{temperature}", 0.0, 0)


@register("softmax", describe=describe_softmax)
def build_softmax(s: Section, ctx: BuildContext) -> Built:
    prev = ctx.prev_shape
    inputs = prev.c * prev.h * prev.w
    temperature = s.get_float("temperature", 1.0)
    if temperature == 0:
        raise s.error("temperature must not be 0", "temperature")
    if s.has("tree"):
        tree = _tree(s)
        if len(tree.parents) != inputs:
            raise s.error(f"the tree lists {len(tree.parents)} classes but the layer before gives {inputs} values", "tree")
        return Built(TreeSoftmax(tree, temperature), prev, (ctx.prev,))
    groups = s.get_int("groups", 1)
    require_positive(s, groups=groups)
    if inputs % groups:
        raise s.error(f"groups={groups} does not divide the {inputs} input values ({prev})", "groups")
    return Built(Softmax(groups, temperature), prev, (ctx.prev,))


def _tree(s: Section) -> SoftmaxTree:
    value = s.get_str("tree")
    places = resolve_tree_path(value, s.path)
    found = next((p for p in places if os.path.isfile(p)), None)
    if found is None:
        raise s.error(f"tree file '{value}' not found (looked in: {', '.join(places)})", "tree")
    return read_tree(found, s.where("tree"))


class Cost(Layer):
    """[cost]: a training loss. At inference darknet leaves the values alone and reports the layer
    before it as the network's output (get_network_output), so here it passes its input through."""

    def forward(self, x: Tensor) -> Tensor:
        return x


@register("cost", describe=describe_nothing)
def build_cost(s: Section, ctx: BuildContext) -> Built:
    s.get_float("scale", 1.0)  # validated; `type` and `scale` shape the training loss only
    return Built(Cost(), ctx.prev_shape, (ctx.prev,))
