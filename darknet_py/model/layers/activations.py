"""Darknet activation functions by cfg name (src/activations.h), as torch functions.

Constants are darknet's own (e.g. selu's 1.0507/1.6732, leaky's 0.1), not torch's,
so outputs match darknet to float precision.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...format.cfg import Section
from . import mish_kernel
from .graph_capture import capturing

MISH_THRESHOLD = 20.0  # darknet's softplus threshold: above it softplus(x) = x, so mish(x) = x


def _mish(x: Tensor) -> Tensor:
    # darknet: x * tanh(softplus(x)) with softplus threshold 20. Eagerly on the CPU, mish_kernel's one pass
    # (F.mish's three transcendentals were a quarter of yolov4-csp's forward); on the GPU torch's fused kernel;
    # traced to ONNX it is Softplus·Tanh·Mul.
    if torch.compiler.is_compiling():  # first: nothing the compiler cannot trace through (a context variable)
        return F.mish(x) if x.is_cuda else _mish_one_exp(x)
    if mish_kernel.applies(x):
        return mish_kernel.mish(x)
    return F.mish(x)


def _mish_in_place(x: Tensor) -> Tensor:
    return mish_kernel.mish(x, in_place=True) if mish_kernel.applies(x) else _mish(x)


def _mish_one_exp(x: Tensor) -> Tensor:
    """tanh(softplus(x)) = n / (n + 2) with n = eˣ(eˣ + 2): one exp instead of exp, log1p and tanh.
    Eagerly that is five passes over memory; compiled it fuses into one loop, and yolov4-csp 512
    runs in 204 ms instead of 289 on 2 CPU cores (4e-6 relative from F.mish). Computed in float32.
    CPU only: the GPU figures and tests were taken with F.mish. mish_kernel computes the same formula in C
    for the eager path."""
    xf = x.float()
    e = torch.exp(torch.clamp(xf, max=MISH_THRESHOLD))
    n = e * (e + 2)
    return torch.where(xf > MISH_THRESHOLD, xf, xf * n / (n + 2)).to(x.dtype)


def _hard_mish(x: Tensor) -> Tensor:
    # darknet's hard_mish_yashas: x for x > 0, x²/2 + x for -2 < x <= 0, else 0
    return torch.where(x > 0, x, torch.where(x > -2, x * x * 0.5 + x, torch.zeros_like(x)))


def _stair(x: Tensor) -> Tensor:
    n = torch.floor(x)
    half = torch.floor(x / 2)
    return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)


def _plse(x: Tensor) -> Tensor:
    return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))


def _lhtan(x: Tensor) -> Tensor:
    return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "logistic": torch.sigmoid,
    "loggy": lambda x: 2 * torch.sigmoid(x) - 1,
    "relu": torch.relu,
    "relu6": lambda x: torch.clamp(x, 0, 6),
    "elu": lambda x: torch.where(x >= 0, x, torch.expm1(x)),
    "selu": lambda x: torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1 + torch.tanh(0.797885 * x + 0.035677 * x * x * x)),
    "relie": lambda x: torch.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: torch.relu(x) + 0.1 * x,
    "leaky": lambda x: F.leaky_relu(x, 0.1),
    "tanh": torch.tanh,
    "plse": _plse,
    "stair": _stair,
    "hardtan": lambda x: torch.clamp(x, -1, 1),
    "lhtan": _lhtan,
    "mish": _mish,
    "hard_mish": _hard_mish,
    "swish": F.silu,
    "silu": F.silu,  # yolor's and yolov7's name for swish; darknet does not know it (see silu_notices)
}
# Names darknet's get_activation does not know: it prints "Couldn't find activation function NAME, going with
# ReLU" and computes ReLU there. darknet_py computes what the name means (what the cfg's authors trained with).
DARKNET_FALLS_BACK = {"silu": "SiLU, x·sigmoid(x) (darknet's swish)"}


def _silu_in_place(x: Tensor) -> Tensor:
    # the same kernel writing over its input: bit-equal to F.silu (autograd needs the input kept: not then)
    return F.silu(x, inplace=not (torch.is_grad_enabled() and x.requires_grad))


# Activations with a cheaper form that overwrites its input, for tensors their caller just made and holds alone
# (a convolution's output): a new tensor per layer costs its page faults; in place, yolov4-csp's forward at 512
# took 436.89 ms instead of 464.29 (mish), yolov4-csp-swish's 398.17 instead of 417.63, on a 2-core AMD EPYC
# (benchmarks/results/prepacked.md).
IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {"mish": _mish_in_place, "swish": _silu_in_place,
                                                  "silu": _silu_in_place}


class Activation(nn.Module):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x: Tensor, fresh: bool = False) -> Tensor:
        """The activation of `x`.

        Args:
            x (Tensor): the input.
            fresh (bool): the caller made `x` and nothing else holds it, so it may be overwritten.

        Returns:
            Tensor: the output (`x` itself where an in-place form ran).
        """
        if fresh and self.name in IN_PLACE and not capturing():
            return IN_PLACE[self.name](x)
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def silu_notices(sections: Iterable[Section]) -> list[str]:
    """One message per section whose activation darknet does not know and replaces with ReLU (`silu`, in
    yolor's and yolov7's cfgs), for the network to warn about once per load.

    Args:
        sections (iterable of Section): the cfg's layer sections.

    Returns:
        list[str]: `FILE:LINE: activation=silu …` messages, in cfg order.
    """
    found = []
    for section in sections:
        name = section.get_str("activation", "") if section.has("activation") else ""
        if name in DARKNET_FALLS_BACK:
            found.append(f"{section.where('activation')}: activation={name}: darknet does not know it and computes "
                         f"ReLU there (\"Couldn't find activation function {name}, going with ReLU\"); darknet_py "
                         f"computes {DARKNET_FALLS_BACK[name]}, what the cfg's authors trained with — for darknet's "
                         "results, write activation=relu; for the same function in darknet, activation=swish")
    return found


def activation_from(section: Section, default: str) -> Activation:
    name = section.get_str("activation", default)
    if name not in ACTIVATIONS:
        raise section.error(
            f"unknown activation '{name}'; supported: {', '.join(sorted(ACTIVATIONS))}", "activation"
        )
    return Activation(name)
