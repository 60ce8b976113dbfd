"""Describe a .weights file: header, float count, and (with a cfg) where every float goes."""
from __future__ import annotations

import os

import numpy as np

from darknet_py.format.weights import read_weights
from darknet_py.model.network import build


def describe(weights: str, cfg: str | None = None) -> str:
    header, floats = read_weights(weights)
    lines = [
        f"file:      {weights} ({os.path.getsize(weights):,} bytes)",
        f"header:    version {header.major}.{header.minor}.{header.revision}, "
        f"seen={header.seen:,} ({'uint64' if header.seen_is_64bit else 'uint32'}), {header.nbytes} bytes",
        f"floats:    {floats.size:,}",
    ]
    if cfg is None:
        return "\n".join(lines)
    model = build(cfg)
    needed = model.num_weights()
    verdict = "matches" if needed == floats.size else f"DOES NOT MATCH ({floats.size - needed:+,} floats)"
    lines.append(f"cfg:       {cfg} needs {needed:,} floats: {verdict}")
    lines.append(f"{'layer':>5} {'type':<14} {'line':>5} {'floats':>12} {'offset':>12}  {'min':>9} {'max':>9}")
    offset = 0
    for index, tensors in model.weight_layout():
        count = sum(t.numel() for t in tensors)
        block = floats[offset : offset + count]
        lo, hi = (f"{block.min():9.3g}", f"{block.max():9.3g}") if block.size else ("-", "-")
        if block.size and not np.isfinite(block).all():
            hi += "  NaN/Inf!"
        info = model.infos[index]
        lines.append(f"{index:>5} {info.type:<14} {info.line:>5} {count:>12,} {offset:>12,}  {lo:>9} {hi:>9}")
        offset += count
    return "\n".join(lines)
