"""Deterministic random weights with exactly the layout a cfg needs.

Kernels are drawn with variance 1/fan_in; batch-norm statistics are then calibrated layer
by layer on a batch of random images, so values stay O(1) through deep CSP/residual stacks.
The calibration size leaves every 3x3 convolution a map of DEEPEST_MAP² positions at least: at
256 px the stride-128 layers of yolov4-p7 see 2x2 maps, mostly zero padding, and statistics taken
there were far off at 1536 px (activations to 1162, every head's logistic saturated at 1.0, so
fp16 rounding alone moved the heads by up to 100%; benchmarks/fp16_range.py). Calibrated at
1024 px those stay near 10 and fp16 rounding moves the heads by 0.5%, as on the other models.

The network must also be well conditioned, or float32 rounding alone makes two exact
implementations disagree (a plain random init of yolov4-p6 amplifies it ~10^4x). Three
choices keep the end-to-end gain near 1–10 while every layer still shapes the output:
- calibrate on a batch: deep layers are only 4x4 at 256 px, one image underestimates variance;
- store variance + mean² (+0.01): normalising never divides a large mean by a tiny spread;
- BN scales in [0.3, 0.7] with biases ~N(0, 0.5): signal comes from biases, not amplification.
Statistics are rounded to float16 precision so tiny platform differences in the
calibration pass do not change the file.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from darknet_py.backends.torch import Darknet
from darknet_py.core.errors import DarknetError
from darknet_py.format.cfg import read_cfg
from darknet_py.model.layers import mish_kernel
from darknet_py.model.layers.connected import ConnectedLayer
from darknet_py.model.layers.conv import ConvLayer
from darknet_py.model.layers.local import LocalLayer

CALIBRATION_SIDE = 256
CALIBRATION_BATCH = 8
DEEPEST_MAP = 8  # the fewest positions per side a 3x3 convolution's map has during calibration


def _calibration_model(cfg: str) -> tuple[Darknet, int]:
    """The network at the size weights are calibrated at, and the batch: 256 px keeps big cfgs fast; a cfg
    made for less (a 28 px CIFAR net, a 19×19 go board) keeps its own size, and so does one whose
    [connected] weights fit only its own size; a cfg so deep that a 3x3 convolution's map would be smaller
    than DEEPEST_MAP at 256 px is calibrated larger, on fewer images."""
    sections = read_cfg(cfg)
    own = (sections[0].get_int("width", 0), sections[0].get_int("height", 0))
    try:
        model = Darknet(sections, own if 0 < min(own) < CALIBRATION_SIDE else CALIBRATION_SIDE, init_weights=False)
    except DarknetError:
        return Darknet(sections, init_weights=False), CALIBRATION_BATCH
    if (model.width, model.height) != own and any(getattr(m, "fixed_size", False) for m in model.modules()):
        return Darknet(sections, init_weights=False), CALIBRATION_BATCH
    if (model.width, model.height) == (CALIBRATION_SIDE, CALIBRATION_SIDE):
        smallest = _smallest_map(model)
        if smallest < DEEPEST_MAP:
            scale = -(-DEEPEST_MAP // smallest)
            return Darknet(sections, CALIBRATION_SIDE * scale, init_weights=False), max(1, CALIBRATION_BATCH // scale**2)
    return model, CALIBRATION_BATCH


def _smallest_map(model: Darknet) -> int:
    """The smallest side of a map a 3x3 (or larger) convolution produces, from one forward pass of zeros."""
    sides: list[int] = []
    hooks = [layer.conv.register_forward_hook(lambda _m, _i, out: sides.append(min(out.shape[-2:])))
             for layer in model.modules() if isinstance(layer, ConvLayer) and max(layer.conv.kernel_size) > 1]
    try:
        with torch.no_grad():
            model(torch.zeros(1, model.channels, model.height, model.width))
    finally:
        for hook in hooks:
            hook.remove()
        model.reset_state()
    return min(sides, default=DEEPEST_MAP)


def synthesize(cfg: str | os.PathLike[str], seed: int = 0) -> Darknet:
    """Build the cfg with deterministic random weights (see module doc)."""
    model, batch = _calibration_model(os.fspath(cfg))
    model.eval()
    rng = np.random.default_rng(seed)
    # every layer that owns weights, in network order, sub-layers of recurrent layers included
    layers = [m for m in model.modules() if isinstance(m, (ConvLayer, ConnectedLayer)) and not getattr(m, "shares_weights", False)]
    with torch.no_grad():
        for local in (m for m in model.modules() if isinstance(m, LocalLayer)):  # YOLOv1's [local]: no batch norm
            fan_in = local.weight.shape[-1]  # one position's kernel: c·size²
            local.weight.copy_(torch.from_numpy(_drawn(rng, local.weight.shape, fan_in)))
            local.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, local.bias.shape).astype(np.float32)))
        for layer in layers:
            core = _core(layer)
            weight = core.weight
            fan_in = weight[0].numel()
            weight.copy_(torch.from_numpy(_drawn(rng, weight.shape, fan_in)))
            if layer.bn is None:
                core.bias.copy_(torch.from_numpy(rng.normal(0, 0.1, weight.shape[0]).astype(np.float32)))
            else:
                n = weight.shape[0]
                layer.bn.weight.copy_(torch.from_numpy(rng.uniform(0.3, 0.7, n).astype(np.float32)))
                layer.bn.bias.copy_(torch.from_numpy(rng.normal(0, 0.5, n).astype(np.float32)))
    hooks = [_core(layer).register_forward_hook(_calibrate_bn(layer.bn)) for layer in layers if layer.bn is not None]
    try:
        image = torch.from_numpy(rng.uniform(0, 1, (batch, model.channels, model.height, model.width)).astype(np.float32))
        # torch's mish, not the C kernel's (3e-7 apart): the same weights whether or not the kernel was built
        with torch.no_grad(), mish_kernel.declined():
            # a recurrent layer's state is zero on the first pass; the second calibrates it on a live state
            for _ in range(2 if model.stateful else 1):
                model(image)
    finally:
        for hook in hooks:
            hook.remove()
        model.reset_state()
    return model


def _drawn(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """Standard normal draws scaled to variance 1/fan_in, divided in place: a second array of P7's 64 M weights cost
    half a second of page faults."""
    drawn = rng.standard_normal(shape, dtype=np.float32)
    drawn /= np.float32(np.sqrt(fan_in))
    return drawn


def _core(layer: nn.Module) -> nn.Module:
    """The convolution or matrix product whose output the layer's batch norm normalises."""
    return layer.conv if isinstance(layer, ConvLayer) else layer.linear


def _calibrate_bn(bn: nn.Module):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        dims = [d for d in range(output.dim()) if d != 1]  # every axis but the channels
        mean = output.mean(dims)
        var = output.var(dims, unbiased=False) + mean * mean + 1e-2
        bn.running_mean.copy_(mean.half().float())
        bn.running_var.copy_(var.half().float())

    return hook


def write_synthetic(cfg: str | os.PathLike[str], out: str | os.PathLike[str], seed: int = 0) -> int:
    """Write synthetic weights for `cfg` to `out`; returns the number of floats."""
    model = synthesize(cfg, seed)
    model.save_weights(out)
    return model.num_weights()
