"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Sequence, Union

from .errors import InputError
from .model import Darknet, build, resolve_device
from .preprocess import DEFAULT_RESIZE, check_resize

if TYPE_CHECKING:
    from .graph_backend import GraphDetector
    from .onnx_classifier import OnnxClassifier

# Runtimes of exported graphs: name → (module, class), imported only when used (their packages are heavy or optional).
GRAPH_BACKENDS = {
    "onnxruntime": ("darknet_py.onnx_backend", "OnnxDetector"),
    "openvino": ("darknet_py.openvino_backend", "OpenVinoDetector"),
}
BACKENDS = ("torch", *GRAPH_BACKENDS)
# What a model file's suffix says about the runtime that reads it by default.
EXPORT_SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino"}


def classifier_or_detector(runtime: "GraphDetector") -> Union["GraphDetector", "OnnxClassifier"]:
    """An opened export as what its metadata says it is (darknet_py.onnx_classifier wraps classifiers)."""
    from .onnx_classifier import classifier_or_detector as wrap  # runtimes are imported only when used

    return wrap(runtime)


def graph_backend(name: str) -> type["GraphDetector"]:
    module, cls = GRAPH_BACKENDS[name]
    return getattr(importlib.import_module(module), cls)


def exported_file(path: str | os.PathLike[str] | None) -> str | None:
    """The default backend of an exported model file (`.onnx`, OpenVINO `.xml`), None for other files."""
    return None if path is None else EXPORT_SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())


def load(
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    size: int | Sequence[int] | None = None,
    fast: bool = True,
    resize: str | None = None,
    backend: str | None = None,
    **backend_options,
) -> Union[Darknet, "GraphDetector", "OnnxClassifier"]:
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
    model = build(cfg, size)
    model.resize = resize or DEFAULT_RESIZE
    if weights is not None:
        model.load_weights(weights)
    model = model.to(dev).eval()
    if not fast:
        return model.accelerate(cuda_graphs=False)
    return model.fold_batchnorm().use_channels_last()


def in_memory_export(model: Darknet, backend: str, device: str,
                     **backend_options) -> Union["GraphDetector", "OnnxClassifier"]:
    """cfg + weights on a graph runtime: export (boxes, dynamic batch) in memory and run that."""
    from .names import default_names
    from .onnx_export import build_onnx

    proto = build_onnx(model, default_names(model.num_classes), weights_path=model.weights_path)
    return classifier_or_detector(graph_backend(backend)(proto.SerializeToString(), device=device, **backend_options))
