"""`darknet-py server`: a model behind HTTP — POST an image to /detect, get its detections as JSON
(darknet_py.live.detect_api)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core import interrupt
from ..core.errors import InputError
from ..media.run import DEFAULT_CALLS, check_in_flight
from .common import add_backend_arg, add_device_args, add_model_args, load_model, model_name

DEFAULT_PORT = 8080


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    add_device_args(p)
    add_backend_arg(p)
    p.add_argument("--thresh", type=float, default=0.25,
                   help="score threshold of a request that names none (default 0.25)")
    p.add_argument("--nms", type=float, default=0.45, help="NMS threshold of a request that names none (default 0.45)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                   "0.0.0.0 lets others send images, without authentication)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--in-flight", type=int, default=None, metavar="N",
                   help=f"requests detected at once (on the CPU: torch, onnxruntime, OpenVINO): a request alone runs "
                        f"on every core, requests beside each other on a share each, so several clients get more "
                        f"images/s (default {DEFAULT_CALLS} where the backend can and the CPU has 2 cores or more; 1: "
                        f"one at a time)")
    p.set_defaults(batch=1)


def run(args) -> int:
    from ..live.detect_api import DRAIN_S, listen, model_service, serve_until_stopped

    for flag, value in (("--thresh", args.thresh), ("--nms", args.nms)):
        if not 0 <= value <= 1:
            raise InputError(f"{flag} {value}: give a number in [0, 1]")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: give a port from 1 to 65535 (0: any free one)")
    check_in_flight(args.in_flight)
    server = listen(args.host, args.port)  # a port in use fails now, not after the model has loaded
    try:
        model, names = load_model(args)
        shown = Path(args.cfg or args.weights).stem if (args.cfg or args.weights) else model_name(args)
        service = model_service(model, shown, names, args.thresh, args.nms, args.in_flight)
    except BaseException:
        server.server_close()
        raise
    host, port = server.server_address[:2]
    address = f"[{host}]" if ":" in host else host
    print(f"serving {service.model} at http://{address}:{port}/detect (POST an image; GET /health, /metrics; a page "
          f"to try it at http://{address}:{port}/) — Ctrl-C to stop", file=sys.stderr, flush=True)
    unanswered = serve_until_stopped(server, service)
    figures = service.health()
    print(f"{figures['images']} image(s) detected, {figures['failed']} request(s) answered with an error"
          + (f", {unanswered} left unanswered after {DRAIN_S:g} s" if unanswered else ""), file=sys.stderr, flush=True)
    return interrupt.exit_code()
