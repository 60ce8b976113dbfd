"""`darknet-py export`: cfg + weights → ONNX, or OpenVINO IR for a .xml output (either optionally int8)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import InputError
from ..core.fileio import refuse_overwrite
from .common import add_model_args, model_files, model_name, size_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    p.add_argument("-o", "--output",
                   help="the .onnx file to write, or a .xml file for OpenVINO IR (+ .bin; needs darknet-engine[openvino]); "
                        "default: NAME.onnx here, NAME the weights' (or model's) name, with -fp16 / -int8 for --half / --int8")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--dynamic-size", action="store_true", help="dynamic height/width (any multiple of the stride)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--half", action="store_true", help="fp16 weights and compute (for GPUs); fp32 input and outputs "
                   "(OpenVINO IR: fp16 weights in the file, the compute precision is chosen at run time)")
    p.add_argument("--output-format", choices=["raw", "boxes", "nms", "classes"], default=None,
                   help="raw: detection layers' inputs; boxes: decoded boxes + scores (default for detectors); nms: final "
                        "detections; classes: a classifier's class probabilities (its default)")
    p.add_argument("--int8", action="store_true", help="static int8 quantisation (CPU speed), calibrated on --calibration "
                   "(onnxruntime's for .onnx, NNCF's for OpenVINO .xml)")
    p.add_argument("--calibration", metavar="DIR", help="folder of real images for --int8 calibration")
    p.add_argument("--calibration-count", type=int, default=100, metavar="N", help="images used for calibration (default 100)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing output file")


def _batch_arg(value: str) -> int | None:
    if value == "dynamic":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--batch must be 'dynamic' or a positive integer, got {value!r}")
    return int(value)


def default_output(args) -> str:
    """The file an export without -o writes, in the working folder: the weights' name (a trained
    `yolov4-tiny-custom_best.weights` gives `yolov4-tiny-custom_best.onnx`) or the model's, and what sets the file
    apart from a plain export of it (`-fp16`, `-int8`), so that the variants of one model do not overwrite each other."""
    name = Path(args.weights).stem if args.weights else model_name(args)
    return f"{name}{'-fp16' if args.half else ''}{'-int8' if args.int8 else ''}.onnx"


def run(args) -> int:
    import time

    from ..api import load
    from ..backends import exported_file
    from ..export.onnx import ExportOptions, check_int8_onnx, export_onnx
    from ..format.names import resolve_names

    if exported_file(args.weights):  # before the output is named after it (and found to exist)
        raise InputError(f"export needs a Darknet cfg and weights, not an exported model ({args.weights})")
    output = Path(args.output or default_output(args))
    openvino = output.suffix.lower() == ".xml"
    if output.suffix.lower() != ".onnx" and not openvino:
        raise InputError(f"the output should be a .onnx file (or .xml for OpenVINO IR), got {output}")
    refuse_overwrite(output, args.exist_ok)
    if openvino:
        from ..backends.openvino import require_openvino

        require_openvino()  # a missing extra is the first thing to hear about
        refuse_overwrite(output.with_suffix(".bin"), args.exist_ok)
    opts = ExportOptions(args.output_format, _batch_arg(args.batch), args.dynamic_size, args.opset, args.half)
    int8 = None
    if args.int8 or args.calibration:
        from ..export.quantize import Int8Options, calibration_images
        if not (args.int8 and args.calibration):
            raise InputError("--int8 needs --calibration DIR (a folder of real images), and --calibration needs --int8")
        int8 = Int8Options(args.calibration, args.calibration_count)
        if not openvino:
            check_int8_onnx(opts)  # before the model loads and the calibration runs
        calibrating = len(calibration_images(int8.calibration, int8.count))  # fails before the export work
    cfg, weights = model_files(args)
    start = time.monotonic()
    model = load(cfg, weights, size=size_arg(args), resize=args.resize)
    opts = opts.resolved(model)
    names = resolve_names(model.num_classes, args.names, args.data)
    print(f"exporting {Path(cfg).name} + {Path(weights).name} at {model.width}x{model.height} ({opts.output_format})…",
          file=sys.stderr)
    if int8:
        print(f"calibrating int8 ranges on {calibrating} images from {int8.calibration}…", file=sys.stderr)
    batch = "dynamic batch" if opts.batch is None else f"batch {opts.batch}"
    size = "dynamic size" if opts.dynamic_size else f"{model.width}x{model.height}"
    described = f"{opts.output_format}, {size}, {batch}{', fp16' if opts.half else ''}{', int8' if int8 else ''}"
    if openvino:
        from ..export.openvino import export_openvino

        export_openvino(model, output, names, opts, weights, int8)
        written = output.stat().st_size + output.with_suffix(".bin").stat().st_size
        print(f"wrote {output} + {output.with_suffix('.bin').name} (OpenVINO IR, {described}, {written / 1e6:.1f} MB) "
              f"in {time.monotonic() - start:.1f} s", file=sys.stderr)
        return 0
    export_onnx(model, output, names, opts, weights, int8)
    print(f"wrote {output} ({described}, opset {opts.opset}, {output.stat().st_size / 1e6:.1f} MB; onnx checker passed) "
          f"in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


