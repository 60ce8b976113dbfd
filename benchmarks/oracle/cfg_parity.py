"""A cfg against the real darknet (benchmarks/oracle/darknet_reference.py), as tests/test_darknet_cfgs.py
and benchmarks/darknet_cfgs.py run every cfg darknet ships.

`compare_with_darknet`: a copy of the cfg at 256×256 (at the cfg's own size where a [connected] or
[local] layer fixes the input size; a classifier at 64 px, or its own size if smaller), deterministic
synthetic weights from weights_tools, then darknet's forward pass (dump_layers) and ours on the same
random input.
What is compared is what `Darknet.forward_heads` returns: the input of every detection layer
([yolo], [region], [Gaussian_yolo]) in cfg order, or, for a cfg without one (a classifier), the
output of its last layer (darknet's `get_network_output`: the last layer that is not [cost]).
Two darknet quirks shape the comparison (see stops_at_an_assert and without_cpu_gaps): ResNet's
shortcuts between maps of different sizes run in darknet's release build (the reference build's
assert stops them), and relu6, which darknet's CPU code lacks, is swapped for relu in both engines.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import darknet_py
from benchmarks.oracle.darknet_reference import LayerDump
from benchmarks.oracle.darknet_steps import build_steps
from darknet_py.model.layers.combine import Shortcut

DETECTION_LAYERS = ("yolo", "region", "Gaussian_yolo", "detection")
FIXED_SIZE_SECTIONS = ("connected", "local")  # their weights fix the input size
PARITY_SIZE = 256
CLASSIFIER_SIZE = 64
CPU_MISSING_ACTIVATIONS = {"relu6": "relu"}  # see without_cpu_gaps
FILE_KEYS = ("tree", "map")  # [region] files darknet opens relative to its working directory (its own folder)


def sized_copy(cfg: Path, folder: Path, size: int | None) -> Path:
    """The cfg with [net] width/height set to `size` (None: unchanged) and batch/subdivisions 1, and
    `tree=`/`map=` files made absolute (darknet's cfgs name them relative to the darknet folder)."""
    out_lines, in_net = [], False
    text = cfg.read_text(errors="replace")
    # darknet refuses a contrastive cfg whose batch/subdivisions is under 2, even to run inference
    # (it then runs it with batch 1 anyway): keep that cfg's own
    wanted = {} if re.search(r"^\s*contrastive\s*=\s*1", text, re.M) else {"batch": 1, "subdivisions": 1}
    if size is not None:
        wanted.update(width=size, height=size)
    for line in text.splitlines():
        stripped = line.strip()
        option, _, named = (part.strip() for part in stripped.partition("="))
        if option in FILE_KEYS and named and not Path(named).is_absolute():
            line = f"{option}={cfg.parent.parent / named}"
        if stripped.startswith("["):
            in_net = stripped.lower() in ("[net]", "[network]")
            out_lines.append(line)
            if in_net:
                out_lines.extend(f"{key}={value}" for key, value in wanted.items())
            continue
        key = stripped.split("=", 1)[0].strip()
        if in_net and key in wanted:
            continue  # replaced above (darknet reads the first occurrence of a key)
        out_lines.append(line)
    path = folder / cfg.name
    path.write_text("\n".join(out_lines) + "\n")
    return path


def parity_size(cfg: Path) -> int | None:
    """256 px; the cfg's own size where [connected]/[local] weights fix it; a classifier (no detection
    layer: no grid whose cells could go wrong at a small size) at 64 px, or its own size if smaller."""
    text = cfg.read_text(errors="replace")
    types = set(re.findall(r"^\s*\[(\w+)\]", text, re.M))
    if types & set(FIXED_SIZE_SECTIONS):
        return None
    if not types & set(DETECTION_LAYERS):
        own = [int(v) for v in re.findall(r"^\s*(?:width|height)\s*=\s*(\d+)", text, re.M)[:2]]
        return min(own + [CLASSIFIER_SIZE])
    return PARITY_SIZE


def runs_as_detector(cfg: Path) -> bool:
    """xnor layers run only as `darknet detector test` runs them (see DarknetProgram.layers)."""
    return re.search(r"^\s*xnor\s*=\s*1", cfg.read_text(errors="replace"), re.M) is not None


def darknet_heads(dumps: list[LayerDump]) -> list[np.ndarray]:
    """What forward_heads must equal: the inputs of detection layers, else the last non-cost output."""
    heads = [dumps[d.index - 1].output for d in dumps if d.type in DETECTION_LAYERS]
    if heads:
        return heads
    last = next(d for d in reversed(dumps) if d.type != "cost")
    return [last.output]


def layer_outputs(model: darknet_py.Darknet, pixels: np.ndarray) -> list[np.ndarray]:
    """Every layer's output, flattened, for one CHW float32 input: what darknet's dump_layers writes per layer."""
    outputs: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.reshape(-1).numpy())) for m in model.layers]
    try:
        with torch.inference_mode():
            model(torch.from_numpy(pixels)[None])
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(float(np.abs(theirs).max()), 1e-12))


def without_cpu_gaps(cfg: Path) -> None:
    """darknet's CPU activate() has no case for relu6 and returns 0 (efficientnet-lite3 then outputs a
    constant); its CUDA kernel computes min(max(x, 0), 6), as darknet_py does (tests/test_layers.py
    checks that formula). The comparison runs both engines on a copy with relu in its place."""
    text = cfg.read_text()
    for missing, stand_in in CPU_MISSING_ACTIVATIONS.items():
        text = re.sub(rf"^(\s*activation\s*=\s*){missing}\s*$", rf"\g<1>{stand_in}", text, flags=re.M)
    cfg.write_text(text)


def stops_at_an_assert(model: darknet_py.Darknet) -> bool:
    """A [shortcut] between maps of different sizes: the reference build aborts in parse_shortcut, darknet's
    release builds run it (benchmarks/oracle/darknet_steps.py)."""
    return any(isinstance(m, Shortcut) and any((s.h, s.w) != (m.shape.h, m.shape.w) for s in m.from_shapes)
               for m in model.layers)


def same_synthetic_weights(cfg: Path, sized: Path) -> bool:
    """Whether synthesize gives the sized copy the weights it gives the cfg itself: their layers are the same
    (the copy changed only [net] size, batch and subdivisions) and both are calibrated at CALIBRATION_SIDE, the
    size synthesize uses for any cfg at least that large."""
    from darknet_py.format.cfg import read_cfg
    from weights_tools.synth import CALIBRATION_SIDE

    original, copy = read_cfg(cfg), read_cfg(sized)
    sides = [original[0].get_int(key, 0) for key in ("width", "height")] + [copy[0].get_int(k, 0) for k in ("width", "height")]
    return (min(sides) >= CALIBRATION_SIDE and original[0].get_int("channels", 3) == copy[0].get_int("channels", 3)
            and [(s.type, s.options) for s in original[1:]] == [(s.type, s.options) for s in copy[1:]])


def compare_with_darknet(cfg: Path, darknet, work: Path, release=None,
                         weights_for: Callable[[Path], Path] | None = None) -> list[float]:
    """Build `cfg` (sized for parity), synthesise weights, run both; the relative error per head.

    Args:
        weights_for (callable, optional): the synthetic .weights of a cfg as it is (a cache shared with other
            tests); used where they are the sized copy's too (same_synthetic_weights).
    """
    from weights_tools.synth import synthesize

    work.mkdir(parents=True, exist_ok=True)
    sized = sized_copy(cfg, work, parity_size(cfg))
    without_cpu_gaps(sized)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        if weights_for is not None and same_synthetic_weights(cfg, sized):
            weights = weights_for(cfg)
        else:
            weights = work / "synthetic.weights"
            synthesize(sized, seed=0).save_weights(weights)
        model = darknet_py.load(sized, weights, fast=False)
    rng = np.random.default_rng(0)
    pixels = rng.random((model.channels, model.height, model.width), dtype=np.float32)
    if stops_at_an_assert(model):
        release = release or build_steps(darknet)
        dumps = release.steps(sized, weights, pixels[None], work / "darknet")[0]
    else:
        dumps = darknet.layers(sized, weights, pixels, work / "darknet", detector=runs_as_detector(sized))
    with torch.inference_mode():
        ours = [h.detach().float().reshape(-1).numpy() for h in model.forward_heads(torch.from_numpy(pixels)[None])]
    theirs = darknet_heads(dumps)
    assert len(ours) == len(theirs), f"{len(ours)} outputs from forward_heads, darknet has {len(theirs)}"
    errors = []
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.size == b.size, f"output {k}: {a.size} values, darknet has {b.size}"
        errors.append(relative_error(a, b))
    return errors
