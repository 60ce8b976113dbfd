"""Darknet → ONNX: `raw` head tensors, decoded `boxes`, or final detections (`nms`).

The graph is traced from the same modules the torch backend runs, so the two agree to float
precision. Everything a runtime needs (class names, input size, letterbox, head specs) goes
into the file's metadata under "darknet_py", so a .onnx file is self-contained.

Dynamic sizes: grids come from each head tensor's shape and anchors/strides are constants
of the architecture, so a `--dynamic-size` export gives correct boxes at every multiple of
the network stride (not only at the size it was traced with).
"""
from __future__ import annotations

import copy
import io
import json
import os
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from ..backends.torch import Darknet
from ..core.errors import DarknetWarning, InputError
from ..core.fileio import atomic_path, sha256_file
from ..core.version import __version__
from ..format.metadata import FORMAT_VERSION, METADATA_KEY, NMS_DEFAULTS, OUTPUT_FORMATS
from ..model.layers.head import spec_to_dict
from ..pipeline.decode import decode_head
from ..pipeline.detect import DetectOptions, nms_settings

if TYPE_CHECKING:
    from .quantize import Int8Options

MIN_OPSET, MAX_OPSET = 11, 20


@dataclass(frozen=True)
class ExportOptions:
    """How a network is exported: `darknet-py export`'s graph options.

    Attributes:
        output_format (str or None): "raw" (the heads' tensors), "boxes" (decoded candidates: boxes, scores,
            objectness), "nms" (final detections, thresholds as inputs) or "classes" (a classifier's
            probabilities); None: boxes for a detector, classes for a classifier.
        batch (int or None): a fixed batch size; None: a dynamic batch axis.
        dynamic_size (bool): height and width as dynamic axes (any multiple of the network stride).
        opset (int): the ONNX opset, MIN_OPSET to MAX_OPSET.
        half (bool): the network computes in fp16 inside the graph; inputs and outputs stay fp32.
    """

    output_format: str | None = None  # None: the model's own, boxes for a detector and classes for a classifier
    batch: int | None = None  # None: dynamic batch
    dynamic_size: bool = False
    opset: int = 17
    half: bool = False

    def resolved(self, model: Darknet) -> "ExportOptions":
        """These options with the output format filled in for `model`.

        Args:
            model (Darknet): the network to export.

        Returns:
            ExportOptions: a copy whose output_format is the given one, else "classes" for a classifier and
            "boxes" for a detector.
        """
        return replace(self, output_format=self.output_format or ("classes" if model.is_classifier else "boxes"))

    def validate(self, model: Darknet) -> None:
        """Refuse options `model` cannot be exported with (call it on `resolved` options).

        Args:
            model (Darknet): the network to export.

        Raises:
            InputError: an unknown output format; a recurrent layer; "classes" for a detector or another format for
                a classifier; an opset outside MIN_OPSET..MAX_OPSET; a batch below 1; an output layer darknet_py does
                not decode; "boxes" or "nms" without a detection layer; or --dynamic-size with fixed-size layers.
        """
        if self.output_format not in OUTPUT_FORMATS:
            raise InputError(f"unknown output format '{self.output_format}'; use one of {', '.join(OUTPUT_FORMATS)}")
        for index in model.recurrent:  # ONNX graphs are stateless: one call cannot see the last one
            info = model.infos[index]
            raise InputError(f"{os.path.basename(model.cfg_path or 'the cfg')}: layer {index} [{info.type}] (line "
                             f"{info.line}) keeps a recurrent state from frame to frame, which an ONNX graph cannot "
                             "hold; run this model with the torch backend")
        if model.is_classifier != (self.output_format == "classes"):
            raise InputError(f"{os.path.basename(model.cfg_path or 'the cfg')} is a classifier: it exports its class "
                             "probabilities (--output-format classes)" if model.is_classifier else
                             "--output-format classes is for classifiers; this cfg has detection layers "
                             "(use raw, boxes or nms)")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise InputError(f"opset {self.opset} is not supported; use {MIN_OPSET}..{MAX_OPSET}")
        if self.batch is not None and self.batch < 1:
            raise InputError(f"batch must be at least 1 (or dynamic), got {self.batch}")
        undecoded = [i for i in model.output_indices if i not in model.head_indices and not model.is_classifier]
        if undecoded:
            info = model.infos[undecoded[0]]
            raise InputError(f"layer {info.index} [{info.type}] (line {info.line}): darknet_py does not decode this "
                             "detection layer, so it cannot be exported")
        if self.output_format in ("boxes", "nms") and not model.head_indices:
            raise InputError(f"{model.cfg_path} has no detection layer ([yolo], [region], [Gaussian_yolo]): "
                             "only --output-format raw can be exported")
        if self.dynamic_size:
            fixed = sorted({info.type for info, m in zip(model.infos, model.layers) if m.fixed_size})
            if fixed:
                raise InputError(f"--dynamic-size is not possible: {', '.join(fixed)} layers work on one input size only")


def head_strides(model: Darknet) -> list[tuple[float, float]]:
    """(x, y) network pixels per grid cell of every detection layer's input, as darknet computes them.

    Args:
        model (Darknet): the network.

    Returns:
        list of (float, float): one (width / grid width, height / grid height) per detection layer, in cfg order.
    """
    strides = []
    for i in model.head_indices:
        shape = model.infos[i].in_shapes[0]
        strides.append((model.width / shape.w, model.height / shape.h))
    return strides


class _Graph(nn.Module):
    """What gets traced: network (optionally fp16 inside), then the format's outputs in fp32."""

    def __init__(self, model: Darknet, output_format: str, half: bool) -> None:
        super().__init__()
        self.model, self.output_format, self.half = model, output_format, half
        self.specs, self.strides = model.heads, head_strides(model)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        heads = [h.float() for h in self.model(images.half() if self.half else images)]
        if self.output_format == "classes":
            return (heads[0].reshape(heads[0].shape[0], -1),)
        if self.output_format == "raw":
            return tuple(heads)
        parts = [decode_head(h, spec, sx, sy) for h, spec, (sx, sy) in zip(heads, self.specs, self.strides)]
        boxes, objectness, scores = (torch.cat(p, 1) for p in zip(*parts))
        return boxes, scores, objectness


def _output_names(model: Darknet, output_format: str) -> list[str]:
    if output_format == "classes":
        return ["probabilities"]
    if output_format == "raw":
        return [f"{model.heads[k].kind}_{i}" for k, i in enumerate(model.head_indices)]
    return ["boxes", "scores", "objectness"]


def _dynamic_axes(names: list[str], opts: ExportOptions) -> dict[str, dict[int, str]]:
    batch = {} if opts.batch else {0: "batch"}
    axes = {"images": {**batch, **({2: "height", 3: "width"} if opts.dynamic_size else {})}}
    for name in names:
        if not opts.dynamic_size:
            axes[name] = dict(batch)
        elif opts.output_format == "raw":
            axes[name] = {**batch, 2: f"{name}_height", 3: f"{name}_width"}
        elif opts.output_format == "classes":
            axes[name] = {**batch, 1: "outputs"}
        else:
            axes[name] = {**batch, 1: "candidates"}
    return {k: v for k, v in axes.items() if v}


def _trace(model: Darknet, opts: ExportOptions) -> onnx.ModelProto:
    traced = opts.output_format if opts.output_format in ("raw", "classes") else "boxes"
    graph = _Graph(model, traced, opts.half).eval()
    example = torch.rand(opts.batch or 1, model.channels, model.height, model.width)
    names = _output_names(model, opts.output_format)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer chatter about shapes; the tests check the result
        torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=opts.opset, input_names=["images"],
                          output_names=names, dynamic_axes=_dynamic_axes(names, opts) or None, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def _append_nms(proto: onnx.ModelProto) -> None:
    """boxes/scores/objectness → detections (K, 7): batch index, x1, y1, x2, y2, score, class.

    Darknet's rules: a box counts only when its objectness is above the threshold, keeps its best
    class (as the torch backend's default), and NMS runs per class (ONNX NonMaxSuppression, IoU).
    """
    g = proto.graph
    for name, value, dtype in (("conf_thresh", NMS_DEFAULTS["conf_thresh"], TensorProto.FLOAT),
                               ("iou_thresh", NMS_DEFAULTS["iou_thresh"], TensorProto.FLOAT),
                               ("max_det", NMS_DEFAULTS["max_det"], TensorProto.INT64)):
        g.initializer.append(helper.make_tensor(name, dtype, [1], [value]))
        g.input.append(helper.make_tensor_value_info(name, dtype, [1]))
    for name, value in (("nms_axis_last", -1), ("nms_axis_one", 1), ("nms_idx_batch", 0), ("nms_idx_class", 1), ("nms_idx_box", 2)):
        g.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
    node = helper.make_node
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    # ReduceMax takes its axes as an input from opset 18 on, Unsqueeze from opset 13 on: attributes before
    reduce_max = (node("ReduceMax", ["nms_gated", "nms_axis_last"], ["nms_best"], keepdims=1) if opset >= 18
                  else node("ReduceMax", ["nms_gated"], ["nms_best"], axes=[-1], keepdims=1))

    def unsqueeze(source: str, axis: int, axis_input: str, target: str) -> onnx.NodeProto:
        return (node("Unsqueeze", [source, axis_input], [target]) if opset >= 13
                else node("Unsqueeze", [source], [target], axes=[axis]))

    g.node.extend([
        node("Greater", ["objectness", "conf_thresh"], ["nms_obj_ok"]),
        node("Cast", ["nms_obj_ok"], ["nms_obj_gate"], to=TensorProto.FLOAT),
        unsqueeze("nms_obj_gate", -1, "nms_axis_last", "nms_obj_gate3"),
        node("Mul", ["scores", "nms_obj_gate3"], ["nms_gated"]),
        reduce_max,
        node("Equal", ["nms_gated", "nms_best"], ["nms_is_best"]),
        node("Cast", ["nms_is_best"], ["nms_best_gate"], to=TensorProto.FLOAT),
        node("Mul", ["nms_gated", "nms_best_gate"], ["nms_scores"]),
        node("Transpose", ["nms_scores"], ["nms_scores_t"], perm=[0, 2, 1]),
        node("NonMaxSuppression", ["boxes", "nms_scores_t", "max_det", "iou_thresh", "conf_thresh"], ["nms_selected"]),
        node("Gather", ["nms_selected", "nms_idx_batch"], ["nms_batch"], axis=1),
        node("Gather", ["nms_selected", "nms_idx_class"], ["nms_class"], axis=1),
        node("Gather", ["nms_selected", "nms_idx_box"], ["nms_box"], axis=1),
        node("Concat", ["nms_batch", "nms_box"], ["nms_batch_box"], axis=1),
        node("GatherND", ["boxes", "nms_batch_box"], ["nms_boxes"]),
        node("GatherND", ["nms_scores_t", "nms_selected"], ["nms_score"]),
        unsqueeze("nms_score", 1, "nms_axis_one", "nms_score2"),
        node("Cast", ["nms_batch"], ["nms_batch_f"], to=TensorProto.FLOAT),
        node("Cast", ["nms_class"], ["nms_class_f"], to=TensorProto.FLOAT),
        node("Concat", ["nms_batch_f", "nms_boxes", "nms_score2", "nms_class_f"], ["detections"], axis=1),
    ])
    while len(g.output):
        g.output.pop()
    g.output.append(helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["detections", 7]))


def _sha256(path: str | None) -> str | None:
    return sha256_file(path) if path and os.path.isfile(path) else None


def metadata(model: Darknet, opts: ExportOptions, names: Sequence[str], weights_path: str | None) -> dict:
    """The "darknet_py" metadata an export carries: everything a runtime needs to run it as the torch backend does.

    Args:
        model (Darknet): the exported network.
        opts (ExportOptions): the export's options (resolved: output_format set).
        names (sequence of str): the class names.
        weights_path (str or None): the weights file, for its name and sha256 (None: not recorded).

    Returns:
        dict: format version, output format, task, input size, channels, letterbox, resize, batch, dynamic size,
        half, names, head specs with strides, the `nms` defaults, the cfg's and weights' names and sha256 (None for
        a file that is not there), and the producer.
    """
    return {
        "format_version": FORMAT_VERSION,
        "output_format": opts.output_format,
        "task": "classify" if model.is_classifier else "detect",
        "outputs": model.num_classes if model.is_classifier else None,  # a classifier's output values
        "hierarchy": list(model.hierarchy) if model.hierarchy else None,  # class tree: each class's parent
        "width": model.width, "height": model.height, "channels": model.channels,
        "letterbox": model.letter_box,
        "resize": model.resize,  # the image resize detect() uses (darknet_py.pipeline.preprocess)
        "batch": opts.batch, "dynamic_size": opts.dynamic_size, "half": opts.half,
        "names": list(names),
        "heads": [{**spec_to_dict(spec), "stride": list(stride)} for spec, stride in zip(model.heads, head_strides(model))],
        "nms_defaults": NMS_DEFAULTS if opts.output_format == "nms" else None,
        "source_cfg": os.path.basename(model.cfg_path or ""),
        "cfg_sha256": _sha256(model.cfg_path),
        "source_weights": os.path.basename(weights_path or ""),
        "weights_sha256": _sha256(weights_path),
        "producer": f"darknet_py {__version__}",
    }


def build_onnx(model: Darknet, names: Sequence[str], opts: ExportOptions = ExportOptions(),
               weights_path: str | None = None) -> onnx.ModelProto:
    """The ONNX model in memory, with metadata (see export_onnx; not yet checked).

    The options are resolved and validated, the network traced (a copy in fp16 with `opts.half`), the `nms`
    format's detection nodes appended, the output shapes declared and the graph simplified. The metadata goes in
    under "darknet_py", the class names under "names" too.

    Args:
        model (Darknet): the network to export.
        names (sequence of str): the class names to record.
        opts (ExportOptions): the graph's options.
        weights_path (str or None): the weights file, recorded by name and sha256.

    Returns:
        onnx.ModelProto: the model.

    Raises:
        InputError: options the model cannot be exported with (see ExportOptions.validate).
    """
    opts = opts.resolved(model)
    opts.validate(model)
    # the graph's NMS is IoU: where detect() runs the cfg's as DIoU (its own rule), the detections are not darknet's
    if opts.output_format == "nms" and nms_settings(model.heads, DetectOptions())[0] == "diou":
        warnings.warn(f"--output-format nms runs IoU NMS on each box's best class inside the graph; the cfg's "
                      f"nms_kind={model.heads[-1].nms_kind} (DIoU) is not in it, so some boxes differ from darknet's (--output-format "
                      "boxes keeps the cfg's NMS, run by the detector)", DarknetWarning, stacklevel=2)
    if opts.half:
        model = copy.deepcopy(model).half()
    proto = _trace(model.eval(), opts)
    if opts.output_format == "nms":
        _append_nms(proto)
    _declare_output_shapes(proto, model, opts)
    simplify(proto.graph)
    meta = metadata(model, opts, names, weights_path)
    for key, value in ((METADATA_KEY, json.dumps(meta)), ("names", json.dumps(list(names)))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "darknet_py", __version__
    proto.doc_string = f"{meta['source_cfg']} ({opts.output_format}) exported by darknet_py {__version__}"
    return proto


def simplify(graph: onnx.GraphProto) -> None:
    """Constants become initializers, Identity nodes disappear, nodes nobody reads are dropped.

    Identity nodes that give a graph output are kept; initializers no node reads are dropped too.

    Args:
        graph (onnx.GraphProto): the graph, changed in place.
    """
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    kept = []
    for node in graph.node:
        node.input[:] = [rename.get(name, name) for name in node.input]
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        elif node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    while True:  # drop dead nodes, last first
        needed = outputs | {name for node in kept for name in node.input}
        alive = [n for n in kept if any(o in needed for o in n.output)]
        if len(alive) == len(kept):
            break
        kept = alive
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def checked_bytes(proto: onnx.ModelProto) -> bytes:
    """Serialised once, and passed through onnx.checker (full check: types and shapes too).

    Args:
        proto (onnx.ModelProto): the model.

    Returns:
        bytes: the serialised model.

    Raises:
        InputError: the checker refuses the graph (a darknet_py bug).
    """
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(data, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        said = " ".join(str(exc).split())  # the checker's message spans lines (its "==> Context"): one line
        raise InputError(f"the exported graph fails the ONNX checker (a darknet_py bug; please report it): {said}") \
            from exc
    return data


INT8_MIN_OPSET = 13  # DequantizeLinear's per-channel `axis` (int8 weights per output channel) is opset 13's


def check_int8_onnx(opts: ExportOptions) -> None:
    """Refuse options an int8 ONNX export cannot have, before any calibration (OpenVINO IR's int8 has no opset).

    Raises:
        InputError: with --half, or an opset below INT8_MIN_OPSET.
    """
    if opts.half:
        raise InputError("--int8 and --half do not combine: int8 is for CPUs, fp16 for GPUs")
    if opts.opset < INT8_MIN_OPSET:
        raise InputError(f"--int8 to ONNX needs --opset {INT8_MIN_OPSET} or later (its weights are int8 per output "
                         f"channel, which DequantizeLinear takes from opset {INT8_MIN_OPSET}); got --opset {opts.opset}")


def export_onnx(model: Darknet, path: str | os.PathLike[str], names: Sequence[str],
                opts: ExportOptions = ExportOptions(), weights_path: str | None = None,
                int8: "Int8Options | None" = None) -> onnx.ModelProto:
    """Trace (and with `int8`, quantise), check and write `path` atomically: an interrupted
    export leaves no partial file.

    Args:
        model (Darknet): the network to export.
        path (str or PathLike): the .onnx file to write (an existing one is replaced).
        names (sequence of str): the class names to record.
        opts (ExportOptions): the graph's options.
        weights_path (str or None): the weights file to record; None: the model's own.
        int8 (Int8Options or None): quantise to int8, calibrated on these images (darknet_py.export.quantize).

    Returns:
        onnx.ModelProto: the model written.

    Raises:
        InputError: int8 with half or below opset 13 (check_int8_onnx), options the model cannot be exported with,
            a calibration folder without images, or a graph the ONNX checker refuses.
    """
    if int8 is not None:
        check_int8_onnx(opts)
    proto = build_onnx(model, names, opts, weights_path or model.weights_path)
    if int8 is not None:
        from .quantize import quantize_int8
        proto = quantize_int8(proto, model, int8)
    data = checked_bytes(proto)
    with atomic_path(path, ".onnx") as tmp:
        _write(tmp, data)
    return proto


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _declare_output_shapes(proto: onnx.ModelProto, model: Darknet, opts: ExportOptions) -> None:
    """Fill in the axes the tracer leaves anonymous: candidates (static sizes), 4 and the class count."""
    candidates = sum(len(spec.anchors) * model.infos[i].in_shapes[0].h * model.infos[i].in_shapes[0].w
                     for i, spec in zip(model.head_indices, model.heads))
    last = {"boxes": 4, "scores": model.num_classes}
    for output in proto.graph.output:
        if output.name not in ("boxes", "scores", "objectness"):
            continue
        dims = output.type.tensor_type.shape.dim
        if not opts.dynamic_size:
            dims[1].dim_value = candidates
        if output.name in last:
            dims[2].dim_value = last[output.name]
