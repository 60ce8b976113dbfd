"""[connected]: a fully connected layer over the flat C·H·W input (src/connected_layer.c).

darknet computes x·Wᵀ, then (with batch_normalize) normalises with the rolling statistics and
scales, then adds the biases, then the activation; the output is 1×1×outputs. Its weights fix the
size of the layer before it, so a cfg with [connected] runs at one input size only. Weight file
order: biases, weights (outputs × inputs, row-major), then scales, rolling mean, rolling variance.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...format.cfg import Section
from .activations import Activation, activation_from
from .conv import BN_EPSILON, MAX_LAYER_WEIGHTS, trainable_params
from .registry import BuildContext, Built, Description, Layer, LayerInfo, Shape, register, require_positive, weights_module


class ConnectedLayer(Layer):
    fixed_size = True  # its weights need one input size (ONNX exports refuse --dynamic-size)

    def __init__(self, inputs: int, outputs: int, batch_normalize: bool, activation: nn.Module) -> None:
        super().__init__()
        self.linear = weights_module(nn.Linear, inputs, outputs, bias=not batch_normalize)
        self.bn = nn.BatchNorm1d(outputs, eps=BN_EPSILON) if batch_normalize else None
        self.act = activation

    def flat(self, x: Tensor) -> Tensor:
        """(N, inputs) or any (N, …) holding `inputs` values per image → (N, outputs)."""
        x = self.linear(x.reshape(x.shape[0], -1))
        if self.bn is not None:
            bn = self.bn  # inference statistics always, whatever train()/eval() says
            x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return self.act(x)

    def forward(self, x: Tensor) -> Tensor:
        y = self.flat(x)
        return y.reshape(*y.shape, 1, 1)

    def darknet_tensors(self) -> list[Tensor]:
        if self.bn is None:
            return [self.linear.bias, self.linear.weight]
        return [self.bn.bias, self.linear.weight, self.bn.weight, self.bn.running_mean, self.bn.running_var]


def connected(inputs: int, outputs: int, batch_normalize: bool, activation: str | Activation) -> ConnectedLayer:
    act = activation if isinstance(activation, nn.Module) else Activation(activation)
    return ConnectedLayer(inputs, outputs, batch_normalize, act)


def describe_connected(layer: ConnectedLayer, info: LayerInfo) -> Description:
    linear = layer.linear
    detail = f"{linear.out_features:5d}  {linear.in_features} -> {linear.out_features} {layer.act.name}"
    return Description(detail, 0.0, trainable_params(linear.weight, layer.bn is not None))  # darknet: no BFLOPs


@register("connected", describe=describe_connected)
def build_connected(s: Section, ctx: BuildContext) -> Built:
    prev = ctx.prev_shape
    inputs = prev.c * prev.h * prev.w
    outputs = s.get_int("output", 1)
    require_positive(s, output=outputs)
    if inputs * outputs > MAX_LAYER_WEIGHTS:
        raise s.error(f"{inputs:,} inputs × {outputs:,} outputs is beyond any real network "
                      f"(limit {MAX_LAYER_WEIGHTS:,} weights); check the input size", "output")
    module = ConnectedLayer(inputs, outputs, s.get_int("batch_normalize", 0) != 0, activation_from(s, "logistic"))
    return Built(module, Shape(outputs, 1, 1), (ctx.prev,))
