"""Static int8 quantisation of an exported graph, calibrated on real images (onnxruntime).

Only the network's own layers are quantised (convolutions, activations, pools, concats,
resizes); the convolutions in front of each [yolo] layer and the box decoding stay fp32,
because objectness and class logits lose whole detections when rounded to 256 levels, and
they cost little. Weights are int8 per output channel, activations uint8 with ranges taken
from the calibration images (pre-processed exactly as `detect` does it).
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx

from ..backends.torch import Darknet
from ..core.errors import InputError
from ..format.metadata import METADATA_KEY
from ..pipeline.detect import prepare_batch
from ..pipeline.image_url import IMAGE_EXTENSIONS, has_image_extension
from ..pipeline.preprocess import DEFAULT_RESIZE

# Ops with int8 kernels in onnxruntime that appear in darknet graphs.
QUANTIZED_OPS = ["Conv", "LeakyRelu", "Relu", "MaxPool", "Concat", "Resize", "Add", "Slice"]


@dataclass(frozen=True)
class Int8Options:
    """How an export is quantised to int8 (`darknet-py export --int8`).

    Attributes:
        calibration (str): a folder of images (searched recursively) whose activation ranges are measured.
        count (int): the most images used, the first in sorted path order.
        method (str): onnxruntime's CalibrationMethod, by name ("Percentile", "MinMax", "Entropy").
        fmt (str): onnxruntime's QuantFormat, by name: "QDQ" (portable: TensorRT reads it) or "QOperator".
    """

    calibration: str  # a folder of images
    count: int = 100  # images used, in sorted order
    # onnxruntime CalibrationMethod: Percentile (99.999%) loses 0.5 AP50 on yolov4-tiny where MinMax
    # loses 1.3 (COCO subset, darknet's resize, the 9 shared photos as calibration)
    method: str = "Percentile"
    fmt: str = "QDQ"  # QDQ (portable: TensorRT reads it) or QOperator


def calibration_images(folder: str, count: int) -> list[str]:
    """The calibration images: the image files under *folder* (recursively), the first *count* in sorted order.

    Args:
        folder (str): the calibration folder.
        count (int): the most images to take (at least 1).

    Returns:
        list of str: the images' paths.

    Raises:
        InputError: *folder* is not a folder, holds no image files, or *count* is below 1.
    """
    if not os.path.isdir(folder):
        raise InputError(f"--calibration must be a folder of images, got {folder}")
    found = sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                   if has_image_extension(p))
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the calibration folder {folder}")
    if count < 1:
        raise InputError(f"the calibration image count must be at least 1, got {count}")
    return found[:count]


def calibration_batches(paths: list[str], width: int, height: int, letterbox: bool, batch: int = 1,
                        resize: str = DEFAULT_RESIZE, channels: int = 3) -> Iterator[np.ndarray]:
    """Network-ready pixels of the calibration images, `batch` at a time, pre-processed by detect()'s own
    pipeline (`channels`: the network's, 1 reads them grey); the last chunk is padded with its last image (a
    fixed-batch graph takes nothing else).

    Args:
        paths (list of str): the calibration images.
        width (int): the network's input width.
        height (int): the network's input height.
        letterbox (bool): keep the aspect ratio (the cfg's letter_box).
        batch (int): images per chunk.
        resize (str): the image resize, "darknet" or "opencv".
        channels (int): the network's input channels.

    Yields:
        np.ndarray: (batch, channels, height, width) float32 pixels.

    Raises:
        InputError: an image cannot be read.
    """
    for start in range(0, len(paths), batch):
        pixels = prepare_batch(paths[start:start + batch], width, height, letterbox, resize, channels=channels).pixels
        if len(pixels) < batch:
            pixels = np.concatenate([pixels, np.repeat(pixels[-1:], batch - len(pixels), 0)])
        yield pixels


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over image files, one at a time."""

    def __init__(self, paths: list[str], model: Darknet, batch: int | None) -> None:
        self._paths, self._model, self._batch = paths, model, batch or 1
        self._items: Iterator[dict] = self._feeds()

    def _feeds(self) -> Iterator[dict]:
        model = self._model
        for pixels in calibration_batches(self._paths, model.width, model.height, model.letter_box, self._batch,
                                          model.resize, model.channels):
            yield {"images": pixels}

    def get_next(self) -> dict | None:
        return next(self._items, None)

    def rewind(self) -> None:
        self._items = self._feeds()


def _nodes_to_quantize(proto: onnx.ModelProto, model: Darknet) -> list[str]:
    head_convs = {f"/model/layers.{i - 1}/" for i in model.head_indices}
    return [n.name for n in proto.graph.node
            if n.name.startswith("/model/layers.") and n.op_type in QUANTIZED_OPS
            and not any(n.name.startswith(prefix) for prefix in head_convs)]


@contextlib.contextmanager
def quiet_logger(name: str | None = None) -> Iterator[None]:
    """Only errors from logger `name` (None: the root logger) and its handlers for the duration, levels
    restored after: onnxruntime.quantization advises through the root logger and NNCF logs every node it
    leaves alone, while the CLI reports progress itself.

    Args:
        name (str or None): the logger's name.
    """
    logger = logging.getLogger(name)
    levels = [(item, item.level) for item in (logger, *logger.handlers)]
    for item, _ in levels:
        item.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for item, level in levels:
            item.setLevel(level)


def quantize_int8(proto: onnx.ModelProto, model: Darknet, opts: Int8Options) -> onnx.ModelProto:
    """An int8 copy of `proto` (an fp32 export of `model`), with the calibration recorded in its metadata.

    onnxruntime's static quantisation, per output channel (int8 weights, uint8 activations), of the network's own
    layers only: the convolutions in front of the detection layers and the decoding stay fp32.

    Args:
        proto (onnx.ModelProto): the fp32 export (build_onnx's, with its "darknet_py" metadata).
        model (Darknet): the exported network: its input size, letterbox, resize and channels pre-process the
            calibration images, and its detection layers say which convolutions stay fp32.
        opts (Int8Options): the calibration.

    Returns:
        onnx.ModelProto: the quantised model, its metadata with an "int8" entry (images used, folder, method,
        format).

    Raises:
        InputError: a calibration folder without images, a count below 1, or an image that cannot be read.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    paths = calibration_images(opts.calibration, opts.count)
    meta = json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))
    # onnxruntime's calibrator prints its histogram settings ("Number of histogram bins : 2048") on stdout, where
    # the command's own output goes: kept out
    with tempfile.TemporaryDirectory(prefix="darknet_py-int8-") as tmp, quiet_logger(), \
            contextlib.redirect_stdout(io.StringIO()):
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, source)
        quantize_static(
            str(source), str(target), _Reader(paths, model, meta["batch"]),
            quant_format=getattr(QuantFormat, opts.fmt), per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, opts.method),
            op_types_to_quantize=QUANTIZED_OPS, nodes_to_quantize=_nodes_to_quantize(proto, model))
        quantized = onnx.load(target)
    meta["int8"] = {"calibration_images": len(paths), "calibration_folder": os.path.basename(os.path.normpath(opts.calibration)),
                    "method": opts.method, "format": opts.fmt}
    del quantized.metadata_props[:]
    for entry in proto.metadata_props:
        added = quantized.metadata_props.add()
        added.key, added.value = entry.key, json.dumps(meta) if entry.key == METADATA_KEY else entry.value
    quantized.producer_name, quantized.producer_version = proto.producer_name, proto.producer_version
    return quantized
