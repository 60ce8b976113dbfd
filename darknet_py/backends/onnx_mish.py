"""Mish in a form onnxruntime's CPU provider runs fast, rewritten when a graph is opened.

An export spells darknet's mish as the standard x·Tanh(Softplus(x)), which OpenVINO and OpenCV's ONNX
reader run as one Mish. onnxruntime runs the three operators, and its CPU Softplus is slow: in a profiled
yolov4-csp 512 forward its 112 calls took 403.11 ms, more than all 115 convolutions (375.02; 2-core AMD
EPYC, benchmarks/results/onnx_mish.json). So the onnxruntime backend rewrites each mish, in memory and
on the CPU only, into element-wise operators its CPU provider vectorises:

    tanh(softplus(x)) = n / (n + 2),  n = eˣ·(eˣ + 2),  eˣ of min(x, 20)

the identity darknet_py's own mish kernel uses (darknet_py/model/layers/_mish.c). It is closer to
float64 than Softplus·Tanh (2.8e-7 against 4.6e-7 relative over every float32 exponent,
tests/test_onnx_mish.py) and keeps darknet's branches: at x ≥ 20 the ratio is exactly 1 in float32,
so mish(x) = x as darknet's softplus threshold gives; eˣ underflows to 0 far below zero, so
mish(x) = x·0; −inf gives NaN as in darknet. On that machine the forward went from 804.71 to 499.27 ms
(fp32) and from 577.65 to 230.27 ms (int8: the mish ran in fp32 between a dequantise and a quantise).
The file on disk keeps the standard spelling, for every other runtime.
"""
from __future__ import annotations

import json
import mmap
import os

import onnx
from onnx import TensorProto, helper

from ..format.metadata import METADATA_KEY

# Where eˣ is clamped: tanh(softplus(20)) rounds to 1 in float32, and e²⁰·(e²⁰ + 2) stays finite.
EXP_CLAMP = 20.0
_CLAMP, _TWO = "darknet_py_mish_clamp", "darknet_py_mish_two"
enabled = True  # False: open graphs as they are (benchmarks/onnx_mish.py times both)


def rewrite_mish(graph: onnx.GraphProto) -> int:
    """Replace each mish, Mul(x, Tanh(Softplus(x))), by Min, Exp, Add, Mul, Add, Div, Mul of `x`.

    For float32 graphs (the constants it adds are float32; `for_cpu` leaves fp16 exports alone). A Softplus or
    Tanh whose output has another consumer (or is a graph output) is left as it is.

    Args:
        graph: the graph to change in place; its nodes stay in topological order.

    Returns:
        The number of mish activations rewritten.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {value.name for value in graph.output}

    def only_consumer(name: str) -> onnx.NodeProto | None:
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and name not in outputs else None

    replaced: dict[int, list[onnx.NodeProto]] = {}  # id of a Softplus node → the nodes taking its place
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "Softplus" or node.domain not in ("", "ai.onnx"):
            continue
        x = node.input[0]
        tanh = only_consumer(node.output[0])
        if tanh is None or tanh.op_type != "Tanh":
            continue
        mul = only_consumer(tanh.output[0])
        if mul is None or mul.op_type != "Mul" or sorted(mul.input) != sorted([x, tanh.output[0]]):
            continue
        stem = f"{node.name or x}/darknet_py_mish_{len(replaced)}"
        names = {part: f"{stem}/{part}" for part in ("clamped", "exp", "exp_plus_two", "n", "n_plus_two", "ratio")}
        replaced[id(node)] = [
            helper.make_node("Min", [x, _CLAMP], [names["clamped"]], name=f"{stem}/Min"),
            helper.make_node("Exp", [names["clamped"]], [names["exp"]], name=f"{stem}/Exp"),
            helper.make_node("Add", [names["exp"], _TWO], [names["exp_plus_two"]], name=f"{stem}/Add"),
            helper.make_node("Mul", [names["exp"], names["exp_plus_two"]], [names["n"]], name=f"{stem}/Mul_n"),
            helper.make_node("Add", [names["n"], _TWO], [names["n_plus_two"]], name=f"{stem}/Add_1"),
            helper.make_node("Div", [names["n"], names["n_plus_two"]], [names["ratio"]], name=f"{stem}/Div"),
            helper.make_node("Mul", [x, names["ratio"]], list(mul.output), name=f"{stem}/Mul"),
        ]
        dropped.update((id(tanh), id(mul)))
    if not replaced:
        return 0
    nodes = []
    for node in graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(init.name == _CLAMP for init in graph.initializer):
        graph.initializer.extend([helper.make_tensor(_CLAMP, TensorProto.FLOAT, [], [EXP_CLAMP]),
                                  helper.make_tensor(_TWO, TensorProto.FLOAT, [], [2.0])])
    return len(replaced)


def for_cpu(model: str | os.PathLike[str] | bytes) -> str | os.PathLike[str] | bytes:
    """What onnxruntime's CPU provider should open for `model`: its mish activations rewritten, or `model` itself.

    fp16 exports (`--half`, for GPUs) are left alone (e²⁰ overflows float16), and so are a graph without mish, a file
    that does not parse (onnxruntime reports it) and a model protobuf cannot serialise (2 GiB or more).

    Args:
        model: an exported `.onnx` file's path, or its bytes.

    Returns:
        The rewritten model as bytes, or `model` unchanged: either can go to `onnxruntime.InferenceSession`.
    """
    if not enabled or not _mentions_softplus(model):
        return model
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(os.fspath(model))
    except Exception:  # noqa: BLE001 - onnxruntime gives the user-facing error for an unreadable file
        return model
    if _is_half(proto) or rewrite_mish(proto.graph) == 0:
        return model
    try:
        return proto.SerializeToString()
    except ValueError:  # protobuf refuses a message of 2 GiB or more: such a model keeps the standard spelling
        return model


def _mentions_softplus(model: str | os.PathLike[str] | bytes) -> bool:
    """Whether the operator name occurs in the file at all: a scan without parsing, so that a graph with no mish
    (yolov3's 248 MB: 0.1 s against 0.31 s for onnx.load) is not parsed for nothing."""
    if isinstance(model, bytes):
        return b"Softplus" in model
    try:
        with open(model, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return mapped.find(b"Softplus") >= 0
    except (OSError, ValueError):  # unreadable or empty: onnxruntime reports it
        return False


def _is_half(proto: onnx.ModelProto) -> bool:
    raw = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    try:
        return bool(json.loads(raw).get("half")) if raw else False
    except (ValueError, AttributeError):
        return False
