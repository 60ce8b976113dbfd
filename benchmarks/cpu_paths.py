"""What this CPU allows the network, and what each exact path and torch.compile's warm-up cost (issue 29).

Issue 29 asks for detect() ≤ 0.5× OpenCV DNN's end-to-end time with the default (exact, fp32) path, and for the
default to be the fastest exact path the CPU has. Both depend on the CPU, so this measures, per model
(yolov4-tiny 416 official, yolov4-csp 512 synthetic), in one process:

- the network's FLOPs (darknet's BFLOPs count, as `darknet-py info` prints it);
- the CPU's fp32 peak as torch reaches it: the better of a 3072² matmul and a 256-channel 3x3 convolution on the
  threads detect() uses, in GFLOP/s, timed in the same interleaved rounds as the networks (this machine's speed
  drifts). FLOPs / peak is the time no fp32 network goes under here;
- forward at batch 1 of torch eager (the default), torch.compile, onnxruntime and OpenVINO fp32 (the exported ONNX), with
  their GFLOP/s as a share of that peak, and OpenCV DNN's forward and detect() (medians of interleaved rounds);
- what the issue's bound (0.5× OpenCV's detect() for yolov4-tiny, 0.45× for yolov4-csp) leaves the network once
  the default detect()'s time outside its network call is taken off (measured within each call, as
  benchmarks/pipeline.py does), and the share of peak the network would need;
- torch.compile's warm-up: the first detect() of a fresh process with an empty inductor cache (cold), then
  again with the cache that run left (warm), and after how many frames compiling pays back
  (warm-up / (eager − compiled detect() time per frame)).

    python -m benchmarks.cpu_paths [--rounds 9] [--models yolov4-tiny:416,yolov4-csp:512]

Writes benchmarks/results/cpu_paths.json and cpu_paths.md, one run per CPU model (a run replaces the earlier run on
the same model and keeps the others: sessions get different machines, and what is fastest differs between them).
About 7 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

import darknet_py
from benchmarks.pipeline import outside_calls, timed_network
from benchmarks.run import PHOTO, REPO, Backend, interleaved, make_backends, model_files
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_flags, cpu_model
from darknet_py.model.info import summary
from darknet_py.model.network import build

PATHS = ("torch", "torch-compile", "onnxruntime", "openvino", "opencv")
TARGET_VS_OPENCV = {"yolov4-tiny": 0.5, "yolov4-csp": 0.45}  # issue 29's bounds on the default detect() time
# one detect() in a fresh process: what a user's first call costs (load + compile + run), and its compiled flag
WARMUP_PROBE = """
import sys, time, cv2, darknet_py
model = darknet_py.load(sys.argv[1], sys.argv[2], size=int(sys.argv[3])).accelerate(compile=True)
image = cv2.imread(sys.argv[4])
start = time.perf_counter()
model.detect(image)
print(time.perf_counter() - start, model.runner().compiled)
"""


# the best fp32 rates torch reaches here, timed in the same interleaved rounds as the networks (this machine's
# speed drifts by a third from one minute to another, so a peak measured apart would not be the networks' peak)
PEAK_FLOPS = {"matmul_3072": 2 * 3072 ** 3, "conv3x3_256x52x52": 2 * 256 * 256 * 9 * 52 * 52}


def peak_kernels() -> list[Backend]:
    """The peak's kernels as pseudo-backends for `interleaved` (their forward is the kernel; no detect)."""
    a, b = torch.randn(3072, 3072), torch.randn(3072, 3072)
    conv, x = torch.nn.Conv2d(256, 256, 3, padding=1).eval(), torch.randn(1, 256, 52, 52)

    def matmul(_) -> None:
        with torch.inference_mode():
            a @ b

    def convolution(_) -> None:
        with torch.inference_mode():
            conv(x)
    return [Backend("matmul_3072", matmul, lambda _: None, 0.0), Backend("conv3x3_256x52x52", convolution, lambda _: None, 0.0)]


def warmup(cfg: Path, weights: Path, side: int, cache: Path) -> tuple[float, bool]:
    """Seconds of the first detect() of a fresh process compiling with inductor's cache in `cache`."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", WARMUP_PROBE, str(cfg), str(weights), str(side), str(PHOTO)],
                          env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"compile warm-up probe failed: {done.stderr[-2000:]}")
    seconds, compiled = done.stdout.split()[-2:]
    return float(seconds), compiled == "True"


def outside_network_ms(cfg: Path, weights: Path, side: int, rounds: int) -> float:
    """Median ms of the default detect() outside its network call, measured within each call (as
    benchmarks/pipeline.py does: a difference of two medians would carry the network's noise, tens of ms here)."""
    model = darknet_py.load(cfg, weights, size=side)
    spent = [0.0]
    timed_network(model.runner(), "_forward", spent)
    outside = outside_calls(model.detect, cv2.imread(str(PHOTO)), spent, rounds)
    return round(statistics.median(outside) * 1000, 2)


def bench_model(spec: str, rounds: int, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    bflops = summary(build(str(cfg), (side, side)))["bflops"]
    print(f"{name} {side} ({kind} weights, {bflops:.2f} BFLOPs): timing {', '.join(PATHS)}…", flush=True)
    backends = make_backends(list(PATHS), cfg, weights, side, folder, "cpu")
    image = cv2.imread(str(PHOTO))
    blob = cv2.dnn.blobFromImage(image, 1 / 255, (side, side), swapRB=True)
    kernels = peak_kernels()
    interleaved(backends + kernels, "forward", lambda b: b.forward(blob), rounds)
    interleaved(backends, "detect", lambda b: b.detect(image), rounds)
    by_kernel = {k.name: PEAK_FLOPS[k.name] / statistics.median(k.times["forward"]) / 1e9 for k in kernels}
    peak = max(by_kernel.values()) * 1e9
    paths = {}
    for b in backends:
        forward, detect = (statistics.median(b.times[m]) for m in ("forward", "detect"))
        paths[b.name] = {"forward_ms": round(forward * 1000, 2), "detect_ms": round(detect * 1000, 2),
                         "gflops": round(bflops / forward, 1), "share_of_peak": round(bflops * 1e9 / forward / peak, 3)}
    opencv = paths["opencv"]["detect_ms"]
    for entry in paths.values():
        entry["detect_vs_opencv"] = round(entry["detect_ms"] / opencv, 3)
    floor_ms = bflops * 1e9 / peak * 1000
    target = TARGET_VS_OPENCV.get(name, 0.5)
    outside = outside_network_ms(cfg, weights, side, rounds)
    budget = target * opencv - outside
    print("  compile warm-up (fresh processes)…", flush=True)
    with tempfile.TemporaryDirectory(prefix="darknet_py-inductor-") as cache:
        cold, cold_compiled = warmup(cfg, weights, side, Path(cache))
        warm, warm_compiled = warmup(cfg, weights, side, Path(cache))
    saved_ms = paths["torch"]["detect_ms"] - paths["torch-compile"]["detect_ms"]
    first_eager_ms = paths["torch"]["detect_ms"]
    result = {
        "model": name, "size": side, "weights": kind, "bflops": round(bflops, 3),
        "peak": {"gflops": round(peak / 1e9, 1), "by_kernel": {k: round(v, 1) for k, v in by_kernel.items()}},
        "paths": paths,
        "floor_forward_ms": round(floor_ms, 2),
        "target_vs_opencv": target,
        "target_detect_ms": round(target * opencv, 2),
        "outside_network_ms": outside,
        "network_budget_ms": round(budget, 2),
        "share_of_peak_needed": round(floor_ms / budget, 3) if budget > 0 else None,
        "compile": {"first_detect_cold_s": round(cold, 1), "first_detect_warm_s": round(warm, 1),
                    "compiled": cold_compiled and warm_compiled, "saved_per_frame_ms": round(saved_ms, 2),
                    "payback_frames_cold": round((cold - first_eager_ms / 1000) / (saved_ms / 1000)) if saved_ms > 0 else None,
                    "payback_frames_warm": round((warm - first_eager_ms / 1000) / (saved_ms / 1000)) if saved_ms > 0 else None},
    }
    for path, entry in paths.items():
        print(f"  {path:<14} forward {entry['forward_ms']:8.2f} ms ({entry['share_of_peak']:.0%} of peak)   detect "
              f"{entry['detect_ms']:8.2f} ms ({entry['detect_vs_opencv']:.3f}x OpenCV)", flush=True)
    print(f"  floor {floor_ms:.2f} ms; compile warm-up {cold:.1f} s cold / {warm:.1f} s warm, pays back after "
          f"{result['compile']['payback_frames_warm']} frames (warm)", flush=True)
    return result


def machine_report(rounds: int) -> dict:
    """The facts a per-CPU run starts with: date, CPU model and ISA flags, cores, torch threads, rounds, load."""
    return {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "rounds": rounds, "load_average": round(os.getloadavg()[0], 2)}


def timed_paths(backends: list[Backend], blob: np.ndarray, image: np.ndarray, rounds: int) -> dict[str, dict]:
    """Forward (on `blob`) and detect() (on `image`) of each backend in interleaved rounds: medians in ms, and
    detect() against the last backend's (OpenCV DNN), each printed as it comes."""
    interleaved(backends, "forward", lambda b: b.forward(blob), rounds)
    interleaved(backends, "detect", lambda b: b.detect(image), rounds)
    opencv = statistics.median(backends[-1].times["detect"])
    rows = {b.name: {"forward_ms": round(statistics.median(b.times["forward"]) * 1000, 2),
                     "detect_ms": round(statistics.median(b.times["detect"]) * 1000, 2),
                     "detect_vs_opencv": round(statistics.median(b.times["detect"]) / opencv, 3)} for b in backends}
    width = max(len(name) for name in rows)
    for row, entry in rows.items():
        print(f"  {row:<{width}} forward {entry['forward_ms']:8.2f} ms  detect {entry['detect_ms']:8.2f} ms "
              f"({entry['detect_vs_opencv']:.3f}x OpenCV)", flush=True)
    return rows


def paths_table(report: dict, versions: str) -> list[str]:
    """A per-CPU run's heading, where and how it was measured (`versions`: the software named), and one table of
    every model's paths (forward, detect(), detect() against OpenCV DNN's)."""
    lines = [f"## {report['cpu']}", "",
             f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores; {', '.join(report['cpu_flags'])}), "
             f"{versions}; dog.jpg, batch 1, medians of {report['rounds']} interleaved rounds.", "",
             "| model | path | forward ms | detect() ms | detect() vs OpenCV |", "|---|---|---|---|---|"]
    for m in report["models"]:
        for path, e in m["paths"].items():
            lines.append(f"| {m['model']} {m['size']} ({m['weights']}) | {path} | {e['forward_ms']} | {e['detect_ms']} | "
                         f"{e['detect_vs_opencv']}× |")
    return lines + [""]


def save_per_cpu(out: Path, stem: str, report: dict, run_markdown: Callable[[dict], str]) -> Path:
    """Write `stem`.json as {"runs": {CPU model: report}} (this CPU's earlier run replaced, the other CPUs' kept)
    and `stem`.md with each run's markdown. Returns the JSON file's path."""
    path = out / f"{stem}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    runs[report["cpu"]] = report
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as handle:
        json.dump({"runs": runs}, handle, indent=1)
    with atomic_write(out / f"{stem}.md", "w") as handle:
        handle.write("\n".join(run_markdown(run) for run in runs.values()) + "\n")
    return path


def run_markdown(report: dict) -> str:
    lines = [f"## {report['cpu']}", "", f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores; {', '.join(report['cpu_flags'])}), "
             f"{report['torch_threads']} torch threads, torch {report['versions']['torch']}; medians of {report['rounds']} "
             f"interleaved rounds.", ""]
    for m in report["models"]:
        lines += [f"### {m['model']} {m['size']} ({m['weights']} weights, {m['bflops']} BFLOPs)", "",
                  f"fp32 peak torch reached in the same rounds: **{m['peak']['gflops']} GFLOP/s** "
                  f"({', '.join(f'{k} {v}' for k, v in m['peak']['by_kernel'].items())}).", "",
                  "| path | forward ms | GFLOP/s | share of peak | detect() ms | vs OpenCV detect() |", "|---|---|---|---|---|---|"]
        for path, e in m["paths"].items():
            lines.append(f"| {path} | {e['forward_ms']} | {e['gflops']} | {e['share_of_peak']:.0%} | {e['detect_ms']} | "
                         f"{e['detect_vs_opencv']}× |")
        c = m["compile"]
        need = m["share_of_peak_needed"]
        lines += ["", f"- The network at this CPU's peak: {m['floor_forward_ms']} ms. {m['target_vs_opencv']}× OpenCV's "
                  f"detect() is {m['target_detect_ms']} ms; less the {m['outside_network_ms']} ms the default detect() spends "
                  f"outside the network (measured within each call) it leaves {m['network_budget_ms']} ms"
                  + (f", which needs {need:.0%} of peak from the network." if need else ": no network fits."),
                  f"- torch.compile's first detect() in a fresh process: {c['first_detect_cold_s']} s with an empty "
                  f"inductor cache, {c['first_detect_warm_s']} s with the cache the first run left; it saves "
                  f"{c['saved_per_frame_ms']} ms a frame, so it pays back after {c['payback_frames_warm']} frames "
                  f"(warm cache) or {c['payback_frames_cold']} (cold).", ""]
    return "\n".join(lines)


def run_models(description: str, rounds: int, bench: Callable[[str, int, Path], dict],
               models: str = "yolov4-tiny:416,yolov4-csp:512") -> tuple[argparse.Namespace, list]:
    """Parse --models (default `models`), --rounds (default `rounds`) and --out, and run
    `bench(spec, rounds, scratch folder)` per model.

    Returns:
        (Namespace, list[dict]): the arguments and each model's result, in --models order.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", default=models)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="darknet_py-bench-") as tmp:
        return args, [bench(spec, args.rounds, Path(tmp)) for spec in args.models.split(",")]


def main() -> None:
    import openvino

    args, models = run_models(__doc__.splitlines()[0], 9, bench_model)
    report = {**machine_report(args.rounds),
              "versions": {"darknet_py": darknet_py.__version__, "torch": torch.__version__, "opencv": cv2.__version__,
                           "openvino": openvino.__version__.split("-")[0], "numpy": np.__version__},
              "models": models}
    out = Path(args.out)
    save_per_cpu(out, "cpu_paths", report, run_markdown)
    print(f"wrote {out / 'cpu_paths.json'} and cpu_paths.md")


if __name__ == "__main__":
    main()
