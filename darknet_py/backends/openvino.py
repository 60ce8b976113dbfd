"""An OpenVINO-backed detector with the torch model's `.detect()` and `Detections`.

OpenVINO reads our ONNX exports as they are (and OpenVINO IR, `.xml` + `.bin`, which
`darknet-py export -o model.xml` writes, int8 included). Its CPU plugin runs Mish as one op,
so Mish networks (yolov4-csp …) run much faster than on onnxruntime. Reading the metadata,
chunking, decoding and detect() are darknet_py.backends.graph's, shared with onnxruntime.

Precision: left to itself the CPU plugin computes in bf16 on CPUs that have it, which moves the
heads by 1–2.5%; we always ask for f32 unless the caller chooses bf16 or f16.

OpenVINO is optional (`pip install 'darknet-engine[openvino]'`); nothing here imports it until used.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from ..core.errors import InputError
from ..core.fileio import read_bytes
from ..format.metadata import METADATA_KEY, NMS_DEFAULTS, parse_metadata
from .graph import GraphDetector

INSTALL_HINT = "pip install 'darknet-engine[openvino]'"
PRECISIONS = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}  # inference precision → CPU capability that has it
IR_SUFFIX = ".xml"
IRBytes = tuple[bytes, bytes]  # an IR in memory: (.xml, .bin)
ModelSource = Union[str, os.PathLike, bytes, IRBytes]


def require_openvino() -> Any:
    """The `openvino` package, imported now.

    Returns:
        module: openvino.

    Raises:
        InputError: OpenVINO is not installed (with the pip command that installs it).
    """
    try:
        import openvino
    except ImportError:
        raise InputError(f"the openvino backend needs OpenVINO, which is not installed: {INSTALL_HINT}") from None
    return openvino


@functools.cache
def core() -> Any:
    """One OpenVINO Core per process (it holds the loaded device plugins).

    Returns:
        openvino.Core: made on the first call, the same one after.

    Raises:
        InputError: OpenVINO is not installed.
    """
    return require_openvino().Core()


def ov_device(device: str) -> str:
    """darknet_py's device name → OpenVINO's: cpu → CPU; an OpenVINO device (GPU, GPU.1, NPU) as it is.

    Args:
        device (str): the device asked for, in any case.

    Returns:
        str: "CPU", or the device upper-cased when OpenVINO has it here.

    Raises:
        InputError: OpenVINO has no such device here (a CUDA one gets a hint to use torch or onnxruntime).
    """
    device = str(device)
    if device.lower() == "cpu":
        return "CPU"
    available = core().available_devices
    if device.upper() in available:
        return device.upper()
    hint = "; for CUDA use --backend torch or onnxruntime" if device.startswith("cuda") else ""
    raise InputError(f"OpenVINO has no device '{device}' here (available: {', '.join(available).lower()}){hint}")


def check_precision(precision: str, device: str) -> str:
    """The inference precision asked for, once OpenVINO's *device* is known to compute in it.

    Args:
        precision (str): "f32", "bf16" or "f16".
        device (str): OpenVINO's device name (from `ov_device`).

    Returns:
        str: *precision* itself.

    Raises:
        InputError: an unknown precision, or one the device's OPTIMIZATION_CAPABILITIES do not list.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown OpenVINO precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    capabilities = core().get_property(device, "OPTIMIZATION_CAPABILITIES")
    if PRECISIONS[precision] not in capabilities:
        raise InputError(f"OpenVINO's {device} here cannot compute in {precision} (it offers {', '.join(capabilities)})")
    return precision


def half_precision(device: str = "cpu") -> str:
    """What --half means on this device: bf16 where it has it, else f16.

    Args:
        device (str): darknet_py's device name (see `ov_device`).

    Returns:
        str: "bf16" or "f16".

    Raises:
        InputError: the device computes in neither, or OpenVINO has no such device.
    """
    target = ov_device(device)
    capabilities = core().get_property(target, "OPTIMIZATION_CAPABILITIES")
    for precision in ("bf16", "f16"):
        if PRECISIONS[precision] in capabilities:
            return precision
    raise InputError(f"--half: OpenVINO's {target} here computes neither bf16 nor f16 (it offers {', '.join(capabilities)})")


def model_from_onnx(data: bytes, source: str) -> tuple[Any, dict]:
    """An OpenVINO model of an ONNX export, with its metadata.

    OpenVINO turns inputs that have an initializer into constants; the `nms` format's thresholds
    (conf_thresh, iou_thresh, max_det) must stay inputs, so their defaults are dropped first.

    Args:
        data (bytes): the ONNX file's bytes.
        source (str): the file's name (or "<bytes>"), for messages.

    Returns:
        tuple of (openvino.Model, dict): the model read by OpenVINO, and the export's "darknet_py" metadata.

    Raises:
        InputError: OpenVINO cannot read the bytes as ONNX, or the metadata is missing or unreadable.
    """
    ov_core = core()
    try:
        model = ov_core.read_model(data)
    except RuntimeError as exc:
        raise InputError(f"{source} is not a loadable ONNX model: {str(exc).strip().splitlines()[0][:300]}") from None
    meta = parse_metadata(_rt_text(model, ["framework", METADATA_KEY]), source)
    if meta["output_format"] == "nms":
        import onnx

        proto = onnx.load_from_string(data)
        kept = [t for t in proto.graph.initializer if t.name not in NMS_DEFAULTS]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(kept)
        model = ov_core.read_model(proto.SerializeToString())
    return model, meta


def _rt_text(model, path: list[str]) -> str | None:
    return model.get_rt_info(path).astype(str) if model.has_rt_info(path) else None


def model_metadata(model: Any, source: str) -> dict:
    """Metadata of a model read from IR (ours, at the top) or from ONNX (kept by the frontend).

    Args:
        model (openvino.Model): the model OpenVINO read.
        source (str): the file's name, for messages.

    Returns:
        dict: the export's "darknet_py" metadata (format.metadata.parse_metadata).

    Raises:
        InputError: the model holds no darknet_py metadata, or metadata that cannot be read.
    """
    raw = _rt_text(model, [METADATA_KEY])
    return parse_metadata(raw if raw is not None else _rt_text(model, ["framework", METADATA_KEY]), source)


class OpenVinoDetector(GraphDetector):
    """darknet_py.load("model.xml") or load(..., backend="openvino") returns one of these.

    With one stream the model is compiled for latency (each run on all the threads, one run at a time); with more,
    for throughput (that many runs at once, each calling thread with its own infer request). A dynamic-size export
    is reshaped to the run's fixed height and width first (the batch stays free unless the export fixed it).

    Args:
        model (str, PathLike, bytes or (bytes, bytes)): an ONNX export or OpenVINO IR (`.xml`, its `.bin` beside
            it) file, ONNX bytes, or IR as (xml, bin) bytes.
        device (str): "cpu" or an OpenVINO device (GPU, GPU.1, NPU); see `ov_device`.
        size (int, sequence of int or None): the input size to run at (see GraphDetector); None: the export's.
        threads (int or None): OpenVINO's inference threads; None: its default.
        precision (str): the inference precision, "f32", "bf16" or "f16" (see `check_precision`).
        resize (str or None): the image resize ("darknet" or "opencv"); None: the export's.
        streams (int): runs at once (OpenVINO's NUM_STREAMS); 1: latency mode.

    Raises:
        InputError: OpenVINO is not installed; the file (or an IR's .bin) is missing or cannot be read; an
            unknown device or precision; the model cannot be compiled; or metadata, size or resize that
            GraphDetector refuses.
    """

    backend = "openvino"

    @classmethod
    def require(cls) -> None:
        """Raise an InputError with the pip command when OpenVINO is not installed."""
        require_openvino()

    def __init__(self, model: ModelSource, device: str = "cpu", size: int | Sequence[int] | None = None,
                 threads: int | None = None, precision: str = "f32", resize: str | None = None,
                 streams: int = 1) -> None:
        ov = require_openvino()
        source, self._payload, ov_model, meta = self._read(model)
        super().__init__(source, meta, str(device), size, resize)
        self.ov_device = ov_device(self.device)
        self.precision = check_precision(precision, self.ov_device)
        if meta["dynamic_size"]:  # fixed height and width compile to faster code; the batch stays free
            ov_model.reshape({ov_model.input(0): ov.PartialShape([-1 if not meta["batch"] else meta["batch"], self.channels,
                                                                  self.height, self.width])})
        self.threads, self.streams = threads, streams
        # one stream: each run on all the threads (latency); more: runs at once, the threads split between them
        config = {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "LATENCY"} if streams == 1 else \
            {"INFERENCE_PRECISION_HINT": self.precision, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": int(streams)}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core().compile_model(ov_model, self.ov_device, config)
        except RuntimeError as exc:
            raise InputError(f"OpenVINO cannot compile {source} for {self.ov_device}: "
                             f"{str(exc).strip().splitlines()[0][:300]}") from None
        self._request = self.compiled.create_infer_request() if streams == 1 else None
        self._lock = threading.Lock()  # one infer request: one run at a time
        self._own = threading.local()  # with streams: each calling thread's own infer request

    @staticmethod
    def _read(model: ModelSource):
        """(source name, bytes to ship, OpenVINO model, metadata) from a path, ONNX bytes or IR bytes."""
        if isinstance(model, tuple):
            xml, weights = model
            ov_model = core().read_model(xml, require_openvino().Tensor(np.frombuffer(weights, np.uint8)))
            return "<IR bytes>", model, ov_model, model_metadata(ov_model, "<IR bytes>")
        if isinstance(model, bytes):
            ov_model, meta = model_from_onnx(model, "<bytes>")
            return "<bytes>", model, ov_model, meta
        source = os.fspath(model)
        if not os.path.isfile(source):
            raise InputError(f"model not found: {source}")
        if source.lower().endswith(IR_SUFFIX):
            weights = str(Path(source).with_suffix(".bin"))
            if not os.path.isfile(weights):
                raise InputError(f"{source} is OpenVINO IR, but its weights file {weights} is missing")
            try:
                ov_model = core().read_model(source, weights)
            except RuntimeError as exc:
                raise InputError(f"{source} is not loadable OpenVINO IR: {str(exc).strip().splitlines()[0][:300]}") from None
            return source, None, ov_model, model_metadata(ov_model, source)
        ov_model, meta = model_from_onnx(read_bytes(source, InputError, "ONNX model"), source)
        return source, None, ov_model, meta

    def serialized(self) -> bytes | IRBytes:
        """ONNX bytes, or (xml, bin) bytes for IR: what the constructor takes back in another process.

        Returns:
            bytes or tuple of (bytes, bytes): the bytes it was given, else the file's (and the IR's .bin).

        Raises:
            InputError: a file cannot be read (any more).
        """
        if self._payload is not None:
            return self._payload
        if self.source.lower().endswith(IR_SUFFIX):
            return (read_bytes(self.source, InputError, "OpenVINO IR"),
                    read_bytes(str(Path(self.source).with_suffix(".bin")), InputError, "OpenVINO IR weights"))
        return read_bytes(self.source, InputError, "ONNX model")

    def options(self) -> dict:
        """Constructor keywords that rebuild this detector elsewhere: the resize and the precision."""
        return {**super().options(), "precision": self.precision}

    def precision_name(self, exported: str) -> str:
        """int8 for an int8 export, else the inference precision asked of OpenVINO.

        Args:
            exported (str): the export's precision ("float32", "float16", "int8").

        Returns:
            str: "int8", or "float32", "bfloat16" or "float16" after the precision OpenVINO computes in.
        """
        return exported if exported == "int8" else {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}[self.precision]

    def _twin(self, calls: int) -> OpenVinoDetector:
        """The model compiled again with *calls* streams (OpenVINO's THROUGHPUT mode), each thread with its request."""
        model = self._payload if self._payload is not None else self.source
        return OpenVinoDetector(model, self.device, (self.width, self.height), self.threads, self.precision,
                                self.resize, streams=calls)

    def _infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.streams > 1:
            request = getattr(self._own, "request", None)
            if request is None:
                request = self._own.request = self.compiled.create_infer_request()
            return list(request.infer(feeds, share_inputs=True).to_tuple())  # copies: ours to keep
        with self._lock:
            return list(self._request.infer(feeds, share_inputs=True).to_tuple())
