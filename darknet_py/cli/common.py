"""Options and model loading shared by the subcommands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import InputError


def add_model_args(p: argparse.ArgumentParser, names: bool = True) -> None:
    """--model | --cfg + --weights (weights may be a .onnx export), --size, and optionally --names/--data."""
    p.add_argument("--model", help="official model name (default yolov4-tiny when no --cfg)")
    p.add_argument("--cfg", help="a Darknet .cfg file")
    p.add_argument("--weights", help="darknet .weights for --cfg, or a .onnx / OpenVINO .xml file from `darknet-py export`")
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
    p.add_argument("--half", action="store_true",
                   help="fp16 weights and compute (CUDA, torch backend); bf16 (or f16) compute with --backend openvino")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                   help="run the network eagerly on CUDA instead of replaying a captured CUDA graph")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (seconds of compiling per input shape, then checked against eager)")


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS

    p.add_argument("--backend", choices=(*BACKENDS, "auto"), default=None,
                   help="inference engine (default torch; onnxruntime for a .onnx file, openvino for a .xml file; "
                        "openvino needs the extra darknet-engine[openvino]); auto: the fastest exact (fp32) one "
                        "for this network on this CPU, measured the first time and remembered")


def model_files(args) -> tuple[str | None, str]:
    """(cfg, weights) from --cfg/--weights (weights may be an exported .onnx / .xml file) or --model / the default."""
    from ..backends import exported_file
    from ..format import zoo

    if args.model and (args.cfg or args.weights):
        given = " and ".join(flag for flag, value in (("--cfg", args.cfg), ("--weights", args.weights)) if value)
        raise InputError(f"--model {args.model} names an official model's files; {given} name(s) your own: give one or "
                         "the other")
    if exported_file(args.weights):
        return None, args.weights
    if args.cfg:
        if not args.weights:
            raise InputError("--cfg needs --weights (or use --model NAME for an official model)")
        return args.cfg, args.weights
    if args.weights:
        raise InputError("--weights needs --cfg (unless it is an exported .onnx or .xml file)")
    cfg, weights = zoo.resolve(model_name(args))
    return str(cfg), str(weights)


def model_name(args) -> str:
    """The official model --model names, or the default one (cfg/zoo.json's "default") when none is given."""
    from ..format import zoo

    return args.model or zoo.manifest()["default"]


def size_arg(args) -> int | list[int] | None:
    """--size as load() takes it: N, [W, H], or None (the cfg's); three numbers or more are refused (InputError)."""
    if args.size and len(args.size) > 2:
        raise InputError(f"--size {' '.join(map(str, args.size))}: give N (square) or W H, not {len(args.size)} numbers")
    if args.size and min(args.size) < 1:  # not the cfg's fault: said as the flag's (info, scale, map read it too)
        raise InputError(f"--size {' '.join(map(str, args.size))}: give the network's input size in whole pixels, 1 or "
                         "more")
    return None if not args.size else args.size[0] if len(args.size) == 1 else args.size


def fastest_runtime(args, cfg: str | None, weights: str) -> str | None:
    """--backend auto: the runtime darknet_py.api.fastest_backend picks on this CPU, said on stderr; None (the
    usual default) for an exported file or a CUDA device, which have one runtime to run on."""
    from ..api import auto_chooses, fastest_backend

    if args.compile:
        raise InputError("--backend auto picks among the exact fp32 runtimes; --compile needs --backend torch")
    if args.half:
        raise InputError("--backend auto picks among the exact fp32 runtimes; --half needs --backend torch "
                         "(on CUDA) or --backend openvino")
    if not auto_chooses(cfg, weights, args.device):
        return None

    def measuring(candidates: list[str]) -> None:
        print(f"--backend auto: timing {', '.join(candidates)} on this network and CPU (once; the verdict is "
              f"remembered)…", file=sys.stderr, flush=True)

    choice = fastest_backend(cfg, weights, size=size_arg(args), resize=args.resize, measuring=measuring)
    print(f"backend: {choice.describe()}", file=sys.stderr, flush=True)
    return choice.backend


def load_model(args):
    from ..api import load
    from ..backends import GRAPH_BACKENDS, exported_file, graph_backend
    from ..format.names import resolve_names

    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    if args.backend in GRAPH_BACKENDS:
        graph_backend(args.backend).require()  # before model files are resolved (or downloaded)
    cfg, weights = model_files(args)
    backend = args.backend
    if backend == "auto":
        backend = fastest_runtime(args, cfg, weights)
    backend = backend or (exported_file(weights) if cfg is None else "torch")
    options = {}
    if args.half:
        if backend == "openvino":
            from ..backends.openvino import half_precision

            options["precision"] = half_precision(args.device)
        elif backend != "torch" or not args.device.startswith("cuda"):
            raise InputError("--half needs the torch backend on a CUDA device (--device cuda) or --backend openvino; "
                             "for onnxruntime, export with --half instead")
    if args.compile and backend != "torch":
        raise InputError("--compile needs the torch backend (it compiles the torch network)")
    files = (weights,) if cfg is None else (cfg, weights)
    model = load(*files, device=args.device, size=size_arg(args), resize=args.resize, backend=backend, **options)
    if model.is_classifier:
        raise InputError(f"{Path(cfg or weights).name} is a classifier (no detection layer): use darknet-py classify")
    if args.half and backend == "torch":
        model = model.half()
    if backend == "torch":
        model.accelerate(cuda_graphs=args.cuda_graphs, compile=args.compile)
    names = resolve_names(model.num_classes, args.names, args.data) if (args.names or args.data or cfg) else model.names
    return model, names
