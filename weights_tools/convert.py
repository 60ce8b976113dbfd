""".weights ⇄ PyTorch checkpoint (.pt). The checkpoint keeps the darknet header so the
way back reproduces the original file byte for byte. Loading uses weights_only=True:
a checkpoint cannot run code.
"""
from __future__ import annotations

import os

import torch

from darknet_py.core.errors import WeightsError
from darknet_py.core.fileio import atomic_path
from darknet_py.format.weights import WeightsHeader
from darknet_py.model.network import build

FORMAT = "darknet_py-checkpoint/1"


def weights_to_pt(cfg: str, weights: str, out: str) -> None:
    model = build(cfg).load_weights(weights)
    h = model.weights_header
    payload = {
        "format": FORMAT,
        "header": [h.major, h.minor, h.revision, h.seen],
        "cfg": os.path.basename(cfg),
        "state_dict": model.state_dict(),
    }
    with atomic_path(out, ".pt") as tmp:
        torch.save(payload, tmp)


def pt_to_weights(cfg: str, checkpoint: str, out: str) -> None:
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise WeightsError(f"{os.path.basename(checkpoint)}: not a readable darknet_py checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"{os.path.basename(checkpoint)}: not a darknet_py checkpoint (expected format {FORMAT})")
    model = build(cfg)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        # torch's first line only says that loading failed; the reasons (missing and unexpected keys, shapes) follow
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0] if lines else "it does not load"
        raise WeightsError(f"{os.path.basename(checkpoint)} does not fit {os.path.basename(cfg)}: {reason}") from None
    model.save_weights(out, WeightsHeader(*payload["header"]))


def convert(cfg: str, source: str, out: str) -> None:
    """Direction follows the file names: .weights → .pt or .pt → .weights."""
    if source.endswith(".weights") and out.endswith(".pt"):
        weights_to_pt(cfg, source, out)
    elif source.endswith(".pt") and out.endswith(".weights"):
        pt_to_weights(cfg, source, out)
    else:
        raise WeightsError(f"cannot tell the direction from '{source}' → '{out}': use .weights → .pt or .pt → .weights")
