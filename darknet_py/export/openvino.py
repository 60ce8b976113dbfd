"""Darknet → OpenVINO IR (`.xml` + `.bin`), optionally int8 through NNCF's post-training quantisation.

The IR is converted from the very ONNX graph `darknet-py export` writes (darknet_py.export.onnx),
so it has the same outputs and carries the same "darknet_py" metadata (in its rt_info).

int8 (NNCF, calibrated on the same image folder as the onnxruntime `--int8`, pre-processed by
detect()'s own pipeline): the network's convolutions get int8 weights per output channel and
quantised inputs; the convolutions in front of each [yolo] layer and the box decoding stay fp32,
as in darknet_py.export.quantize (rounding the logits to 256 levels loses whole detections). OpenVINO
runs each Mish as one op between the int8 convolutions, where onnxruntime runs three between a
dequantise and a quantise: that is why int8 pays off for Mish networks here and not there.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..backends.openvino import INSTALL_HINT, model_from_onnx, require_openvino
from ..backends.torch import Darknet
from ..core.errors import InputError
from ..core.fileio import temporary_prefix
from ..format.metadata import METADATA_KEY
from .onnx import ExportOptions, build_onnx, checked_bytes
from .quantize import Int8Options, calibration_batches, calibration_images, quiet_logger

NNCF_PRESET = "MIXED"  # symmetric int8 weights, asymmetric activations (Mish and leaky outputs are not symmetric)


def export_openvino(model: Darknet, path: str | os.PathLike[str], names: Sequence[str],
                    opts: ExportOptions = ExportOptions(), weights_path: str | None = None,
                    int8: Int8Options | None = None) -> dict:
    """Write `path` (.xml, with its .bin beside it) atomically; returns the metadata it carries.

    `opts.half` stores the weights as fp16 (half the file); the compute precision is chosen when the
    model is loaded (f32 unless asked otherwise).

    Args:
        model (Darknet): the network to export.
        path (str or PathLike): the .xml file to write; the .bin goes beside it (existing ones are replaced).
        names (sequence of str): the class names to record.
        opts (ExportOptions): the graph's options (the ONNX export's); `half` compresses the stored weights.
        weights_path (str or None): the weights file to record; None: the model's own.
        int8 (Int8Options or None): quantise to int8 with NNCF, calibrated on these images.

    Returns:
        dict: the "darknet_py" metadata the IR carries (with "half", and "int8" when quantised).

    Raises:
        InputError: int8 with half, OpenVINO (or for int8, NNCF) not installed, options the model cannot be
            exported with, or a calibration folder without images.
    """
    if int8 is not None and opts.half:
        raise InputError("--int8 and --half do not combine: int8 weights are already smaller than fp16")
    require_openvino()
    proto = build_onnx(model, names, replace(opts, half=False), weights_path or model.weights_path)
    ov_model, meta = model_from_onnx(checked_bytes(proto), os.fspath(path))
    meta["half"] = opts.half
    if int8 is not None:
        ov_model = quantize_nncf(ov_model, model, meta, int8)
    save_ir(ov_model, meta, path, compress_to_fp16=opts.half)
    return meta


def quantize_nncf(ov_model: Any, model: Darknet, meta: dict, opts: Int8Options) -> Any:
    """An int8 copy of `ov_model` (converted from an fp32 export of `model`); records the calibration in `meta`.

    NNCF's post-training quantisation (preset NNCF_PRESET) of the network's own layers: the convolutions in front
    of the detection layers, the decoding and NMS stay fp32 (NNCF's ignored scope).

    Args:
        ov_model (openvino.Model): the fp32 model.
        model (Darknet): the exported network: its input size, letterbox, resize and channels pre-process the
            calibration images, and its detection layers say which convolutions stay fp32.
        meta (dict): the export's metadata; its "batch" and "output_format" shape the calibration feeds, and an
            "int8" entry (images used, folder, NNCF version, preset) is added to it.
        opts (Int8Options): the calibration (only its folder and count are used).

    Returns:
        openvino.Model: the quantised model.

    Raises:
        InputError: NNCF is not installed, or a calibration folder without images.
    """
    try:
        import nncf
    except ImportError:
        raise InputError(f"int8 for OpenVINO needs NNCF, which is not installed: {INSTALL_HINT}") from None
    from ..backends.graph import INPUT_NAME, nms_feeds

    paths = calibration_images(opts.calibration, opts.count)
    extra = nms_feeds() if meta["output_format"] == "nms" else {}
    batch = meta["batch"] or 1
    data = _Calibration(lambda: ({INPUT_NAME: pixels, **extra} for pixels in
                                 calibration_batches(paths, model.width, model.height, model.letter_box, batch,
                                                     model.resize, model.channels)))
    # names as the ONNX export gives them: /model/layers.<i>/… for layer i; anything else is decoding or NMS
    fp32 = [r"^(?!/model/layers\.).*"] + [rf"^/model/layers\.{i - 1}/.*" for i in model.head_indices]
    with quiet_logger("nncf"):
        quantized = nncf.quantize(ov_model, nncf.Dataset(data), preset=getattr(nncf.QuantizationPreset, NNCF_PRESET),
                                  subset_size=len(paths), ignored_scope=nncf.IgnoredScope(patterns=fp32, validate=False))
    meta["int8"] = {"calibration_images": len(paths), "calibration_folder": os.path.basename(os.path.normpath(opts.calibration)),
                    "tool": f"nncf {nncf.__version__}", "preset": NNCF_PRESET.lower()}
    return quantized


class _Calibration:
    """Re-iterable calibration feeds (NNCF passes over them more than once), made one batch at a time."""

    def __init__(self, make: Callable[[], Iterator[dict]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[dict]:
        return iter(self._make())


def save_ir(ov_model: Any, meta: dict, path: str | os.PathLike[str], compress_to_fp16: bool = False) -> None:
    """Write OpenVINO IR (`path` .xml + its .bin) with `meta`; both files appear whole or not at all
    (the .bin goes into place first: a reader never sees a new .xml beside an old .bin).

    The files are saved in a temporary folder beside `path` (made, with its parents, if missing), then renamed
    into place; the temporary folder is removed however it ends.

    Args:
        ov_model (openvino.Model): the model; `meta` is set in its rt_info under "darknet_py".
        meta (dict): the export's metadata.
        path (str or PathLike): the .xml file; the .bin is `path` with the suffix .bin.
        compress_to_fp16 (bool): store the weights as fp16.

    Raises:
        InputError: OpenVINO is not installed.
    """
    ov = require_openvino()
    target = Path(path)
    ov_model.set_rt_info(json.dumps(meta), [METADATA_KEY])
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=temporary_prefix(target.stem), dir=target.parent)
    try:
        ov.save_model(ov_model, os.path.join(staging, "model.xml"), compress_to_fp16=compress_to_fp16)
        os.replace(os.path.join(staging, "model.bin"), target.with_suffix(".bin"))
        os.replace(os.path.join(staging, "model.xml"), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
