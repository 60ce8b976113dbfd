"""What `--backend auto` (load(..., backend="auto")) gives a user on this CPU, against the default and OpenCV DNN.

Per model (yolov4-tiny 416 official, yolov4-csp 512 synthetic), in one process:
- the first `fastest_backend()` call with an empty cache: its verdict, each candidate's timed detect(), and
  the seconds it took (what a user's first `--backend auto` run waits once per network and machine);
- the second call's seconds (the verdict read back);
- detect() on dog.jpg of the default (torch eager), of load(backend="auto") and of OpenCV DNN's
  `dnn_DetectionModel.detect`, medians of interleaved rounds, and auto's detections against the default's at
  darknet's mAP threshold 0.005 (labels identical; largest score and box differences).

    python -m benchmarks.auto_backend [--rounds 15] [--models yolov4-tiny:416,yolov4-csp:512]

Writes benchmarks/results/auto_backend.json and auto_backend.md, one run per CPU model (a run replaces the earlier
run on the same model and keeps the others). About a minute on 2 cores.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

import darknet_py
from benchmarks.cpu_paths import machine_report, run_models, save_per_cpu
from benchmarks.run import PHOTO, Backend, interleaved, make_backends, model_files


def bench_model(spec: str, rounds: int, folder: Path) -> dict:
    name, side = spec.split(":")
    side = int(side)
    cfg, weights, kind = model_files(name, side, folder)
    os.environ["DARKNET_PY_CACHE"] = str(folder / f"cache-{name}")  # empty: the first call measures
    start = time.perf_counter()
    choice = darknet_py.fastest_backend(cfg, weights, size=side)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    remembered = darknet_py.fastest_backend(cfg, weights, size=side)
    second_s = time.perf_counter() - start
    assert remembered.remembered and remembered.backend == choice.backend
    default = darknet_py.load(cfg, weights, size=side)
    auto = darknet_py.load(cfg, weights, size=side, backend="auto")
    image = cv2.imread(str(PHOTO))
    # at darknet's mAP threshold (0.005), so synthetic weights give detections to compare too
    want, got = default.detect(image, conf_thresh=0.005)[0], auto.detect(image, conf_thresh=0.005)[0]
    agreement = {"same_labels": want.labels == got.labels,
                 "max_score_diff": float(np.abs(want.scores - got.scores).max(initial=0)) if want.labels == got.labels else None,
                 "max_box_diff_px": float(np.abs(want.boxes - got.boxes).max(initial=0)) if want.labels == got.labels else None,
                 "detections": len(want)}
    backends = [Backend("default (torch)", lambda x: None, default.detect, 0.0),
                Backend(f"auto ({choice.backend})", lambda x: None, auto.detect, 0.0),
                *make_backends(["opencv"], cfg, weights, side, folder, "cpu")]
    print(f"{name} {side}: auto chose {choice.describe()}; timing detect()…", flush=True)
    interleaved(backends, "detect", lambda b: b.detect(image), rounds)
    opencv = statistics.median(backends[-1].times["detect"])
    detect = {b.name: {"detect_ms": round(statistics.median(b.times["detect"]) * 1000, 2),
                       "vs_opencv": round(statistics.median(b.times["detect"]) / opencv, 3)} for b in backends}
    for row, entry in detect.items():
        print(f"  {row:<22} detect() {entry['detect_ms']:8.2f} ms  {entry['vs_opencv']:.3f}x OpenCV", flush=True)
    return {"model": name, "size": side, "weights": kind, "chosen": choice.backend, "times_ms": choice.times_ms,
            "first_call_s": round(first_s, 1), "second_call_s": round(second_s, 3), "detect": detect,
            "auto_vs_default": round(detect[f"auto ({choice.backend})"]["detect_ms"]
                                     / detect["default (torch)"]["detect_ms"], 3),
            "agreement": agreement}


def run_markdown(report: dict) -> str:
    lines = [f"## {report['cpu']}", "",
             f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores; {', '.join(report['cpu_flags'])}), "
             f"{report['torch_threads']} torch threads; detect() on dog.jpg, medians of {report['rounds']} interleaved "
             f"rounds.", "",
             "| model | auto chose | candidates' detect() ms as timed | first call s | later calls s | default detect() ms "
             "| auto detect() ms | auto / default | auto vs OpenCV | detections at 0.005, auto vs default |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for m in report["models"]:
        times = ", ".join(f"{k} {v}" for k, v in sorted(m["times_ms"].items(), key=lambda kv: kv[1]))
        auto = m["detect"][f"auto ({m['chosen']})"]
        a = m["agreement"]
        same = (f"{a['detections']}, labels identical (score ±{a['max_score_diff']:.1e}, box ±{a['max_box_diff_px']:.1e} "
                f"px)" if a["same_labels"] else f"{a['detections']}, labels differ")
        lines.append(f"| {m['model']} {m['size']} ({m['weights']}) | {m['chosen']} | {times} | {m['first_call_s']} | "
                     f"{m['second_call_s']} | {m['detect']['default (torch)']['detect_ms']} | {auto['detect_ms']} | "
                     f"{m['auto_vs_default']}× | {auto['vs_opencv']}× | {same} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args, models = run_models(__doc__.splitlines()[0], 15, bench_model)
    report = {**machine_report(args.rounds), "opencv": cv2.__version__, "models": models}
    path = save_per_cpu(Path(args.out), "auto_backend", report, run_markdown)
    print(f"wrote {path} and auto_backend.md")


if __name__ == "__main__":
    main()
