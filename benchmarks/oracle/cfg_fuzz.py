"""Mutating the shared cfgs to check that bad cfg text only ever raises DarknetError.

One case: a shared cfg, a list of mutations (value swaps, line drops and repeats, truncation,
junk bytes, renamed sections), a network size. `run_case` parses and builds the result and, when
the network is small enough, runs a forward pass: cfgs that build must also run. Anything but a
DarknetError escaping is a bug. Used by tests/test_fuzz.py (short) and benchmarks/fuzz_campaign.py.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

import torch

import darknet_py
from darknet_py.backends.torch import Darknet
from darknet_py.format.cfg import parse_text

NASTY_VALUES = ["0", "-1", "-2", "-3", "-999", "1", "2", "3", "7", "31", "1000000", "99999999999999999999",
                "abc", "", "1e9", "nan", "inf", "-inf", "2,", ",", ",,", "3.5", "-0.5", "0x10", "1,2,3", "-1,-3,-5",
                "1,a", "leaky", "mish", "nope", "\x00", "１"]
SECTION_NAMES = ["convolutional", "route", "shortcut", "maxpool", "upsample", "yolo", "net", "", "reorg",
                 "avgpool", "dropout", "sam", "scale_channels", "local_avgpool", "region", "connected", "crop", "x"]
FORWARD_ELEMENT_BUDGET = 40_000_000  # activations summed over layers: keeps a case under a second


@dataclass(frozen=True)
class Case:
    base: str  # cfg text
    seed: int
    mutations: int
    size: int


def mutate(text: str, rng: random.Random, count: int) -> str:
    lines = text.splitlines()
    for _ in range(count):
        if not lines:
            break
        kind = rng.randrange(8)
        i = rng.randrange(len(lines))
        if kind <= 2 and "=" in lines[i]:  # most mutations change a value
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}={rng.choice(NASTY_VALUES)}"
        elif kind == 3:
            del lines[i]
        elif kind == 4:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 5:
            lines[i] = f"[{rng.choice(SECTION_NAMES)}]"
        elif kind == 6:
            cut = rng.randrange(len(lines))
            lines = lines[:cut] + [lines[cut][: rng.randrange(len(lines[cut]) + 1)]]
        else:
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))).decode("latin-1")
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] + junk
    return "\n".join(lines)


def run_case(case: Case) -> str:
    """'built', 'ran' or 'refused: <error class>'; any other exception propagates (a bug)."""
    text = mutate(case.base, random.Random(case.seed), case.mutations)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Darknet(parse_text(text, "fuzz.cfg"), size=case.size).eval()
            elements = sum(info.out_shape.c * info.out_shape.h * info.out_shape.w for info in model.infos)
            if elements > FORWARD_ELEMENT_BUDGET or model.num_weights() > FORWARD_ELEMENT_BUDGET:
                return "built"
            with torch.no_grad():
                model(torch.rand(1, model.channels, model.height, model.width))
            return "ran"
    except darknet_py.DarknetError as exc:
        return f"refused: {type(exc).__name__}"
