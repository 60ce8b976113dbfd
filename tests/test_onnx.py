"""ONNX export and the onnxruntime backend, checked against the torch backend (itself checked
against OpenCV 4.x in test_zoo_parity) and, for the exported files, against OpenCV 5."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.export import onnx as onnx_export
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.format.cfg import read_cfg
from darknet_py.format.names import COCO_NAMES, default_names
from darknet_py.pipeline.decode import decode
from tests.conftest import (
    CLIP_FRAMES,
    IMAGES,
    REPO,
    darknet_warnings,
    frame_count,
    official,
    photos,
    same_detections,
    shared_path,
    zoo_cfgs,
)

SMALL_SIDE = 320
TOLERANCE = 1e-4
OWN_SIZE_RUN_LIMIT = 640  # bigger own sizes (P5/P6/P7) are exported and run by benchmarks/onnx_zoo.py


def _side(cfg: Path) -> int:
    # P7's total stride is 128, so 320 cannot be built (its routes would not line up); it runs at
    # 256, a multiple of it (its synthetic weights are calibrated at 1024: weights_tools/synth.py).
    # At 384 both torch and onnxruntime sat up to 2e-4 from a float64 run of the same network (weights calibrated
    # at 256 then): fp32 noise of 350 layers, not an export error.
    return 256 if cfg.stem.startswith("cspx-p7") else SMALL_SIDE


def _load(cfg: Path, weights: Path, size=None) -> darknet_py.Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        return darknet_py.load(cfg, weights, size=size)


def _relative(ours: np.ndarray, ref: torch.Tensor) -> float:
    ref_np = ref.detach().numpy()
    assert ours.shape == ref_np.shape
    return float(np.abs(ours - ref_np).max() / np.abs(ref_np).max())


@pytest.mark.parametrize("cfg", zoo_cfgs(), ids=lambda p: p.stem)
def test_every_zoo_cfg_exports_and_matches_torch(cfg: Path, tmp_path: Path, synthetic_weights) -> None:
    weights = synthetic_weights(cfg)
    rng = np.random.default_rng(2)
    # at a small size: raw heads at batch 1 and 2 against the torch backend
    model = _load(cfg, weights, _side(cfg))
    small = tmp_path / "small.onnx"
    export_onnx(model, small, default_names(model.num_classes), ExportOptions("raw"))  # it runs the full ONNX check
    runtime = OnnxDetector(small)
    for batch in (1, 2):
        x = rng.uniform(0, 1, (batch, 3, model.height, model.width)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(x))
        got = runtime.run(x)
        assert len(got) == len(expected) == len(model.head_indices)
        for ours, ref in zip(got, expected):
            assert _relative(ours, ref) <= TOLERANCE
    # at its own size: the decoded-boxes export passes the checker and declares the right shapes
    net = read_cfg(cfg)[0]
    if max(net.get_int("width"), net.get_int("height")) > OWN_SIZE_RUN_LIMIT:
        return  # P5/P6/P7 at 896-1536: tracing alone is a minute; benchmarks/onnx_zoo.py covers them
    model = _load(cfg, weights)
    own = tmp_path / "own.onnx"
    proto = export_onnx(model, own, default_names(model.num_classes))
    candidates = sum(len(s.anchors) * model.infos[i].in_shapes[0].h * model.infos[i].in_shapes[0].w
                     for i, s in zip(model.head_indices, model.heads))
    declared = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert declared["boxes"][:2] == ["batch", candidates] and declared["scores"][1:] == [candidates, model.num_classes]
    runtime = OnnxDetector(own)
    for batch in (1, 2):
        x = rng.uniform(0, 1, (batch, 3, model.height, model.width)).astype(np.float32)
        with torch.no_grad():
            boxes, objectness, scores = decode(model(torch.from_numpy(x)), model.heads, model.width, model.height)
        got_boxes, got_scores, got_objectness = runtime.run(x)
        assert _relative(got_boxes, boxes) <= TOLERANCE
        assert _relative(got_objectness, objectness) <= TOLERANCE
        assert _relative(got_scores, scores) <= TOLERANCE


def test_export_refuses_a_graph_the_onnx_checker_fails(tmp_path: Path) -> None:
    """export_onnx passes every graph through onnx.checker's full check (checked_bytes), which the tests above lean
    on instead of checking each file again."""
    model = _load(official("yolov4-tiny")[0], None, 64)
    proto = onnx_export.build_onnx(model, COCO_NAMES)
    proto.graph.node[3].input[0] = "nowhere"  # a node reading a value no node makes
    with pytest.raises(darknet_py.InputError, match="fails the ONNX checker") as refused:
        onnx_export.checked_bytes(proto)
    assert "\n" not in str(refused.value)  # the checker's "==> Context" lines, on the error's one line


@pytest.fixture(scope="module", params=["yolov4-tiny", "yolov3-tiny"])
def official_exports(request, tmp_path_factory):
    cfg, weights = official(request.param)
    model = darknet_py.load(cfg, weights)
    folder = tmp_path_factory.mktemp(request.param)
    paths = {}
    for fmt in ("raw", "boxes", "nms"):
        paths[fmt] = folder / f"{fmt}.onnx"
        export_onnx(model, paths[fmt], COCO_NAMES, ExportOptions(output_format=fmt), str(weights))
    return model, paths


IN_GRAPH = {"nms_kind": "iou", "multi_label": False}  # what an --output-format nms graph does


def _assert_same_detections(expected, got) -> None:
    for want, have in zip(expected, got, strict=True):
        assert have.labels == want.labels
        assert np.abs(have.scores - want.scores).max(initial=0) <= 1e-3
        assert np.abs(have.boxes - want.boxes).max(initial=0) <= 0.5


@pytest.mark.parametrize("fmt", ["raw", "boxes", "nms"])
def test_onnxruntime_detections_equal_torch_on_every_photo(official_exports, fmt: str) -> None:
    model, paths = official_exports
    images = [str(p) for p in photos()]
    # The nms graph uses ONNX NonMaxSuppression (IoU) on each box's best class: compare with the torch
    # backend's IoU NMS, best class (detect's default for that graph, where darknet's multi-label cannot run).
    expected = model.detect(images, **IN_GRAPH if fmt == "nms" else {})
    got = darknet_py.load(paths[fmt]).detect(images)
    assert sum(len(d) for d in expected) > 20
    _assert_same_detections(expected, got)


@pytest.mark.parametrize("fmt", ["boxes", "nms"])
def test_classes_by_name_id_or_set_keep_the_same_boxes_on_every_output_format(official_exports, fmt: str) -> None:
    """classes=["dog", "car"], (2, 16) and {16, 2}: what the torch model keeps of those classes, on an export whose
    NMS is ours and on one whose NMS is in the graph (the `nms` format took only a list of ids: a name raised a
    TypeError, a set kept nothing). The graph picks each box's best class among all of them, then keeps the classes
    asked for; ours picks the best among those asked for."""
    model, paths = official_exports
    images = [str(p) for p in photos()]
    exported = darknet_py.load(paths[fmt])
    if fmt == "nms":
        expected = [d[np.isin(d.class_ids, (2, 16))] for d in model.detect(images, **IN_GRAPH)]
    else:
        expected = model.detect(images, classes=(2, 16))
    assert "dog" in {label for d in expected for label in d.labels} <= {"car", "dog"}
    for classes in (["dog", "car"], (2, 16), {16, 2}):
        _assert_same_detections(expected, exported.detect(images, classes=classes))
    for unknown in ("unicorn", "²", "80"):  # "²" passes str.isdigit() but not int()
        with pytest.raises(darknet_py.InputError, match=f"classes {unknown}: not a class of this model"):
            exported.detect(images[0], classes=[unknown])
    with pytest.raises(darknet_py.InputError, match="neither a class id nor a class name"):
        exported.detect(images[0], classes=[2.5])


def test_dynamic_size_export_is_right_at_every_stride_multiple(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    path = tmp_path / "dynamic.onnx"
    export_onnx(darknet_py.load(cfg, weights, size=320), path, COCO_NAMES, ExportOptions(dynamic_size=True))
    image = str(shared_path(IMAGES / "dog.jpg"))
    for side in (256, 416, (608, 352)):
        expected = darknet_py.load(cfg, weights, size=side).detect(image)
        got = darknet_py.load(path, size=side).detect(image)
        assert set(got[0].labels) >= {"dog", "bicycle"}
        _assert_same_detections(expected, got)
    with pytest.raises(darknet_py.InputError, match="not a multiple of the network stride 32"):
        darknet_py.load(path, size=300)
    static = tmp_path / "static.onnx"
    export_onnx(darknet_py.load(cfg, weights), static, COCO_NAMES)
    with pytest.raises(darknet_py.InputError, match="exported for 416x416; re-export with --dynamic-size"):
        darknet_py.load(static, size=320)


def test_fixed_batch_export_pads_the_last_chunk(tmp_path: Path) -> None:
    cfg, weights = official("yolov3-tiny")
    model = darknet_py.load(cfg, weights)
    images = [str(p) for p in photos()[:3]]
    for fmt in ("boxes", "nms"):
        path = tmp_path / f"{fmt}.onnx"
        export_onnx(model, path, COCO_NAMES, ExportOptions(output_format=fmt, batch=2))
        assert [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim] == [2, 3, 416, 416]
        _assert_same_detections(model.detect(images, **IN_GRAPH if fmt == "nms" else {}),
                                darknet_py.load(path).detect(images))


@pytest.mark.timeout(300)
def test_every_opset_taken_exports_each_format_and_detects_as_torch(tmp_path: Path) -> None:
    """`--output-format nms` at opsets 11 and 12 failed the checker (its Unsqueeze took its axes as an input, opset
    13's); the opsets the tool takes are 11..20, and each gives the same detections."""
    cfg, weights = official("yolov3-tiny")
    model = darknet_py.load(cfg, weights)
    images = [str(p) for p in photos()[:3]]
    for opset in (onnx_export.MIN_OPSET, 12, 13, onnx_export.MAX_OPSET):
        for fmt in ("boxes", "nms"):
            path = tmp_path / f"{fmt}-{opset}.onnx"
            export_onnx(model, path, COCO_NAMES, ExportOptions(output_format=fmt, opset=opset))
            assert onnx.load(str(path)).opset_import[0].version == opset
            _assert_same_detections(model.detect(images, **IN_GRAPH if fmt == "nms" else {}),
                                    darknet_py.load(path).detect(images))


def test_int8_onnx_below_opset_13_is_refused_before_calibrating(tmp_path: Path, capsys) -> None:
    """int8 weights are per output channel (DequantizeLinear's axis, opset 13): at --opset 11 the export calibrated on
    every image, then failed the checker."""
    cfg, weights = official("yolov3-tiny")
    code = cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "--int8", "--calibration", str(shared_path(IMAGES)),
                     "--opset", "11", "-o", str(tmp_path / "int8.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and err == ("error: --int8 to ONNX needs --opset 13 or later (its weights are int8 per output "
                                 "channel, which DequantizeLinear takes from opset 13); got --opset 11\n")
    assert not list(tmp_path.iterdir())


def test_an_nms_export_of_a_diou_cfg_says_its_nms_is_not_the_cfgs(tmp_path: Path) -> None:
    """yolov4-tiny's cfg asks for greedynms (DIoU); the nms graph runs IoU, and its detections then differ from
    darknet's (4 of 9 photos at --size 608 lost a box): said at export, not left to be found."""
    for name, warned in (("yolov4-tiny", True), ("yolov3-tiny", False)):
        cfg, weights = official(name)
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "--output-format", "nms", "-o",
                             str(tmp_path / f"{name}.onnx")]) == 0
        said = darknet_warnings(recorded)
        assert any(text.startswith("--output-format nms runs IoU NMS on each box's best class inside the graph; the "
                                   "cfg's nms_kind=greedynms (DIoU) is not in it") for text in said) == warned, said


def test_half_export_is_fp16_inside_and_close_to_fp32(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    path = tmp_path / "half.onnx"
    proto = export_onnx(model, path, COCO_NAMES, ExportOptions(half=True))
    conv_weights = {i.name: i.data_type for i in proto.graph.initializer if i.dims and len(i.dims) == 4}
    assert conv_weights and set(conv_weights.values()) == {onnx.TensorProto.FLOAT16}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # callers feed fp32
    assert path.stat().st_size < 0.6 * (4 * model.num_weights())
    # onnxruntime's CPU provider runs it too: the detections stay those of fp32
    image = str(shared_path(IMAGES / "dog.jpg"))
    expected, got = model.detect(image)[0], darknet_py.load(path).detect(image)[0]
    assert got.labels == expected.labels
    assert np.abs(got.scores - expected.scores).max() < 0.02 and np.abs(got.boxes - expected.boxes).max() < 3


def test_metadata_makes_the_file_self_contained(official_exports) -> None:
    model, paths = official_exports
    meta = json.loads({p.key: p.value for p in onnx.load(str(paths["boxes"])).metadata_props}["darknet_py"])
    assert meta["names"] == COCO_NAMES and meta["letterbox"] == model.letter_box
    assert meta["resize"] == model.resize == "darknet" and darknet_py.load(paths["boxes"]).resize == "darknet"
    assert (meta["width"], meta["height"], meta["output_format"]) == (model.width, model.height, "boxes")
    assert meta["cfg_sha256"] == hashlib.sha256(Path(model.cfg_path).read_bytes()).hexdigest()
    assert meta["weights_sha256"] == hashlib.sha256(Path(model.weights_path).read_bytes()).hexdigest()
    assert [tuple(map(tuple, h["anchors"])) for h in meta["heads"]] == [s.anchors for s in model.heads]


@pytest.mark.parametrize("fmt", ["raw", "boxes", "nms"])
def test_graph_is_standard_and_simplified(official_exports, fmt: str) -> None:
    graph = onnx.load(str(official_exports[1][fmt])).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}  # standard operators only
    assert not {n.op_type for n in graph.node} & {"Constant", "Identity", "BatchNormalization"}  # folded
    read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    assert all(any(o in read for o in n.output) for n in graph.node)  # no dead nodes
    assert all(t.name in read for t in graph.initializer)


def test_interrupted_export_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    target = tmp_path / "model.onnx"

    def half_written(path: str, data: bytes) -> None:
        Path(path).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt  # Ctrl-C halfway through writing

    monkeypatch.setattr(onnx_export, "_write", half_written)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(model, target, COCO_NAMES)
    assert list(tmp_path.iterdir()) == []


def test_bad_export_requests_are_clear(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    for opts, message in ((ExportOptions("heads"), "unknown output format 'heads'"), (ExportOptions(opset=9), "opset 9"),
                          (ExportOptions(batch=0), "batch must be at least 1")):
        with pytest.raises(darknet_py.InputError, match=message):
            export_onnx(model, tmp_path / "x.onnx", COCO_NAMES, opts)
    not_onnx = tmp_path / "fake.onnx"
    not_onnx.write_bytes(b"not a model")
    with pytest.raises(darknet_py.InputError, match="is not a loadable ONNX model"):
        darknet_py.load(not_onnx)
    foreign = tmp_path / "foreign.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(foreign))
    with pytest.raises(darknet_py.InputError, match="has no darknet_py metadata"):
        darknet_py.load(foreign)
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export_without_output_names_the_file_after_the_weights(tmp_path: Path, monkeypatch, capsys) -> None:
    """-o is optional: NAME.onnx in the working folder, NAME the weights' (a trained model's own name), with -fp16
    for --half; an existing one is refused as any output is."""
    cfg, weights = official("yolov4-tiny")
    trained = tmp_path / "yolov4-tiny-custom_best.weights"
    trained.symlink_to(weights)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(trained)]) == 0
    assert "wrote yolov4-tiny-custom_best.onnx (boxes, 416x416" in capsys.readouterr().err
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(trained), "--half"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["yolov4-tiny-custom_best-fp16.onnx",
                                                               "yolov4-tiny-custom_best.onnx"]
    same_detections(darknet_py.load(cfg, weights).detect(str(shared_path(IMAGES / "dog.jpg"))),
                    darknet_py.load("yolov4-tiny-custom_best.onnx").detect(str(shared_path(IMAGES / "dog.jpg"))))
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(trained)]) == 2
    assert "yolov4-tiny-custom_best.onnx exists; pass --exist-ok" in capsys.readouterr().err
    assert cli.main(["export", "--weights", "yolov4-tiny-custom_best.onnx"]) == 2  # what is wrong, not "it exists"
    assert ("error: export needs a Darknet cfg and weights, not an exported model (yolov4-tiny-custom_best.onnx)"
            in capsys.readouterr().err)


def test_cli_export_then_detect_images_folder_and_video(tmp_path: Path, clip: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    model_file = tmp_path / "tiny.onnx"
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(model_file)]) == 0
    assert "onnx checker passed" in capsys.readouterr().err
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "-o", str(model_file)]) == 2
    assert "exists; pass --exist-ok" in capsys.readouterr().err
    dog = str(shared_path(IMAGES / "dog.jpg"))
    assert cli.main(["detect", dog, "--weights", str(model_file), "--ext-output", "--output", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "dog: " in out and "bicycle: " in out and "truck: " in out
    assert (tmp_path / "a" / "dog.jpg").is_file()
    assert cli.main(["detect", str(IMAGES), "--cfg", str(cfg), "--weights", str(weights), "--backend", "onnxruntime",
                     "--batch", "3", "--output", str(tmp_path / "b")]) == 0
    assert len(list((tmp_path / "b").glob("*.jpg"))) == len(photos())
    assert cli.main(["detect", str(clip), "--weights", str(model_file), "--output", str(tmp_path / "c")]) == 0
    (video,) = (tmp_path / "c").glob("clip.*")  # H.264 .mp4 by default (darknet_py.media.video_writer)
    assert frame_count(video) == CLIP_FRAMES


def test_opencv5_runs_raw_and_boxes_exports(tmp_path: Path) -> None:
    """OpenCV 5 removed readNetFromDarknet: its users load our exports with readNetFromONNX."""
    venv = REPO / ".venv-opencv5"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "opencv-python>=5,<6", "numpy"], check=True)
    script = REPO / "tests" / "opencv5_check.py"
    subprocess.run([sys.executable, str(script), "export", str(tmp_path)], check=True, cwd=REPO)
    result = subprocess.run([str(python), str(script), "compare", str(tmp_path)], capture_output=True, text=True)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok") == 4
