"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import os
from typing import Sequence

from .model import Darknet, build, resolve_device


def load(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    size: int | Sequence[int] | None = None,
) -> Darknet:
    """Build the network from `cfg`, load `weights` (None: random init), move to `device`, eval mode."""
    dev = resolve_device(device)
    model = build(cfg, size)
    if weights is not None:
        model.load_weights(weights)
    return model.to(dev).eval()
