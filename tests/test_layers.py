"""Every registered section type, in small cfgs written for the test.

Each layer's output is checked against OpenCV 4.x's Darknet importer where OpenCV
implements that option the darknet way, and against a literal port of darknet's C loop
(tests/darknet_ref.py) where OpenCV lacks it or differs from darknet.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py.model.layers import supported_types
from tests import darknet_ref as ref
from tests.conftest import ZOO_CFG, shared_path
from tests.oracle import oracle_epsilon
from weights_tools.synth import synthesize

# An 8-channel BN+leaky conv feeds every layer under test (16x16 input).
HEAD = """[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

"""

# Layers OpenCV computes the darknet way (keys whose defaults differ are spelled out).
OPENCV_CASES = {
    "maxpool size2 stride1": "[maxpool]\nsize=2\nstride=1\n",
    "maxpool size3 stride2 padding2": "[maxpool]\nsize=3\nstride=2\npadding=2\n",
    "max alias": "[max]\nsize=2\nstride=2\n",
    "avgpool": "[avgpool]\n",
    "avg alias": "[avg]\n",
    "upsample": "[upsample]\nstride=2\n",
    "reorg": "[reorg]\nstride=2\n",
    "dropout": "[dropout]\nprobability=.5\n",
    "crop": "[crop]\ncrop_height=10\ncrop_width=12\n",
    "conv groups": "[convolutional]\nfilters=8\nsize=3\ngroups=4\npad=1\nactivation=linear\n",
    "conv depthwise bn": "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\ngroups=8\npad=1\nactivation=mish\n",
    "conv stride2 swish": "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=swish\n",
    "conv alias logistic": "[conv]\nfilters=4\nsize=1\nactivation=logistic\n",
    "conv padding=": "[convolutional]\nfilters=4\nsize=3\npadding=0\nactivation=linear\n",
    "conv tanh": "[convolutional]\nfilters=4\nsize=1\nactivation=tanh\n",
    "conv relu": "[convolutional]\nfilters=4\nsize=1\nactivation=relu\n",
    "route": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n\n[route]\nlayers=-1,-2\n",
    "route groups single": "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n",
    "shortcut": "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=1\nactivation=leaky\n\n[shortcut]\nfrom=-2\nactivation=linear\n",
    "shortcut fewer from-channels": "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n\n[convolutional]\nfilters=8\nsize=1\nactivation=linear\n\n[shortcut]\nfrom=-2\nactivation=leaky\n",
    "shortcut more from-channels": "[convolutional]\nfilters=12\nsize=1\nactivation=linear\n\n[convolutional]\nfilters=8\nsize=1\nactivation=linear\n\n[shortcut]\nfrom=-2\nactivation=linear\n",
    "sam": "[convolutional]\nfilters=8\nsize=1\nactivation=logistic\n\n[sam]\nfrom=-2\n",
    "scale_channels": "[avgpool]\n\n[convolutional]\nfilters=8\nsize=1\nactivation=logistic\n\n[scale_channels]\nfrom=-3\n",
}


def _model(tmp_path: Path, body: str) -> tuple[darknet_py.Darknet, Path, Path]:
    cfg = tmp_path / "test.cfg"
    cfg.write_text(HEAD + body)
    weights = tmp_path / "test.weights"
    synthesize(cfg, seed=3).save_weights(weights)
    model = darknet_py.load(cfg, weights)
    oracle_epsilon(model)
    return model, cfg, weights


def _image(channels: int = 3, side: int = 16) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (1, channels, side, side)).astype(np.float32)


def _run_last(model: darknet_py.Darknet, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Inputs and output of the last layer."""
    seen: dict[str, object] = {}
    hook = model.layers[-1].register_forward_hook(lambda _m, inputs, out: seen.update(inputs=inputs, out=out))
    with torch.no_grad():
        model(torch.from_numpy(x))
    hook.remove()
    return [t.numpy() for t in seen["inputs"]], seen["out"].numpy()


def _rel(ours: np.ndarray, expected: np.ndarray) -> float:
    assert ours.shape == expected.shape, f"shape {ours.shape} vs {expected.shape}"
    return float(np.abs(ours - expected).max() / max(np.abs(expected).max(), 1e-12))


@pytest.mark.parametrize("name", sorted(OPENCV_CASES))
def test_layer_matches_opencv(tmp_path: Path, name: str) -> None:
    model, cfg, weights = _model(tmp_path, OPENCV_CASES[name])
    x = _image()
    _, ours = _run_last(model, x)
    # OpenCV does not know darknet's section aliases: give it the canonical names.
    text = cfg.read_text()
    for alias, canonical in {"[avg]": "[avgpool]", "[max]": "[maxpool]", "[conv]": "[convolutional]"}.items():
        text = text.replace(alias + "\n", canonical + "\n")
    opencv_cfg = tmp_path / "opencv.cfg"
    opencv_cfg.write_text(text)
    net = cv2.dnn.readNetFromDarknet(str(opencv_cfg), str(weights))
    net.setInput(x)
    assert _rel(ours, net.forward()) < 1e-5


REFERENCE_CASES = {
    "maxpool stride_x/stride_y": ("[maxpool]\nsize=3\nstride_x=2\nstride_y=1\n", lambda i: ref.maxpool(i[0], 3, 2, 1, 2)),
    "maxpool odd padding": ("[maxpool]\nsize=3\nstride=2\npadding=1\n", lambda i: ref.maxpool(i[0], 3, 2, 2, 1)),
    "maxpool_depth": ("[maxpool]\nmaxpool_depth=1\nout_channels=3\n", lambda i: ref.maxpool_depth(i[0], 3)),
    "local_avgpool": ("[local_avgpool]\nsize=3\nstride=2\n", lambda i: ref.maxpool(i[0], 3, 2, 2, 2, avg=True)),
    "local_avg alias": ("[local_avg]\nsize=2\nstride=1\n", lambda i: ref.maxpool(i[0], 2, 1, 1, 1, avg=True)),
    "upsample negative stride": ("[upsample]\nstride=-2\nscale=0.5\n", lambda i: ref.downsample(i[0], 2, 0.5)),
    "reorg3d": ("[reorg3d]\nstride=2\n", lambda i: ref.reorg(i[0], 8, 8, 32, 2).reshape(1, 32, 8, 8)),
    "route groups, several inputs": (
        "[convolutional]\nfilters=4\nsize=1\nactivation=linear\n\n[route]\nlayers=-1,-2\ngroups=2\ngroup_id=1\n",
        lambda i: ref.route(i, 2, 1),
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_CASES))
def test_layer_matches_darknet_loops(tmp_path: Path, name: str) -> None:
    body, reference = REFERENCE_CASES[name]
    model, _, _ = _model(tmp_path, body)
    inputs, ours = _run_last(model, _image())
    assert _rel(ours, reference(inputs)) < 1e-6


def test_dilated_convolution_pads_by_pad_times_dilation(tmp_path: Path) -> None:
    # OpenCV ignores dilation; darknet's im2col_cpu_ext and cuDNN pad by pad*dilation.
    model, _, _ = _model(tmp_path, "[convolutional]\nfilters=4\nsize=3\ndilation=2\npad=1\nactivation=linear\n")
    inputs, ours = _run_last(model, _image())
    conv = model.layers[-1].conv
    expected = ref.dilated_conv(inputs[0], conv.weight.detach().numpy(), conv.bias.detach().numpy(), pad=1, dilation=2)
    assert _rel(ours, expected) < 1e-5


def test_conv_stride_x_differs_from_stride_y(tmp_path: Path) -> None:
    model, _, _ = _model(tmp_path, "[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=1\npad=1\nactivation=linear\n")
    inputs, ours = _run_last(model, _image())
    conv = model.layers[-1].conv
    full = torch.nn.functional.conv2d(torch.from_numpy(inputs[0]), conv.weight, conv.bias, 1, 1).detach().numpy()
    assert _rel(ours, full[:, :, :, ::2]) < 1e-6


@pytest.mark.parametrize("activation", sorted(ref.ACTIVATIONS))
def test_activation_formulas(tmp_path: Path, activation: str) -> None:
    model, _, _ = _model(tmp_path, f"[convolutional]\nfilters=4\nsize=1\nactivation={activation}\n")
    inputs, ours = _run_last(model, _image() * 8 - 4)
    conv = model.layers[-1].conv
    pre = torch.nn.functional.conv2d(torch.from_numpy(inputs[0]), conv.weight, conv.bias).detach().numpy().astype(np.float64)
    assert _rel(ours, ref.ACTIVATIONS[activation](pre)) < 1e-5


# Checked against the real darknet: detection heads and the layers around them in tests/test_heads.py,
# classifier and YOLOv1 layers in tests/test_new_layers.py, recurrent layers step by step in
# tests/test_recurrent.py.
COVERED_BY_DARKNET = {"yolo", "region", "Gaussian_yolo", "contrastive", "softmax", "cost", "connected", "detection",
                      "rnn", "gru", "lstm", "crnn", "conv_lstm",
                      "local"}  # tests/test_local_layer.py: against the real darknet (OpenCV has no [local])


def test_every_registered_type_is_covered() -> None:
    bodies = "\n".join(list(OPENCV_CASES.values()) + [b for b, _ in REFERENCE_CASES.values()])
    covered = {t for t in supported_types() if f"[{t}]" in bodies or t in COVERED_BY_DARKNET}
    assert covered == set(supported_types())


def test_default_activation_is_logistic_and_default_maxpool_stride_is_one(tmp_path: Path) -> None:
    # Both defaults differ in OpenCV; darknet's parse_convolutional / parse_maxpool decide.
    model, _, _ = _model(tmp_path, "[convolutional]\nfilters=4\nsize=1\n\n[maxpool]\nsize=2\n")
    assert model.layers[1].act.name == "logistic"
    assert model.infos[2].out_shape == (4, 16, 16)


@pytest.mark.parametrize("size, stride, padding", [(2, 2, 1), (3, 3, 2), (4, 4, 3), (3, 2, 2), (3, 2, 1), (2, 1, 1), (5, 1, 4), (13, 1, 12)])
@pytest.mark.parametrize("side", [15, 16, 17])
def test_maxpool_placement_equals_darknet_at_odd_and_even_sizes(size: int, stride: int, padding: int, side: int) -> None:
    # MaxPool picks implicit padding or ceil_mode where exact; each choice must still be darknet's loop.
    from darknet_py.model.layers.pooling import MaxPool

    x = _image(2, side)
    ours = MaxPool(size, (stride, stride), padding)(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours, ref.maxpool(x, size, stride, stride, padding))


def test_printing_a_network_names_each_activation() -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-tiny.cfg")
    printed = repr(darknet_py.load(cfg, size=128))
    assert "Activation(leaky)" in printed and "Activation(linear)" in printed
