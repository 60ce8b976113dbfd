"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence, Union

from .model import Darknet, build, resolve_device

if TYPE_CHECKING:
    from .onnx_backend import OnnxDetector
    from .onnx_classifier import OnnxClassifier


def load(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    size: int | Sequence[int] | None = None,
    fast: bool = True,
) -> Union[Darknet, "OnnxDetector", "OnnxClassifier"]:
    """Build the network from `cfg`, load `weights` (None: random init), move to `device`, eval mode.

    `fast` (default) folds batch norm into the convolutions and keeps activations channels-last
    (see Darknet.fold_batchnorm / use_channels_last); results agree with the plain layout to
    float rounding. On CUDA it also replays detect()'s network as CUDA graphs (Darknet.accelerate).

    `load("model.onnx")` (a file written by `darknet-py export`) returns an onnxruntime-backed
    detector with the same `.detect()` (for an exported classifier, a classifier with `.classify()`);
    it needs no cfg or weights.
    """
    for path in (cfg, weights):
        if path is not None and os.fspath(path).lower().endswith(".onnx"):
            from .onnx_classifier import open_onnx  # onnxruntime is imported only when used

            return open_onnx(path, device=str(device), size=size)
    dev = resolve_device(device)
    model = build(cfg, size)
    if weights is not None:
        model.load_weights(weights)
    model = model.to(dev).eval()
    if not fast:
        return model.accelerate(cuda_graphs=False)
    return model.fold_batchnorm().use_channels_last()
