"""Speed side by side with OpenCV DNN, in one process and interleaved: each round times every
backend once, in rotating order, so drift in machine load hits all of them alike; figures are
medians over the rounds after warm-up.

Per model: forward latency at batch 1 (network only), end-to-end `detect()` latency on dog.jpg
(read-in image → pre-processing → network → decoding → NMS → boxes on the original image), and
forward throughput at each --batch > 1. Then video: annotated-video frames/s of `darknet-py detect`
against a plain OpenCV-DNN read → detect → draw → write loop on the same file.

    python -m benchmarks.run [--models yolov4-tiny:416,yolov4-csp:512]
        [--backends torch,torch-compile,onnxruntime,onnxruntime-int8,openvino,openvino-int8,opencv]
        [--batch 1,8] [--device cpu|cuda]
        [--rounds 15] [--video PATH | --no-video] [--out benchmarks/results]

Models whose official weights are not in ../shared get synthetic weights (weights_tools.synth)
with the objectness biases of the output convolutions set to −6: a trained network passes a
handful of boxes at threshold 0.25, random weights would pass every one of them and time NMS
instead of the network. Writes bench.json, bench.md and bench.png (latency chart) under --out.
int8 rows are calibrated on the shared photos: onnxruntime's static quantisation for
onnxruntime-int8, NNCF's for openvino-int8 (OpenVINO IR). openvino runs the same fp32 ONNX file as
onnxruntime, with the f32 precision hint darknet_py always sets.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

import darknet_py
from darknet_py.backends.onnxruntime import OnnxDetector
from darknet_py.backends.openvino import OpenVinoDetector
from darknet_py.core.fileio import atomic_path, atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from darknet_py.export.onnx import ExportOptions, export_onnx
from darknet_py.export.openvino import export_openvino
from darknet_py.export.quantize import Int8Options
from darknet_py.format.names import default_names
from weights_tools.synth import synthesize

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DARKNET_PY_SHARED", REPO.parent / "shared"))
PHOTO = SHARED / "data" / "images" / "dog.jpg"
CALIBRATION = SHARED / "data" / "images"
SYNTHETIC_OBJECTNESS_BIAS = -6.0
# torch / torch-compile run darknet_py's default pre-processing (darknet's resize); the *-opencv-resize rows are
# the same with cv2.resize, the pre-processing darknet_py had before, timed in the same rounds
ALL_BACKENDS = ("torch", "torch-opencv-resize", "torch-compile", "torch-compile-opencv-resize", "onnxruntime",
                "onnxruntime-int8", "openvino", "openvino-int8", "opencv")


@dataclass
class Backend:
    name: str
    forward: Callable[[np.ndarray], object]  # network-ready NCHW float32 → outputs
    detect: Callable[[np.ndarray], object]  # BGR image → detections
    setup_s: float
    times: dict[str, list[float]] = field(default_factory=dict)


def model_files(name: str, side: int, folder: Path) -> tuple[Path, Path, str]:
    cfg = SHARED / "zoo" / "cfg" / f"{name}.cfg"
    official = SHARED / "zoo" / "weights" / f"{name}.weights"
    if official.exists():
        return cfg, official, "official"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        model = synthesize(cfg, seed=0)
    with torch.no_grad():
        for index, spec in zip(model.head_indices, model.heads):
            bias = model.layers[index - 1].conv.bias
            for anchor in range(len(spec.anchors)):
                bias[anchor * (5 + spec.classes) + 4] = SYNTHETIC_OBJECTNESS_BIAS
    weights = folder / f"{name}.weights"
    model.save_weights(weights)
    return cfg, weights, "synthetic"


def _torch_backend(cfg: Path, weights: Path, side: int, device: str, compile: bool = False,
                   resize: str = "darknet") -> tuple[Callable, Callable]:
    model = darknet_py.load(cfg, weights, device=device, size=side, resize=resize).accelerate(compile=compile)
    runner = model.runner()

    def forward(x: np.ndarray):
        out = runner.network(torch.from_numpy(x).to(device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out
    return forward, model.detect


def _exported(cfg: Path, weights: Path, side: int, folder: Path, int8: bool, suffix: str) -> Path:
    """The boxes export (.onnx, or OpenVINO IR for .xml), made once per run."""
    path = folder / f"{cfg.stem}-{side}{'-int8' if int8 else ''}{suffix}"
    if not path.exists():
        model = darknet_py.load(cfg, weights, size=side)
        export = export_openvino if suffix == ".xml" else export_onnx
        export(model, path, default_names(model.num_classes), ExportOptions("boxes"), str(weights),
               Int8Options(str(CALIBRATION)) if int8 else None)
    return path


def _onnx_backend(cfg: Path, weights: Path, side: int, folder: Path, int8: bool, device: str) -> tuple[Callable, Callable]:
    detector = OnnxDetector(_exported(cfg, weights, side, folder, int8, ".onnx"), device=device)
    return detector.run, detector.detect


def _openvino_backend(cfg: Path, weights: Path, side: int, folder: Path, int8: bool) -> tuple[Callable, Callable]:
    # fp32: the very .onnx file onnxruntime runs; int8: NNCF-quantised IR
    detector = OpenVinoDetector(_exported(cfg, weights, side, folder, int8, ".xml" if int8 else ".onnx"))
    return detector.run, detector.detect


def _opencv_backend(cfg: Path, weights: Path, side: int) -> tuple[Callable, Callable]:
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    outputs = net.getUnconnectedOutLayersNames()
    model = cv2.dnn_DetectionModel(cv2.dnn.readNetFromDarknet(str(cfg), str(weights)))
    model.setInputParams(scale=1 / 255, size=(side, side), swapRB=True)

    def forward(x: np.ndarray):
        net.setInput(x)
        return net.forward(outputs)
    return forward, lambda image: model.detect(image, confThreshold=0.25, nmsThreshold=0.45)


def make_backends(names: list[str], cfg: Path, weights: Path, side: int, folder: Path, device: str) -> list[Backend]:
    makers = {
        "torch": lambda: _torch_backend(cfg, weights, side, device),
        "torch-opencv-resize": lambda: _torch_backend(cfg, weights, side, device, resize="opencv"),
        "torch-compile": lambda: _torch_backend(cfg, weights, side, device, compile=True),
        "torch-compile-opencv-resize": lambda: _torch_backend(cfg, weights, side, device, compile=True, resize="opencv"),
        "onnxruntime": lambda: _onnx_backend(cfg, weights, side, folder, False, device),
        "onnxruntime-int8": lambda: _onnx_backend(cfg, weights, side, folder, True, device),
        "openvino": lambda: _openvino_backend(cfg, weights, side, folder, False),
        "openvino-int8": lambda: _openvino_backend(cfg, weights, side, folder, True),
        "opencv": lambda: _opencv_backend(cfg, weights, side),
    }
    backends = []
    for name in names:
        start = time.monotonic()
        forward, detect = makers[name]()
        backends.append(Backend(name, forward, detect, time.monotonic() - start))
    return backends


def interleaved(backends: list[Backend], metric: str, call: Callable[[Backend], object], rounds: int, warmup: int = 3) -> None:
    for backend in backends:
        for _ in range(warmup):
            call(backend)
        backend.times[metric] = []
    for r in range(rounds):
        for backend in backends[r % len(backends):] + backends[: r % len(backends)]:
            start = time.perf_counter()
            call(backend)
            backend.times[metric].append(time.perf_counter() - start)


def bench_model(spec: str, args, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    print(f"{name} {side} ({kind} weights): setting up {', '.join(args.backends)}…", flush=True)
    backends = make_backends(args.backends, cfg, weights, side, folder, args.device)
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (side, side), swapRB=True)
    interleaved(backends, "forward_b1", lambda b: b.forward(blob), args.rounds)
    interleaved(backends, "detect_b1", lambda b: b.detect(image), args.rounds)
    for batch in (b for b in args.batch if b > 1):
        many = np.ascontiguousarray(np.repeat(blob, batch, 0))
        interleaved(backends, f"forward_b{batch}", lambda b: b.forward(many), max(3, args.rounds // 3), warmup=1)
    result = {"model": name, "size": side, "weights": kind, "backends": {}}
    for backend in backends:
        medians = {metric: statistics.median(times) for metric, times in backend.times.items()}
        entry = {"setup_s": round(backend.setup_s, 2)}
        for metric, seconds in medians.items():
            batch = int(metric.rsplit("_b", 1)[1])
            entry[f"{metric}_ms"] = round(seconds * 1000, 2)
            if batch > 1:
                entry[f"{metric}_images_per_s"] = round(batch / seconds, 1)
        result["backends"][backend.name] = entry
    if "opencv" in result["backends"]:
        reference = result["backends"]["opencv"]
        for entry in result["backends"].values():
            for metric in ("forward_b1_ms", "detect_b1_ms"):
                entry[metric.replace("_ms", "_vs_opencv")] = round(entry[metric] / reference[metric], 3)
    for backend_name, entry in result["backends"].items():
        print(f"  {backend_name:<17} forward {entry['forward_b1_ms']:8.2f} ms   detect {entry['detect_b1_ms']:8.2f} ms"
              + (f"   ({entry['detect_b1_vs_opencv']:.2f}× OpenCV)" if "detect_b1_vs_opencv" in entry else ""), flush=True)
    return result


# -- pre-processing --------------------------------------------------------------------
def bench_preprocess(rounds: int) -> dict:
    """prepare() with darknet's resize against cv2.resize (the previous default), interleaved, per image:
    dog.jpg (768x576) and a 1280x720 video frame, to 416x416 stretched and letterboxed."""
    from darknet_py.pipeline.preprocess import prepare

    frame = cv2.VideoCapture(str(SHARED / "data" / "video" / "pedestrians.avi")).read()[1]
    sources = {"dog.jpg 768x576": cv2.imread(str(PHOTO)), "video frame 1280x720": frame}
    out = np.empty((3, 416, 416), np.float32)
    rows = []
    for source_name, image in sources.items():
        for letterbox in (False, True):
            times: dict[str, list[float]] = {"darknet": [], "opencv": []}
            for _ in range(3):
                for resize in times:
                    prepare(image, 416, 416, letterbox, out=out, resize=resize)
            for r in range(max(rounds, 30)):
                for resize in (("darknet", "opencv") if r % 2 else ("opencv", "darknet")):
                    start = time.perf_counter()
                    prepare(image, 416, 416, letterbox, out=out, resize=resize)
                    times[resize].append(time.perf_counter() - start)
            medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
            rows.append({"source": source_name, "letterbox": letterbox, "darknet_ms": round(medians["darknet"], 3),
                         "opencv_ms": round(medians["opencv"], 3), "ratio": round(medians["darknet"] / medians["opencv"], 2)})
            print(f"  prepare {source_name} letterbox={letterbox}: darknet {medians['darknet']:.3f} ms, "
                  f"cv2.resize {medians['opencv']:.3f} ms", flush=True)
    return {"rows": rows}


# -- video ---------------------------------------------------------------------------
def opencv_video_loop(video: Path, cfg: Path, weights: Path, side: int, out: Path,
                      clock: Callable[[str], None] = lambda stage: None) -> tuple[int, float]:
    """What an OpenCV-DNN user writes: read, detect, draw, write; frames and seconds. `clock(stage)` is called
    after each stage of every frame ("decode", "detect", "draw", "encode"; benchmarks/video_stages.py)."""
    start = time.perf_counter()
    model = cv2.dnn_DetectionModel(cv2.dnn.readNetFromDarknet(str(cfg), str(weights)))
    model.setInputParams(scale=1 / 255, size=(side, side), swapRB=True)
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*("mp4v" if out.suffix == ".mp4" else "MJPG")), fps, size)
    frames = 0
    while True:
        clock("start")
        ok, frame = capture.read()
        if not ok:
            break
        clock("decode")
        class_ids, scores, boxes = model.detect(frame, confThreshold=0.25, nmsThreshold=0.45)
        clock("detect")
        for c, s, (x, y, w, h) in zip(np.ravel(class_ids), np.ravel(scores), np.reshape(boxes, (-1, 4))):
            cv2.rectangle(frame, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2)
            cv2.putText(frame, f"{int(c)} {s:.2f}", (int(x), int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1)
        clock("draw")
        writer.write(frame)
        clock("encode")
        frames += 1
    writer.release()
    return frames, time.perf_counter() - start


def ours_video(video: Path, model_args: list[str], out: Path, default_codec: bool = False) -> tuple[int, float]:
    """`darknet-py detect VIDEO` timed whole; frames written and seconds. It writes the OpenCV loop's codec, like for
    like (MJPG for an .avi, else mp4v), unless *default_codec*: then what the command writes by default (H.264).
    With `--no-save --save-json` in *model_args* the frames are the records of detections.json."""
    from darknet_py import cli

    codec = [] if default_codec else ["--codec", "mjpg" if video.suffix.lower() == ".avi" else "mp4v"]
    start = time.perf_counter()
    code = cli.main(["detect", str(video), *model_args, *codec, "--output", str(out)])
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"darknet-py detect failed ({code})")
    if "--no-save" in model_args:  # nothing annotated: the records say how many frames were detected
        return len(json.loads((out / "detections.json").read_text())), seconds
    (written,) = [f for f in out.iterdir() if f.is_file()]
    frames = int(cv2.VideoCapture(str(written)).get(cv2.CAP_PROP_FRAME_COUNT))
    return frames, seconds


def bench_video(video: Path, folder: Path, rounds: int) -> dict:
    cfg, weights, _ = model_files("yolov4-tiny", 416, folder)
    int8 = folder / "video-int8.onnx"
    model = darknet_py.load(cfg, weights)
    export_onnx(model, int8, default_names(80), ExportOptions("boxes"), str(weights), Int8Options(str(CALIBRATION)))
    openvino_int8 = folder / "video-int8.xml"  # NNCF's int8 IR, the fastest int8 path of the latency table
    export_openvino(model, openvino_int8, default_names(80), ExportOptions("boxes"), str(weights), Int8Options(str(CALIBRATION)))
    runs: dict[str, Callable[[Path], tuple[int, float]]] = {
        # the same container and codec as darknet-py is asked for (--codec: MJPG .avi / mp4v .mp4)
        "opencv loop": lambda out: opencv_video_loop(video, cfg, weights, 416, out / f"cv{'.avi' if video.suffix.lower() == '.avi' else '.mp4'}"),
        "darknet-py detect (torch)": lambda out: ours_video(video, ["--cfg", str(cfg), "--weights", str(weights)], out),
        "darknet-py detect (torch, --resize opencv)": lambda out: ours_video(
            video, ["--cfg", str(cfg), "--weights", str(weights), "--resize", "opencv"], out),
        "darknet-py detect (onnxruntime-int8)": lambda out: ours_video(video, ["--weights", str(int8)], out),
        "darknet-py detect (openvino-int8)": lambda out: ours_video(video, ["--weights", str(openvino_int8)], out),
        # the command's default output (H.264 .mp4), which an OpenCV pip build cannot write
        "darknet-py detect (torch, H.264)": lambda out: ours_video(
            video, ["--cfg", str(cfg), "--weights", str(weights)], out, default_codec=True),
        "darknet-py detect (openvino-int8, H.264)": lambda out: ours_video(
            video, ["--weights", str(openvino_int8)], out, default_codec=True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    frames: dict[str, int] = {}
    for r in range(rounds):
        for name, run in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                frames[name], elapsed = run(Path(tmp))
            seconds[name].append(elapsed)
            print(f"  video round {r + 1}: {name}: {frames[name]} frames in {elapsed:.1f} s", flush=True)
    result = {"video": video.name, "model": "yolov4-tiny:416", "runs": {}}
    for name in runs:
        fps = frames[name] / statistics.median(seconds[name])
        result["runs"][name] = {"frames": frames[name], "frames_per_s": round(fps, 2)}
    reference = result["runs"]["opencv loop"]["frames_per_s"]
    for entry in result["runs"].values():
        entry["vs_opencv"] = round(entry["frames_per_s"] / reference, 3)
    return result


# -- report --------------------------------------------------------------------------
def markdown(report: dict) -> str:
    batches = [b for b in report["batches"] if b > 1]
    lines = [f"Measured {report['date']} on {report['machine']} (torch {report['torch']}, onnxruntime "
             f"{report['onnxruntime']}, OpenVINO {report.get('openvino', '-')}, OpenCV {report['opencv']}); "
             f"medians of {report['rounds']} interleaved rounds.", "",
             "| model | backend | forward b1 ms | detect() b1 ms | detect vs OpenCV |"
             + "".join(f" forward b{b} images/s |" for b in batches),
             "|---|---|---|---|---|" + "---|" * len(batches)]
    for model in report["models"]:
        for name, e in model["backends"].items():
            extra = "".join(f" {e.get(f'forward_b{b}_images_per_s', '')} |" for b in batches)
            ratio = e.get("detect_b1_vs_opencv", "")
            lines.append(f"| {model['model']} {model['size']} ({model['weights']}) | {name} | {e['forward_b1_ms']} | "
                         f"{e['detect_b1_ms']} | {ratio}{'×' if ratio != '' else ''} |{extra}")
    if report.get("preprocess"):
        lines += ["", "Pre-processing alone (prepare(), 416x416, medians of interleaved rounds):", "",
                  "| source | letterbox | darknet's resize ms | cv2.resize ms | ratio |", "|---|---|---|---|---|"]
        lines += [f"| {r['source']} | {r['letterbox']} | {r['darknet_ms']} | {r['opencv_ms']} | {r['ratio']}× |"
                  for r in report["preprocess"]["rows"]]
    if report.get("video"):
        v = report["video"]
        lines += ["", f"Video ({v['video']}, {v['model']}, annotated video written: MJPG as the OpenCV loop writes it, "
                  "or H.264, darknet-py's default, where the row says so):", "",
                  "| run | frames | frames/s | vs OpenCV loop |", "|---|---|---|---|"]
        lines += [f"| {name} | {e['frames']} | {e['frames_per_s']} | {e['vs_opencv']}× |" for name, e in v["runs"].items()]
    return "\n".join(lines) + "\n"


COLORS = {"torch": (60, 120, 230), "torch-compile": (30, 70, 160), "torch-opencv-resize": (150, 180, 240),
          "torch-compile-opencv-resize": (110, 140, 200), "onnxruntime": (60, 170, 60), "onnxruntime-int8": (40, 110, 40),
          "openvino": (200, 120, 40), "openvino-int8": (140, 80, 20), "opencv": (120, 120, 120)}


def chart(report: dict) -> np.ndarray:
    """Horizontal bars of detect() latency per model and backend, each model scaled to its slowest."""
    rows = [(m, name, e["detect_b1_ms"]) for m in report["models"] for name, e in m["backends"].items()]
    height = 60 + 34 * len(rows) + 26 * len(report["models"])
    image = np.full((height, 900, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, "end-to-end detect() latency, batch 1 (ms, lower is better)", (20, 30), font, 0.65, (0, 0, 0), 1, cv2.LINE_AA)
    y = 50
    for model in report["models"]:
        cv2.putText(image, f"{model['model']} {model['size']} ({model['weights']} weights)", (20, y + 16), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        y += 26
        slowest = max(e["detect_b1_ms"] for e in model["backends"].values())
        for name, entry in model["backends"].items():
            width = int(560 * entry["detect_b1_ms"] / slowest)
            cv2.putText(image, name, (20, y + 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            cv2.rectangle(image, (190, y + 4), (190 + width, y + 28), COLORS.get(name, (0, 0, 200)), -1)
            cv2.putText(image, f"{entry['detect_b1_ms']:.1f}", (196 + width, y + 22), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
            y += 34
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="yolov4-tiny:416,yolov4-csp:512")
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS))
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--video", default=str(SHARED / "data" / "video" / "pedestrians.avi"))
    parser.add_argument("--video-rounds", type=int, default=2)
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    unknown = set(args.backends) - set(ALL_BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(ALL_BACKENDS)}")
    if args.device != "cpu":  # OpenCV's CUDA DNN is a separate build and OpenVINO has no CUDA: the CPU tables carry them
        args.backends = [b for b in args.backends if b not in ("opencv", "openvino", "openvino-int8")]
    args.batch = [int(b) for b in args.batch.split(",")]
    import onnxruntime
    import openvino

    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{cpu_model()} ({os.cpu_count()} cores), "
              f"{torch.get_num_threads()} torch threads, device {args.device}", "cpu_flags": cpu_flags(),
              "load_average_at_start": round(os.getloadavg()[0], 2),
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__.split("-")[0],
              "opencv": cv2.__version__,
              "rounds": args.rounds, "batches": args.batch, "models": [], "video": None,
              "preprocess": bench_preprocess(args.rounds)}
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="darknet_py-bench-") as tmp:
        for spec in filter(None, args.models.split(",")):
            report["models"].append(bench_model(spec, args, Path(tmp)))
            save(report, out)  # a run cut short (busy machine, Ctrl-C) keeps the models it finished
        if not args.no_video:
            report["video"] = bench_video(Path(args.video), Path(tmp), args.video_rounds)
    save(report, out)
    print(markdown(report))


def save(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "bench.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "bench.md", "w") as handle:
        handle.write(markdown(report))
    with atomic_path(out / "bench.png", ".png") as tmp_png:
        cv2.imwrite(tmp_png, chart(report))

if __name__ == "__main__":
    main()
