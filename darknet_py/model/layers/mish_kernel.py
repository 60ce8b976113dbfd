"""darknet's mish on float32 CPU tensors in one pass with one exponential per element (_mish.c), for the
eager CPU path of every mish network: yolov4-csp, P5, P6, P7, yolov4 (issue 29).

torch's CPU `F.mish` evaluates exp, log1p and tanh, each to the last bit: on yolov4-csp 512 that was a quarter of
the forward on 2 cores (130-150 ms of 560 for 63 M elements, torch's profiler), more than the gap to torch.compile,
which fuses a one-exponential mish into one loop (activations._mish_one_exp). The kernel computes that same formula
in C, vectorised: the forward takes 436.89 ms instead of 532.49 with F.mish on a 2-core AMD EPYC
(benchmarks/results/prepacked.md). It stays on one thread: split over two, the forward measured slower (torch's
worker threads are still spinning after each convolution).

It is as accurate as `F.mish` (within 3e-7 relative of float64, tests/test_mish_kernel.py) but not bit-equal to
it: yolov4-csp's heads move by 3.1e-06 of the largest from the F.mish path's (benchmarks/results/prepacked.md),
and every mish network agrees with darknet within the parity tolerance (tests/test_zoo_parity.py,
tests/test_darknet_cfgs.py run it).

Used where nothing else can see the difference: float32 CPU tensors whose memory is dense (contiguous or
channels-last) with autograd off, outside tracing, compiling and exporting (an ONNX graph, a compiled
graph and a gradient see `F.mish`), and only where the extension was built.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import Tensor

from ...core.scoped_flag import ScopedFlag
from .graph_capture import capturing

try:  # built by setup.py where a compiler is; F.mish gives the same values to 3e-7 without it
    from . import _mish as _kernel
except ImportError:  # pragma: no cover - depends on the install
    _kernel = None

enabled = True  # False: F.mish everywhere (tests and benchmarks compare the two)
_declined = ScopedFlag("mish_kernel_declined")


def declined() -> AbstractContextManager[None]:
    """F.mish for the networks run inside (in this thread or task only): for numbers that must not depend on
    whether the extension was built (weights_tools.synth's calibration statistics)."""
    return _declined.raised()


def applies(x: Tensor) -> bool:
    """Whether `mish` may take `x` (see the module docstring)."""
    # the compiler's checks first: torch.compile cannot trace through the context variable (a graph break per layer)
    return (not capturing() and enabled and _kernel is not None and not _declined and x.device.type == "cpu"
            and x.dtype == torch.float32 and not (torch.is_grad_enabled() and x.requires_grad)
            and _memory_order(x) is not None)


def mish(x: Tensor, in_place: bool = False) -> Tensor:
    """darknet's mish of `x` by the C kernel; call only where `applies(x)`.

    Args:
        x (Tensor): float32 CPU tensor with dense memory (contiguous or channels-last).
        in_place (bool): overwrite `x` (the caller made it and nothing else holds it) instead of allocating.

    Returns:
        Tensor: the activation, in `x`'s memory format (`x` itself when in place).
    """
    out = x if in_place else torch.empty_like(x)  # empty_like keeps the strides of a dense tensor
    _kernel.mish(_flat(x), _flat(out))
    return out


def _memory_order(x: Tensor) -> list[int] | None:
    """The permutation of `x`'s dimensions that makes its memory contiguous, or None if it has gaps or overlaps."""
    if x.is_contiguous():
        return list(range(x.dim()))
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    return order if x.permute(order).is_contiguous() else None


def _flat(x: Tensor):
    """`x`'s memory as a 1-D numpy array, in memory order."""
    return x.detach().permute(_memory_order(x)).reshape(-1).numpy()
