"""An onnxruntime-backed detector with the torch model's `.detect()` and `Detections`.

It reads everything it needs from the file's "darknet_py" metadata (written by
darknet_py.onnx_export): input size, letterbox, image resize, class names, head specs, output format.
Post-processing is the torch backend's own code, so both backends give the same results.
"""
from __future__ import annotations

import json
import os
import warnings
from typing import Sequence

import numpy as np
import onnxruntime as ort
import torch

from .decode import decode
from .detect import DetectOptions, ImageLike, as_image_list, detect_with, prepare_batch
from .detections import Detections
from .errors import InputError
from .fileio import read_bytes
from .layers.yolo import DarknetWarning, YoloSpec
from .onnx_export import FORMAT_VERSION, METADATA_KEY
from .preprocess import DEFAULT_RESIZE, check_resize

_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def providers_for(device: str) -> list[str]:
    """Execution providers for `device`, best first; a note when a GPU one is missing."""
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


class OnnxDetector:
    """darknet_py.load("model.onnx") returns one of these."""

    def __init__(self, model: str | os.PathLike[str] | bytes, device: str = "cpu",
                 size: int | Sequence[int] | None = None, threads: int | None = None, resize: str | None = None) -> None:
        self.source = "<bytes>" if isinstance(model, bytes) else os.fspath(model)
        if not isinstance(model, bytes) and not os.path.isfile(self.source):
            raise InputError(f"ONNX model not found: {self.source}")
        device = str(device)
        try:
            payload = model if isinstance(model, bytes) else self.source
            self._model = model if isinstance(model, bytes) else None
            self.session = ort.InferenceSession(payload, session_options(threads), providers=providers_for(device))
        except (ort.capi.onnxruntime_pybind11_state.Fail, ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf) as exc:
            raise InputError(f"{self.source} is not a loadable ONNX model: {str(exc).splitlines()[0][:300]}") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise InputError(f"{self.source} has no darknet_py metadata: export it with `darknet-py export` "
                             "(other ONNX files can be run with onnxruntime directly)")
        meta = json.loads(raw)
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise InputError(f"{self.source} was written by a newer darknet_py (format {meta['format_version']}); upgrade")
        self.meta = meta
        self.device = device
        self.output_format: str = meta["output_format"]
        self.names: list[str] = meta["names"]
        self.letter_box: bool = meta["letterbox"]
        # files from before the choice existed hold none: they get the default, darknet's
        self.resize: str = check_resize(resize or meta.get("resize", DEFAULT_RESIZE))
        self.heads = [YoloSpec(**{k: tuple(map(tuple, v)) if k == "anchors" else v for k, v in head.items() if k != "stride"})
                      for head in meta["heads"]]
        self._strides = [tuple(head["stride"]) for head in meta["heads"]]
        self.width, self.height = self._input_size(size)
        self._input = self.session.get_inputs()[0].name

    def serialized(self) -> bytes:
        """The ONNX model's bytes (to ship it to other processes)."""
        return read_bytes(self.source, InputError, "ONNX model") if self._model is None else self._model

    def _input_size(self, size: int | Sequence[int] | None) -> tuple[int, int]:
        width, height = self.meta["width"], self.meta["height"]
        if size is None:
            return width, height
        want = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
        if want == (width, height):
            return width, height
        if not self.meta["dynamic_size"]:
            raise InputError(f"{self.source} was exported for {width}x{height}; re-export with --dynamic-size "
                             f"(or at {want[0]}x{want[1]}) to run it at another size")
        stride = int(max(max(s) for s in self._strides)) if self._strides else 1
        if want[0] % stride or want[1] % stride:
            raise InputError(f"size {want[0]}x{want[1]} is not a multiple of the network stride {stride}")
        return want  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return self.heads[0].classes if self.heads else 0

    def _chunks(self, pixels: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(offset, images) in the batch sizes the graph accepts."""
        n = self.meta["batch"] or max(1, pixels.shape[0])
        return [(i, pixels[i : i + n]) for i in range(0, pixels.shape[0], n)]

    def _forward(self, chunk: np.ndarray, feeds: dict | None = None) -> list[np.ndarray]:
        """One session run; a fixed-batch graph gets the chunk padded with blank images."""
        fixed = self.meta["batch"]
        if fixed and chunk.shape[0] < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - chunk.shape[0], *chunk.shape[1:]), chunk.dtype)], 0)
        return self.session.run(None, {self._input: np.ascontiguousarray(chunk, np.float32), **(feeds or {})})

    def run(self, pixels: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for network-ready pixels (N, C, H, W float32), padding removed."""
        parts = [[o[: len(chunk)] for o in self._forward(chunk)] for _, chunk in self._chunks(pixels)]
        return [np.concatenate(outputs, 0) for outputs in zip(*parts)]

    def _candidates(self, pixels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = [torch.from_numpy(o) for o in self.run(pixels)]
        if self.output_format == "raw":
            boxes, objectness, probs = decode(outputs, self.heads, self.width, self.height)
            return boxes, objectness, objectness.unsqueeze(-1) * probs
        boxes, scores, objectness = outputs
        return boxes, objectness, scores

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               *, names: list[str] | None = None, **options) -> list[Detections]:
        """Same contract as Darknet.detect; the `nms` format runs thresholds and NMS inside the graph."""
        names = names or self.names
        if self.output_format != "nms":
            return detect_with(self, self._candidates, images, conf_thresh, nms_thresh, names, options)
        return self._detect_in_graph(images, DetectOptions(conf_thresh=conf_thresh, nms_thresh=nms_thresh, **options), names)

    def _detect_in_graph(self, images, opts: DetectOptions, names: list[str]) -> list[Detections]:
        opts.validate()
        if opts.multi_label or opts.nms_kind not in (None, "iou", "default"):
            raise InputError(f"{self.source} does its NMS in the graph (IoU, best class per box); "
                             "for multi-label or DIoU NMS export with --output-format boxes")
        letterbox = self.letter_box if opts.letterbox is None else opts.letterbox
        batch = prepare_batch(images, self.width, self.height, letterbox, opts.resize or self.resize)
        feeds = {"conf_thresh": np.array([opts.conf_thresh], np.float32), "iou_thresh": np.array([opts.nms_thresh], np.float32),
                 "max_det": np.array([opts.max_det], np.int64)}
        rows = self._nms_rows(batch.pixels, feeds)
        if opts.classes is not None:
            rows = rows[np.isin(rows[:, 6].astype(np.int64), opts.classes)]
        order = np.lexsort((-rows[:, 5], rows[:, 0]))  # by image, then score
        rows = torch.from_numpy(rows[order])
        image_idx = rows[:, 0].long()
        return batch.results(image_idx, batch.relative(image_idx, rows[:, 1:5]), rows[:, 5], rows[:, 6].long(), names,
                             opts.max_det)

    def _nms_rows(self, pixels: np.ndarray, feeds: dict) -> np.ndarray:
        """The `detections` rows of every chunk, with batch indices counted over all images."""
        found = []
        for offset, chunk in self._chunks(pixels):
            (rows,) = self._forward(chunk, feeds)
            rows = rows[rows[:, 0] < len(chunk)]  # padding images of a fixed-batch graph
            rows[:, 0] += offset
            found.append(rows)
        return np.concatenate(found, 0) if found else np.zeros((0, 7), np.float32)

    def __repr__(self) -> str:
        return f"OnnxDetector({self.source!r}, {self.output_format}, {self.width}x{self.height}, {self.device})"
