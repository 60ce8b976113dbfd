"""[softmax] (groups, temperature, tree), [connected] (with batch norm), [cost], [detection], share_index
and [shortcut] between maps of different sizes, each in a small cfg written here, every layer's
output against the real darknet; and `darknet-py info` BFLOPs against the total darknet prints."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from benchmarks.oracle.cfg_parity import layer_outputs, relative_error, sized_copy
from darknet_py.model.info import summary
from weights_tools.synth import synthesize

TOLERANCE = 1e-4
NET = "[net]\nwidth={w}\nheight={h}\nchannels=3\n"
CONV = "[convolutional]\nbatch_normalize=1\nfilters={f}\nsize=3\nstride={s}\npad=1\nactivation=leaky\n"
TREE = "a -1\nb -1\nc -1\na1 0\na2 0\nb1 1\nb2 1\nb3 1\nc1 2\nc2 2\n"  # 10 classes in 4 sibling groups

CASES = {
    "softmax groups and temperature": NET.format(w=8, h=8) + CONV.format(f=4, s=2)
    + "[softmax]\ngroups=8\ntemperature=3\n",
    "softmax over a map": NET.format(w=6, h=6) + CONV.format(f=2, s=1) + "[softmax]\n[cost]\n",
    "softmax tree": NET.format(w=8, h=8) + CONV.format(f=10, s=2) + "[avgpool]\n[softmax]\ntree={tree}\n",
    "connected with batch norm": NET.format(w=10, h=10) + CONV.format(f=4, s=2)
    + "[connected]\nbatch_normalize=1\noutput=30\nactivation=relu\n[dropout]\nprobability=.5\n"
    + "[connected]\noutput=12\nactivation=linear\n[softmax]\ngroups=2\n[cost]\ntype=sse\n",
    "yolov1 detection": NET.format(w=16, h=16) + CONV.format(f=4, s=2)
    + "[connected]\noutput={yolo1}\nactivation=linear\n[detection]\nclasses=3\ncoords=4\nnum=2\nside=2\nsoftmax=1\n",
    "share_index at another dilation": NET.format(w=16, h=16) + CONV.format(f=8, s=1)
    + "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
    + "[convolutional]\nshare_index=1\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\ndilation=2\nactivation=linear\n"
    + "[convolutional]\nshare_index=-2\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\nstride=2\nactivation=relu\n",
    "shortcut across channels": NET.format(w=8, h=8) + CONV.format(f=4, s=1) + CONV.format(f=6, s=1)
    + "[shortcut]\nfrom=-2\nactivation=leaky\n" + CONV.format(f=3, s=1) + "[shortcut]\nfrom=-2\n",
    "shortcut across sizes": NET.format(w=16, h=16) + CONV.format(f=4, s=1) + CONV.format(f=8, s=2)
    + "[shortcut]\nfrom=-2\n" + "[shortcut]\nfrom=0\nactivation=logistic\n",
}


def _cfg(tmp_path: Path, case: str) -> Path:
    tree = tmp_path / "small.tree"
    tree.write_text(TREE)
    cfg = tmp_path / "case.cfg"
    cfg.write_text(CASES[case].format(tree=tree, yolo1=2 * 2 * ((1 + 4) * 2 + 3)))
    return cfg


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_layer_equals_darknet(case: str, tmp_path: Path, darknet_ref, darknet_steps) -> None:
    cfg = _cfg(tmp_path, case)
    weights = tmp_path / "case.weights"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        synthesize(cfg, seed=3).save_weights(weights)
        model = darknet_py.load(cfg, weights, fast=False)
    pixels = np.random.default_rng(1).random((3, model.height, model.width), dtype=np.float32)
    if "sizes" in case:  # darknet's reference build stops at the assert; its release build runs it
        dumps = darknet_steps.steps(cfg, weights, pixels[None], tmp_path / "darknet")[0]
    else:
        dumps = darknet_ref.layers(cfg, weights, pixels, tmp_path / "darknet")
    outputs = layer_outputs(model, pixels)
    for index, (ours, theirs) in enumerate(zip(outputs, dumps)):
        if theirs.type == "cost":
            continue  # darknet leaves a [cost] layer's output unwritten at inference
        assert ours.size == theirs.output.size, f"layer {index} {theirs.type}: {ours.size} values, darknet {theirs.output.size}"
        assert relative_error(ours, theirs.output) <= TOLERANCE, f"layer {index} {theirs.type}"


def test_shared_weights_are_in_the_file_once(tmp_path: Path) -> None:
    model = darknet_py.Darknet(darknet_py.read_cfg(_cfg(tmp_path, "share_index at another dilation")))
    assert [info.n_weights for info in model.infos] == [8 * 4 + 8 * 27, 8 * 4 + 8 * 72, 0, 0]
    assert model.layers[2].conv.weight is model.layers[1].conv.weight
    assert model.layers[3].conv.weight is model.layers[1].conv.weight and model.layers[3].bn is model.layers[1].bn
    assert summary(model)["params"] == (8 * 2 + 8 * 27) + (8 * 2 + 8 * 72)


@pytest.mark.parametrize("text, message", [
    (CONV.format(f=8, s=1) + "[convolutional]\nshare_index=5\nfilters=8\nsize=3\npad=1\n", "earlier layer"),
    (CONV.format(f=8, s=1) + "[convolutional]\nshare_index=0\nfilters=4\nsize=3\npad=1\n", "must match"),
    (CONV.format(f=8, s=1) + "[maxpool]\nsize=2\nstride=2\n[convolutional]\nshare_index=1\nfilters=8\nsize=3\npad=1\n",
     "not a \\[convolutional\\]"),
    (CONV.format(f=10, s=2) + "[softmax]\ngroups=3\n", "does not divide"),
    (CONV.format(f=8, s=2) + "[connected]\noutput=20\n[detection]\nclasses=3\ncoords=4\nnum=2\nside=2\n", "need side"),
])
def test_cfg_mistakes_are_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(darknet_py.CfgError, match=message):
        darknet_py.Darknet(darknet_py.parse_text(NET.format(w=8, h=8) + text))


@pytest.mark.parametrize("name, size", [
    ("alexnet.cfg", None),  # [connected]: 0 BFLOPs in darknet
    ("efficientnet_b0.cfg", 128),  # shortcuts, scale_channels, grouped convolutions
    ("resnet152_trident.cfg", 128),  # shared convolutions at dilations 1-3
    ("yolov3-tiny_occlusion_track.cfg", 224),  # [crnn]
])
def test_info_bflops_equal_the_total_darknet_prints(name: str, size: int | None, tmp_path: Path, darknet_ref,
                                                   darknet_steps) -> None:
    cfg = sized_copy(darknet_ref.folder / "cfg" / name, tmp_path, size)
    printed = darknet_steps.printout(cfg)
    total = float(re.search(r"Total BFLOPS\s+([0-9.]+)", printed)[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        model = darknet_py.Darknet(darknet_py.read_cfg(cfg))
    assert round(summary(model)["bflops"], 3) == pytest.approx(total, abs=0.0011)


def test_info_bflops_of_a_conv_lstm_equal_darknets(tmp_path: Path, darknet_steps) -> None:
    cfg = tmp_path / "lstm.cfg"
    cfg.write_text(NET.format(w=64, h=64) + CONV.format(f=32, s=1)
                   + "[conv_lstm]\nsize=3\npad=1\noutput=64\npeephole=1\n[conv_lstm]\nsize=3\npad=1\noutput=64\n")
    total = float(re.search(r"Total BFLOPS\s+([0-9.]+)", darknet_steps.printout(cfg))[1])
    assert round(summary(darknet_py.Darknet(darknet_py.read_cfg(cfg)))["bflops"], 3) == pytest.approx(total, abs=0.0011)
