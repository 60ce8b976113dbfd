"""The torch backend's hot path: network-ready pixels → decoded candidates on the model's device.

On CUDA the network and the box decoding of each input shape are captured once as a CUDA graph
and then replayed: one launch instead of hundreds. At batch 1 the launch gaps, not the GPU, set
the pace: yolov4-csp 512 fp16 on an H100 takes 13.8 ms eagerly and 2.0 ms replayed
(benchmarks/gpu.py). Inputs go through pinned host memory with an asynchronous copy. A replay runs
the kernels the capture recorded, so results equal the eager path's. torch.compile can fuse the
network first (`compile=True`, CUDA or CPU); its outputs are checked against the eager network
once per input shape, and a mismatch or a compiler failure turns it off with a warning.

float32 means float32 here: cuDNN's TF32 mode, which torch allows by default and which moves
yolov4-tiny's outputs 3e-4 (relative) away from a float64 run instead of 7e-7 and makes boxes
depend on the batch size, is turned off while the runner works and restored after. fp16
(`model.half()`) is the fast option.

A graph holds the weights it was captured with: the runner re-captures when a weight tensor
changed in place (loading weights), and the model drops its runner when it is moved or cast
(`Darknet._apply`). Elsewhere than CUDA the network runs eagerly.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..core.errors import DarknetWarning
from ..model.layers.conv import ConvLayer
from ..model.layers.prepacked import tensor_version
from ..pipeline import yolo_gate
from ..pipeline.backend import Gated, gate
from ..pipeline.decode import decode, head_constants
from ..pipeline.fetch_gated import MIN_CAP, fetch_gated, next_cap

Candidates = tuple[Tensor, Tensor, Tensor]  # boxes (N, M, 4), objectness (N, M), scores (N, M, C)
MAX_GRAPHS = 4  # input shapes kept captured (each holds its activations); the oldest goes first
WARMUP_CALLS = 2  # before a capture: cuDNN picks its algorithms, torch.compile compiles
# Compiled vs eager outputs, max |difference| / max |eager| per output: fusions reorder float
# arithmetic (fp16 runs differ from fp32 by about 1e-2 this way); a wrong compile is far beyond.
COMPILED_TOLERANCE = {torch.float16: 0.05, torch.bfloat16: 0.1, torch.float32: 1e-3}


@dataclass(frozen=True)
class RunnerOptions:
    cuda_graphs: bool = True
    compile: bool = False  # torch.compile the network


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    static_input: Tensor
    outputs: Candidates


class _PinnedStaging:
    """Host → device copies through reusable pinned buffers, one per shape. A buffer is not refilled
    before its previous copy has finished (an event per buffer), so asynchronous copies never race."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, ...], tuple[Tensor, torch.cuda.Event]] = {}

    def upload(self, pixels: np.ndarray, device: torch.device) -> Tensor:
        key = tuple(pixels.shape)
        if key not in self._buffers:
            if len(self._buffers) >= MAX_GRAPHS:
                self._buffers.pop(next(iter(self._buffers)))[1].synchronize()
            self._buffers[key] = (torch.empty(key, dtype=torch.float32, pin_memory=True), torch.cuda.Event())
        host, copied = self._buffers[key]
        copied.synchronize()
        host.numpy()[...] = pixels
        on_device = host.to(device, non_blocking=True)
        copied.record(torch.cuda.current_stream(device))
        return on_device


def _compiled(model, cuda: bool) -> Callable[[Tensor], list[Tensor]]:
    """The network (not the decoding: compiled together with it, torch 2.11's CUDA inductor put
    boxes at the wrong cells) compiled by torch.compile; on the CPU with weights frozen."""
    return torch.compile(model, dynamic=False) if cuda else _FrozenCompiled(model)


class _FrozenCompiled:
    """torch.compile with inductor's freezing (CPU): weights become constants, so convolutions run
    on oneDNN's pre-packed weights with their activations fused (yolov4-tiny 416 on 2 cores:
    20.8 → 17.1 ms). Frozen code cannot see new weights: TorchRunner._refresh recompiles."""

    def __init__(self, model) -> None:
        import torch._inductor.config as inductor_config  # loaded on use: a second of import time

        self._config = inductor_config
        self._compiled = torch.compile(model, dynamic=False)

    def __call__(self, x: Tensor) -> list[Tensor]:
        with self._config.patch(freezing=True):  # compiling happens inside a call
            return self._compiled(x)


@contextmanager
def _cudnn_settings() -> Iterator[None]:
    """cuDNN times its algorithms once per shape (our shapes are fixed) and never uses TF32."""
    saved = torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32 = saved


class TorchRunner:
    """Callable: pixels (N, C, H, W float32 in [0, 1]: numpy, or a tensor on the device) → Candidates on the model's device.

    On CUDA with graphs the returned tensors are the graph's own outputs: read them (decode, NMS)
    before the next call, which overwrites them.
    """

    def __init__(self, model, options: RunnerOptions = RunnerOptions()) -> None:
        self.model = model
        if model.stateful and (options.cuda_graphs or options.compile):
            # a graph replays, and compiled code may bake in, the recurrent state of the call it was made from
            if options.compile:
                warnings.warn("torch.compile is off for this model: its recurrent layers change state at every "
                              "call", DarknetWarning, stacklevel=3)
            options = RunnerOptions(cuda_graphs=False, compile=False)
        self.options = options
        self._eager = model.run_frames if model.stateful else model  # frames in order, state carried
        self.device = model.device
        self.dtype = next(model.parameters()).dtype
        cuda = self.device.type == "cuda"
        self._constants = [head_constants(spec, self.device) for spec in model.heads]
        self._forward: Callable[[Tensor], list[Tensor]] = _compiled(model, cuda) if options.compile else self._eager
        self._graphs: OrderedDict[tuple[int, ...], _Captured] = OrderedDict()
        self._staging = _PinnedStaging() if cuda else None
        self._weights = model.weight_tensors()
        self._stamp: tuple[int, ...] | None = None  # the first run folds and captures
        self._checked: set[tuple[int, ...]] = set()  # input shapes whose compiled outputs were checked
        self.fetch_rows = True  # CUDA: gated rows to the host with one wait (fetch_gated); False: gate on the device
        self._fetch_cap = MIN_CAP

    @property
    def uses_graphs(self) -> bool:
        return self.device.type == "cuda" and self.options.cuda_graphs

    @property
    def compiled(self) -> bool:
        """Whether the network runs compiled (asked for, and not turned off by the check)."""
        return self._forward is not self._eager

    def _candidates(self, x: Tensor) -> Candidates:
        heads = [h.float() for h in self._forward(x.to(self.dtype))]
        return decode(heads, self.model.heads, self.model.width, self.model.height, self._constants)

    @property
    def input_device(self) -> torch.device | None:
        """Where detect() puts the pixels it prepares: this GPU (images go up as uint8 and darknet's
        resize runs there), or None for host memory."""
        return self.device if self.device.type == "cuda" else None

    def __call__(self, pixels: np.ndarray | Tensor) -> Candidates:
        return self.run(self._on_device(pixels))

    def candidates_above(self, pixels: np.ndarray | Tensor, objectness_thresh: float) -> Gated:
        """`gate(self(pixels), objectness_thresh)` (Backend.candidates_above). On the CPU, [yolo] heads decode only the
        rows above the threshold (darknet_py.pipeline.yolo_gate). On CUDA the rows come to host memory with one wait
        for the GPU (darknet_py.pipeline.fetch_gated) unless `fetch_rows` is off or an image has more rows above the
        threshold than fetched: then `gate` runs on the device."""
        if self.device.type != "cuda":
            return self.gate_heads(self.network(self._on_device(pixels)), objectness_thresh)
        candidates = self(pixels)
        if self.fetch_rows:
            fetched = fetch_gated(candidates, objectness_thresh, self._fetch_cap)
            self._fetch_cap = next_cap(self._fetch_cap, fetched.most_above)
            if fetched.gated is not None:
                return fetched.gated
        return gate(candidates, objectness_thresh)

    def gate_heads(self, heads: list[Tensor], objectness_thresh: float) -> Gated:
        """The network's head outputs (`network`) → the candidates above the threshold (yolo_gate.decode_above)."""
        with torch.inference_mode():
            return yolo_gate.decode_above([h.float() for h in heads], self.model.heads, self.model.width,
                                          self.model.height, objectness_thresh, self._constants)

    def _on_device(self, pixels: np.ndarray | Tensor) -> Tensor:
        if isinstance(pixels, Tensor):  # prepared on the device already
            return pixels.to(self.device)
        if self._staging is None:
            return torch.from_numpy(pixels).to(self.device)
        return self._staging.upload(pixels, self.device)

    def network(self, x: Tensor) -> list[Tensor]:
        """The [yolo] head inputs for a float32 input on the model's device, through the compiled
        network when compiling is on (no graph, no decoding: what benchmarks time as 'forward')."""
        with torch.inference_mode(), _cudnn_settings():
            self._prepare(x)
            return self._forward(x.to(self.dtype))

    def run(self, x: Tensor) -> Candidates:
        """Candidates for a float32 input already on the model's device."""
        with torch.inference_mode(), _cudnn_settings():
            self._prepare(x)
            if not self.uses_graphs:
                return self._candidates(x)
            with torch.cuda.device(self.device):
                captured = self._captured(x)
                captured.static_input.copy_(x)
                captured.graph.replay()
                return captured.outputs

    def _prepare(self, x: Tensor) -> None:
        if self.uses_graphs or self.options.compile:
            self._refresh()
        if self.options.compile and tuple(x.shape) not in self._checked:
            self._check_compiled(x)

    def _weights_stamp(self) -> tuple[int, ...]:
        return tuple(tensor_version(t) for t in self._weights)

    def _refresh(self) -> None:
        """After weights changed in place: drop the graphs (they hold the old ones) and re-fold batch
        norm eagerly, since compiled code reads the folded tensors without checking them."""
        stamp = self._weights_stamp()
        if stamp == self._stamp:
            return
        if self._stamp is not None and isinstance(self._forward, _FrozenCompiled):
            torch._dynamo.reset()  # frozen code holds the old weights as constants; guards cannot tell
            self._forward = _compiled(self.model, cuda=False)
        self._graphs.clear()
        self._checked.clear()
        self._stamp = stamp
        for layer in self.model.modules():
            if isinstance(layer, ConvLayer) and layer.fold and layer.bn is not None:
                layer.folded()

    def _check_compiled(self, x: Tensor) -> None:
        """The compiled network against the eager one on this input, once per shape. torch's
        compiler has been seen to get a network wrong (yolov4-csp, fp16, batch 32, torch 2.11:
        0.25 relative error), so a mismatch turns compiling off with a warning instead of
        returning wrong boxes."""
        try:
            compiled = self._candidates(x)
        except Exception as exc:  # noqa: BLE001 - no C++ compiler, an unsupported op: run eagerly
            problem = f"torch.compile failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]})"
        else:
            eager = self._eager_candidates(x)
            error = max(((a - b).abs().max() / b.abs().max().clamp(min=1e-6)).item() for a, b in zip(compiled, eager))
            problem = (f"torch.compile changed the network's outputs by {error:.2g} (relative) on input shape "
                       f"{tuple(x.shape)}" if error > COMPILED_TOLERANCE.get(self.dtype, 1e-3) else "")
        if problem:
            warnings.warn(f"{problem}; running without it (a torch compiler problem)", DarknetWarning, stacklevel=4)
            self._forward = self._eager
            self._graphs.clear()
        self._checked.add(tuple(x.shape))

    def _eager_candidates(self, x: Tensor) -> Candidates:
        forward, self._forward = self._forward, self._eager
        try:
            return self._candidates(x)
        finally:
            self._forward = forward

    def _captured(self, x: Tensor) -> _Captured:
        shape = tuple(x.shape)
        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        while len(self._graphs) >= MAX_GRAPHS:
            self._graphs.popitem(last=False)
        static_input = x.clone()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(WARMUP_CALLS):
                self._candidates(static_input)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self._candidates(static_input)
        self._graphs[shape] = _Captured(graph, static_input, outputs)
        return self._graphs[shape]
