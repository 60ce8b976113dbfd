"""An onnxruntime-backed detector with the torch model's `.detect()` and `Detections`.

It opens the file and runs the graph; reading the file's "darknet_py" metadata, chunking,
decoding and detect() are darknet_py.backends.graph's, shared with the OpenVINO backend, and the
post-processing there is the torch backend's own code, so every backend gives the same results.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np
import onnxruntime as ort
import torch

from ..core.errors import DarknetWarning, InputError
from ..core.fileio import read_bytes
from ..format.metadata import METADATA_KEY, parse_metadata
from .graph import GraphDetector
from .onnx_mish import for_cpu

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def providers_for(device: str) -> list[str]:
    """Execution providers for `device`, best first; a note when a GPU one is missing.

    Args:
        device (str): "cpu", or "cuda" / "cuda:N".

    Returns:
        list of str: ["CPUExecutionProvider"] for the CPU; for CUDA the TensorRT and CUDA providers this
        onnxruntime has, then the CPU's.

    Raises:
        InputError: a device that is neither cpu nor cuda.

    Warns:
        DarknetWarning: a CUDA device, but this onnxruntime has no CUDA provider (it will run on the CPU).
    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise InputError(f"unknown device '{device}'; use cpu, cuda or cuda:N")
    available = ort.get_available_providers()
    chosen = [p for p in _GPU_PROVIDERS if p in available]
    if "CUDAExecutionProvider" not in chosen:
        warnings.warn(f"onnxruntime here has no CUDA provider (available: {', '.join(available)}); running on CPU — "
                      "install onnxruntime-gpu for GPU inference", DarknetWarning, stacklevel=3)
    return chosen + ["CPUExecutionProvider"]


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """onnxruntime's session options for a detector: every graph optimisation, sequential execution, errors-only
    logging, and worker threads that do not spin after a run.

    Args:
        threads (int or None): intra-op threads; None (or 0): onnxruntime's default.

    Returns:
        ort.SessionOptions: the options.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: the `nms` graph's overridable thresholds are deliberate
    # Spinning worker threads keep the cores busy after run() returns, and the torch
    # post-processing that follows then runs 10× slower on a small machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxDetector(GraphDetector):
    """darknet_py.load("model.onnx") returns one of these.

    On the CPU provider alone the graph's Mish is first rewritten into operators it vectorises (onnx_mish.for_cpu).

    Args:
        model (str, PathLike or bytes): the ONNX file written by `darknet-py export`, or its bytes.
        device (str): "cpu", or "cuda" / "cuda:N" (see `providers_for`).
        size (int, sequence of int or None): the input size to run at (see GraphDetector); None: the export's.
        threads (int or None): onnxruntime's intra-op threads; None: its default.
        resize (str or None): the image resize ("darknet" or "opencv"); None: the export's.

    Raises:
        InputError: the file is missing or is not a loadable ONNX model, an unknown device, or metadata, size or
            resize that GraphDetector refuses.
    """

    backend = "onnxruntime"

    def __init__(self, model: str | os.PathLike[str] | bytes, device: str = "cpu",
                 size: int | Sequence[int] | None = None, threads: int | None = None, resize: str | None = None) -> None:
        source = "<bytes>" if isinstance(model, bytes) else os.fspath(model)
        if not isinstance(model, bytes) and not os.path.isfile(source):
            raise InputError(f"ONNX model not found: {source}")
        device = str(device)
        try:
            payload = model if isinstance(model, bytes) else source
            providers = providers_for(device)
            if providers == ["CPUExecutionProvider"]:
                payload = for_cpu(payload)  # mish in operators the CPU provider vectorises (see onnx_mish)
            self._model = model if isinstance(model, bytes) else None
            self.session = ort.InferenceSession(payload, session_options(threads), providers=providers)
        except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf) as exc:
            raise InputError(f"{source} is not a loadable ONNX model: {str(exc).splitlines()[0][:300]}") from None
        meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), source)
        super().__init__(source, meta, device, size, resize)
        self.threads = threads

    def _twin(self, calls: int) -> OnnxDetector:
        """A session with the threads split between *calls* runs (onnxruntime's run() may be called from several
        threads at once; sharing one session's threads, the runs would wait for each other)."""
        per_call = max(1, (self.threads or torch.get_num_threads()) // calls)
        return OnnxDetector(self._model if self._model is not None else self.source, self.device,
                            (self.width, self.height), threads=per_call, resize=self.resize)

    def serialized(self) -> bytes:
        """The ONNX model's bytes (to ship it to other processes): those it was given, else the file's.

        Returns:
            bytes: the model, as given (not the CPU rewrite).

        Raises:
            InputError: the file cannot be read (any more).
        """
        return read_bytes(self.source, InputError, "ONNX model") if self._model is None else self._model

    def _infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)
