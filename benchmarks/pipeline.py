"""Where detect()'s time goes, stage by stage, beside OpenCV DNN's end-to-end time (issue 29).

yolov4-tiny 416 (official weights), default settings (darknet's resize, the cfg's NMS, multi-label), batch 1,
on dog.jpg (768x576) and a 1280x720 frame of pedestrians.avi. Each backend's detect() is taken apart into
the stages it runs, in its order, each timed on its own:

    read (cv2.imread / the next video frame) → preprocess (prepare_batch: darknet's resize into the float32
    batch) → to_tensor → forward (the network; for an exported graph, the graph with its box decoding)
    → decode (the candidates above the objectness threshold: for torch's [yolo] heads on the CPU only those
    rows, in C; for a graph, its decoded outputs gated) → threshold (class scores above the threshold)
    → nms → results (Detections)

and, in the same round, the whole `detect(image)` on the decoded image (read excluded, as in
benchmarks/run.py) and OpenCV's `dnn_DetectionModel.detect` with the same cfg and weights. detect() − forward,
the issue's figure, is reported twice: as the difference of the two medians, and measured inside each detect()
call (its time less the time of the network call it makes; see timed_network), the one to read; and that
per-call figure again with each backend alone for its rounds (outside_alone), as a user's process runs one. One process;
each round runs every backend once in rotating order; figures are medians over the rounds. Then the first
backend's preprocess and post-network stages (decode … results) are timed repeated back to back, warm: their
gap to the in-pipeline figures is what running right after the network (cold caches, threads) adds.

    python -m benchmarks.pipeline [--label before|after|after-amd-epyc|…] [--rounds 30]
        [--backends torch,torch-compile,onnxruntime,onnxruntime-int8,openvino,openvino-int8]

Writes benchmarks/results/pipeline.json, keeping the other labels' runs (so "before" stays while "after"
is re-measured; a run on another kind of CPU takes its own label, as the figures differ by CPU), and pipeline.md. About two minutes on 2 cores (most of it the int8 calibration).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

import darknet_py
from benchmarks.run import PHOTO, REPO, SHARED, _exported, _opencv_backend, model_files
from darknet_py.backends.graph import GraphDetector
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.backends.openvino import OpenVinoDetector
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from darknet_py.format.names import default_names
from darknet_py.pipeline.backend import Gated
from darknet_py.pipeline.detect import DetectOptions, choose, finish, prepare_batch, suppress

VIDEO = SHARED / "data" / "video" / "pedestrians.avi"
MODEL, SIDE = "yolov4-tiny", 416
STAGES = ("read", "preprocess", "to_tensor", "forward", "decode", "threshold", "nms", "results")
POST_NETWORK = ("decode", "threshold", "nms", "results")
ALL_BACKENDS = ("torch", "torch-compile", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8")
DEFAULT_BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8")  # compiling: a minute more
TARGET_OUTSIDE_MS = 1.5  # the bound on detect() − forward at batch 1
TARGET_VS_OPENCV = 0.5


# -- sources: what `read` times, and the decoded image every other stage works on -----------------------
class VideoFrames:
    """Frames of a video one after another, from the start again at the end (what a video loop decodes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture = cv2.VideoCapture(str(path))

    def read(self) -> np.ndarray:
        ok, frame = self.capture.read()
        if not ok:
            self.capture = cv2.VideoCapture(str(self.path))
            ok, frame = self.capture.read()
        return frame


def sources() -> dict[str, tuple[Callable[[], np.ndarray], np.ndarray]]:
    """name → (read one image, the fixed image detect() runs on)."""
    frames = VideoFrames(VIDEO)
    frame = frames.read()
    photo = cv2.imread(str(PHOTO))
    return {f"dog.jpg {photo.shape[1]}x{photo.shape[0]}": (lambda: cv2.imread(str(PHOTO)), photo),
            f"video frame {frame.shape[1]}x{frame.shape[0]}": (frames.read, frame)}


# -- one backend, taken apart --------------------------------------------------------------------------
@dataclass
class Staged:
    """A backend's detect() as separate stage calls (network + decode differ between torch and graphs)."""

    name: str
    backend: object  # darknet_py's Backend (Darknet or GraphDetector)
    to_tensor: Callable[[np.ndarray], object]
    forward: Callable[[object], object]
    decode: Callable[[object], Gated]  # the network's outputs → the candidates above the objectness threshold
    network: tuple[object, str] = (None, "")  # (owner, attribute) of the network call inside detect() (see timed_network)
    times: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # source → stage → seconds
    inside: list[float] = field(default_factory=lambda: [0.0])  # seconds in the network since the last reset

    def __post_init__(self) -> None:
        owner, attribute = self.network
        if owner is not None:
            timed_network(owner, attribute, self.inside)

    def run(self, read: Callable[[], np.ndarray], image: np.ndarray, clock: Callable[[str], None]):
        """Every stage once, in detect()'s order; `clock(stage)` is called after each. Returns the Detections."""
        b, options = self.backend, DetectOptions()
        read()
        clock("read")
        batch = prepare_batch(image, b.width, b.height, b.letter_box, b.resize, b.input_device, b.channels, reuse=True)
        clock("preprocess")
        x = self.to_tensor(batch.pixels)
        clock("to_tensor")
        outputs = self.forward(x)
        clock("forward")
        gated = self.decode(outputs)
        clock("decode")
        chosen = choose(gated, batch, options)
        clock("threshold")
        keep = suppress(b.heads, chosen, batch, options)
        clock("nms")
        found = finish(chosen, keep, batch, options, b.names or default_names(b.num_classes))
        clock("results")
        return found


def timed_network(owner: object, attribute: str, spent: list[float]) -> None:
    """Wraps the callable `owner.attribute` (the network call detect() makes: TorchRunner._forward, a graph's _infer)
    so every call adds its seconds to spent[0]: detect() − forward measured within one call, not as a difference
    of two medians whose noise (±1 ms of a 30 ms network) is the size of what is measured."""
    original = getattr(owner, attribute)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
    setattr(owner, attribute, timed)


def outside_calls(detect: Callable, image: np.ndarray, spent: list[float], rounds: int) -> list[float]:
    """Seconds each of `rounds` detect(image) calls spends outside its network call, `spent` being the counter
    timed_network adds the network's seconds to; two calls first, not counted."""
    seconds = []
    for i in range(rounds + 2):
        spent[0] = 0.0
        start = time.perf_counter()
        detect(image)
        if i >= 2:
            seconds.append(time.perf_counter() - start - spent[0])
    return seconds


def torch_staged(cfg: Path, weights: Path, compile: bool = False) -> Staged:
    """The torch backend; `compile`: its torch.compile path (a faster network, not the default)."""
    model = darknet_py.load(cfg, weights, size=SIDE).accelerate(compile=compile)
    runner = model.runner()
    return Staged("torch-compile" if compile else "torch", model, lambda pixels: torch.from_numpy(pixels).to(model.device),
                  runner.network, lambda heads: runner.gate_heads(heads, DetectOptions().conf_thresh),
                  network=(runner, "_forward"))


def graph_staged(name: str, detector: GraphDetector) -> Staged:
    return Staged(name, detector, lambda pixels: np.ascontiguousarray(pixels, np.float32), detector.run,
                  lambda outputs: detector.gate_outputs(outputs, DetectOptions().conf_thresh), network=(detector, "_infer"))


def make_staged(names: list[str], cfg: Path, weights: Path, folder: Path) -> list[Staged]:
    makers = {
        "torch": lambda: torch_staged(cfg, weights),
        "torch-compile": lambda: torch_staged(cfg, weights, compile=True),
        "onnxruntime": lambda: graph_staged("onnxruntime", OnnxDetector(_exported(cfg, weights, SIDE, folder, False, ".onnx"))),
        "onnxruntime-int8": lambda: graph_staged("onnxruntime-int8", OnnxDetector(
            _exported(cfg, weights, SIDE, folder, True, ".onnx"))),
        "openvino": lambda: graph_staged("openvino", OpenVinoDetector(_exported(cfg, weights, SIDE, folder, False, ".onnx"))),
        "openvino-int8": lambda: graph_staged("openvino-int8", OpenVinoDetector(
            _exported(cfg, weights, SIDE, folder, True, ".xml"))),
    }
    return [makers[name]() for name in names]


def same_detections(a, b) -> bool:
    return (np.array_equal(a.class_ids, b.class_ids) and np.array_equal(a.scores, b.scores)
            and np.array_equal(a.boxes, b.boxes))


# -- measuring -----------------------------------------------------------------------------------------
def timed_stages(staged: Staged, read, image) -> tuple[dict[str, float], list]:
    marks: dict[str, float] = {}
    last = [time.perf_counter()]

    def clock(stage: str) -> None:
        now = time.perf_counter()
        marks[stage] = now - last[0]
        last[0] = now
    found = staged.run(read, image, clock)
    return marks, found


def measure(staged: list[Staged], opencv_detect, srcs: dict, rounds: int, warmup: int = 3) -> tuple[dict, dict]:
    """Interleaved rounds: per source, every backend's stages then its whole detect(), and OpenCV's detect().
    Fills each Staged's `times`; returns source → backend → detect() seconds, and source → backend → seconds of
    each detect() outside its network call."""
    e2e: dict[str, dict[str, list[float]]] = {}
    outside: dict[str, dict[str, list[float]]] = {}  # detect() less the network inside that very call

    def ours(s: Staged):
        def one(source: str, read, image) -> None:
            marks, _ = timed_stages(s, read, image)
            s.inside[0] = 0.0
            start = time.perf_counter()
            s.backend.detect(image)
            whole = time.perf_counter() - start
            e2e[source][s.name].append(whole)
            outside[source][s.name].append(whole - s.inside[0])
            for stage, seconds in marks.items():
                s.times[source][stage].append(seconds)
        return one

    def opencv(source: str, read, image) -> None:
        start = time.perf_counter()
        opencv_detect(image)
        e2e[source]["opencv"].append(time.perf_counter() - start)

    def reset() -> None:
        for s in staged:
            s.times = {source: {stage: [] for stage in STAGES} for source in srcs}
        e2e.update({source: {name: [] for name in [s.name for s in staged] + ["opencv"]} for source in srcs})
        outside.update({source: {s.name: [] for s in staged} for source in srcs})

    runners = [ours(s) for s in staged] + [opencv]
    reset()
    for _ in range(warmup):
        for source, (read, image) in srcs.items():
            for run in runners:
                run(source, read, image)
    reset()  # warm-up rounds do not count
    for r in range(rounds):
        order = runners[r % len(runners):] + runners[:r % len(runners)]
        for source, (read, image) in srcs.items():
            for run in order:
                run(source, read, image)
    return e2e, outside


def back_to_back(call: Callable[[], object], rounds: int) -> float:
    """Median ms of `call` repeated with nothing between the calls (warm caches)."""
    for _ in range(5):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return ms(statistics.median(times))


def alone(staged: Staged, srcs: dict, rounds: int) -> dict[str, dict[str, float]]:
    """The first backend's preprocess and its post-network stages (decode … results on one forward's outputs),
    each repeated back to back: per source, what they cost warm, against the in-pipeline medians."""
    b, options = staged.backend, DetectOptions()
    names = b.names or default_names(b.num_classes)
    out = {}
    for source, (_, image) in srcs.items():
        def preprocess():
            return prepare_batch(image, b.width, b.height, b.letter_box, b.resize, b.input_device, b.channels, reuse=True)

        batch = prepare_batch(image, b.width, b.height, b.letter_box, b.resize, b.input_device, b.channels)
        outputs = staged.forward(staged.to_tensor(batch.pixels))

        def post():
            chosen = choose(staged.decode(outputs), batch, options)
            return finish(chosen, suppress(b.heads, chosen, batch, options), batch, options, names)
        out[source] = {"preprocess": back_to_back(preprocess, rounds), "post_network": back_to_back(post, rounds)}
    return out


def outside_alone(staged: list[Staged], srcs: dict, rounds: int) -> dict[str, dict[str, float]]:
    """Each backend's detect() outside its network call, measured within each call, with that backend alone:
    `rounds` detect() calls in a row per source (two more first, not counted). In the interleaved rounds the
    other runtimes' thread pools (onnxruntime's, OpenVINO's, OpenCV's, torch's) are still busy or waking when a
    backend's post-processing runs; a user's process runs one backend. Returns source → backend → ms."""
    out: dict[str, dict[str, float]] = {source: {} for source in srcs}
    for s in staged:
        for source, (_, image) in srcs.items():
            out[source][s.name] = ms(statistics.median(outside_calls(s.backend.detect, image, s.inside, rounds)))
    return out


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def summarise(staged: list[Staged], e2e: dict, outside: dict, alone_outside: dict, warm: dict) -> dict:
    result = {}
    for source, detects in e2e.items():
        opencv = statistics.median(detects["opencv"])
        rows = {}
        for s in staged:
            stages = {stage: statistics.median(v) for stage, v in s.times[source].items()}
            whole = statistics.median(detects[s.name])
            rows[s.name] = {
                "stages_ms": {stage: ms(v) for stage, v in stages.items()},
                "stages_sum_ms": ms(sum(v for k, v in stages.items() if k != "read")),
                "post_network_ms": ms(sum(stages[k] for k in POST_NETWORK)),
                "detect_ms": ms(whole),
                "detect_minus_forward_ms": ms(whole - stages["forward"]),  # two medians' difference (noisy)
                "outside_network_ms": ms(statistics.median(outside[source][s.name])),  # within each call
                "outside_network_p90_ms": ms(statistics.quantiles(outside[source][s.name], n=10)[-1]),
                "outside_network_alone_ms": alone_outside[source][s.name],  # the backend alone in its rounds
                "detect_vs_opencv": round(whole / opencv, 3),
            }
        result[source] = {"opencv_detect_ms": ms(opencv), "preprocess_alone_ms": warm[source]["preprocess"],
                          "post_network_alone_ms": warm[source]["post_network"], "alone_backend": staged[0].name,
                          "backends": rows}
    return result


def thread_settings() -> dict:
    info = torch.__config__.parallel_info()
    backend = re.search(r"ATen parallel backend: (.*)", info)
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "aten_parallel_backend": backend.group(1).strip() if backend else "?",
            "opencv_threads": cv2.getNumThreads(),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")
                    if k in os.environ}}


def versions() -> dict:
    import onnxruntime
    import openvino

    return {"darknet_py": darknet_py.__version__, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__.split("-")[0], "opencv": cv2.__version__, "numpy": np.__version__}


# -- report --------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    lines = []
    for label in ("before", "after", *sorted(set(report) - {"before", "after", "targets"})):
        run = report.get(label)
        if not run:
            continue
        lines += [f"## {label}: {run['date']}, {run['cpu']} ({run['cores']} cores), {run['threads']['torch_threads']} torch "
                  f"threads, OpenCV {run['versions']['opencv']} with {run['threads']['opencv_threads']} threads; medians "
                  f"of {run['rounds']} interleaved rounds, {MODEL} {SIDE}, batch 1", ""]
        for source, entry in run["sources"].items():
            lines += [f"{source}: OpenCV DNN detect() {entry['opencv_detect_ms']} ms; repeated back to back "
                      f"({entry.get('alone_backend', 'torch')}): preprocess {entry['preprocess_alone_ms']} ms, decode … results "
                      f"{entry.get('post_network_alone_ms', '-')} ms", "",
                      "| backend | " + " | ".join(STAGES) + " | detect() | detect − forward (medians) "
                      "| detect − forward (same call) | same call, backend alone | vs OpenCV |",
                      "|---|" + "---|" * (len(STAGES) + 5)]
            for name, row in entry["backends"].items():
                cells = " | ".join(f"{row['stages_ms'][s]:.2f}" for s in STAGES)
                same_call, alone_call = (f"{row[key]:.2f}" if key in row else "–"
                                         for key in ("outside_network_ms", "outside_network_alone_ms"))
                lines.append(f"| {name} | {cells} | {row['detect_ms']:.2f} | {row['detect_minus_forward_ms']:.2f} | "
                             f"{same_call} | {alone_call} | {row['detect_vs_opencv']:.2f}× |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after",
                        help="the run's key in pipeline.json: before, after, or one per kind of CPU (after-amd-epyc)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    names = [b for b in args.backends.split(",") if b]
    unknown = set(names) - set(ALL_BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(ALL_BACKENDS)}")
    srcs = sources()
    load_at_start = round(os.getloadavg()[0], 2)  # other work on the machine shows up in every figure
    with tempfile.TemporaryDirectory(prefix="darknet_py-pipeline-") as tmp:
        cfg, weights, _ = model_files(MODEL, SIDE, Path(tmp))
        print(f"setting up {', '.join(names)} and OpenCV…", flush=True)
        staged = make_staged(names, cfg, weights, Path(tmp))
        _, opencv_detect = _opencv_backend(cfg, weights, SIDE)
        for s in staged:  # the stages must add up to detect() itself, not to something else
            for source, (read, image) in srcs.items():
                _, found = timed_stages(s, read, image)
                if not same_detections(found[0], s.backend.detect(image)[0]):
                    raise SystemExit(f"{s.name} on {source}: the staged run differs from detect()")
        e2e, outside = measure(staged, opencv_detect, srcs, args.rounds)
        warm = alone(staged[0], srcs, args.rounds)
        by_itself = outside_alone(staged, srcs, args.rounds)
    run = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
           "threads": thread_settings(), "versions": versions(), "rounds": args.rounds, "model": f"{MODEL}:{SIDE}",
           "load_average": {"start": load_at_start, "end": round(os.getloadavg()[0], 2)},
           "sources": summarise(staged, e2e, outside, by_itself, warm)}
    out = Path(args.out)
    path = out / "pipeline.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report[args.label] = run
    report["targets"] = {"detect_minus_forward_ms": TARGET_OUTSIDE_MS, "detect_vs_opencv": TARGET_VS_OPENCV}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "pipeline.md", "w") as handle:
        handle.write(markdown(report))
    print(markdown({args.label: run}))


if __name__ == "__main__":
    main()
