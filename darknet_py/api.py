"""darknet_py.load: one call from files to a ready model."""
from __future__ import annotations

import numbers
import os
from typing import Callable, Sequence, Union

from .backends import BACKENDS, GRAPH_BACKENDS, exported_file, fastest, graph_backend
from .backends.graph import GraphDetector
from .backends.graph_classifier import GraphClassifier, classifier_or_detector
from .backends.torch import Darknet
from .core.errors import InputError
from .core.fileio import sha256_file
from .format import zoo
from .format.cfg import read_cfg
from .format.names import default_names
from .model.network import resolve_device, size_pair
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
    float rounding. On the CPU, convolutions with leaky, ReLU or linear activations then run on
    oneDNN's pre-packed weights with the activation fused (darknet_py.model.layers.prepacked), with
    eager's numbers. On CUDA it also replays detect()'s network as CUDA graphs (Darknet.accelerate).

    `resize` picks detect()'s image resize: "darknet" (the default: darknet's own resize_image /
    letterbox_image, what `darknet detector test/valid/map` compute) or "opencv" (cv2.resize, as OpenCV
    DNN and darknet's video demo); exports and Ray run plans record it.

    `load("model.onnx")` (a file written by `darknet-py export`) returns an onnxruntime-backed
    detector with the same `.detect()`, `load("model.xml")` (OpenVINO IR from `export`) an OpenVINO
    one; they need no cfg or weights (an exported classifier comes back as a classifier with
    `.classify()`), and their resize is the one recorded at export unless `resize` is given.
    `backend="openvino"` (or "onnxruntime") runs an `.onnx` file, or cfg + weights exported in memory,
    on that runtime; `backend_options` go to its detector (`threads=N`; OpenVINO: `precision="f32"`
    (default), "bf16" or "f16"). `backend="auto"` runs cfg + weights on the fastest exact (fp32) runtime
    for this network on this CPU, measured the first time and remembered (see `fastest_backend`); on CUDA,
    and for an exported file, it is the same as None.

    Args:
        cfg (str or PathLike): a darknet `.cfg` file, an exported `.onnx` / OpenVINO `.xml` file, or an
            official model's name ("yolov4-tiny"; cfg/zoo.json lists them): its cfg and official weights, from
            DARKNET_PY_ZOO or downloaded once and sha256-checked, as `darknet-py detect --model NAME`.
        weights (str or PathLike, optional): the `.weights` for `cfg` (an exported file may come here
            instead); None: randomly initialised weights (an official model's name: its weights).
        device (str): "cpu", "cuda" or "cuda:N". Default: "cpu".
        size (int or (int, int), optional): network input size, N or (W, H), instead of the cfg's.
        fast (bool): fold batch norm and keep activations channels-last (torch). Default: True.
        resize (str, optional): "darknet" or "opencv"; None: "darknet", or the one an export recorded.
        backend (str, optional): "torch", "onnxruntime", "openvino" or "auto"; None: torch for a cfg,
            the file's runtime for an export.
        **backend_options: keywords for a graph runtime's detector (`threads`, OpenVINO's `precision`).

    Returns:
        Darknet, GraphDetector or GraphClassifier: a model meeting the `Backend` protocol, with
        `.detect()` (or `.classify()` for a classifier).

    Raises:
        DarknetError: a `CfgError`, `WeightsError` or `InputError` naming the file, line and layer.
    """
    _check_load_arguments(cfg, weights, size)
    if resize is not None:
        check_resize(resize)
    if weights is None and zoo.is_model_name(cfg):
        zoo.known_name(cfg)
        cfg, weights = zoo.resolve(cfg)
    if backend is not None and backend not in (*BACKENDS, AUTO):
        raise InputError(f"unknown backend '{backend}'; use one of {', '.join((*BACKENDS, AUTO))}")
    if backend == AUTO:
        if backend_options:
            raise InputError(f"options {', '.join(backend_options)} pick a runtime's settings: name the runtime "
                             f"(backend='onnxruntime' or 'openvino') rather than 'auto'")
        if not auto_chooses(cfg, weights, device):
            backend = None
        else:
            choice, model = _fastest(cfg, weights, size, resize, fast=fast)
            return model if model is not None else load(cfg, weights, device, size, fast, resize, choice.backend)
    if backend in GRAPH_BACKENDS:
        graph_backend(backend).require()  # a missing optional runtime is the first thing to hear about
    exported = next((path for path in (cfg, weights) if exported_file(path)), None)
    if exported is not None:
        backend = backend or exported_file(exported)
        if exported_file(exported) == "openvino" and backend != "openvino":
            raise InputError(f"{os.fspath(exported)} is OpenVINO IR: it runs with --backend openvino only")
        if backend == "torch":
            raise InputError(f"{os.fspath(exported)} is an exported model: it runs with --backend "
                             f"{' or '.join(GRAPH_BACKENDS)}, not torch")
        return classifier_or_detector(graph_backend(backend)(exported, device=str(device), size=size, resize=resize,
                                                             **backend_options))
    if backend in GRAPH_BACKENDS:
        model = load(cfg, weights, device="cpu", size=size, resize=resize)
        return in_memory_export(model, backend, str(device), **backend_options)
    if backend_options:
        raise InputError(f"options {', '.join(backend_options)} are for the exported-graph backends, not torch")
    dev = resolve_device(device)
    model = Darknet(read_cfg(cfg), size, init_weights=weights is None)  # weights read next: not drawn first
    model.resize = resize or DEFAULT_RESIZE
    if weights is not None:
        model.load_weights(weights)
    model = model.to(dev).eval()
    if not fast:
        return model.accelerate(cuda_graphs=False)
    return model.fold_batchnorm().use_channels_last()


AUTO = "auto"  # load(backend=AUTO): the fastest exact runtime here (darknet_py.backends.fastest)


def _check_load_arguments(cfg, weights, size) -> None:
    """InputError for what load() cannot take, said in its own words (not a TypeError from deep inside): a cfg or
    weights that is no path, a size that is no N or (W, H) of pixels, an official model's name beside weights of one's
    own, weights beside an exported file (which holds its own)."""
    for name, value in (("cfg", cfg), ("weights", weights)):
        if value is None and name == "weights":
            continue
        if not isinstance(value, (str, os.PathLike)):
            raise InputError(f"load() takes the {name} as a path (str or Path){' or an official model name' if name == 'cfg' else ''}; "
                             f"got {type(value).__name__} {value!r}")
    sizes = list(size) if isinstance(size, Sequence) and not isinstance(size, str) else [size]
    if size is not None and (len(sizes) not in (1, 2) or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in sizes)):
        raise InputError(f"size {size!r}: give the network's input size in whole pixels, N or (W, H), 1 or more")
    if weights is not None and not exported_file(cfg) and zoo.is_model_name(cfg) and not os.path.exists(cfg):
        raise InputError(f"{cfg} names an official model, which comes with its weights: load('{cfg}') alone; with "
                         f"weights of your own, give their cfg file")
    for exported, other in ((cfg, weights), (weights, cfg)):
        if other is not None and exported_file(exported):
            raise InputError(f"{os.fspath(exported)} is an exported model, which holds its network and weights: give "
                             f"it alone, without {os.fspath(other)}")


def auto_chooses(cfg: str | os.PathLike[str] | None, weights: str | os.PathLike[str] | None, device: str) -> bool:
    """Whether backend="auto" has a runtime to choose: cfg + weights on the CPU. An exported file runs on its
    file's runtime and CUDA on torch, as with backend=None (load() and the command line both ask here)."""
    return not (exported_file(cfg) or exported_file(weights)) and resolve_device(device).type == "cpu"


def fastest_backend(cfg: str | os.PathLike[str], weights: str | os.PathLike[str] | None = None,
                    size: int | Sequence[int] | None = None, resize: str | None = None,
                    measuring: Callable[[list[str]], None] | None = None) -> fastest.Choice:
    """The fastest exact (fp32) runtime for this network on this CPU: what `load(..., backend="auto")` runs.

    The first call for a network, input size and machine builds each installed candidate (torch eager,
    onnxruntime, OpenVINO with its extra), times one detect() (a classifier's classify()) of an image at
    the network's size in interleaved rounds and writes the
    verdict to DARKNET_PY_CACHE (default ~/.cache/darknet_py)/fastest.json; later calls read it back (seconds
    for a small network, up to a minute for a large one on 2 cores, the first time; nothing after).

    Args:
        cfg (str or PathLike): a darknet `.cfg` file.
        weights (str or PathLike, optional): its `.weights` (None: random weights; the speed is the same).
        size (int or (int, int), optional): network input size, N or (W, H), instead of the cfg's.
        resize (str, optional): detect()'s resize, "darknet" or "opencv" (it does not change the verdict).
        measuring (callable, optional): called with the candidates' names just before they are built and timed
            (not when the verdict is remembered): a caller's cue to say that this takes a moment.

    Returns:
        Choice: `.backend` ("torch", "onnxruntime" or "openvino"), each candidate's time (`.times_ms`) and
        whether the verdict was remembered (`.remembered`); `.describe()` says it in one line.

    Raises:
        DarknetError: as `load` does for a bad cfg or weights.
    """
    return _fastest(cfg, weights, size, resize, measuring)[0]


def _fastest(cfg: str | os.PathLike[str], weights: str | os.PathLike[str] | None, size: int | Sequence[int] | None,
             resize: str | None, measuring: Callable[[list[str]], None] | None = None, fast: bool = True,
             ) -> tuple[fastest.Choice, Union[Darknet, GraphDetector, None]]:
    """The verdict, and the chosen model when it was built for a measurement just now (None when remembered)."""
    if exported_file(cfg) or exported_file(weights):
        raise InputError(f"{os.fspath(cfg if exported_file(cfg) else weights)} is an exported model: it has one "
                         f"runtime's graph, so there is no runtime to choose (use --backend onnxruntime or openvino)")
    read_cfg(cfg)  # a bad cfg is reported as load() reports it, before anything is measured
    candidates = fastest.installed()
    key = fastest.cache_key(sha256_file(cfg), size_pair(size), candidates, fast)
    remembered = fastest.recall(key)
    if remembered is not None and remembered.backend in candidates:
        return remembered, None
    if measuring is not None:
        measuring(candidates)
    builders: dict[str, Callable[[], Union[Darknet, GraphDetector]]] = {
        name: (lambda name=name: load(cfg, weights, "cpu", size, fast, resize, name)) for name in candidates}
    choice, model = fastest.measure(builders)
    fastest.remember(key, choice)
    return choice, model


def in_memory_export(model: Darknet, backend: str, device: str,
                     **backend_options) -> Union[GraphDetector, GraphClassifier]:
    """cfg + weights on a graph runtime: export (boxes, dynamic batch) in memory and run that."""
    from .export.onnx import build_onnx  # onnx is imported only when a graph runtime is asked for

    proto = build_onnx(model, default_names(model.num_classes), weights_path=model.weights_path)
    return classifier_or_detector(graph_backend(backend)(proto.SerializeToString(), device=device, **backend_options))
