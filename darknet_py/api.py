"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import os
from typing import Sequence, Union

from .backends import BACKENDS, GRAPH_BACKENDS, exported_file, graph_backend
from .backends.graph import GraphDetector
from .backends.graph_classifier import GraphClassifier, classifier_or_detector
from .backends.torch import Darknet
from .core.errors import InputError
from .format.cfg import read_cfg
from .format.names import default_names
from .model.network import resolve_device
from .pipeline.preprocess import DEFAULT_RESIZE, check_resize


def load(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    size: int | Sequence[int] | None = None,
    fast: bool = True,
    resize: str | None = None,
    backend: str | None = None,
    **backend_options,
) -> Union[Darknet, GraphDetector, GraphClassifier]:
    """Build the network from `cfg`, load `weights` (None: random init), move to `device`, eval mode.

    `fast` (default) folds batch norm into the convolutions and keeps activations channels-last
    (see Darknet.fold_batchnorm / use_channels_last); results agree with the plain layout to
    float rounding. On CUDA it also replays detect()'s network as CUDA graphs (Darknet.accelerate).

    `resize` picks detect()'s image resize: "darknet" (the default: darknet's own resize_image /
    letterbox_image, what `darknet detector test/valid/map` compute) or "opencv" (cv2.resize, as OpenCV
    DNN and darknet's video demo); exports and Ray run plans record it.

    `load("model.onnx")` (a file written by `darknet-py export`) returns an onnxruntime-backed
    detector with the same `.detect()`, `load("model.xml")` (OpenVINO IR from `export`) an OpenVINO
    one; they need no cfg or weights (an exported classifier comes back as a classifier with
    `.classify()`), and their resize is the one recorded at export unless `resize` is given.
    `backend="openvino"` (or "onnxruntime") runs an `.onnx` file, or cfg + weights exported in memory,
    on that runtime; `backend_options` go to its detector (`threads=N`; OpenVINO: `precision="f32"`
    (default), "bf16" or "f16").

    Args:
        cfg (str or PathLike): a darknet `.cfg` file, or an exported `.onnx` / OpenVINO `.xml` file.
        weights (str or PathLike, optional): the `.weights` for `cfg` (an exported file may come here
            instead); None: randomly initialised weights.
        device (str): "cpu", "cuda" or "cuda:N". Default: "cpu".
        size (int or (int, int), optional): network input size, N or (W, H), instead of the cfg's.
        fast (bool): fold batch norm and keep activations channels-last (torch). Default: True.
        resize (str, optional): "darknet" or "opencv"; None: "darknet", or the one an export recorded.
        backend (str, optional): "torch", "onnxruntime" or "openvino"; None: torch for a cfg, the
            file's runtime for an export.
        **backend_options: keywords for a graph runtime's detector (`threads`, OpenVINO's `precision`).

    Returns:
        Darknet, GraphDetector or GraphClassifier: a model meeting the `Backend` protocol, with
        `.detect()` (or `.classify()` for a classifier).

    Raises:
        DarknetError: a `CfgError`, `WeightsError` or `InputError` naming the file, line and layer.
    """
    if resize is not None:
        check_resize(resize)
    if backend is not None and backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if backend in GRAPH_BACKENDS:
        graph_backend(backend).require()  # a missing optional runtime is the first thing to hear about
    exported = next((path for path in (cfg, weights) if exported_file(path)), None)
    if exported is not None:
        backend = backend or exported_file(exported)
        if backend == "torch":
            raise InputError(f"{os.fspath(exported)} is an exported model: it runs with --backend "
                             f"{' or '.join(GRAPH_BACKENDS)}, not torch")
        if exported_file(exported) == "openvino" and backend != "openvino":
            raise InputError(f"{os.fspath(exported)} is OpenVINO IR: it runs with --backend openvino only")
        return classifier_or_detector(graph_backend(backend)(exported, device=str(device), size=size, resize=resize,
                                                             **backend_options))
    if backend in GRAPH_BACKENDS:
        model = load(cfg, weights, device="cpu", size=size, resize=resize)
        return in_memory_export(model, backend, str(device), **backend_options)
    if backend_options:
        raise InputError(f"options {', '.join(backend_options)} are for the exported-graph backends, not torch")
    dev = resolve_device(device)
    model = Darknet(read_cfg(cfg), size)
    model.resize = resize or DEFAULT_RESIZE
    if weights is not None:
        model.load_weights(weights)
    model = model.to(dev).eval()
    if not fast:
        return model.accelerate(cuda_graphs=False)
    return model.fold_batchnorm().use_channels_last()


def in_memory_export(model: Darknet, backend: str, device: str,
                     **backend_options) -> Union[GraphDetector, GraphClassifier]:
    """cfg + weights on a graph runtime: export (boxes, dynamic batch) in memory and run that."""
    from .export.onnx import build_onnx  # onnx is imported only when a graph runtime is asked for

    proto = build_onnx(model, default_names(model.num_classes), weights_path=model.weights_path)
    return classifier_or_detector(graph_backend(backend)(proto.SerializeToString(), device=device, **backend_options))
