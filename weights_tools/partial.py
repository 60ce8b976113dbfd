"""darknet's `partial`: the first N layers' weights of a .weights file, as the pre-trained start of a training run
(`darknet partial cfg/yolov4-tiny.cfg yolov4-tiny.weights yolov4-tiny.conv.29 29` makes the yolov4-tiny.conv.29
that darknet's README trains custom models from).

darknet (src/darknet.c partial) reads the weights of layers 0..N-1 as the cfg lays them out and writes them back
with a fresh header: version 0.2.5, nothing seen. A .weights file holds each layer's floats one layer after another,
so that is the file's header replaced and its floats cut after the N-th layer's: the bytes darknet writes. The cfg
may differ from the file's after layer N-1 (another class count: `partial` of COCO weights with a custom cfg, as the
README does); only the first N layers must match.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from darknet_py.core.errors import DarknetWarning, InputError, WeightsError
from darknet_py.format.weights import WeightsFile, WeightsHeader, write_weights
from darknet_py.model.network import build


@dataclass(frozen=True)
class PartialWeights:
    """What `partial` wrote.

    Attributes:
        layers (int): the layers taken (N, or all of the cfg's when it has fewer).
        floats (int): the floats written after the header.
        weighted (int): how many of those layers hold weights.
    """

    layers: int
    floats: int
    weighted: int


def partial(cfg: str, weights: str, out: str, layers: int) -> PartialWeights:
    """Write the first *layers* layers' weights of *weights* (laid out by *cfg*) to *out*, as darknet's `partial`.

    Args:
        cfg (str): the cfg the weights follow, at least up to layer *layers* - 1.
        weights (str): the .weights file.
        out (str): the file to write (atomically).
        layers (int): N: layers 0 to N-1 are kept, 1 or more (more than the cfg has: all of them, as darknet).

    Returns:
        PartialWeights: the layers taken and the floats written.

    Raises:
        InputError: N is below 1.
        WeightsError: the file is not a darknet .weights file, or holds fewer floats than the first N layers need.
    """
    if layers < 1:
        raise InputError(f"partial {layers}: give how many layers to keep from the first, 1 or more")
    model = build(cfg, init_weights=False)
    taken = min(layers, len(model.infos))
    counts = [info.n_weights for info in model.infos[:taken]]
    needed = int(sum(counts))
    with WeightsFile(weights) as source:
        if source.count < needed:
            have = np.cumsum(counts)
            short = int(np.searchsorted(have, source.count, side="right"))
            raise WeightsError(f"{source.name} holds {source.count:,} floats; the first {taken} layers of "
                               f"{os.path.basename(cfg)} need {needed:,} (layer {short}, {model.infos[short].type}, "
                               "is where the file runs out): a cfg of another network?")
        if source.count != model.num_weights():
            warnings.warn(f"{source.name} holds {source.count:,} floats, {os.path.basename(cfg)} needs "
                          f"{model.num_weights():,}: not this file's cfg (one of another class count is fine: the "
                          f"layers before its heads are the same); the first {taken} layers' {needed:,} floats are "
                          "taken", DarknetWarning, stacklevel=2)
        floats = np.empty(needed, np.float32)
        source.read_into(floats)
    write_weights(out, WeightsHeader(), floats)  # darknet's partial: version 0.2.5, seen 0
    return PartialWeights(taken, needed, sum(1 for count in counts if count))
