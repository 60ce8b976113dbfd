"""The fastest exact runtime for a network on this CPU: measured once, then remembered (`backend="auto"`).

Which runtime runs a network fastest depends on the CPU and on the network, by margins that matter
(benchmarks/results/cpu_paths.md): on a 2-core Intel Xeon with AMX, OpenVINO runs yolov4-csp's detect() in less
than half eager torch's time; on a 2-core AMD EPYC eager torch, onnxruntime and OpenVINO run yolov4-tiny within a
few percent of each other, while on yolov4-csp OpenVINO takes 0.6× eager torch's time (and onnxruntime took 1.3×
before its backend rewrote mish; about the same as torch since, benchmarks/results/onnx_mish.md).
A fixed default is wrong somewhere, so "auto" does not guess: it times the exact (fp32) runtimes installed here on
this network at its input size, in interleaved rounds, keeps the fastest, and remembers the verdict in
DARKNET_PY_CACHE (default ~/.cache/darknet_py)/fastest.json, keyed by the cfg file's SHA-256, the input size, the
CPU (model, ISA flags, cores), torch's thread count and the runtimes' versions, so later loads on this machine build
only the winner.

Candidates: torch eager (batch norm folded, channels-last: load()'s default), onnxruntime (always installed) and
OpenVINO where its extra is installed, both running the graph exported in memory. Their detections agree with
torch's within docs/parity.md's tolerance for exported graphs (identical classes, scores ±1e-3, boxes ±0.5 px).
Not candidates: torch.compile (its first call costs seconds to tens of seconds and pays back only after hundreds of
frames, cpu_paths.md; --compile asks for it), int8 and half precision (not exact).

May import: pipeline, model, format, core (as backends/ may). The candidates are built by the caller (darknet_py.api).
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from ..core.fileio import atomic_write
from ..core.machine import cpu_flags, cpu_model
from ..core.version import __version__
from ..format.zoo import cache_dir
from ..pipeline.backend import Backend

CANDIDATES = ("torch", "onnxruntime", "openvino")
# torch (the runtime with every feature: --compile, CUDA graphs, recurrent state) is kept unless another runtime is
# at least this much faster: a smaller lead is within what a busy machine's speed drift does to a few rounds.
MARGIN = 0.05
ROUNDS = 5  # timed calls per runtime (each after an untimed one), after one warm-up call each
# ... and 3 where one warm-up call took a second or more (P6/P7 on 2 cores: a measurement of minutes otherwise)
SLOW_CALL_S, SLOW_ROUNDS = 1.0, 3
CACHE_FILE = "fastest.json"
CACHE_VERSION = 3  # bumped when the measurement or a candidate's speed changes, so older verdicts are measured again
# (3: the onnxruntime backend runs mish rewritten on the CPU, backends/onnx_mish.py)


@dataclass(frozen=True)
class Choice:
    """Which runtime `backend="auto"` runs, and why.

    Attributes:
        backend (str): "torch", "onnxruntime" or "openvino".
        times_ms (dict[str, float]): each candidate's median time of one detect() (a classifier's classify()) of
            an image at the network's size, ms, as measured on this CPU (see `timed_call`); runtimes that cannot
            take the network are absent.
        remembered (bool): True when the verdict came from the cache rather than a measurement just now.
    """

    backend: str
    times_ms: dict[str, float] = field(default_factory=dict)
    remembered: bool = False

    def describe(self) -> str:
        """One line for a log: the runtime and the times it was chosen on, fastest first."""
        times = ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(self.times_ms.items(), key=lambda kv: kv[1]))
        how = "remembered from an earlier measurement" if self.remembered else "measured now"
        fastest = min(self.times_ms, key=self.times_ms.__getitem__) if self.times_ms else self.backend
        if fastest == self.backend:
            return f"{self.backend}, the fastest exact runtime for this network on this CPU ({times}; {how})"
        # torch kept: the fastest is less than MARGIN ahead, within what a busy machine's drift does to a few rounds
        return (f"{self.backend}: no exact runtime is {MARGIN:.0%} faster for this network on this CPU ({times}; "
                f"{how})")


def pick(times_ms: Mapping[str, float]) -> str:
    """The runtime to run, from each candidate's time: the fastest, but torch unless another is MARGIN faster.

    Args:
        times_ms (Mapping[str, float]): candidate name → median ms; must hold "torch".

    Returns:
        str: the chosen candidate's name.
    """
    fastest = min(times_ms, key=times_ms.__getitem__)
    return fastest if times_ms[fastest] < times_ms["torch"] * (1 - MARGIN) else "torch"


def installed() -> list[str]:
    """The candidates whose runtime this Python can import (torch and onnxruntime are dependencies; OpenVINO is an
    extra)."""
    import importlib.util

    return [name for name in CANDIDATES if name == "torch" or importlib.util.find_spec(name) is not None]


def cache_key(cfg_sha256: str, size: tuple[int, int] | None, candidates: list[str], fast: bool = True) -> str:
    """What the verdict depends on, hashed: the network, its input size, this CPU, threads, the runtimes' versions.

    Args:
        cfg_sha256 (str): the cfg file's SHA-256 (weights do not change a dense network's speed).
        size (tuple[int, int], optional): the input size asked for, (W, H); None: the cfg's own.
        candidates (list[str]): the runtimes that were (or would be) timed.
        fast (bool): load()'s `fast` for the torch candidate (folded batch norm, channels-last).

    Returns:
        str: a hex digest, the key in fastest.json.
    """
    from importlib.metadata import PackageNotFoundError, version

    def installed_version(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    facts = {"cache": CACHE_VERSION, "cfg": cfg_sha256, "size": size,
             "cpu": cpu_model(), "flags": cpu_flags(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
             "darknet_py": __version__, "candidates": candidates, "fast": fast,
             "versions": {package: installed_version(package) for package in ("torch", "onnxruntime", "openvino")}}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def recall(key: str) -> Choice | None:
    """The remembered verdict for `key`, or None (none yet, or a cache file that cannot be read: measure again)."""
    try:
        entry = json.loads(cache_path().read_text())[key]
        return Choice(entry["backend"], {k: float(v) for k, v in entry["times_ms"].items()}, remembered=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remember(key: str, choice: Choice) -> None:
    """Add `choice` to the cache file (written whole, atomically); a cache that cannot be written is skipped: the
    next load measures again rather than fail."""
    path = cache_path()
    try:
        verdicts = json.loads(path.read_text())
        if not isinstance(verdicts, dict):
            verdicts = {}
    except (OSError, ValueError):
        verdicts = {}
    verdicts[key] = {"backend": choice.backend, "times_ms": choice.times_ms, "cpu": cpu_model(),
                     "date": time.strftime("%Y-%m-%d")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as handle:
            json.dump(verdicts, handle, indent=1)
    except OSError:
        pass


def timed_call(model: Backend, rng: np.random.Generator) -> Callable[[], object]:
    """The call `measure` times on `model`: what a user's run repeats. A detector's detect() and a classifier's
    classify() of one image at the network's size: the runtimes differ in their network, in what they return and
    in what detect() does with it (thresholds on onnxruntime's and OpenVINO's outputs cost more than on torch's
    tensors), while the resize is the same code for all. The image is random: a dense network's work does not
    depend on it. A network of other than 1 or 3 channels takes arrays of its own: its network-ready candidates()."""
    if model.channels not in (1, 3):
        pixels = rng.random((1, model.channels, model.height, model.width), dtype=np.float32)
        return lambda: model.candidates(pixels)
    shape = (model.height, model.width) if model.channels == 1 else (model.height, model.width, 3)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    return (lambda: model.classify(image)) if model.is_classifier else (lambda: model.detect(image))


def measure(builders: Mapping[str, Callable[[], Backend]], rounds: int = ROUNDS) -> tuple[Choice, Backend]:
    """Build every candidate, time its call (see `timed_call`) in interleaved rounds, and keep the fastest.

    Each round runs every candidate twice and times the second call: right after another runtime's call, that
    runtime's threads still spin on the cores for a while (OpenVINO's, onnxruntime's, torch's OpenMP pool), which
    measured torch's yolov4-tiny 49.8 ms against 36 ms in a run of its own; a user's process runs one runtime.
    (Not where a call takes a second or more: a few ms of spinning do not matter there.) Rounds rotate the order
    besides. A runtime that cannot take the network (an export refused: a
    recurrent network; a runtime failing to compile a layer) is left out, as an uninstalled one is.

    Args:
        builders (Mapping[str, Callable[[], Backend]]): candidate name → a function building it; "torch" first.
        rounds (int): timed calls per candidate, after one warm-up call each (SLOW_ROUNDS at most where a
            warm-up call took SLOW_CALL_S or more).

    Returns:
        (Choice, Backend): the verdict, and the chosen candidate already built.
    """
    models: dict[str, Backend] = {}
    for name, build in builders.items():
        try:
            models[name] = build()
        except Exception:  # an export refused, or a runtime that cannot compile a layer: not a candidate
            if name == "torch":
                raise  # the network itself is bad: load() says so
    rng = np.random.default_rng(0)
    calls = {name: timed_call(model, rng) for name, model in models.items()}
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        slowest = 0.0
        for name in names:
            start = time.perf_counter()
            calls[name]()
            slowest = max(slowest, time.perf_counter() - start)
        slow = slowest >= SLOW_CALL_S  # then a few ms of spinning threads do not matter: no settling call
        if slow:
            rounds = min(rounds, SLOW_ROUNDS)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                if not slow:
                    calls[name]()  # untimed: the previous runtime's threads still spin for a while after its call
                start = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - start)
    times_ms = {name: round(statistics.median(seconds) * 1000, 2) for name, seconds in times.items()}
    winner = pick(times_ms)
    return Choice(winner, times_ms), models[winner]
