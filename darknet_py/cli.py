"""`darknet-py` command line. Subcommands register in COMMANDS; the CLI only formats results."""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable

import cv2

from .errors import DarknetError, InputError
from .fileio import atomic_write, refuse_overwrite, write_image
from .sources import annotated_name, source_items

# -- shared options ------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser, names: bool = True) -> None:
    """--model | --cfg + --weights (weights may be a .onnx export), --size, and optionally --names/--data."""
    p.add_argument("--model", help="official model name (default yolov4-tiny when no --cfg)")
    p.add_argument("--cfg", help="a Darknet .cfg file")
    p.add_argument("--weights", help="darknet .weights for --cfg, or a .onnx file from `darknet-py export`")
    _add_size_arg(p)
    if names:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--names", help="class names file, one per line (default: COCO's for 80 classes)")
        group.add_argument("--data", help="darknet .data file (its names= line is used)")


def _add_size_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, nargs="+", metavar="N", help="network size: N or W H (default: the cfg's)")


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--half", action="store_true", help="fp16 weights and compute (CUDA, torch backend)")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="run the network eagerly on CUDA instead of replaying a captured CUDA graph")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (seconds of compiling per input shape, then checked against eager)")


def _add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default=None,
                   help="inference engine (default torch; onnxruntime when --weights is a .onnx file)")


# -- detect --------------------------------------------------------------------------
def _add_detect(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+", help="image, folder, glob, video file, stream URL, or webcam index "
                   "(several: --ray only)")
    _add_model_args(p)
    p.add_argument("--output", help="output folder (default: a fresh runs/detect/N)")
    p.add_argument("--thresh", type=float, default=0.25, help="score threshold (default 0.25)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS overlap threshold (default 0.45)")
    p.add_argument("--nms-kind", choices=["iou", "greedynms", "diounms", "none"], help="override the cfg's nms_kind")
    p.add_argument("--classes", type=int, nargs="+", help="keep only these class ids")
    p.add_argument("--multi-label", action="store_true", help="one detection per class above threshold (darknet)")
    lb = p.add_mutually_exclusive_group()
    lb.add_argument("--letterbox", dest="letterbox", action="store_true", default=None)
    lb.add_argument("--no-letterbox", dest="letterbox", action="store_false")
    _add_device_args(p)
    _add_backend_arg(p)
    p.add_argument("--batch", type=int, default=None, help="images per forward (default 1; 8 with --ray)")
    ray = p.add_argument_group("distributed (Ray)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on Ray: no ADDRESS starts a local Ray; 'auto' or ray://host:port joins a cluster")
    ray.add_argument("--workers", type=int, default=2, help="model actors (default 2); each takes 1 CPU or 1 GPU")
    ray.add_argument("--worker-threads", type=int, help="threads per actor (default: this machine's torch default, "
                     "which gives results identical to a run without --ray)")
    ray.add_argument("--shard-size", type=int, default=64, help="images or video frames per output shard (default 64)")
    p.add_argument("--save-json", action="store_true"), p.add_argument("--save-txt", action="store_true")
    p.add_argument("--ext-output", action="store_true", help="darknet-style per-box lines on stdout")
    p.add_argument("--no-save", action="store_true", help="do not write annotated images/video")
    p.add_argument("--show", action="store_true", help="show results in a window (needs a display)")
    p.add_argument("--exist-ok", action="store_true", help="write into an --output folder that already holds files")


def _fresh_run_dir(root: Path = Path("runs/detect")) -> Path:
    n = 1
    while (root / str(n)).exists():
        n += 1
    return root / str(n)


def _model_files(args) -> tuple[str | None, str]:
    """(cfg, weights) from --cfg/--weights (weights may be a .onnx file) or --model / the default."""
    from . import zoo

    if args.weights and args.weights.lower().endswith(".onnx"):
        return None, args.weights
    if args.cfg:
        if not args.weights:
            raise InputError("--cfg needs --weights (or use --model NAME for an official model)")
        return args.cfg, args.weights
    if args.weights:
        raise InputError("--weights needs --cfg (unless it is a .onnx file)")
    cfg, weights = zoo.resolve(args.model or zoo.manifest()["default"])
    return str(cfg), str(weights)


def _size_arg(args) -> int | list[int] | None:
    return None if not args.size else args.size[0] if len(args.size) == 1 else args.size[:2]


def _load_model(args):
    from .api import load
    from .names import resolve_names

    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    cfg, weights = _model_files(args)
    backend = args.backend or ("onnxruntime" if cfg is None else "torch")
    if args.half and (backend != "torch" or not args.device.startswith("cuda")):
        raise InputError("--half needs the torch backend on a CUDA device (--device cuda); "
                         "for onnxruntime, export with --half instead")
    if args.compile and backend != "torch":
        raise InputError("--compile needs the torch backend (it compiles the torch network)")
    if cfg is None:
        if backend != "onnxruntime":
            raise InputError(f"{weights} is an ONNX model: it runs with --backend onnxruntime only")
        model = load(weights, device=args.device, size=_size_arg(args))
    else:
        model = load(cfg, weights, device="cpu" if backend == "onnxruntime" else args.device, size=_size_arg(args))
        if backend == "onnxruntime":
            model = _in_memory_onnx(model, args.device)
    if args.half:
        model = model.half()
    if backend == "torch":
        model.accelerate(cuda_graphs=args.cuda_graphs, compile=args.compile)
    names = resolve_names(model.num_classes, args.names, args.data) if (args.names or args.data or cfg) else model.names
    return model, names


def _in_memory_onnx(model, device: str):
    """--backend onnxruntime with cfg + weights: export (boxes, dynamic batch) in memory and run that."""
    from .names import default_names
    from .onnx_backend import OnnxDetector
    from .onnx_export import build_onnx

    proto = build_onnx(model, default_names(model.num_classes), weights_path=model.weights_path)
    return OnnxDetector(proto.SerializeToString(), device=device)


def _run_detect(args) -> int:
    from .detect import iter_batches

    if args.ray is not None:
        return _run_detect_on_ray(args)
    if len(args.source) > 1:
        raise InputError(f"{len(args.source)} sources given: without --ray, give one (a folder or a glob for many)")
    args.batch = 1 if args.batch is None else args.batch
    kind, items = source_items(args.source[0])
    if args.show:
        _require_display()
    if args.output and not args.exist_ok:
        _refuse_filled_folder(Path(args.output))
    model, names = _load_model(args)
    out = Path(args.output) if args.output else _fresh_run_dir()
    out.mkdir(parents=True, exist_ok=True)
    options = dict(names=names, multi_label=args.multi_label, letterbox=args.letterbox,
                   classes=tuple(args.classes) if args.classes else None, nms_kind=args.nms_kind)

    def detect_batch(images):
        return model.detect(images, args.thresh, args.nms, **options)

    records: list[dict] = []
    if kind == "images":
        total = 0
        from .preprocess import read_image

        for batch in iter_batches(items, args.batch):
            images = [read_image(path) for path in batch]  # decoded once: detect, draw and show share it
            for path, image, dets in zip(batch, images, detect_batch(images)):
                total += 1
                dets.source = path
                _emit(args, out, Path(path).name, dets, records)
                if not args.no_save:
                    write_image(out / annotated_name(path), dets.draw(image))
                if args.show:
                    _show(dets.draw(image))
        summary = f"{total} image(s)"
    else:
        from .video import run_video

        stem = f"camera{items}" if isinstance(items, int) else Path(str(items)).stem or "stream"
        ext = ".avi" if str(items).lower().endswith(".avi") else ".mp4"
        target = None if args.no_save else str(out / f"{stem}{ext}")
        report = run_video(items, detect_batch, target, args.batch,
                           on_frame=lambda i, d: _emit(args, out, f"{stem}:{i}", d, records))
        done = f"{report.frames} frames ({report.size[0]}x{report.size[1]}, {report.fps:g} fps)"
        if report.skipped:
            done += f", {report.skipped} unreadable frame(s) skipped"
        summary = f"{done}, interrupted — the video holds the frames done" if report.interrupted else done
    if args.save_json:
        with atomic_write(out / "detections.json", "w") as handle:
            json.dump(records, handle)
    print(f"{summary} → {out}", file=sys.stderr)
    return 0


RAY_UNSUPPORTED = {"show": "--show", "save_txt": "--save-txt", "ext_output": "--ext-output"}


def _run_detect_on_ray(args) -> int:
    """--ray: shards over a Ray cluster, results in OUTPUT/detections.jsonl; a rerun resumes."""
    from .ray_detect import RayOptions, detect_on_ray, print_report, require_ray

    for name, flag in RAY_UNSUPPORTED.items():
        if getattr(args, name):
            raise InputError(f"{flag} is not available with --ray (results go to OUTPUT/detections.jsonl)")
    require_ray()  # before the model is loaded: a missing extra is the first thing to hear about
    args.batch = 8 if args.batch is None else args.batch
    model, names = _load_model(args)
    out = Path(args.output) if args.output else _fresh_run_dir()
    options = RayOptions(address=args.ray, workers=args.workers, worker_threads=args.worker_threads, batch=args.batch,
                         shard_size=args.shard_size, save_images=not args.no_save, exist_ok=args.exist_ok)
    try:
        report = detect_on_ray(args.source, out, model, conf_thresh=args.thresh, nms_thresh=args.nms, names=names,
                               ray_options=options, multi_label=args.multi_label, letterbox=args.letterbox,
                               classes=tuple(args.classes) if args.classes else None, nms_kind=args.nms_kind)
    except KeyboardInterrupt:
        print(f"interrupted: finished shards are kept in {out}; rerun the same command to resume", file=sys.stderr)
        raise
    print_report(report)
    return 0


def _refuse_filled_folder(folder: Path) -> None:
    """A user's files are never replaced unasked: an --output folder must be new or empty."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--output {folder} is a file, not a folder")
    held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if held:
        shown = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
        raise InputError(f"--output {folder} already holds {len(held)} file(s) ({shown}); pass --exist-ok to write "
                         "into it (files with the same names are replaced) or choose another folder")


def _emit(args, out: Path, name: str, dets, records: list[dict]) -> None:
    if args.ext_output:
        print(f"{name}: {len(dets)} objects")
        if len(dets):
            print(dets.ext_output())
    if args.save_json:
        records.append({"source": name, **json.loads(dets.to_json())})
    if args.save_txt:
        with atomic_write(out / "labels" / (Path(name.replace(":", "_")).stem + ".txt"), "w") as handle:
            handle.write(dets.to_yolo_txt())


def _require_display() -> None:
    """Refuse --show up front: without a display, OpenCV's GUI backend aborts the process."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show needs a display (DISPLAY is not set); drop --show or run where a screen is attached")


def _show(image) -> None:
    try:
        cv2.imshow("darknet-py", image)
        cv2.waitKey(1)
    except cv2.error:
        raise InputError("--show needs a display; none is available here") from None


# -- export --------------------------------------------------------------------------
def _add_export(p: argparse.ArgumentParser) -> None:
    _add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--dynamic-size", action="store_true", help="dynamic height/width (any multiple of the stride)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--half", action="store_true", help="fp16 weights and compute (for GPUs); fp32 input and outputs")
    p.add_argument("--output-format", choices=["raw", "boxes", "nms"], default="boxes",
                   help="raw: [yolo] inputs; boxes: decoded boxes + scores (default); nms: final detections")
    p.add_argument("--int8", action="store_true", help="static int8 quantisation (CPU speed), calibrated on --calibration")
    p.add_argument("--calibration", metavar="DIR", help="folder of real images for --int8 calibration")
    p.add_argument("--calibration-count", type=int, default=100, metavar="N", help="images used for calibration (default 100)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")


def _batch_arg(value: str) -> int | None:
    if value == "dynamic":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--batch must be 'dynamic' or a positive integer, got {value!r}")
    return int(value)


def _run_export(args) -> int:
    import time

    from .api import load
    from .names import resolve_names
    from .onnx_export import ExportOptions, export_onnx

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise InputError(f"the output should be a .onnx file, got {output}")
    refuse_overwrite(output, args.exist_ok)
    opts = ExportOptions(args.output_format, _batch_arg(args.batch), args.dynamic_size, args.opset, args.half)
    int8 = None
    if args.int8 or args.calibration:
        from .quantize import Int8Options, calibration_images
        if not (args.int8 and args.calibration):
            raise InputError("--int8 needs --calibration DIR (a folder of real images), and --calibration needs --int8")
        int8 = Int8Options(args.calibration, args.calibration_count)
        calibrating = len(calibration_images(int8.calibration, int8.count))  # fails before the export work
    cfg, weights = _model_files(args)
    if cfg is None:
        raise InputError("export needs a Darknet cfg and weights, not a .onnx file")
    start = time.monotonic()
    model = load(cfg, weights, size=_size_arg(args))
    names = resolve_names(model.num_classes, args.names, args.data)
    print(f"exporting {Path(cfg).name} + {Path(weights).name} at {model.width}x{model.height} ({opts.output_format})…",
          file=sys.stderr)
    if int8:
        print(f"calibrating int8 ranges on {calibrating} images from {int8.calibration}…", file=sys.stderr)
    export_onnx(model, output, names, opts, weights, int8)
    batch = "dynamic batch" if opts.batch is None else f"batch {opts.batch}"
    size = "dynamic size" if opts.dynamic_size else f"{model.width}x{model.height}"
    print(f"wrote {output} ({opts.output_format}, {size}, {batch}, opset {opts.opset}{', fp16' if opts.half else ''}{', int8' if int8 else ''}, "
          f"{output.stat().st_size / 1e6:.1f} MB; onnx checker passed) in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


# -- map -----------------------------------------------------------------------------
def _add_map(p: argparse.ArgumentParser) -> None:
    from .coco_eval import MAP_THRESH

    _add_model_args(p, names=False)
    _add_backend_arg(p)
    p.add_argument("--images", required=True, help="folder holding the annotated images")
    p.add_argument("--annotations", required=True, help="COCO instances JSON (e.g. instances_val2017.json)")
    p.add_argument("--thresh", type=float, default=MAP_THRESH, help=f"score threshold (default {MAP_THRESH}, as darknet)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS overlap threshold (default 0.45)")
    p.add_argument("--batch", type=int, default=1)
    _add_device_args(p)
    p.add_argument("--json-out", help="write the metrics (AP, AP50, AP75, APs, APm, APl) here")
    p.add_argument("--save-results", help="write the COCO results file here")
    p.add_argument("--exist-ok", action="store_true", help="overwrite existing --json-out / --save-results files")
    p.set_defaults(names=None, data=None)  # _load_model reads them


def _run_map(args) -> int:
    from .coco_eval import metrics_table, run_map

    for path in (args.json_out, args.save_results):
        if path:
            refuse_overwrite(path, args.exist_ok)
    model, _ = _load_model(args)
    report = run_map(model, args.images, args.annotations, args.thresh, args.nms, args.batch)
    print(f"{report.images} images, {report.detections} detections (thresh {args.thresh}, NMS {args.nms})", file=sys.stderr)
    print(metrics_table(report.metrics))
    if args.json_out:
        with atomic_write(args.json_out, "w") as handle:
            json.dump(report.metrics, handle, indent=1)
    if args.save_results:
        with atomic_write(args.save_results, "w") as handle:
            json.dump(report.results, handle)
    return 0


# -- info ----------------------------------------------------------------------------
def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("cfg", help="a Darknet .cfg file")
    _add_size_arg(p)
    p.add_argument("--json", action="store_true",
                   help='print {"bflops", "params", "layers": [...], "blocks": [...]} as JSON')
    p.add_argument("--dot", metavar="OUT.dot", help="write the CSP block graph for Graphviz (dot -Tsvg OUT.dot)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing --dot file")


def _run_info(args) -> int:
    from .info import blocks, format_table, summary
    from .model import build
    from .structure import to_dot

    if args.dot:
        refuse_overwrite(args.dot, args.exist_ok)
    model = build(args.cfg, _size_arg(args))
    print(json.dumps(summary(model), indent=1) if args.json else format_table(model))
    if args.dot:
        with atomic_write(args.dot, "w") as handle:
            handle.write(to_dot(blocks(model), Path(args.cfg).name))
        print(f"wrote {args.dot}", file=sys.stderr)
    return 0


# -- scale ---------------------------------------------------------------------------
def _add_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("cfg", help="the base Darknet .cfg file")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier W (filters rounded to multiples of 8)")
    p.add_argument("--depth", type=float, default=1.0, help="multiplier D of the residual units in each CSP stage")
    p.add_argument("--size", type=int, help="network input size S (a multiple of the total stride)")
    p.add_argument("-o", "--output", required=True, help="the .cfg file to write")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")


def _run_scale(args) -> int:
    from .info import blocks, summary
    from .model import build
    from .scaling import ScaleSpec, scale
    from .structure import csp_depths

    refuse_overwrite(args.output, args.exist_ok)
    spec = ScaleSpec(args.width, args.depth, args.size)
    base = build(args.cfg)
    header = (f"{Path(args.output).name}: {Path(args.cfg).name} scaled by darknet-py scale "
              f"--width {spec.width:g} --depth {spec.depth:g} --size {spec.size or base.width}\n"
              "New architecture: train it (or convert matching weights); the base weights do not fit.")
    text, scaled = scale(base, spec, header, args.output)
    with atomic_write(args.output, "w") as handle:
        handle.write(text)
    before, after = summary(base), summary(scaled)
    print(f"wrote {args.output}: {before['bflops']:.3f} -> {after['bflops']:.3f} BFLOPs, "
          f"{before['params']:,} -> {after['params']:,} params, {base.width}x{base.height} -> "
          f"{scaled.width}x{scaled.height}, CSP stage depths {csp_depths(blocks(base))} -> {csp_depths(blocks(scaled))}")
    return 0


# -- registry ------------------------------------------------------------------------
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]] = {
    "detect": ("detect objects in images, folders, videos, streams or a webcam", _add_detect, _run_detect),
    "export": ("convert a Darknet cfg + weights to ONNX", _add_export, _run_export),
    "info": ("layer table, BFLOPs and parameters of a cfg", _add_info, _run_info),
    "scale": ("write a width/depth/size-scaled cfg (Scaled-YOLOv4 model scaling)", _add_scale, _run_scale),
    "map": ("COCO mAP of a model on an annotated image folder (pycocotools)", _add_map, _run_map),
}


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="darknet-py", description="Darknet .cfg/.weights inference")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        return COMMANDS[args.command][2](args)
    except DarknetError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `darknet-py info … | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # disk full, permissions, a path through a file: the system's words, one line
        if args.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if args.debug:
            traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} — "
              "a darknet_py bug; rerun with --debug and report the traceback", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
