"""The OpenVINO backend (--backend openvino, OpenVINO IR export, NNCF int8), checked against the torch
backend (itself checked against darknet and OpenCV 4.x elsewhere) on the shared photos."""
from __future__ import annotations

import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.backends.openvino import OpenVinoDetector
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.export.openvino import export_openvino
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import COCO_NAMES
from tests.conftest import IMAGES, ZOO_CFG, official, photos, same_detections, shared_path

CSP_SIDE = 320  # yolov4-csp (synthetic weights) at 320: the same network as at 512, a third of the work
CSP_THRESH = 0.55  # synthetic weights score every box 0.3-0.6: this keeps a few dozen per photo


def _same_outputs(expected: list[np.ndarray], got: list[np.ndarray], tolerance: float = 1e-5) -> None:
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape
        assert np.abs(have - want).max() <= tolerance * np.abs(want).max()


@pytest.fixture(scope="module")
def tiny():
    return darknet_py.load(*official("yolov4-tiny"))


def test_yolov4_tiny_detections_equal_torch_on_every_photo(tiny, tmp_path: Path) -> None:
    """cfg + weights on OpenVINO as torch on every photo (default and darknet's map settings); the .onnx
    file and the OpenVINO IR written by export give the very same graph outputs."""
    images = [str(p) for p in photos()]
    expected = tiny.detect(images)
    assert sum(len(d) for d in expected) > 20
    detector = darknet_py.load(*official("yolov4-tiny"), backend="openvino")
    assert isinstance(detector, OpenVinoDetector)
    same_detections(expected, detector.detect(images))
    # darknet's map settings: every class above a low threshold
    same_detections(tiny.detect(images, 0.005, multi_label=True), detector.detect(images, 0.005, multi_label=True))
    onnx_file, ir_file = tmp_path / "tiny.onnx", tmp_path / "tiny.xml"
    export_onnx(tiny, onnx_file, COCO_NAMES)
    export_openvino(tiny, ir_file, COCO_NAMES)
    pixels = np.random.default_rng(0).uniform(0, 1, (2, 3, tiny.height, tiny.width)).astype(np.float32)
    for other in (darknet_py.load(onnx_file, backend="openvino"), darknet_py.load(ir_file)):
        assert isinstance(other, OpenVinoDetector)
        _same_outputs(detector.run(pixels), other.run(pixels))


def test_yolov4_csp_detections_equal_torch_on_every_photo(synthetic_weights) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    weights = synthetic_weights(cfg)
    images = [str(p) for p in photos()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        # one class per box: synthetic weights give many classes of one box scores within float rounding
        # of each other, whose order the two runtimes may swap
        expected = darknet_py.load(cfg, weights, size=CSP_SIDE).detect(images, CSP_THRESH, multi_label=False)
        got = darknet_py.load(cfg, weights, size=CSP_SIDE, backend="openvino").detect(images, CSP_THRESH,
                                                                                      multi_label=False)
    assert sum(len(d) for d in expected) > 100
    same_detections(expected, got)


def test_f32_unless_asked(tiny) -> None:
    """Left alone, OpenVINO's CPU plugin computes in bf16 where the CPU has it; ours asks for f32."""
    import openvino as ov

    onnx_bytes = _onnx_bytes(tiny)
    detector = OpenVinoDetector(onnx_bytes)
    assert detector.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    with pytest.raises(darknet_py.InputError, match="unknown OpenVINO precision 'fp8'"):
        OpenVinoDetector(onnx_bytes, precision="fp8")
    with pytest.raises(darknet_py.InputError, match="OpenVINO has no device 'cuda'.*use --backend torch or onnxruntime"):
        OpenVinoDetector(onnx_bytes, device="cuda")
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in capabilities:  # this CPU computes bf16: asked for, it is used and moves scores a little
        half = OpenVinoDetector(onnx_bytes, precision="bf16")
        assert half.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
        dog = str(shared_path(IMAGES / "dog.jpg"))
        assert set(half.detect(dog)[0].labels) >= {"dog", "bicycle", "truck"}
    else:
        with pytest.raises(darknet_py.InputError, match="cannot compute in bf16"):
            OpenVinoDetector(onnx_bytes, precision="bf16")


def _onnx_bytes(model, fmt: str = "boxes", **options) -> bytes:
    from darknet_py.export.onnx import build_onnx

    return build_onnx(model, COCO_NAMES, ExportOptions(fmt, **options)).SerializeToString()


def test_the_nms_format_takes_its_thresholds_and_fixed_batches_pad(tiny, tmp_path: Path) -> None:
    """OpenVINO turns initialised inputs into constants: the nms graph's thresholds must stay inputs."""
    images = [str(p) for p in photos()[:5]]
    nms = OpenVinoDetector(_onnx_bytes(tiny, "nms"))
    same_detections(tiny.detect(images, nms_kind="iou", multi_label=False), nms.detect(images))
    strict = nms.detect(images, conf_thresh=0.7)
    assert sum(len(d) for d in strict) < sum(len(d) for d in nms.detect(images))
    same_detections(tiny.detect(images, 0.7, nms_kind="iou", multi_label=False), strict)
    # a fixed batch of 2 over 5 images: three runs, the last padded
    fixed = OpenVinoDetector(_onnx_bytes(tiny, batch=2))
    same_detections(tiny.detect(images), fixed.detect(images))
    # nms + fixed batch through IR written by export
    ir_file = tmp_path / "nms.xml"
    export_openvino(tiny, ir_file, COCO_NAMES, ExportOptions("nms", batch=2))
    same_detections(tiny.detect(images, 0.7, nms_kind="iou", multi_label=False),
                     darknet_py.load(ir_file).detect(images, 0.7))


def test_int8_nncf_keeps_the_heads_fp32_and_the_detections(tiny, tmp_path: Path) -> None:
    import openvino as ov

    ir_file = tmp_path / "int8.xml"
    meta = export_openvino(tiny, ir_file, COCO_NAMES, int8=Int8Options(str(shared_path(IMAGES)), count=3))
    assert meta["int8"]["calibration_images"] == 3 and meta["int8"]["tool"].startswith("nncf")
    assert ir_file.with_suffix(".bin").stat().st_size < 0.35 * official("yolov4-tiny")[1].stat().st_size
    model = ov.Core().read_model(ir_file)
    weight_types = {op.get_friendly_name(): _weights_type(op) for op in model.get_ordered_ops()
                    if op.get_type_name() == "Convolution"}
    heads = {name for name in weight_types if name.startswith(("/model/layers.29/", "/model/layers.36/"))}
    assert len(heads) == 2 and {weight_types[name] for name in heads} == {ov.Type.f32}  # in front of [yolo]: fp32
    assert {t for name, t in weight_types.items() if name not in heads} == {ov.Type.i8}  # every other one: int8
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops()) >= 10  # quantised activations
    dog = str(shared_path(IMAGES / "dog.jpg"))
    fp32, int8 = tiny.detect(dog)[0], darknet_py.load(ir_file).detect(dog)[0]
    # darknet detector test's list for this photo: dog, truck, bicycle, and car as the truck's second class
    assert sorted(int8.labels) == sorted(fp32.labels) == ["bicycle", "car", "dog", "truck"]
    for label in fp32.labels:
        assert abs(int8.scores[int8.labels.index(label)] - fp32.scores[fp32.labels.index(label)]) < 0.15


def _weights_type(convolution):
    """The element type a convolution's weights are stored in (int8 ones pass through Convert and Multiply)."""
    node = convolution.input_value(1).get_node()
    while node.get_input_size():
        node = node.input_value(0).get_node()
    return node.get_output_element_type(0)


def test_cli_export_ir_then_detect_and_the_errors(tmp_path: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    ir_file = tmp_path / "tiny.xml"
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(ir_file)]) == 0
    assert "OpenVINO IR" in capsys.readouterr().err and ir_file.with_suffix(".bin").exists()
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(ir_file)]) == 2
    assert "exists; pass --exist-ok" in capsys.readouterr().err
    dog = str(shared_path(IMAGES / "dog.jpg"))
    assert cli.main(["detect", dog, "--weights", str(ir_file), "--ext-output", "--output", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "dog:" in out and "bicycle:" in out

    def detections(printed: str) -> list[str]:
        return [line for line in printed.splitlines() if "Predicted in" not in line]  # darknet's timing line

    assert cli.main(["detect", dog, "--cfg", str(cfg), "--weights", str(weights), "--backend", "openvino",
                     "--ext-output", "--output", str(tmp_path / "b")]) == 0
    assert detections(capsys.readouterr().out) == detections(out)
    for args, message in (
        (["--weights", str(ir_file), "--backend", "torch"], "is OpenVINO IR: it runs with --backend openvino only"),
        (["--weights", str(ir_file), "--backend", "onnxruntime"], "is OpenVINO IR: it runs with --backend openvino only"),
        (["--weights", str(ir_file), "--compile"], "--compile needs the torch backend"),
        (["--weights", str(ir_file), "--device", "cuda"], "OpenVINO has no device 'cuda'"),
    ):
        assert cli.main(["detect", dog, *args, "--output", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1, err
    ir_file.with_suffix(".bin").unlink()
    with pytest.raises(darknet_py.InputError, match=r"tiny.bin is missing"):
        darknet_py.load(ir_file)


def test_without_openvino_one_line_says_how_to_install(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if OpenVINO were not installed
    dog = str(shared_path(IMAGES / "dog.jpg"))
    for command in (["detect", dog, "--backend", "openvino", "--output", str(tmp_path / "o")],
                    ["export", "-o", str(tmp_path / "m.xml")]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert err.strip() == "error: the openvino backend needs OpenVINO, which is not installed: pip install 'darknet-engine[openvino]'"
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.xml").exists()


def test_the_detector_ships_to_other_processes(tiny, tmp_path: Path) -> None:
    """What --ray sends to its actors (ONNX bytes, or IR as xml + bin bytes) rebuilds the same detector."""
    from darknet_py.distributed.ray_detect import model_recipe

    ir_file = tmp_path / "tiny.xml"
    export_openvino(tiny, ir_file, COCO_NAMES)
    pixels = np.random.default_rng(0).uniform(0, 1, (2, 3, tiny.height, tiny.width)).astype(np.float32)
    for detector in (OpenVinoDetector(_onnx_bytes(tiny)), darknet_py.load(ir_file)):
        recipe = pickle.loads(pickle.dumps(model_recipe(detector)))
        assert recipe.backend == "openvino" and recipe.portable.options == {"resize": "darknet", "precision": "f32"}
        rebuilt = recipe.build(threads=1)
        assert isinstance(rebuilt, OpenVinoDetector)
        for want, have in zip(detector.candidates(pixels), rebuilt.candidates(pixels)):
            assert torch.allclose(want, have, rtol=1e-5, atol=1e-5)
    assert model_recipe(darknet_py.load(ir_file)).digest() == recipe.digest()
