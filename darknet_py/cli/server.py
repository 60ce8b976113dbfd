"""`darknet-py server`: a model behind HTTP — POST an image to /detect, get its detections as JSON
(darknet_py.live.detect_api)."""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from ..core import events, interrupt
from ..core.errors import InputError
from ..media.run import DEFAULT_CALLS, check_in_flight, concurrent_calls
from .common import add_backend_arg, add_device_args, add_model_args, load_model, model_name

DEFAULT_PORT = 8080
DRAIN_S = 30.0  # after a stop, the requests already taken have this long to be answered


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
    from ..live.detect_api import DetectService, listen, serve

    for flag, value in (("--thresh", args.thresh), ("--nms", args.nms)):
        if not 0 <= value <= 1:
            raise InputError(f"{flag} {value}: give a number in [0, 1]")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: give a port from 1 to 65535 (0: any free one)")
    check_in_flight(args.in_flight)
    server = listen(args.host, args.port)  # a port in use fails now, not after the model has loaded
    try:
        model, names = load_model(args)
        calls = args.in_flight if args.in_flight is not None else DEFAULT_CALLS if (os.cpu_count() or 1) >= 2 else 1
        detector, in_flight = concurrent_calls(model, calls, warn=args.in_flight is not None)
    except BaseException:
        server.server_close()
        raise

    def detect_with(backend):
        def detect(image: bytes, thresh: float, nms: float, classes: tuple[int, ...] | None):
            return backend.detect(image, thresh, nms, names=names, classes=classes)[0]
        return detect

    shown = Path(args.cfg or args.weights).stem if (args.cfg or args.weights) else model_name(args)
    # a request alone is detected by the model on every core; the twin's share is for requests beside another
    service = DetectService(detect_with(detector), shown, names, args.thresh, args.nms, in_flight,
                            detect_alone=detect_with(model) if detector is not model else None)
    serve(server, service)
    host, port = server.server_address[:2]
    address = f"[{host}]" if ":" in host else host
    print(f"serving {service.model} at http://{address}:{port}/detect (POST an image; GET /health, /metrics; a page "
          f"to try it at http://{address}:{port}/) — Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        forever = threading.Event()
        while not forever.wait(1.0):  # a timed wait, so Ctrl-C is seen at once
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()  # new connections are refused; the requests already taken are answered first
        events.emit("draining")
        unanswered = service.drain(DRAIN_S)  # (a second Ctrl-C ends the process at once)
        service.close()
    figures = service.health()
    print(f"{figures['images']} image(s) detected, {figures['failed']} request(s) answered with an error"
          + (f", {unanswered} left unanswered after {DRAIN_S:g} s" if unanswered else ""), file=sys.stderr, flush=True)
    return interrupt.exit_code()
