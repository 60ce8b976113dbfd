"""Options and model loading shared by the subcommands."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def add_model_args(p: argparse.ArgumentParser, names: bool = True) -> None:
    """--model | --cfg + --weights (weights may be a .onnx export), --size, and optionally --names/--data."""
    p.add_argument("--model", help="official model name (default yolov4-tiny when no --cfg)")
    p.add_argument("--cfg", help="a Darknet .cfg file")
    p.add_argument("--weights", help="darknet .weights for --cfg, or a .onnx file from `darknet-py export`")
    add_size_arg(p)
    p.add_argument("--resize", choices=["darknet", "opencv"], default=None,
                   help="image resize: darknet's own, as `darknet detector test/valid/map` (default), or "
                        "opencv (cv2.resize, as OpenCV DNN and darknet's video demo); .onnx files: the one "
                        "recorded at export unless given")
    if names:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--names", help="class names file, one per line (default: COCO's for 80 classes)")
        group.add_argument("--data", help="darknet .data file (its names= line is used)")


def add_size_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, nargs="+", metavar="N", help="network size: N or W H (default: the cfg's)")


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--half", action="store_true", help="fp16 weights and compute (CUDA, torch backend)")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="run the network eagerly on CUDA instead of replaying a captured CUDA graph")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (seconds of compiling per input shape, then checked against eager)")


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default=None,
                   help="inference engine (default torch; onnxruntime when --weights is a .onnx file)")


def fresh_run_dir(root: Path = Path("runs/detect")) -> Path:
    n = 1
    while (root / str(n)).exists():
        n += 1
    return root / str(n)


def model_files(args) -> tuple[str | None, str]:
    """(cfg, weights) from --cfg/--weights (weights may be a .onnx file) or --model / the default."""
    from .. import zoo

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


def size_arg(args) -> int | list[int] | None:
    return None if not args.size else args.size[0] if len(args.size) == 1 else args.size[:2]


def load_model(args):
    from ..api import load
    from ..names import resolve_names

    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    cfg, weights = model_files(args)
    backend = args.backend or ("onnxruntime" if cfg is None else "torch")
    if args.half and (backend != "torch" or not args.device.startswith("cuda")):
        raise InputError("--half needs the torch backend on a CUDA device (--device cuda); "
                         "for onnxruntime, export with --half instead")
    if args.compile and backend != "torch":
        raise InputError("--compile needs the torch backend (it compiles the torch network)")
    if cfg is None:
        if backend != "onnxruntime":
            raise InputError(f"{weights} is an ONNX model: it runs with --backend onnxruntime only")
        model = load(weights, device=args.device, size=size_arg(args), resize=args.resize)
    else:
        model = load(cfg, weights, device="cpu" if backend == "onnxruntime" else args.device, size=size_arg(args),
                     resize=args.resize)
        if backend == "onnxruntime":
            model = in_memory_onnx(model, args.device)
    if args.half:
        model = model.half()
    if backend == "torch":
        model.accelerate(cuda_graphs=args.cuda_graphs, compile=args.compile)
    names = resolve_names(model.num_classes, args.names, args.data) if (args.names or args.data or cfg) else model.names
    return model, names


def in_memory_onnx(model, device: str):
    """--backend onnxruntime with cfg + weights: export (boxes, dynamic batch) in memory and run that."""
    from ..names import default_names
    from ..onnx_backend import OnnxDetector
    from ..onnx_export import build_onnx

    proto = build_onnx(model, default_names(model.num_classes), weights_path=model.weights_path)
    return OnnxDetector(proto.SerializeToString(), device=device)


