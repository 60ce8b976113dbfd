"""The fast paths change speed, not results: folded batch norm and channels-last activations
against the plain modules; oneDNN's pre-packed convolutions against eager F.conv2d; int8 export against fp32 (detections on a photo, AP on the COCO subset)."""
from __future__ import annotations

import copy
import gc
import json
import warnings
import weakref
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.evaluate.coco import run_map
from darknet_py.model.layers import prepacked
from darknet_py.model.layers.conv import ConvLayer
from tests.conftest import COCO, IMAGES, ZOO_CFG, official, photos, shared_path
from weights_tools.synth import synthesize

ANNOTATIONS = COCO / "instances_val2017_subset.json"


def _heads(model, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4-csp"])
def test_fast_load_matches_plain_modules(name: str, synthetic_weights) -> None:
    cfg = shared_path(ZOO_CFG / f"{name}.cfg")
    weights = official(name)[1] if name == "yolov4-tiny" else synthetic_weights(cfg)
    fast = darknet_py.load(cfg, weights, size=256)
    plain = darknet_py.load(cfg, weights, size=256, fast=False)
    assert fast.channels_last and not plain.channels_last
    assert all(m.fold for m in fast.modules() if isinstance(m, ConvLayer))
    assert not any(m.fold for m in plain.modules() if isinstance(m, ConvLayer))
    x = torch.rand(2, 3, 256, 256)
    for a, b in zip(_heads(fast, x), _heads(plain, x)):
        assert a.is_contiguous()
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()
    assert np.array_equal(fast.weight_array(), plain.weight_array())  # the .weights layout is untouched


def test_folded_weights_follow_new_weights() -> None:
    cfg, weights = official("yolov4-tiny")
    fast = darknet_py.load(cfg, weights)
    x = torch.rand(1, 3, 416, 416)
    before = _heads(fast, x)
    plain = darknet_py.load(cfg, fast=False)  # random weights
    fast.load_weight_array(plain.weight_array())  # the fold must not serve the old weights
    for a, b, old in zip(_heads(fast, x), _heads(plain, x), before):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()
        assert (a - old).abs().max() > 1e-2


def test_fast_detections_equal_plain_on_a_photo() -> None:
    cfg, weights = official("yolov4-tiny")
    image = str(shared_path(IMAGES / "dog.jpg"))
    fast = darknet_py.load(cfg, weights).detect(image)[0]
    plain = darknet_py.load(cfg, weights, fast=False).detect(image)[0]
    assert fast.labels == plain.labels == ["dog", "truck", "bicycle", "car"]  # darknet detector test's list
    assert np.abs(fast.scores - plain.scores).max() < 1e-4 and np.abs(fast.boxes - plain.boxes).max() < 0.05


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> Path:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path_factory.mktemp("int8") / "tiny-int8.onnx"
    assert cli.main(["export", "--cfg", str(cfg), "--weights", str(weights), "--int8",
                     "--calibration", str(shared_path(IMAGES)), "-o", str(out)]) == 0
    return out


def test_int8_graph_is_quantised_except_the_output_convolutions(int8_model: Path) -> None:
    proto = onnx.load(int8_model)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    int8_weights = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4}
    assert len(int8_weights) == 21 - 2  # every convolution but the two in front of [yolo]
    heads = [n for n in proto.graph.node if n.op_type == "Conv" and n.name.startswith(("/model/layers.29/", "/model/layers.36/"))]
    float_inits = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    assert len(heads) == 2 and all(n.input[1] in float_inits for n in heads)
    meta = json.loads(next(p.value for p in proto.metadata_props if p.key == "darknet_py"))
    assert meta["int8"] == {"calibration_images": 9, "calibration_folder": "images", "method": "Percentile", "format": "QDQ"}
    assert int8_model.stat().st_size < 0.35 * 4 * darknet_py.load(*official("yolov4-tiny")).num_weights()


def test_int8_detections_stay_those_of_fp32(int8_model: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    image = str(shared_path(IMAGES / "dog.jpg"))
    expected = darknet_py.load(cfg, weights).detect(image)[0]
    got = darknet_py.load(int8_model).detect(image)[0]
    # int8 is lossy: scores move by up to ~0.13 on this photo, which can swap two close ranks
    assert sorted(got.labels) == sorted(expected.labels) == ["bicycle", "car", "dog", "truck"]  # detector test's
    for label, score, box in zip(expected.labels, expected.scores, expected.boxes):
        match = got.labels.index(label)
        assert abs(got.scores[match] - score) < 0.2 and _iou(got.boxes[match], box) > 0.9


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_int8_ap50_within_one_point_of_fp32(int8_model: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    images, annotations = shared_path(COCO / "images"), shared_path(ANNOTATIONS)
    fp32 = run_map(darknet_py.load(cfg, weights), images, annotations, progress=False).metrics
    int8 = run_map(darknet_py.load(int8_model), images, annotations, progress=False).metrics
    assert fp32["AP50"] > 0.40
    assert abs(int8["AP50"] - fp32["AP50"]) <= 0.01


def test_int8_requests_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    base = ["export", "--cfg", str(cfg), "--weights", str(weights)]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--int8"], "--int8 needs --calibration DIR"),
        (["--calibration", str(shared_path(IMAGES))], "--int8 needs --calibration DIR"),
        (["--int8", "--calibration", str(empty)], "no images"),
        (["--int8", "--calibration", str(tmp_path / "missing")], "must be a folder of images"),
        (["--int8", "--half", "--calibration", str(shared_path(IMAGES))], "--int8 and --half do not combine"),
    ]
    for extra, message in cases:
        out = tmp_path / "x.onnx"
        assert cli.main([*base, *extra, "-o", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


# -- the batch pipeline and the GPU runner's CPU-visible contract ------------------------
@pytest.mark.parametrize("letterbox", [False, True])
def test_threaded_batch_preprocessing_equals_one_image_at_a_time(letterbox: bool) -> None:
    from darknet_py.pipeline.detect import prepare_batch
    from darknet_py.pipeline.preprocess import prepare, read_image

    paths = [str(p) for p in photos()]
    batch = prepare_batch(paths, 416, 320, letterbox)
    for i, path in enumerate(paths):
        pixels, transform = prepare(read_image(path), 416, 320, letterbox)
        assert np.array_equal(batch.pixels[i], pixels) and batch.transforms[i] == transform
        assert batch.sources[i] == path
    # resize="opencv": the old three-pass conversion, for the exact float32 values darknet's loader gives
    image = read_image(paths[0])
    resized = cv2.resize(image, (416, 320), interpolation=cv2.INTER_LINEAR)
    if not letterbox:
        expected = np.ascontiguousarray(resized[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
        assert np.array_equal(prepare_batch(paths[:1], 416, 320, letterbox, "opencv").pixels[0], expected)


def test_batch_errors_name_the_first_bad_image_in_input_order(tmp_path: Path) -> None:
    from darknet_py.pipeline.detect import prepare_batch

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = [str(p) for p in photos()[:3]] + [str(tmp_path / "missing.jpg"), str(broken)]
    with pytest.raises(darknet_py.InputError, match="image not found: .*missing.jpg"):
        prepare_batch(paths, 416, 416, False)


def test_model_copies_and_moves_drop_the_runner_and_detect_still_works() -> None:
    import copy

    model = darknet_py.load(*official("yolov4-tiny"))
    runner = model.runner()
    assert model.runner() is runner and not runner.uses_graphs  # CPU: eager
    assert copy.deepcopy(model)._runner is None
    model.to(torch.float32)
    assert model._runner is None
    assert model.detect(str(shared_path(IMAGES / "dog.jpg")))[0].labels == ["dog", "truck", "bicycle", "car"]


def test_decode_with_prepared_anchors_equals_decode_without() -> None:
    from darknet_py.pipeline.decode import decode, head_constants

    model = darknet_py.load(official("yolov4-tiny")[0], size=256)
    heads = _heads(model, torch.rand(2, 3, 256, 256))
    given = decode(heads, model.heads, 256, 256, [head_constants(s, torch.device("cpu")) for s in model.heads])
    for a, b in zip(given, decode(heads, model.heads, 256, 256)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("flags, message", [
    (["--compile", "--backend", "onnxruntime"], "--compile needs the torch backend"),
    (["--half"], "--half needs the torch backend on a CUDA device"),
])
def test_options_that_cannot_apply_are_one_clear_error(flags: list[str], message: str, tmp_path: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    code = cli.main(["detect", str(shared_path(IMAGES / "dog.jpg")), "--cfg", str(cfg), "--weights", str(weights),
                     "--output", str(tmp_path / "out"), *flags])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_compiled_network_that_disagrees_with_eager_is_dropped_with_a_warning() -> None:
    model = darknet_py.load(official("yolov4-tiny")[0], size=128)
    runner = model.runner()
    runner._forward = lambda x: [h * 1.5 for h in model(x)]  # a miscompiled network
    x = torch.rand(1, 3, 128, 128)
    with pytest.warns(darknet_py.DarknetWarning, match=r"torch.compile changed the network's outputs by .* on input shape \(1, 3, 128, 128\)"):
        runner._check_compiled(x)
    assert not runner.compiled
    runner._forward = lambda x: [h * (1 + 1e-5) for h in model(x)]  # float reordering: kept
    runner._check_compiled(torch.rand(2, 3, 128, 128))
    assert runner.compiled


def test_compiled_on_cpu_gives_the_eager_detections_and_follows_new_weights() -> None:
    cfg, weights = official("yolov4-tiny")
    image = str(shared_path(IMAGES / "dog.jpg"))
    eager = darknet_py.load(cfg, weights)
    compiled = darknet_py.load(cfg, weights).accelerate(compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", darknet_py.DarknetWarning)  # the check must pass, not fall back
        got, want = compiled.detect(image)[0], eager.detect(image)[0]
    assert compiled.runner().compiled and got.labels == want.labels == ["dog", "truck", "bicycle", "car"]
    assert np.abs(got.boxes - want.boxes).max() < 1e-3 and np.abs(got.scores - want.scores).max() < 1e-5
    other = darknet_py.load(cfg, fast=False)  # random weights: frozen constants must not survive
    compiled.load_weight_array(other.weight_array())
    x = np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)
    for a, b in zip(compiled.runner()(x), other.runner()(x)):
        assert (a - b).abs().max() <= 1e-4 * max(1.0, b.abs().max().item())


def test_compiled_mish_network_on_cpu_matches_eager(synthetic_weights) -> None:
    from darknet_py.model.layers.activations import _mish_one_exp

    x = torch.cat([torch.linspace(-60, 60, 100_001), torch.tensor([-1e4, 1e4, 20.0, 19.999])])
    assert torch.allclose(_mish_one_exp(x), torch.nn.functional.mish(x), rtol=2e-6, atol=1e-7)
    assert torch.allclose(_mish_one_exp(x.double()), x.double() * torch.tanh(torch.nn.functional.softplus(x.double(), threshold=20)),
                          rtol=1e-6, atol=1e-7)
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    eager = darknet_py.load(cfg, synthetic_weights(cfg), size=256)
    compiled = darknet_py.load(cfg, synthetic_weights(cfg), size=256).accelerate(compile=True)
    pixels = torch.rand(1, 3, 256, 256)
    with warnings.catch_warnings():
        warnings.simplefilter("error", darknet_py.DarknetWarning)
        got = compiled.runner().network(pixels)
    assert compiled.runner().compiled
    for a, b in zip(got, _heads(eager, pixels)):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()


@pytest.fixture
def plain_convolutions(monkeypatch: pytest.MonkeyPatch):
    """A switch for the pre-packed oneDNN convolutions: call it with False for eager F.conv2d."""
    def switch(on: bool) -> None:
        monkeypatch.setattr(prepacked, "enabled", on)
    return switch


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4-csp"])
def test_prepacked_convolutions_give_eagers_outputs(name: str, synthetic_weights, plain_convolutions) -> None:
    """Leaky fused as the kernel's post-op (yolov4-tiny), mish after it (yolov4-csp): eager's numbers, and new
    weights are packed again rather than served stale."""
    assert prepacked.available()
    cfg = shared_path(ZOO_CFG / f"{name}.cfg")
    weights = official(name)[1] if name == "yolov4-tiny" else synthetic_weights(cfg)
    model = darknet_py.load(cfg, weights, size=256)
    x = torch.rand(2, 3, 256, 256)
    for _ in range(2):  # the second time with other weights, in place
        plain_convolutions(False)
        expected = _heads(model, x)
        plain_convolutions(True)
        got = _heads(model, x)
        for a, b in zip(got, expected, strict=True):
            assert (a - b).abs().max() <= 1e-5 * b.abs().max()
        model.load_weight_array(darknet_py.load(cfg, fast=False, size=256).weight_array())
    with torch.enable_grad():  # autograd takes the plain path, so gradients flow
        model(x.requires_grad_())[0].sum().backward()
    assert x.grad is not None and x.grad.abs().max() > 0


def test_prepacked_layers_keep_no_folded_copy_and_follow_replaced_tensors() -> None:
    """A pre-packed layer holds its darknet tensors and the packed kernel only (no folded copy: 1.1 GB on P7), is
    packed again when a tensor is replaced or given other memory, and does not keep the replaced tensor alive."""
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    x = torch.rand(1, 3, 416, 416)
    before = _heads(model, x)
    convs = [m for m in model.modules() if isinstance(m, ConvLayer)]
    assert all(m in prepacked._packed for m in convs)
    assert all(m.folded_weight is None for m in convs)
    last = model.layers[model.head_indices[0] - 1]  # linear, no batch norm: its own kernel is packed
    assert last.bn is None and last.act.name == "linear"
    first = model.layers[0]  # batch-normalised: its folded kernel was packed
    first.conv.weight.data = first.conv.weight.data * 1.5  # other memory, same tensor, same version counter
    replaced = weakref.ref(last.conv.weight)
    with torch.no_grad():
        last.conv.weight = torch.nn.Parameter(last.conv.weight * 0.5)
    gc.collect()
    assert replaced() is None
    plain = darknet_py.load(cfg, fast=False)
    plain.load_weight_array(model.weight_array())
    after = _heads(model, x)
    for a, b, old in zip(after, _heads(plain, x), before, strict=True):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()
    assert (after[0] - before[0]).abs().max() > 1e-2


def test_a_model_that_ran_prepacked_still_pickles_and_copies() -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    image = str(shared_path(IMAGES / "dog.jpg"))
    first = model.detect(image)[0]
    from ray import cloudpickle  # how Ray ships the module to its actors

    for twin in (cloudpickle.loads(cloudpickle.dumps(model)), copy.deepcopy(model)):
        again = twin.detect(image)[0]
        assert again.labels == first.labels and np.array_equal(again.scores, first.scores)


def test_prepacked_grouped_dilated_strided_and_depthwise_convolutions(tmp_path: Path, plain_convolutions) -> None:
    """The geometry the zoo's cfgs do not all have (the 87 darknet cfgs are compared with fast=False)."""
    leaky = "batch_normalize=1\nactivation=leaky\npad=1\n"
    cfg = tmp_path / "geometry.cfg"
    cfg.write_text("[net]\nwidth=64\nheight=48\nchannels=3\n"
                   f"[convolutional]\nfilters=16\nsize=3\nstride=2\n{leaky}"
                   f"[convolutional]\nfilters=16\nsize=3\ngroups=4\n{leaky}"
                   f"[convolutional]\nfilters=16\nsize=3\ngroups=16\n{leaky}"  # depthwise
                   f"[convolutional]\nfilters=24\nsize=3\ndilation=2\n{leaky}"
                   f"[convolutional]\nfilters=8\nsize=1\nstride=1\n{leaky}"
                   "[convolutional]\nfilters=10\nsize=1\nactivation=relu\n")
    weights = tmp_path / "geometry.weights"
    synthesize(cfg, seed=3).save_weights(weights)
    model = darknet_py.load(cfg, weights)
    x = torch.rand(3, 3, 48, 64)
    plain_convolutions(False)
    expected = _heads(model, x)
    plain_convolutions(True)
    for a, b in zip(_heads(model, x), expected, strict=True):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-5 * b.abs().max()
    assert sum(m in prepacked._packed for m in model.modules() if isinstance(m, ConvLayer)) == 6  # all took the path
