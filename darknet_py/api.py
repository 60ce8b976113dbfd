"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence, Union

from .model import Darknet, build, resolve_device
from .preprocess import DEFAULT_RESIZE, check_resize

if TYPE_CHECKING:
    from .onnx_backend import OnnxDetector


def load(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    size: int | Sequence[int] | None = None,
    fast: bool = True,
    resize: str | None = None,
) -> Union[Darknet, "OnnxDetector"]:
    """Build the network from `cfg`, load `weights` (None: random init), move to `device`, eval mode.

    `fast` (default) folds batch norm into the convolutions and keeps activations channels-last
    (see Darknet.fold_batchnorm / use_channels_last); results agree with the plain layout to
    float rounding. On CUDA it also replays detect()'s network as CUDA graphs (Darknet.accelerate).

    `resize` picks detect()'s image resize: "darknet" (the default: darknet's own resize_image /
    letterbox_image, what `darknet detector test/valid/map` compute) or "opencv" (cv2.resize, as OpenCV
    DNN and darknet's video demo); exports and Ray run plans record it.

    `load("model.onnx")` (a file written by `darknet-py export`) returns an onnxruntime-backed
    detector with the same `.detect()`; it needs no cfg or weights, and its resize is the one recorded
    at export unless `resize` is given.
    """
    if resize is not None:
        check_resize(resize)
    for path in (cfg, weights):
        if path is not None and os.fspath(path).lower().endswith(".onnx"):
            from .onnx_backend import OnnxDetector  # onnxruntime is imported only when used

            return OnnxDetector(path, device=str(device), size=size, resize=resize)
    dev = resolve_device(device)
    model = build(cfg, size)
    model.resize = resize or DEFAULT_RESIZE
    if weights is not None:
        model.load_weights(weights)
    model = model.to(dev).eval()
    if not fast:
        return model.accelerate(cuda_graphs=False)
    return model.fold_batchnorm().use_channels_last()
