"""Network: a torch.nn.Module built from cfg Sections, mirroring darknet's layer list.

The graph is fixed at build time: every layer knows which earlier outputs it reads,
the forward pass keeps only outputs that a later layer reads (and drops them after
their last use), and there is no Python control flow on tensor values, so the module
traces to ONNX and runs under torch.compile / CUDA graphs unchanged.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..core.errors import CfgError, DarknetWarning, InputError, WeightsError
from ..format.cfg import Section, read_cfg, unused_options
from ..format.weights import WeightsFile, WeightsHeader, write_weights
from .layers import BuildContext, Shape, builder_for
from .layers.activations import silu_notices
from .layers.combine import STRIDE_RULE
from .layers.conv import ConvLayer
from .layers.head import DetectionHead, HeadSpec
from .layers.recurrent import Recurrent
from .layers.registry import MAX_LAYER_ELEMENTS, NETWORK_INPUT, Layer, LayerInfo, weights_follow
from .layers.softmax import TreeSoftmax

MAX_INPUT_SIDE = 16384  # larger inputs would exhaust memory long before they help


def size_pair(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """`size` as load() takes it (N, (W, H) or None) as (W, H), or None."""
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    pair = tuple(int(v) for v in size)
    if len(pair) != 2:
        raise InputError(f"size must be N or (width, height), got {size!r}")
    return pair  # type: ignore[return-value]


class Network(nn.Module):
    """A darknet network. `forward` returns the input of every detection layer ([yolo], [region],
    [Gaussian_yolo]), in cfg order, or for a classifier its output (see forward_heads)."""

    def __init__(self, sections: list[Section], size: int | Sequence[int] | None = None, *,
                 init_weights: bool = True) -> None:
        """Build the layers of `sections` (read_cfg's list, [net] first).

        Args:
            sections (list[Section]): the cfg's sections.
            size (int or (int, int), optional): input size N or (W, H) instead of the cfg's.
            init_weights (bool): False leaves the weights uninitialised, for a caller that writes every one
                of them next (load_weights, weights_tools' synthesize): torch's random init of P7's 276 M floats
                was about half of its 2.8 s load() (benchmarks/results/load_before.json). Default: True.
        """
        super().__init__()
        if not sections:
            raise CfgError("empty cfg: no [net] section")
        self.net = sections[0]
        self.cfg_path = self.net.path
        _refuse_text_networks(self.net)
        width = self.net.get_int("width", 0)
        height = self.net.get_int("height", 0)
        channels = self.net.get_int("channels", 3)
        override = size_pair(size)
        if override:
            width, height = override
        for name, value in (("width", width), ("height", height)):
            if not 1 <= value <= MAX_INPUT_SIDE:
                raise InputError(f"{self.net.where(name)}: network {name} must be 1..{MAX_INPUT_SIDE}, found {value}")
        if channels < 1:
            raise CfgError(f"{self.net.where('channels')}: channels must be at least 1, found {channels}")
        self.width, self.height, self.channels = width, height, channels
        self.letter_box = self.net.get_int("letter_box", 0) != 0
        self.resize = "darknet"  # detect()'s image resize: darknet's own, or "opencv" (darknet_py.pipeline.preprocess)
        self.weights_header = WeightsHeader()
        self.weights_path: str | None = None  # recorded in exports (sha256)
        self.channels_last = False

        layer_sections = sections[1:]
        if not layer_sections:
            raise CfgError(f"{self.net.where()}: the cfg has a [net] section but no layers")
        input_shape = Shape(channels, height, width)
        shapes: list[Shape] = []
        infos: list[LayerInfo] = []
        modules: list[nn.Module] = []
        notices: dict[str, list[str]] = {}
        for section in layer_sections:
            ctx = BuildContext(section.index, shapes, input_shape, self.net, notices, modules)
            try:
                with nullcontext() if init_weights else weights_follow():
                    built = builder_for(section)(section, ctx)
            except CfgError as error:  # maps that do not line up at a size given in place of the cfg's
                hint = _stride_hint(sections, width, height) if override and STRIDE_RULE in str(error) else ""
                if not hint:
                    raise
                raise CfgError(f"{error}; {hint}") from None
            if not isinstance(built.module, Layer):  # the layer contract (darknet_py.model.layers.registry)
                raise TypeError(f"the builder of [{section.type}] returned a {type(built.module).__name__}, not a Layer")
            elements = built.out_shape.c * built.out_shape.h * built.out_shape.w
            if elements > MAX_LAYER_ELEMENTS:
                raise section.error(f"its output {built.out_shape} holds {elements:,} values per image, beyond any real "
                                    f"network (limit {MAX_LAYER_ELEMENTS:,}); check the sizes and strides")
            if min(built.out_shape) < 1:
                raise section.error(f"produces an empty output {built.out_shape}; the input {width}x{height} is too small")
            n_weights = sum(t.numel() for t in _darknet_tensors(built.module))
            in_shapes = tuple(ctx.shape_of(i) for i in built.sources)
            infos.append(LayerInfo(section.index, section.type, section.line, built.sources, in_shapes, built.out_shape, n_weights))
            shapes.append(built.out_shape)
            modules.append(built.module)
        for index, module in enumerate(modules):  # layers whose behaviour depends on their readers
            module.after_build(index, infos)
        for message in silu_notices(layer_sections):  # where darknet computes ReLU instead: said once per load
            notices.setdefault("darknet-activation", []).append(message)
        for section in layer_sections:  # a misspelt option is no error in darknet, only its `Unused field` line
            notices.setdefault("darknet-unused", []).extend(unused_options(section))
        notices = {kind: messages for kind, messages in notices.items() if messages}
        for messages in notices.values():
            more = f" (and {len(messages) - 1} more like it)" if len(messages) > 1 else ""
            warnings.warn(messages[0] + more, DarknetWarning, stacklevel=3)
        self.layers = nn.ModuleList(modules)
        self.infos = infos
        self.sections = layer_sections
        self._in_sequence = False  # inside sequence(): recurrent state carries from call to call
        self._plan_memory()

    # -- graph ------------------------------------------------------------------
    def _plan_memory(self) -> None:
        n = len(self.infos)
        last_use = [-1] * n
        for info in self.infos:
            for src in info.sources:
                if src != NETWORK_INPUT and src != info.index - 1:
                    last_use[src] = max(last_use[src], info.index)
        self._sources = [info.sources for info in self.infos]
        self._keep = [last_use[i] >= 0 for i in range(n)]
        release: list[list[int]] = [[] for _ in range(n)]
        for j, i in enumerate(last_use):
            if i >= 0:
                release[i].append(j)
        self._release = release
        self.head_indices = [i for i, m in enumerate(self.layers) if isinstance(m, DetectionHead)]
        # the specs are frozen and the layers fixed once built: read per detect() call several times, kept once
        self._head_specs = tuple(self.layers[i].spec for i in self.head_indices)
        # What forward returns: the input of every detection layer, or for a cfg without one (a classifier)
        # the output darknet's get_network_output reports: the last layer that is not [cost].
        detection = [i for i, m in enumerate(self.layers)
                     if isinstance(m, DetectionHead) or m.detection_layer]
        self.output_indices = detection or [next((i for i in range(n - 1, -1, -1) if self.infos[i].type != "cost"), n - 1)]
        self.is_classifier = not detection
        self._is_head = [i in detection for i in range(n)]
        self._is_output = [self.is_classifier and i in self.output_indices for i in range(n)]
        self.recurrent = [i for i, m in enumerate(self.layers) if isinstance(m, Recurrent)]

    @property
    def heads(self) -> list[HeadSpec]:
        """The detection layers' specs ([yolo], [region], [Gaussian_yolo]) in cfg order: what the decoders read."""
        return list(self._head_specs)

    @property
    def num_classes(self) -> int:
        """Classes of the first detection head, or for a classifier the values it outputs."""
        if self.is_classifier:
            c, h, w = self.infos[self.output_indices[0]].out_shape
            return c * h * w
        return self.heads[0].classes if self.head_indices else 0

    @property
    def hierarchy(self) -> tuple[int, ...] | None:
        """darknet's net.hierarchy: the class tree (each class's parent) of the last [softmax], if it has tree=."""
        last = next((m for m, info in zip(reversed(self.layers), reversed(self.infos)) if info.type == "softmax"), None)
        return last.tree.parents if isinstance(last, TreeSoftmax) else None

    @property
    def device(self) -> torch.device:
        """The device of the network's parameters."""
        return next(self.parameters()).device

    # -- inference speed ----------------------------------------------------------
    def fold_batchnorm(self, enabled: bool = True) -> "Network":
        """Convolutions with batch norm run as one convolution with folded weights (darknet's
        inference arithmetic; one pass over memory instead of two). The .weights layout is kept."""
        for layer in self.modules():  # recurrent layers hold convolutions too
            if isinstance(layer, ConvLayer):
                layer.fold = enabled
        return self

    def use_channels_last(self, enabled: bool = True) -> "Network":
        """NHWC activations: oneDNN's and cuDNN's fast convolution layout (inputs are converted)."""
        self.channels_last = enabled
        return self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)

    # -- forward ----------------------------------------------------------------
    def forward(self, x: Tensor) -> list[Tensor]:
        """One forward pass; see forward_heads."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        saved: dict[int, Tensor] = {}
        heads: list[Tensor] = []
        prev = x
        for i, layer in enumerate(self.layers):
            inputs = [prev if src == i - 1 else saved[src] for src in self._sources[i]]
            if self._is_head[i]:
                heads.append(inputs[0].contiguous())  # NCHW for decoding whatever the layout inside
            prev = layer(*inputs)
            if self._keep[i]:
                saved[i] = prev
            for j in self._release[i]:
                del saved[j]
            if self._is_output[i]:
                heads.append(prev.contiguous())
        return heads

    def forward_heads(self, x: Tensor) -> list[Tensor]:
        """The network's outputs, as the decoders read them.

        Recurrent layers step once per call and keep their state (darknet's network_predict).

        Args:
            x (Tensor[N, C, H, W]): float pixels in [0, 1], RGB, at the network's height and width.

        Returns:
            list[Tensor]: the input of every detection layer ([yolo], [region], [Gaussian_yolo]) in cfg
            order, each Tensor[N, anchors × (5 + classes), H/stride, W/stride] for [yolo]; for a cfg without
            one (a classifier), a list holding its output (the last layer that is not [cost]).

        Raises:
            InputError: *x* is not a float tensor of that shape (torch would fail deep inside a layer instead).
        """
        expected = (self.channels, self.height, self.width)
        if not isinstance(x, Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != expected or not x.is_floating_point():
            found = (f"a {type(x).__name__}" if not isinstance(x, Tensor)
                     else f"a {x.dtype} tensor of shape {tuple(x.shape)}".replace("torch.", ""))
            raise InputError(f"forward_heads takes a float tensor (N, {self.channels}, {self.height}, {self.width}): the "
                             f"network's channels, height and width; found {found} (detect() takes images of any size)")
        return self.forward(x)

    # -- recurrent state ------------------------------------------------------------
    @property
    def stateful(self) -> bool:
        """Whether recurrent layers carry a state from one forward to the next."""
        return bool(self.recurrent)

    def reset_state(self) -> None:
        """Recurrent layers start again from a zero state (a new video, a new photo)."""
        for i in self.recurrent:
            self.layers[i].reset_state()

    @contextmanager
    def sequence(self) -> Iterator["Network"]:
        """The frames of one video: inside, detect()/classify() calls are consecutive steps, each image one
        step in order, and recurrent state carries from frame to frame (as darknet's demo runs a video).
        Outside, every image is one step from a zero state. The state is reset on entry and on exit."""
        self.reset_state()
        self._in_sequence = True
        try:
            yield self
        finally:
            self._in_sequence = False
            self.reset_state()

    def run_frames(self, x: Tensor) -> list[Tensor]:
        """forward() over a batch the way detect() and classify() mean it: for a stateful model, inside
        sequence() the images are consecutive frames (one step each, in order), outside each image is
        one step from a zero state (a batch from zero state is exactly that). Other models: forward()."""
        if not self.stateful:
            return self(x)
        if not self._in_sequence:
            self.reset_state()
            return self(x)
        steps = [self(x[i : i + 1]) for i in range(x.shape[0])]
        return [torch.cat(parts) for parts in zip(*steps)]

    # -- weights ----------------------------------------------------------------
    def weight_layout(self) -> list[tuple[int, list[Tensor]]]:
        """(layer index, tensors in .weights order) for every layer that holds weights."""
        return [(i, ts) for i, m in enumerate(self.layers) if (ts := _darknet_tensors(m))]

    def weight_tensors(self) -> list[Tensor]:
        """Every tensor the .weights file holds, in file order."""
        return [t for _, tensors in self.weight_layout() for t in tensors]

    def num_weights(self) -> int:
        """How many floats the .weights file holds after its header."""
        return sum(info.n_weights for info in self.infos)

    def load_weights(self, path: str | os.PathLike[str]) -> "Network":
        """Read a darknet .weights file into the network (a WeightsError names the first layer that does not fit).

        The file is read a tensor at a time into the layers (besides the network, memory for its largest tensor,
        not for the whole file). Its size is checked before anything is written; a file that changes while it is
        read (cut short) raises with the weights partly replaced.

        Args:
            path: the .weights file.

        Returns:
            Network: this network.
        """
        with WeightsFile(path) as source:
            layout = self._layout_holding(source.count, source.name)
            buffer = np.empty(max((t.numel() for _, ts in layout for t in ts), default=0), np.float32)

            def next_floats(n: int) -> np.ndarray:
                source.read_into(buffer[:n])
                return buffer[:n]

            self._write_layers(layout, next_floats, source.name)
        self.weights_header = source.header
        self.weights_path = os.fspath(path)
        return self

    def load_weight_array(self, floats: np.ndarray, name: str = "weights") -> None:
        """Copy a flat float32 array (the .weights file after its header) into the layers; `name` is for errors."""
        layout = self._layout_holding(floats.size, name)
        offset = 0
        writable = floats.flags.writeable  # torch reads a read-only array only through a copy

        def next_floats(n: int) -> np.ndarray:
            nonlocal offset
            piece = floats[offset : offset + n]
            offset += n
            return piece if writable else piece.copy()

        self._write_layers(layout, next_floats, name)

    def _layout_holding(self, count: int, name: str) -> list[tuple[int, list[Tensor]]]:
        """The weight layout, once `count` floats (from `name`) are known to be exactly what it holds."""
        layout = self.weight_layout()
        needed = self.num_weights()
        if count != needed:
            raise WeightsError(self._mismatch_message(name, count, needed, layout))
        return layout

    def _write_layers(self, layout: list[tuple[int, list[Tensor]]], next_floats: Callable[[int], np.ndarray],
                      name: str) -> None:
        """Each tensor of `layout` in order gets `next_floats(its size)`; a layer holding NaN/Inf is warned about."""
        with torch.no_grad():
            for index, tensors in layout:
                bad = 0
                for t in tensors:
                    piece = next_floats(t.numel())
                    if not np.isfinite(piece).all():
                        bad += int(np.count_nonzero(~np.isfinite(piece)))
                    t.copy_(torch.from_numpy(piece).view_as(t))  # copy_: the fold sees the version change
                if bad:
                    warnings.warn(
                        f"{name}: layer {index} {self.infos[index].type} (line {self.infos[index].line}) "
                        f"has {bad} NaN/Inf weights; its outputs will be NaN",
                        DarknetWarning,
                        stacklevel=4,
                    )

    def _mismatch_message(self, name: str, have: int, needed: int, layout: list[tuple[int, list[Tensor]]]) -> str:
        base = f"{name} holds {have:,} floats after the header, the cfg needs {needed:,}"
        if have > needed:
            return base + f" ({have - needed:,} left over): these weights belong to a different cfg"
        total = 0
        for index, tensors in layout:
            total += sum(t.numel() for t in tensors)
            if total > have:
                info = self.infos[index]
                return base + f" (first layer that does not fit: layer {index} {info.type}, line {info.line})"
        return base

    def weight_array(self) -> np.ndarray:
        """The weights as the flat float32 array a .weights file holds after its header."""
        parts = list(self._weight_parts())
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _weight_parts(self) -> Iterator[np.ndarray]:
        """Each tensor of the .weights file, in file order, as float32 on the CPU (the tensor itself where it is one)."""
        for _, tensors in self.weight_layout():
            for t in tensors:
                yield t.detach().float().cpu().reshape(-1).numpy()

    def save_weights(self, path: str | os.PathLike[str], header: WeightsHeader | None = None) -> None:
        """Write a darknet .weights file (atomically), with `header` or the one read with the weights; tensor by
        tensor, so the file's floats are never all copied at once (1.1 GB for yolov4-p7)."""
        write_weights(path, header or self.weights_header, self._weight_parts())


def _darknet_tensors(module: Layer) -> list[Tensor]:
    return [] if module.shares_weights else module.darknet_tensors()


def resolve_device(device: str | torch.device | None) -> torch.device:
    try:
        dev = torch.device(device or "cpu")
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device '{device}'; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{device}' requested but no CUDA GPU is available to torch; use --device cpu")
    return dev


def _refuse_text_networks(net: Section) -> None:
    """darknet's character-level RNNs ([net] inputs=256, no width/height) read text, one character a step."""
    if net.has("inputs") and not (net.has("width") or net.has("height")):
        raise CfgError(f"{net.where('inputs')}: a text network (character-level RNN: [net] inputs={net.get_str('inputs')}, "
                       "no width/height) has no image input; darknet_py runs networks that take images")


def build(cfg: str | os.PathLike[str], size: int | Sequence[int] | None = None, *, init_weights: bool = True) -> Network:
    """The network of a .cfg file (random weights), at its own input size or `size` (N or (W, H)); with
    `init_weights=False` its weights are left uninitialised, for a caller that only reads its shapes (`info`) or
    writes every weight next (see Network)."""
    return Network(read_cfg(cfg), size, init_weights=init_weights)


def _stride_hint(sections: list[Section], width: int, height: int) -> str:
    """Where a size given in place of the cfg's fails to build: the network's total stride, from a build at the
    cfg's own size (its input over its smallest map), and the nearest sizes that are multiples of it; "" where the
    cfg's own size does not build either, or the size given is such a multiple (the failure is about something else)."""
    try:
        own = Network(sections, init_weights=False)
    except (CfgError, InputError):
        return ""
    maps = [info.out_shape for info in own.infos if min(info.out_shape.w, info.out_shape.h) > 1]  # not pooled to 1x1
    if not maps:
        return ""
    smallest_w, smallest_h = min(shape.w for shape in maps), min(shape.h for shape in maps)
    if own.width % smallest_w or own.height % smallest_h:
        return ""
    strides = (own.width // smallest_w, own.height // smallest_h)
    if width % strides[0] == 0 and height % strides[1] == 0:
        return ""
    if strides[0] != strides[1]:
        return f"this network's total stride is {strides[0]} across and {strides[1]} down"

    def nearest(side: int) -> str:
        stride = strides[0]
        return f"{max(stride, side // stride * stride)} or {(side // stride + 1) * stride}"

    off = [(name, side) for name, side in (("width", width), ("height", height)) if side % strides[0]]
    if len(off) == 2 and width == height:
        return f"this network's total stride is {strides[0]}: try {nearest(width)}"
    return f"this network's total stride is {strides[0]}: try " + ", ".join(f"{name} {nearest(side)}" for name, side in off)
