"""Recurrent layers: [rnn], [gru], [lstm] (fully connected) and [crnn], [conv_lstm] (convolutional).

Each is a small network of [connected] or [convolutional] sub-layers plus a state that darknet keeps
from one forward pass to the next (network_predict never clears it): one call is one time step, as
darknet runs them at inference (time_steps is 1 there). The state starts at zero, and again after
reset_state(); darknet_py resets it between sources (Darknet.sequence). Because the state changes at
every call, these layers never run from a captured CUDA graph or compiled code, and ONNX cannot hold
them. The arithmetic follows each layer's CPU forward in src/*_layer.c; the .weights file holds the
sub-layers in the order darknet's load_weights reads them.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...format.cfg import Section
from .activations import Activation, activation_from
from .connected import connected
from .conv import ConvLayer, conv_bflops, trainable_params
from .registry import BuildContext, Built, Description, Layer, LayerInfo, Shape, register, reject_enabled, require_positive

_UNSUPPORTED = {"xnor": "XNOR binary convolution inside a recurrent layer"}


class Recurrent(Layer):
    """A layer whose output depends on its previous calls through `self._state`."""

    state_note = "keeps a recurrent state from frame to frame"

    def __init__(self) -> None:
        super().__init__()
        self._state: tuple[Tensor, ...] | None = None

    def reset_state(self) -> None:
        self._state = None

    def _previous(self, like: Tensor, *shapes: tuple[int, ...]) -> tuple[Tensor, ...]:
        """The state from the last call, or zeros: at the start, after a reset, or when the batch size,
        device, dtype or inference mode changed (a state from another kind of call cannot continue)."""
        state = self._state
        if state is None or state[0].shape[0] != like.shape[0] or state[0].device != like.device \
                or state[0].dtype != like.dtype or state[0].is_inference() != torch.is_inference_mode_enabled():
            return tuple(like.new_zeros(like.shape[0], *shape) for shape in shapes)
        return state

    def _keep(self, *state: Tensor) -> None:
        self._state = tuple(s.detach() for s in state)

    def darknet_tensors(self) -> list[Tensor]:
        return [t for layer in self.weight_layers() for t in layer.darknet_tensors()]

    def weight_layers(self) -> list[nn.Module]:
        """The sub-layers in .weights order."""
        raise NotImplementedError


# -- fully connected ----------------------------------------------------------------------------
class RNN(Recurrent):
    """state = [state +] input_layer(x) + self_layer(state); output = output_layer(state)."""

    def __init__(self, inputs: int, hidden: int, outputs: int, activation: str, self_activation: str,
                 batch_normalize: bool, shortcut: bool) -> None:
        super().__init__()
        self.hidden, self.shortcut = hidden, shortcut
        self.input_layer = connected(inputs, hidden, batch_normalize, activation)
        self.self_layer = connected(hidden, hidden, batch_normalize, self_activation)
        self.output_layer = connected(hidden, outputs, batch_normalize, activation)

    def forward(self, x: Tensor) -> Tensor:
        (state,) = self._previous(x, (self.hidden,))
        new = self.input_layer.flat(x) + self.self_layer.flat(state)
        if self.shortcut:
            new = state + new
        self._keep(new)
        return self.output_layer(new)

    def weight_layers(self) -> list[nn.Module]:
        return [self.input_layer, self.self_layer, self.output_layer]


class GRU(Recurrent):
    """z = σ(Uz·x + Wz·s), r = σ(Ur·x + Wr·s), h = σ(Uh·x + Wh·(r⊙s)), s' = z⊙s + (1−z)⊙h.
    (darknet's CPU GRU squashes h with the logistic function: gru_layer.c is built without USET.)"""

    def __init__(self, inputs: int, outputs: int, batch_normalize: bool) -> None:
        super().__init__()
        self.outputs = outputs
        self.input_z, self.input_r, self.input_h = (connected(inputs, outputs, batch_normalize, "linear") for _ in range(3))
        self.state_z, self.state_r, self.state_h = (connected(outputs, outputs, batch_normalize, "linear") for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        (state,) = self._previous(x, (self.outputs,))
        z = torch.sigmoid(self.input_z.flat(x) + self.state_z.flat(state))
        r = torch.sigmoid(self.input_r.flat(x) + self.state_r.flat(state))
        h = torch.sigmoid(self.input_h.flat(x) + self.state_h.flat(state * r))
        out = z * state + (1 - z) * h
        self._keep(out)
        return out.reshape(*out.shape, 1, 1)

    def weight_layers(self) -> list[nn.Module]:
        return [self.input_z, self.input_r, self.input_h, self.state_z, self.state_r, self.state_h]


def _lstm_step(f: Tensor, i: Tensor, g: Tensor, o: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
    """Gate pre-activations and the old cell → (new cell, new output), as darknet orders it."""
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return cell, torch.sigmoid(o) * torch.tanh(cell)


class LSTM(Recurrent):
    """Gates f, i, g, o from W·h (previous output) + U·x; c' = σ(f)c + σ(i)tanh(g), h' = σ(o)tanh(c')."""

    def __init__(self, inputs: int, outputs: int, batch_normalize: bool) -> None:
        super().__init__()
        self.outputs = outputs
        self.wf, self.wi, self.wg, self.wo = (connected(outputs, outputs, batch_normalize, "linear") for _ in range(4))
        self.uf, self.ui, self.ug, self.uo = (connected(inputs, outputs, batch_normalize, "linear") for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        h, c = self._previous(x, (self.outputs,), (self.outputs,))
        gates = [w.flat(h) + u.flat(x) for w, u in ((self.wf, self.uf), (self.wi, self.ui), (self.wg, self.ug), (self.wo, self.uo))]
        c, h = _lstm_step(*gates, c)
        self._keep(h, c)
        return h.reshape(*h.shape, 1, 1)

    def weight_layers(self) -> list[nn.Module]:
        return [self.wf, self.wi, self.wg, self.wo, self.uf, self.ui, self.ug, self.uo]


def _flat_inputs(ctx: BuildContext) -> int:
    prev = ctx.prev_shape
    return prev.c * prev.h * prev.w


def describe_recurrent(layer: Recurrent, info: LayerInfo) -> Description:
    """Sub-layers' parameters; BFLOPs as darknet counts them: its convolutions (crnn, conv_lstm, plus
    9 or, with peepholes, 12 element-wise operations per output value for conv_lstm), none for rnn/gru/lstm."""
    subs = layer.weight_layers()
    convs = [m for m in subs if isinstance(m, ConvLayer)]
    out = info.out_shape
    bflops = sum(conv_bflops(m, out) for m in convs)
    if isinstance(layer, ConvLSTM):
        bflops += (12 if layer.peephole else 9) * out.c * out.h * out.w / 1e9
    detail = f"{out.c:5d}  {len(subs)} {'convolutions' if convs else 'connected'}, recurrent"
    params = sum(trainable_params(m.conv.weight if isinstance(m, ConvLayer) else m.linear.weight, m.bn is not None)
                 for m in subs)
    return Description(detail, bflops, params)


@register("rnn", describe=describe_recurrent)
def build_rnn(s: Section, ctx: BuildContext) -> Built:
    outputs, hidden = s.get_int("output", 1), s.get_int("hidden", 1)
    require_positive(s, output=outputs, hidden=hidden)
    activation = activation_from(s, "logistic").name
    logistic = s.get_int("logistic", 0)
    self_activation = {1: "logistic", 2: "loggy"}.get(logistic, activation)
    module = RNN(_flat_inputs(ctx), hidden, outputs, activation, self_activation, _bn(s), s.get_int("shortcut", 0) != 0)
    return Built(module, Shape(outputs, 1, 1), (ctx.prev,))


@register("gru", describe=describe_recurrent)
def build_gru(s: Section, ctx: BuildContext) -> Built:
    outputs = s.get_int("output", 1)
    require_positive(s, output=outputs)
    return Built(GRU(_flat_inputs(ctx), outputs, _bn(s)), Shape(outputs, 1, 1), (ctx.prev,))


@register("lstm", describe=describe_recurrent)
def build_lstm(s: Section, ctx: BuildContext) -> Built:
    outputs = s.get_int("output", 1)
    require_positive(s, output=outputs)
    return Built(LSTM(_flat_inputs(ctx), outputs, _bn(s)), Shape(outputs, 1, 1), (ctx.prev,))


def _bn(s: Section) -> bool:
    return s.get_int("batch_normalize", 0) != 0


# -- convolutional ------------------------------------------------------------------------------
class _ConvGeometry:
    """The convolution options [crnn] and [conv_lstm] share; every sub-layer uses the same ones."""

    def __init__(self, s: Section, ctx: BuildContext, default_activation: str) -> None:
        reject_enabled(s, _UNSUPPORTED)
        self.size = s.get_int("size", 3)
        self.stride = s.get_int("stride", 1)
        self.dilation = s.get_int("dilation", 1)
        self.padding = self.size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)
        self.groups = max(1, s.get_int("groups", 1))
        self.batch_normalize = _bn(s)
        self.activation = activation_from(s, default_activation).name
        require_positive(s, size=self.size, stride=self.stride, dilation=self.dilation)
        c, h, w = ctx.prev_shape
        self.in_channels, self.h, self.w = c, h, w
        out_h, out_w = ((n + 2 * self.padding - self.size) // self.stride + 1 for n in (h, w))
        span = self.dilation * (self.size - 1) + 1
        dilated = tuple((n + 2 * self.padding * self.dilation - span) // self.stride + 1 for n in (h, w))
        if (out_h, out_w) != (h, w) or dilated != (h, w):
            # the state (input size) feeds the same convolutions again: darknet needs them size-preserving
            raise s.error(f"needs convolutions that keep the {w}x{h} size (stride=1, pad=1), "
                          f"but size={self.size} stride={self.stride} padding={self.padding} dilation={self.dilation} "
                          f"give {out_w}x{out_h}")

    def conv(self, s: Section, in_channels: int, filters: int) -> ConvLayer:
        if in_channels % self.groups or filters % self.groups:
            raise s.error(f"groups={self.groups} must divide the channels ({in_channels}) and filters ({filters})", "groups")
        return ConvLayer(in_channels, filters, self.size, (self.stride, self.stride), self.padding, self.dilation,
                         self.groups, self.batch_normalize, Activation(self.activation))


class CRNN(Recurrent):
    """[rnn] with convolutions: the state is a hidden × H × W map."""

    def __init__(self, g: _ConvGeometry, s: Section, hidden: int, outputs: int, shortcut: bool) -> None:
        super().__init__()
        self.state_shape, self.shortcut = (hidden, g.h, g.w), shortcut
        self.input_layer = g.conv(s, g.in_channels, hidden)
        self.self_layer = g.conv(s, hidden, hidden)
        self.output_layer = g.conv(s, hidden, outputs)

    def forward(self, x: Tensor) -> Tensor:
        (state,) = self._previous(x, self.state_shape)
        new = self.input_layer(x) + self.self_layer(state)
        if self.shortcut:
            new = state + new
        self._keep(new)
        return self.output_layer(new)

    def weight_layers(self) -> list[nn.Module]:
        return [self.input_layer, self.self_layer, self.output_layer]


class ConvLSTM(Recurrent):
    """[lstm] with convolutions (W on the previous output, U on the input, and with peephole=1 V on
    the cell); the cell is clipped to ±state_constrain and non-finite values replaced, as darknet does."""

    def __init__(self, g: _ConvGeometry, s: Section, outputs: int, peephole: bool, state_constrain: float) -> None:
        super().__init__()
        self.state_shape, self.peephole, self.state_constrain = (outputs, g.h, g.w), peephole, state_constrain
        if peephole:
            self.vf, self.vi, self.vo = (g.conv(s, outputs, outputs) for _ in range(3))
        self.wf, self.wi, self.wg, self.wo = (g.conv(s, outputs, outputs) for _ in range(4))
        self.uf, self.ui, self.ug, self.uo = (g.conv(s, g.in_channels, outputs) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        h, c = self._previous(x, self.state_shape, self.state_shape)
        f = self.wf(h) + self.uf(x)
        i = self.wi(h) + self.ui(x)
        if self.peephole:
            f, i = f + self.vf(c), i + self.vi(c)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(self.wg(h) + self.ug(x))
        o = self.wo(h) + self.uo(x)
        if self.peephole:
            o = o + self.vo(c)
        h = torch.sigmoid(o) * torch.tanh(c)
        if self.state_constrain:
            c = torch.clamp(c, -self.state_constrain, self.state_constrain)
        c, h = _finite(c), _finite(h)
        self._keep(h, c)
        return h

    def weight_layers(self) -> list[nn.Module]:
        peep = [self.vf, self.vi, self.vo] if self.peephole else []
        return peep + [self.wf, self.wi, self.wg, self.wo, self.uf, self.ui, self.ug, self.uo]


def _finite(t: Tensor) -> Tensor:
    """darknet's fix_nan_and_inf_cpu: a NaN or ±inf at flat index i becomes 1/i."""
    index = torch.arange(t.numel(), device=t.device, dtype=t.dtype).reshape(t.shape)
    return torch.where(torch.isfinite(t), t, 1 / index)


@register("crnn", describe=describe_recurrent)
def build_crnn(s: Section, ctx: BuildContext) -> Built:
    g = _ConvGeometry(s, ctx, "logistic")
    outputs, hidden = s.get_int("output", 1), s.get_int("hidden", 1)
    require_positive(s, output=outputs, hidden=hidden)
    module = CRNN(g, s, hidden, outputs, s.get_int("shortcut", 0) != 0)
    return Built(module, Shape(outputs, g.h, g.w), (ctx.prev,))


STATE_CONSTRAIN_PER_STEP = 32  # darknet's default state_constrain is time_steps × 32; inference runs one step


@register("conv_lstm", describe=describe_recurrent)
def build_conv_lstm(s: Section, ctx: BuildContext) -> Built:
    if s.get_int("bottleneck", 0):
        raise s.error("bottleneck=1 is implemented only in darknet's CUDA code (its CPU forward has no such path); "
                      "darknet_py follows the CPU forward", "bottleneck")
    g = _ConvGeometry(s, ctx, "linear")
    outputs = s.get_int("output", 1)
    require_positive(s, output=outputs)
    module = ConvLSTM(g, s, outputs, s.get_int("peephole", 0) != 0,
                      s.get_int("state_constrain", STATE_CONSTRAIN_PER_STEP))
    return Built(module, Shape(outputs, g.h, g.w), (ctx.prev,))
