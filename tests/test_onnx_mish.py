"""The onnxruntime backend's mish rewrite (darknet_py/backends/onnx_mish.py): against float64 mish with darknet's
branches over the whole float32 range, on an exported mish network against the torch model and the standard graph,
on an int8 export, and what it must leave alone. test_onnx.py's zoo test runs every mish cfg through it too."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import darknet_py
from darknet_py.backends import onnx_mish
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import default_names
from darknet_py.pipeline.decode import decode
from tests.conftest import IMAGES, ZOO_CFG, shared_path
from tests.test_mish_kernel import RELATIVE, every_exponent, exact_mish

pytestmark = pytest.mark.timeout(600)

SIDE = 256
TOLERANCE = 1e-4  # docs/onnx-openvino.md: exports agree with the torch model within 1e-4 of the largest output


def mish_graph(consumers: int = 1, opset: int = 17) -> onnx.ModelProto:
    """x → Mul(x, Tanh(Softplus(x))) over a vector, as torch exports F.mish; `consumers` 2 also outputs the Softplus."""
    nodes = [helper.make_node("Softplus", ["x"], ["s"]), helper.make_node("Tanh", ["s"], ["t"]),
             helper.make_node("Mul", ["x", "t"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])]
    if consumers == 2:
        outputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, [None]))
    graph = helper.make_graph(nodes, "mish", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])], outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_rewritten_mish_is_as_close_to_float64_as_the_c_kernel_with_darknets_branches() -> None:
    standard, fast = mish_graph(), mish_graph()
    assert onnx_mish.rewrite_mish(fast.graph) == 1
    assert "Softplus" not in {n.op_type for n in fast.graph.node}
    onnx.checker.check_model(fast, full_check=True)
    x = every_exponent()
    reference = exact_mish(x)
    finite = np.abs(reference) > 1e-30
    errors = {name: np.abs(run(model, x)[finite] - reference[finite]) / np.abs(reference[finite])
              for name, model in (("standard", standard), ("rewritten", fast))}
    assert errors["rewritten"].max() <= RELATIVE
    assert errors["rewritten"].max() <= errors["standard"].max()  # no worse than onnxruntime's own Softplus·Tanh
    specials = np.array([np.inf, -np.inf, np.nan, 20.0, 20.5, 1e30, -200.0, -1e30], np.float32)
    got = run(fast, specials)
    assert got[0] == np.inf and np.isnan(got[1]) and np.isnan(got[2])
    assert list(got[3:6]) == [20.0, 20.5, np.float32(1e30)]  # above darknet's softplus threshold: x itself
    assert list(got[6:]) == [0.0, 0.0] and all(np.signbit(got[6:]))  # far below zero: 0·x, as darknet's


def test_only_a_whole_mish_is_rewritten() -> None:
    shared = mish_graph(consumers=2)  # the Softplus output is also a graph output
    assert onnx_mish.rewrite_mish(shared.graph) == 0
    other = mish_graph()
    other.graph.node[2].input[0] = "s"  # Mul(softplus, tanh): not mish
    assert onnx_mish.rewrite_mish(other.graph) == 0
    assert [n.op_type for n in other.graph.node] == ["Softplus", "Tanh", "Mul"]


def test_a_graph_without_mish_is_opened_as_it_is(tmp_path: Path) -> None:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    payload = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    path = tmp_path / "relu.onnx"
    path.write_bytes(payload)
    assert onnx_mish.for_cpu(payload) is payload and onnx_mish.for_cpu(path) is path
    assert onnx_mish.for_cpu(mish_graph().SerializeToString()) != mish_graph().SerializeToString()


@pytest.fixture(scope="module")
def csp(synthetic_weights, tmp_path_factory):
    """yolov4-csp (112 mish activations) at 256 with synthetic weights, and its boxes export."""
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    weights = synthetic_weights(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        model = darknet_py.load(cfg, weights, size=SIDE)
    path = tmp_path_factory.mktemp("csp") / "csp.onnx"
    export_onnx(model, path, default_names(model.num_classes), ExportOptions("boxes"), str(weights))
    return model, weights, path


def test_backend_opens_the_rewritten_graph_on_cpu_and_leaves_the_file(csp, monkeypatch) -> None:
    model, _, path = csp
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    opened = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda payload, *a, **k: opened.append(payload) or real(payload, *a, **k))
    fast = OnnxDetector(path)
    monkeypatch.setattr(onnx_mish, "enabled", False)
    standard = OnnxDetector(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the file keeps the standard spelling
    ops = [{n.op_type for n in onnx.load_from_string(opened[0]).graph.node}, {n.op_type for n in onnx.load(path).graph.node}]
    assert "Softplus" not in ops[0] and "Softplus" in ops[1] and opened[1] == str(path)
    assert sum(n.op_type == "Exp" for n in onnx.load_from_string(opened[0]).graph.node) >= 112
    x = np.random.default_rng(3).uniform(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)
    with torch.no_grad():
        boxes, objectness, scores = decode(model(torch.from_numpy(x)), model.heads, model.width, model.height)
    for runtime in (fast, standard):
        for ours, ref in zip(runtime.run(x), (boxes, scores, objectness), strict=True):
            assert np.abs(ours - ref.numpy()).max() / np.abs(ref.numpy()).max() <= TOLERANCE

def test_fp16_exports_keep_the_standard_graph(csp, tmp_path: Path) -> None:
    model, weights, _ = csp
    path = tmp_path / "half.onnx"
    export_onnx(model, path, default_names(model.num_classes), ExportOptions("boxes", half=True), str(weights))
    assert onnx_mish.for_cpu(path) == path  # e²⁰ overflows float16: nothing rewritten


def test_int8_export_runs_rewritten_and_agrees_with_the_standard_int8_graph(csp, tmp_path: Path) -> None:
    model, weights, _ = csp
    path = tmp_path / "int8.onnx"
    export_onnx(model, path, default_names(model.num_classes), ExportOptions("boxes"), str(weights),
                Int8Options(str(shared_path(IMAGES)), count=3))
    payload = onnx_mish.for_cpu(path)
    assert isinstance(payload, bytes)
    graph = onnx.load_from_string(payload).graph
    assert "Softplus" not in {n.op_type for n in graph.node} and {"QuantizeLinear", "Exp"} <= {n.op_type for n in graph.node}
    fast = OnnxDetector(path)
    onnx_mish.enabled = False
    try:
        standard = OnnxDetector(path)
    finally:
        onnx_mish.enabled = True
    x = np.random.default_rng(4).uniform(0, 1, (1, 3, SIDE, SIDE)).astype(np.float32)
    # a last-bit difference in one mish may move a value across a rounding step of the next quantisation,
    # so the int8 graphs agree to a few steps, not to fp32 noise
    for ours, ref in zip(fast.run(x), standard.run(x), strict=True):
        assert np.abs(ours - ref).max() / np.abs(ref).max() <= 0.02
