"""GPU speed: torch eager vs CUDA graphs vs torch.compile (+ graphs), fp16 and fp32, batch 1 and 32.

Two figures per configuration, both medians over --repeats timed blocks after warm-up:
- network images/s: forward pass + box decoding on an input already on the GPU, timed with CUDA
  events (what the Scaled-YOLOv4 paper counts as FPS; NMS excluded there too);
- detect() images/s: the whole call on dog.jpg repeated `batch` times (BGR image → uint8 upload →
  darknet's resize on the GPU → network → decoding → NMS → boxes on the original image).

Then pre-processing: detect() images/s with darknet's resize on the GPU (the default) against
`resize="opencv"` (cv2.resize on the CPU, float upload: the path before device-side pre-processing),
interleaved, for dog.jpg and a 1280x720 video frame at batch 1 and 32; and after the network the same
way: the rows above the objectness threshold fetched to the host in one copy (the default) against
gated on the device (`runner().fetch_rows = False`).

onnxruntime joins with its CUDA / TensorRT providers when the installed onnxruntime has them.
Then video: annotated-video frames/s of `darknet-py detect --device cuda --half` beside the plain
OpenCV-DNN loop on the CPU.

    python -m benchmarks.gpu [--models yolov4-tiny:416,yolov4-csp:512] [--batch 1,32]
        [--dtypes fp16,fp32] [--variants eager,graphs,compile] [--repeats 7]
        [--video PATH | --no-video] [--no-side-by-side] [--out benchmarks/results]

Writes gpu.json and gpu.md under --out. A configuration that fails is reported with its error
and the run goes on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from pathlib import Path

import cv2
import numpy as np
import torch

import darknet_py
from benchmarks.run import PHOTO, SHARED, model_files, opencv_video_loop, ours_video
from darknet_py.core.fileio import atomic_write

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {  # name → Darknet.accelerate arguments
    "eager": dict(cuda_graphs=False),
    "graphs": dict(cuda_graphs=True),
    "compile": dict(cuda_graphs=True, compile=True),
}
PAPER_FPS = {"yolov4-csp:512": 97.0}  # V100, batch 1, as published


def _blocks(call, per_block: int, repeats: int) -> float:
    """Median seconds per call over `repeats` blocks of `per_block` calls, timed with CUDA events."""
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(per_block):
            call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000 / per_block)
    return statistics.median(times)


def _median_seconds(call, repeats: int, warmup: int = 3) -> float:
    """Median wall-clock seconds of calls that return host results (so they end synchronised)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _calls_per_block(call) -> int:
    """Enough calls for about 0.2 s per block."""
    start = time.perf_counter()
    call()
    torch.cuda.synchronize()
    return max(3, min(200, int(0.2 / max(time.perf_counter() - start, 1e-5))))


def torch_config(cfg: Path, weights: Path, side: int, dtype: str, variant: str, batch: int, repeats: int) -> dict:
    model = darknet_py.load(cfg, weights, device="cuda", size=side)
    if dtype == "fp16":
        model = model.half()
    model.accelerate(**VARIANTS[variant])
    runner = model.runner()
    x = torch.rand(batch, 3, side, side, device="cuda")
    setup = time.perf_counter()
    runner.run(x)  # capture / compile
    torch.cuda.synchronize()
    setup = time.perf_counter() - setup
    for _ in range(3):
        runner.run(x)
    per_call = _blocks(lambda: runner.run(x), _calls_per_block(lambda: runner.run(x)), repeats)
    reference = darknet_py.load(cfg, weights, device="cuda", size=side).accelerate(cuda_graphs=False).runner().run(x)
    got = runner.run(x)
    error = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(got, reference))
    images = [cv2.imread(str(PHOTO))] * batch
    detect_s = _median_seconds(lambda: model.detect(images), repeats)
    return {"network_images_per_s": round(batch / per_call, 1), "network_ms": round(per_call * 1000, 3),
            "detect_images_per_s": round(batch / detect_s, 1), "detect_ms": round(detect_s * 1000, 2),
            "first_call_s": round(setup, 2), "max_rel_error_vs_fp32_eager": float(f"{error:.2e}"),
            **({"compiled_kept": runner.compiled} if variant == "compile" else {})}


def precision(cfg: Path, weights: Path, side: int) -> dict[str, float]:
    """‖heads − float64 heads‖ / ‖float64 heads‖ on dog.jpg, per device and dtype."""
    from darknet_py.pipeline.detect import prepare_batch

    pixels = torch.from_numpy(prepare_batch(str(PHOTO), side, side, False).pixels)

    def heads(device: str, dtype: torch.dtype, tf32: bool = False) -> torch.Tensor:
        torch.backends.cudnn.allow_tf32 = tf32
        model = darknet_py.load(cfg, weights, device=device, size=side).to(dtype)
        with torch.inference_mode():
            out = model(pixels.to(device, dtype))
        return torch.cat([h.double().cpu().reshape(-1) for h in out])

    allowed = torch.backends.cudnn.allow_tf32
    try:
        reference = heads("cpu", torch.float64)
        runs = {"cpu fp32": heads("cpu", torch.float32), "cuda fp32 (TF32 off)": heads("cuda", torch.float32),
                "cuda fp32 (TF32 on, torch's default)": heads("cuda", torch.float32, tf32=True),
                "cuda fp16": heads("cuda", torch.float16)}
    finally:
        torch.backends.cudnn.allow_tf32 = allowed
    return {name: float((out - reference).norm() / reference.norm()) for name, out in runs.items()}


def onnx_providers() -> list[str]:
    import onnxruntime

    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in onnxruntime.get_available_providers()]


def onnx_config(cfg: Path, weights: Path, side: int, batch: int, repeats: int, folder: Path) -> dict:
    from darknet_py.backends.onnxruntime import OnnxDetector
    from darknet_py.export.onnx import ExportOptions, export_onnx
    from darknet_py.format.names import default_names

    path = folder / f"{cfg.stem}-{side}-fp16.onnx"
    if not path.exists():
        export_onnx(darknet_py.load(cfg, weights, size=side), path, default_names(80), ExportOptions("boxes", half=True))
    detector = OnnxDetector(path, device="cuda")
    pixels = np.random.default_rng(0).random((batch, 3, side, side), dtype=np.float32)
    seconds = _median_seconds(lambda: detector.run(pixels), repeats)
    return {"network_images_per_s": round(batch / seconds, 1), "network_ms": round(seconds * 1000, 3),
            "providers": detector.session.get_providers(), "note": "host input (includes the upload)"}


def video_runs(video: Path, folder: Path, rounds: int) -> dict:
    """Annotated-video frames/s: darknet-py detect on the GPU (fp16, batches of 8) beside the plain
    OpenCV-DNN read → detect → draw → write loop on this machine's CPU (OpenCV has no CUDA DNN in pip)
    when the installed OpenCV still reads darknet files."""
    cfg, weights, _ = model_files("yolov4-tiny", 416, folder)
    ours = ["--cfg", str(cfg), "--weights", str(weights), "--device", "cuda", "--half"]
    runs = {
        "darknet-py detect --device cuda --half --batch 8": lambda out: ours_video(video, [*ours, "--batch", "8"], out),
        "darknet-py detect --device cuda --half": lambda out: ours_video(video, ours, out),
        "darknet-py detect --device cuda --half --batch 8 --resize opencv": lambda out: ours_video(
            video, [*ours, "--batch", "8", "--resize", "opencv"], out),
        # issue 29's two video lines: detections only (JSON records), and the command's default H.264 output
        "darknet-py detect --device cuda --half --batch 8 --no-save --save-json": lambda out: ours_video(
            video, [*ours, "--batch", "8", "--no-save", "--save-json"], out),
        "darknet-py detect --device cuda --half --batch 8 (H.264)": lambda out: ours_video(
            video, [*ours, "--batch", "8"], out, default_codec=True),
    }
    if hasattr(cv2.dnn, "readNetFromDarknet"):  # OpenCV 5 removed it
        runs["opencv loop (CPU)"] = lambda out: opencv_video_loop(video, cfg, weights, 416, out / "cv.avi")
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    frames: dict[str, int] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                frames[name], elapsed = run(Path(tmp))
            seconds[name].append(elapsed)
    return {name: {"frames": frames[name], "frames_per_s": round(frames[name] / statistics.median(seconds[name]), 1)}
            for name in runs}


def _sources() -> dict[str, np.ndarray]:
    frame = cv2.VideoCapture(str(SHARED / "data" / "video" / "pedestrians.avi")).read()[1]
    return {"dog.jpg 768x576": cv2.imread(str(PHOTO)), "video frame 1280x720": frame}


def _interleaved_detect(models: dict, repeats: int) -> list[dict]:
    """detect() images/s of each model, for each source at batch 1 and 32, the models' calls interleaved."""
    rows = []
    for source, image in _sources().items():
        for batch in (1, 32):
            images = [image] * batch
            seconds: dict[str, list[float]] = {name: [] for name in models}
            for model in models.values():
                for _ in range(3):
                    model.detect(images)
            for _ in range(repeats):
                for name, model in models.items():
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    model.detect(images)
                    torch.cuda.synchronize()
                    seconds[name].append(time.perf_counter() - start)
            rows.append({"source": source, "batch": batch, **{f"{name}_images_per_s": round(batch / statistics.median(t), 1)
                                                               for name, t in seconds.items()}})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def preprocess_rows(cfg: Path, weights: Path, side: int, repeats: int) -> list[dict]:
    """detect() images/s, fp16 + CUDA graphs: darknet's resize on the GPU against cv2.resize on the CPU."""
    return _interleaved_detect({resize: darknet_py.load(cfg, weights, device="cuda", size=side, resize=resize).half().accelerate()
                                for resize in ("darknet", "opencv")}, repeats)


def fetch_rows(cfg: Path, weights: Path, side: int, repeats: int) -> list[dict]:
    """detect() images/s, fp16 + CUDA graphs: the rows above the objectness threshold fetched to the host in one copy
    (pipeline/fetch_gated.py, the default) against gated on the device (TorchRunner.fetch_rows off: the path before)."""
    models = {}
    for name, fetch in (("fetched", True), ("device_gate", False)):
        models[name] = darknet_py.load(cfg, weights, device="cuda", size=side).half().accelerate()
        models[name].runner().fetch_rows = fetch
    return _interleaved_detect(models, repeats)


def _ab_table(rows: list[dict] | None, title: str, columns: dict[str, str]) -> list[str]:
    """Markdown lines of an `_interleaved_detect` table: one row per source and batch, a column per model."""
    if not rows:
        return []
    head = "| source | batch | " + " | ".join(columns.values()) + " |"
    return ["", title, "", head, "|---|---|" + "---|" * len(columns)] + [
        f"| {r['source']} | {r['batch']} | " + " | ".join(str(r[f"{key}_images_per_s"]) for key in columns) + " |"
        for r in rows]


def markdown(report: dict) -> str:
    lines = [f"Measured {report['date']} on {report['gpu']} (torch {report['torch']}, CUDA {report['cuda']}); "
             f"medians of {report['repeats']} timed blocks."]
    lines += ["", "Relative error of the [yolo] head inputs on dog.jpg against a float64 CPU run:", "",
              "| model | " + " | ".join(next(iter(report["precision"].values()), {})) + " |",
              "|---|" + "---|" * len(next(iter(report["precision"].values()), {}))]
    lines += [f"| {spec} | " + " | ".join(f"{v:.1e}" for v in errors.values()) + " |" for spec, errors in report["precision"].items()]
    lines += ["", "| model | dtype | variant | batch | network images/s | network ms | detect() images/s | first call s | "
              "error vs fp32 eager |", "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        variant = row["variant"] + (" (compile check failed: ran eager)" if row.get("compiled_kept") is False else "")
        if "error" in row:
            lines.append(f"| {row['model']} | {row['dtype']} | {variant} | {row['batch']} | failed: {row['error']} | | | | |")
            continue
        lines.append(f"| {row['model']} | {row['dtype']} | {variant} | {row['batch']} | {row['network_images_per_s']} | "
                     f"{row['network_ms']} | {row.get('detect_images_per_s', '')} | {row.get('first_call_s', '')} | "
                     f"{row.get('max_rel_error_vs_fp32_eager', '')} |")
    lines += _ab_table(report.get("preprocess"), "Pre-processing: detect() images/s (yolov4-tiny 416, fp16, CUDA graphs), "
                       "darknet's resize on the GPU (uint8 upload, the default) against cv2.resize on the CPU (float upload, "
                       "`resize=\"opencv\"`):", {"darknet": "darknet's resize on the GPU", "opencv": "cv2.resize on the CPU"})
    lines += _ab_table(report.get("fetch"), "After the network: detect() images/s (yolov4-tiny 416, fp16, CUDA graphs), the "
                       "rows above the objectness threshold fetched to the host in one copy (the default) against gated on "
                       "the device:", {"fetched": "fetched in one copy", "device_gate": "gated on the device"})
    if report.get("video"):
        lines += ["", f"Video ({report['video_file']}, yolov4-tiny 416, annotated video written, whole command timed):", "",
                  "| run | frames | frames/s |", "|---|---|---|"]
        lines += [f"| {name} | {e['frames']} | {e['frames_per_s']} |" for name, e in report["video"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="yolov4-tiny:416,yolov4-csp:512")
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--dtypes", default="fp16,fp32")
    parser.add_argument("--variants", default="eager,graphs,compile")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--video", default=str(SHARED / "data" / "video" / "pedestrians.avi"))
    parser.add_argument("--video-rounds", type=int, default=3)
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--no-side-by-side", action="store_true",
                        help="skip the yolov4-tiny detect() tables (pre-processing, rows fetched vs gated on the device)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("no CUDA GPU visible to torch")
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    report = {"date": time.strftime("%Y-%m-%d"), "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cuda": torch.version.cuda, "repeats": args.repeats, "rows": [], "paper_fps": PAPER_FPS}
    providers = onnx_providers()
    print(f"{report['gpu']}; onnxruntime GPU providers: {providers or 'none'}", flush=True)
    report["precision"] = {}
    with tempfile.TemporaryDirectory(prefix="darknet_py-gpu-") as tmp:
        for spec in filter(None, args.models.split(",")):
            name, side = spec.split(":")
            cfg, weights, kind = model_files(name, int(side), Path(tmp))
            report["precision"][spec] = precision(cfg, weights, int(side))
            print(spec, "relative error of the heads against float64:", report["precision"][spec], flush=True)
            configs = [(dtype, variant, int(batch)) for dtype in args.dtypes.split(",") for variant in variants
                       for batch in args.batch.split(",") if not (variant == "compile" and dtype == "fp32")]
            configs += [("fp16", "onnxruntime", int(batch)) for batch in args.batch.split(",") if providers]
            for dtype, variant, batch in configs:
                row = {"model": spec, "weights": kind, "dtype": dtype, "variant": variant, "batch": batch}
                try:
                    if variant == "onnxruntime":
                        row.update(onnx_config(cfg, weights, int(side), batch, args.repeats, Path(tmp)))
                    else:
                        row.update(torch_config(cfg, weights, int(side), dtype, variant, batch, args.repeats))
                except Exception as exc:  # noqa: BLE001 - one failed configuration must not end the run
                    row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    traceback.print_exc()
                torch.cuda.empty_cache()
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
        cfg, weights, _ = model_files("yolov4-tiny", 416, Path(tmp))
        if not args.no_side_by_side:
            report["preprocess"] = preprocess_rows(cfg, weights, 416, args.repeats)
            report["fetch"] = fetch_rows(cfg, weights, 416, args.repeats)
        if not args.no_video:
            report["video_file"] = Path(args.video).name
            report["video"] = video_runs(Path(args.video), Path(tmp), args.video_rounds)
            report["opencv"] = cv2.__version__
            print(json.dumps(report["video"]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "gpu.json", "w") as handle:
        json.dump(report, handle, indent=1)
    with atomic_write(out / "gpu.md", "w") as handle:
        handle.write(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
