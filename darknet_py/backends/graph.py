"""What every runtime of a `darknet-py export` graph shares (onnxruntime, OpenVINO).

A runtime module opens the file, hands this class the "darknet_py" metadata written by
darknet_py.export.onnx (input size, letterbox, class names, head specs, output format) and
implements `_infer` (named inputs → the graph's outputs, in order). Everything else is here,
once: the input size, chunking into the batch the graph accepts, the `raw` decoding, the `nms`
output's rows and thresholds, and the `Backend` protocol — whose detect() is the pipeline's own
(`darknet_py.pipeline.detect`), so every backend pre- and post-processes alike.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, NoReturn, Sequence

import numpy as np
import torch

from ..core.errors import InputError
from ..format.metadata import NMS_DEFAULTS
from ..format.names import class_filter, default_names
from ..model.layers.head import spec_from_dict
from ..pipeline import yolo_gate
from ..pipeline.backend import BackendTraits, Candidates, Gated, Portable, gate
from ..pipeline.decode import decode, head_constants
from ..pipeline.detect import DetectOptions, ImageLike, detect, prepare_batch
from ..pipeline.detections import Detections
from ..pipeline.preprocess import DEFAULT_RESIZE, check_resize

INPUT_NAME = "images"  # the pixels input of every export


class GraphDetector:
    """The torch model's `.detect()` and `Detections` over an exported graph (the `Backend` protocol);
    subclasses run the graph.

    Args:
        source (str): the model's file, or a stand-in name ("<bytes>") for one given in memory; used in messages.
        meta (dict): the export's "darknet_py" metadata (format.metadata.parse_metadata): input size, letterbox,
            class names, head specs, output format, batch, dynamic size.
        device (str): the device the runtime runs on ("cpu", "cuda:0", an OpenVINO device).
        size (int, sequence of int or None): the input size to run at, a side or (width, height); None: the
            export's.
        resize (str or None): the image resize ("darknet" or "opencv"); None: the one the export records (darknet's
            for files from before it was recorded).

    Raises:
        InputError: a size other than the export's for a fixed-size export, a size that is not a multiple of the
            network's stride, or an unknown resize.
    """

    backend = ""  # the registry name (darknet_py.backends.BACKENDS)
    is_classifier = False
    stateful = False  # exports of recurrent networks are refused
    input_device = None  # pixels are prepared in host memory

    def __init__(self, source: str, meta: dict, device: str, size: int | Sequence[int] | None,
                 resize: str | None = None) -> None:
        self.source = source
        self.meta = meta
        self.device = device
        self.output_format: str = meta["output_format"]
        self.names: list[str] = meta["names"]
        self.letter_box: bool = meta["letterbox"]
        self.channels: int = meta.get("channels", 3)  # the cfg's [net] channels (1: a grey model)
        # the export records the image resize; files from before the choice existed get the default, darknet's
        self.resize: str = check_resize(resize or meta.get("resize", DEFAULT_RESIZE))
        self.heads = [spec_from_dict({k: v for k, v in head.items() if k != "stride"}) for head in meta["heads"]]
        self._constants: list | None = None  # the raw format's decoding constants, made on first use
        self._strides = [tuple(head["stride"]) for head in meta["heads"]]
        self.width, self.height = self._input_size(size)

    # -- what a runtime implements ------------------------------------------------------
    @classmethod
    def require(cls) -> None:
        """Raise an InputError saying how to install the runtime when it is missing (before any other work)."""

    def _infer(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One run of the graph: named inputs → its outputs in the file's order (arrays the caller may keep)."""
        raise NotImplementedError

    def serialized(self) -> bytes | tuple[bytes, bytes]:
        """The model as bytes (to ship it to other processes; the constructor takes it back).

        Returns:
            bytes or tuple of (bytes, bytes): the file's bytes; OpenVINO IR gives (xml, bin).
        """
        raise NotImplementedError

    def options(self) -> dict:
        """Constructor keywords, besides device, size and threads, that rebuild this detector elsewhere.

        Returns:
            dict: {"resize": the image resize} (a runtime may add its own).
        """
        return {"resize": self.resize}

    # -- shared -----------------------------------------------------------------------------
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
        """Classes of the first detection head (0 for an export with none)."""
        return self.heads[0].classes if self.heads else 0

    def _chunks(self, pixels: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(offset, images) in the batch sizes the graph accepts."""
        n = self.meta["batch"] or max(1, pixels.shape[0])
        return [(i, pixels[i : i + n]) for i in range(0, pixels.shape[0], n)]

    def _forward(self, chunk: np.ndarray, feeds: dict | None = None) -> list[np.ndarray]:
        """One run; a fixed-batch graph gets the chunk padded with blank images."""
        fixed = self.meta["batch"]
        if fixed and chunk.shape[0] < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - chunk.shape[0], *chunk.shape[1:]), chunk.dtype)], 0)
        return self._infer({INPUT_NAME: np.ascontiguousarray(chunk, np.float32), **(feeds or {})})

    def run(self, pixels: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for network-ready pixels (N, C, H, W float32), padding removed.

        The images are run in chunks of the export's batch (one chunk for a free batch), a last short chunk padded
        with blank images for a fixed-batch graph; the chunks' outputs are joined along the batch axis.

        Args:
            pixels (np.ndarray): (N, C, H, W) network-ready pixels, at the detector's `height` x `width`.

        Returns:
            list of np.ndarray: the graph's outputs in the file's order, N rows each.
        """
        parts = [[o[: len(chunk)] for o in self._forward(chunk)] for _, chunk in self._chunks(pixels)]
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate(outputs, 0) for outputs in zip(*parts)]

    # -- the Backend protocol -----------------------------------------------------------------------
    @property
    def traits(self) -> BackendTraits:
        """Name, device, precision, batch limit (the export's fixed batch, else None); candidates unless `nms`."""
        precision = "int8" if self.meta.get("int8") else "float16" if self.meta.get("half") else "float32"
        return BackendTraits(name=self.backend, device=self.device, precision=self.precision_name(precision),
                             max_batch=self.meta["batch"] or None, candidates=self.output_format != "nms")

    def precision_name(self, exported: str) -> str:
        """The precision it computes in, given the export's ("float32", "float16", "int8").

        Args:
            exported (str): the export's precision, from its metadata.

        Returns:
            str: *exported* itself here; a runtime that computes otherwise says what it computes in.
        """
        return exported

    def portable(self) -> Portable:
        """What rebuilds this detector in another process: its backend name, `serialized()` and `options()`."""
        return Portable(self.backend, self.serialized(), self.options())

    def sequence(self) -> ContextManager:
        """A no-op context (an export has no recurrent state); it yields the detector."""
        return contextlib.nullcontext(self)

    def concurrent(self, calls: int) -> GraphDetector | None:
        """The same graph in a second runtime instance set up for *calls* runs at once (see `Backend.concurrent`);
        None on GPUs (not measured there) and for runtimes without one.

        Args:
            calls (int): runs the twin will serve at once.

        Returns:
            GraphDetector or None: the twin; None off the CPU, for fewer than 2 calls, or where the runtime has none.
        """
        if self.device.lower() != "cpu" or calls < 2:
            return None
        return self._twin(calls)

    def _twin(self, calls: int) -> GraphDetector | None:
        """What a runtime implements for `concurrent`: a new detector of the same model, thresholds and resize."""
        return None

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> NoReturn:
        """Refused: this export is a detector (see GraphClassifier for exported classifiers).

        Raises:
            InputError: always.
        """
        raise InputError(f"{self.source} is a detector (it has detection layers): use detect")

    def candidates(self, pixels: np.ndarray) -> Candidates:
        """Decoded candidates (see `Backend.candidates`); the `nms` format has none (its NMS is in the graph).

        Args:
            pixels (np.ndarray): (N, C, H, W) network-ready pixels (see `run`).

        Returns:
            Candidates: boxes (N, M, 4) xyxy in network-input pixels, objectness (N, M), class scores (N, M, K).

        Raises:
            InputError: the export's output format is `nms`.
        """
        self._refuse_nms_format()
        return self.decode_outputs(self.run(pixels))

    def _refuse_nms_format(self) -> None:
        """Refuses the `nms` format, whose graph gives detections, not candidates."""
        if self.output_format == "nms":
            raise InputError(f"{self.source} does its NMS inside the graph: it gives detections, not candidates; "
                             "export with --output-format boxes (the default) or raw")

    def candidates_above(self, pixels: np.ndarray, objectness_thresh: float) -> Gated:
        """The candidates whose objectness exceeds the threshold (see `Backend.candidates_above`): the `raw`
        format's float32 [yolo] heads decode only those rows (darknet_py.pipeline.yolo_gate).

        Args:
            pixels (np.ndarray): (N, C, H, W) network-ready pixels (see `run`).
            objectness_thresh (float): darknet's detection threshold.

        Returns:
            Gated: the rows above the threshold, flat over the batch.

        Raises:
            InputError: the export's output format is `nms`.
        """
        self._refuse_nms_format()
        return self.gate_outputs(self.run(pixels), objectness_thresh)

    def gate_outputs(self, outputs: list[np.ndarray], objectness_thresh: float) -> Gated:
        """The graph's outputs (from `run`) → the candidates above the threshold (the `raw` format's heads through
        yolo_gate.decode_above).

        Args:
            outputs (list of np.ndarray): the graph's outputs for a batch, as `run` gives them.
            objectness_thresh (float): darknet's detection threshold.

        Returns:
            Gated: the rows above the threshold, flat over the batch.
        """
        if self.output_format == "raw":
            return yolo_gate.decode_above([torch.from_numpy(o) for o in outputs], self.heads, self.width, self.height,
                                          objectness_thresh, self._head_constants())
        return gate(self.decode_outputs(outputs), objectness_thresh)

    def decode_outputs(self, outputs: list[np.ndarray]) -> Candidates:
        """The graph's outputs (from `run`) → Candidates: the `raw` format's heads decoded here, the `boxes`
        format's tensors as they are (no copy).

        Args:
            outputs (list of np.ndarray): the graph's outputs for a batch, as `run` gives them; the `boxes` format's
                are (boxes, scores, objectness).

        Returns:
            Candidates: (boxes, objectness, scores) tensors.
        """
        outputs = [torch.from_numpy(o) for o in outputs]
        if self.output_format == "raw":
            return decode(outputs, self.heads, self.width, self.height, self._head_constants())
        boxes, scores, objectness = outputs
        return boxes, objectness, scores

    def _head_constants(self) -> list:
        """The raw format's decoding constants, made on first use."""
        if self._constants is None:
            self._constants = [head_constants(spec, torch.device("cpu")) for spec in self.heads]
        return self._constants

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               *, names: list[str] | None = None, **options) -> list[Detections]:
        """Same contract as Darknet.detect; the `nms` format runs thresholds and NMS inside the graph.

        Args:
            images (ImageLike or sequence of ImageLike): as darknet_py.pipeline.detect.detect takes them.
            conf_thresh (float): score threshold (objectness too, darknet's rule).
            nms_thresh (float): NMS overlap threshold.
            names (list of str or None): class names; None: the export's.
            **options: the other options of darknet_py.pipeline.detect.detect (classes, max_det, tiles, roi...).

        Returns:
            list of Detections: one per image, in input order.

        Raises:
            InputError: an option out of range; for the `nms` format also tiles or a region, multi-label, or an NMS
                kind other than IoU (which need the candidates).
        """
        names = names or self.names
        if self.output_format != "nms":
            return detect(self, images, conf_thresh, nms_thresh, names=names, **options)
        if options.get("tiles") is not None or options.get("roi") is not None:  # windows are merged from candidates
            raise InputError(f"{self.source} does its NMS inside the graph: tiles and regions need its candidates; "
                             "export with --output-format boxes (the default) or raw")
        options = {key: value for key, value in options.items() if key not in ("tiles", "tile_overlap", "roi")}
        names = names or default_names(self.num_classes)
        if options.get("classes") is not None:  # names or ids, any iterable, as detect() takes them
            options["classes"] = class_filter(options["classes"], names)
        return self._detect_in_graph(images, DetectOptions.given(conf_thresh=conf_thresh, nms_thresh=nms_thresh, **options),
                                     names)

    def _detect_in_graph(self, images, opts: DetectOptions, names: list[str]) -> list[Detections]:
        opts.validate(self.num_classes)
        if opts.multi_label or opts.nms_kind not in (None, "iou", "default"):
            raise InputError(f"{self.source} does its NMS in the graph (IoU, best class per box); "
                             "for multi-label or DIoU NMS export with --output-format boxes")
        letterbox = self.letter_box if opts.letterbox is None else opts.letterbox
        batch = prepare_batch(images, self.width, self.height, letterbox, opts.resize or self.resize,
                              channels=self.channels)
        feeds = nms_feeds(opts.conf_thresh, opts.nms_thresh, opts.max_det)
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
        return f"{type(self).__name__}({self.source!r}, {self.output_format}, {self.width}x{self.height}, {self.device})"


def nms_feeds(conf_thresh: float = NMS_DEFAULTS["conf_thresh"], iou_thresh: float = NMS_DEFAULTS["iou_thresh"],
              max_det: int = NMS_DEFAULTS["max_det"]) -> dict[str, np.ndarray]:
    """The `nms` graph's threshold inputs.

    Args:
        conf_thresh (float): the score threshold.
        iou_thresh (float): the NMS overlap threshold.
        max_det (int): the most detections per image.

    Returns:
        dict of str to np.ndarray: {"conf_thresh", "iou_thresh"} as float32 and {"max_det"} as int64, each of shape
        (1,), keyed by the graph's input names.
    """
    return {"conf_thresh": np.array([conf_thresh], np.float32), "iou_thresh": np.array([iou_thresh], np.float32),
            "max_det": np.array([max_det], np.int64)}
