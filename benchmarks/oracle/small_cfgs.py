"""Small cfgs written for the comparisons with darknet of YOLOv1's [local] and of yolor's / yolov7's
`activation=silu` (tests/test_local_layer.py, benchmarks/grey_local_silu.py): yolov1.cfg's shape at 64 px, a stack
of [local] variants, a yolov7-shaped and a yolor-shaped network with silu everywhere; and the comparisons
themselves (synthetic weights from weights_tools, darknet's dump_layers)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import darknet_py
from benchmarks.oracle.cfg_parity import darknet_heads, layer_outputs, relative_error
from weights_tools.synth import synthesize

NET = "[net]\nbatch=1\nsubdivisions=1\nwidth={w}\nheight={h}\nchannels=3\n"


def conv(filters: int, size: int = 3, stride: int = 1, activation: str = "leaky", bn: bool = True) -> str:
    return (f"[convolutional]\n{'batch_normalize=1' if bn else ''}\nfilters={filters}\nsize={size}\nstride={stride}\n"
            f"pad=1\nactivation={activation}\n")


def local(filters: int, size: int, stride: int, pad: int | None, activation: str | None = "leaky") -> str:
    return (f"[local]\nsize={size}\nstride={stride}\n" + (f"pad={pad}\n" if pad is not None else "")
            + f"filters={filters}\n" + (f"activation={activation}\n" if activation else ""))


LOCAL_CFGS = {
    # yolov1.cfg's shape at 64 px: 7x7/2 conv, pools, 3x3 convs, [local] size=3 stride=1 pad=1, dropout, connected,
    # detection (side 3, num 2, classes 3: 3·3·(2·5 + 3) = 117 outputs)
    "yolov1-shaped": NET.format(w=64, h=64) + conv(16, 7, 2) + "[maxpool]\nsize=2\nstride=2\n" + conv(32)
    + "[maxpool]\nsize=2\nstride=2\n" + conv(16, 1) + conv(32) + local(24, 3, 1, 1) + "[dropout]\nprobability=.5\n"
    + "[connected]\noutput=117\nactivation=linear\n"
    + "[detection]\nclasses=3\ncoords=4\nrescore=1\nside=3\nnum=2\nsoftmax=0\nsqrt=1\n",
    # pad 0 with stride 2, pad 1 with stride 2 (default activation: logistic), a 1x1 one, on a 40x32 input
    "local variants": NET.format(w=40, h=32) + local(8, 2, 2, 0) + local(6, 3, 2, 1, None) + local(5, 1, 1, None, "linear"),
}



# -- activation=silu ---------------------------------------------------------------------------------------------
def silu_conv(filters: int, size: int = 1, stride: int = 1) -> str:
    return conv(filters, size, stride, "silu")


YOLO = ("[yolo]\nmask={mask}\nanchors=10,13, 16,30, 33,23, 30,61, 62,45, 59,119\nclasses=2\nnum=6\n"
        "scale_x_y={scale}\n{extra}")
SILU_CFGS = {
    # yolov7's pieces: an ELAN block (four branches concatenated), an MP block (maxpool beside a strided
    # convolution), SPP-style pools, logistic heads with new_coords=1 and scale_x_y=2, an upsampled second head
    "yolov7-shaped": NET.format(w=64, h=64) + silu_conv(8, 3) + silu_conv(16, 3, 2)
    + silu_conv(8) + "[route]\nlayers=-2\n" + silu_conv(8) + silu_conv(8, 3) + silu_conv(8, 3)
    + "[route]\nlayers=-1,-2,-3,-5\n" + silu_conv(16)
    + "[maxpool]\nsize=2\nstride=2\n" + silu_conv(8) + "[route]\nlayers=-3\n" + silu_conv(8) + silu_conv(8, 3, 2)
    + "[route]\nlayers=-1,-4\n"
    + silu_conv(8) + "[maxpool]\nsize=5\nstride=1\n" + "[route]\nlayers=-2\n" + "[maxpool]\nsize=9\nstride=1\n"
    + "[route]\nlayers=-1,-3,-4\n" + silu_conv(16)
    + conv(21, 1, 1, "logistic", bn=False) + YOLO.format(mask="3,4,5", scale=2.0, extra="new_coords=1\n")
    + "[route]\nlayers=-3\n" + silu_conv(8) + "[upsample]\nstride=2\n" + "[route]\nlayers=-1,8\n" + silu_conv(16, 3)
    + conv(21, 1, 1, "logistic", bn=False) + YOLO.format(mask="0,1,2", scale=2.0, extra="new_coords=1\n"),
    # yolor's yolov4_csp shape: a CSP stage (split, residual units with [shortcut], transition, concat), an SPP
    # pool, a linear head with scale_x_y
    "yolor-shaped": NET.format(w=64, h=64) + silu_conv(8, 3) + silu_conv(16, 3, 2)
    + silu_conv(8) + "[route]\nlayers=-2\n" + silu_conv(8) + silu_conv(8) + silu_conv(8, 3)
    + "[shortcut]\nfrom=-3\nactivation=linear\n" + silu_conv(8) + "[route]\nlayers=-1,-7\n" + silu_conv(16)
    + silu_conv(32, 3, 2) + silu_conv(16) + "[maxpool]\nsize=5\nstride=1\n" + "[route]\nlayers=-1,-2\n"
    + silu_conv(32, 3) + conv(21, 1, 1, "linear", bn=False) + YOLO.format(mask="0,1,2", scale=1.05, extra=""),
}




# -- the comparisons ------------------------------------------------------------------------------------------
def every_layer_errors(cfg: Path, weights: Path, darknet, work: Path) -> list[float]:
    """Each layer's relative error against darknet's dump_layers on one random input (the same layer types)."""
    model = darknet_py.load(cfg, weights, fast=False)
    pixels = np.random.default_rng(1).random((3, model.height, model.width), dtype=np.float32)
    dumps = darknet.layers(cfg, weights, pixels, work)
    outputs = layer_outputs(model, pixels)
    assert [d.type for d in dumps] == [info.type for info in model.infos]
    errors = []
    for ours, theirs in zip(outputs, dumps):
        assert ours.size == theirs.output.size, theirs.type
        errors.append(relative_error(ours, theirs.output))
    return errors


def local_comparison(name: str, darknet, work: Path) -> list[float]:
    """LOCAL_CFGS[name] with synthetic weights against darknet: each layer's relative error."""
    work.mkdir(parents=True, exist_ok=True)
    cfg, weights = work / "local.cfg", work / "local.weights"
    cfg.write_text(LOCAL_CFGS[name])
    synthesize(cfg, seed=2).save_weights(weights)
    return every_layer_errors(cfg, weights, darknet, work / "darknet")


@dataclass
class SiluComparison:
    """SILU_CFGS[name] loaded by darknet_py against darknet, per detection head."""

    warnings: list[str]  # the DarknetWarnings the load gave
    vs_swish: list[float]  # relative error against darknet reading the cfg with swish
    vs_as_written: list[float]  # ... and reading it as written (silu: ReLU in darknet)


def silu_comparison(name: str, darknet, work: Path) -> SiluComparison:
    work.mkdir(parents=True, exist_ok=True)
    cfg, swish, weights = work / f"{name}.cfg", work / f"{name}-swish.cfg", work / "synthetic.weights"
    cfg.write_text(SILU_CFGS[name])
    swish.write_text(SILU_CFGS[name].replace("activation=silu", "activation=swish"))  # darknet's name for it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        synthesize(cfg, seed=0).save_weights(weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = darknet_py.load(cfg, weights, fast=False)
    said = [str(w.message) for w in caught if issubclass(w.category, darknet_py.DarknetWarning)]
    pixels = np.random.default_rng(0).random((3, model.height, model.width), dtype=np.float32)
    with torch.inference_mode():
        ours = [h.reshape(-1).numpy() for h in model.forward_heads(torch.from_numpy(pixels)[None])]
    as_swish = darknet_heads(darknet.layers(swish, weights, pixels, work / "swish"))
    as_written = darknet_heads(darknet.layers(cfg, weights, pixels, work / "silu"))
    assert len(ours) == len(as_swish) == len(as_written)
    return SiluComparison(said, [relative_error(a, b) for a, b in zip(ours, as_swish)],
                          [relative_error(a, b) for a, b in zip(ours, as_written)])
