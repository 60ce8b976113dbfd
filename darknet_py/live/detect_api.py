"""`darknet-py server`: a model behind HTTP (standard library only) — POST an image, get its detections as JSON.

    POST /detect            the body is an image file (JPEG, PNG, ... whatever `detect` reads) →
                            {"source", "width", "height", "detections": [{"class_id", "name", "score", "box"}, ...]}
                            (a detections.json record); `?format=darknet` gives darknet's object instead (frame_id,
                            objects with relative_coordinates, as -out and -json_port write it); `?thresh=0.4`,
                            `?nms=0.5` for this request; `?classes=person,car` (names or ids) keeps those classes;
                            `?name=dog.jpg` is the record's source
    GET  /                  a page to try it in a browser: choose or drop an image, its boxes drawn over it and listed
    GET  /health            {"model", "requests", "failed", "images", "mean_ms", "up_s"}
    GET  /metrics           the same as Prometheus text (prometheus_client's format)

The detections are those of `model.detect(image_bytes, thresh, nms)` — the same pixels (`decode_image` reads the
bytes as `read_image` reads the file), so the same numbers as `darknet-py detect` on the file. A request that fails
is a JSON `{"error": "..."}` with 400 (an image that cannot be decoded, a bad parameter), 404, 405 or 413 (a body
over MAX_BODY), 503 once it is stopping; the server goes on. A stop (Ctrl-C, SIGTERM) answers every request
already taken before the process ends (`drain`). Requests are read on a thread each and detected on threads that
stay: one at a time, or `in_flight` at once (a lone request on the model and every core, one beside another on the
model's concurrent twin and a share of them).
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qs, urlsplit

from ..core import events, interrupt
from ..core.errors import DarknetError, InputError
from ..format.names import class_filter, default_names
from ..media.darknet_json import darknet_frame
from ..media.run import concurrent_calls, default_calls
from ..media.sinks import detection_record
from .health import CONTENT_TYPE as METRICS_TYPE

if TYPE_CHECKING:
    from ..pipeline.backend import Backend

DRAIN_S = 30.0  # after a stop, the requests already taken have this long to be answered
PAGE = "detect_page.html"  # GET /: choose or drop an image, see its boxes drawn and listed
MAX_BODY = 64 * 1024 * 1024  # bytes: a 64 MiB image file is far beyond any camera's JPEG
IDLE_S = 30.0  # a connection silent this long (mid-body, or between requests) is answered 408 / closed
JSON_TYPE = "application/json"


class DetectService:
    """One model answering detection requests, and its figures.

    Args:
        detect (callable): (image file bytes, thresh, nms, classes: tuple of ids or None) → the image's Detections
            (e.g. a model's detect()[0]).
        model (str): the model's name, for /health.
        names (list of str): the model's class names (what `classes=` is checked against).
        thresh (float): the score threshold of a request that names none.
        nms (float): the NMS threshold of a request that names none.
        in_flight (int): requests detected at once, each on a detection thread of its own (1: one at a time); above
            1, *detect* must be safe to call from that many threads (a concurrent twin's detect, `Backend.concurrent`).
        detect_alone (callable or None): with in_flight above 1, what detects a request that starts while no other
            is being detected (the model itself, on every core), *detect* (the twin, on a share of the cores) being
            for those that start beside another; None: *detect* for every request.
    """

    def __init__(self, detect: Callable, model: str, names: list[str], thresh: float = 0.25, nms: float = 0.45,
                 in_flight: int = 1, detect_alone: Callable | None = None) -> None:
        if in_flight < 1:
            raise InputError(f"--in-flight must be at least 1, got {in_flight}")
        self._detect, self._detect_alone = detect, detect_alone
        self._running = 0  # detections under way (guarded by _figures)
        self.alone = 0  # requests detected by detect_alone, counted for the tests and benchmarks
        self.model, self.names, self.thresh, self.nms, self.in_flight = model, list(names), thresh, nms, in_flight
        # detection threads that stay: torch on a fresh thread per request (the server's) is a third slower
        # (benchmarks/results/server_overhead.json), and a twin's calling thread keeps its share of the cores
        self._worker = ThreadPoolExecutor(in_flight, thread_name_prefix="detect")
        self._figures = threading.Lock()
        self._answering = 0  # POSTs between `begin` and `end`: read, detected, answered (guarded by _idle)
        self._stopping = False  # `drain` was called: new POSTs are refused (503)
        self._taken = 0  # POSTs taken so far
        self._idle = threading.Condition()
        self.requests = self.failed = self.images = 0
        self.seconds = 0.0
        self.started = time.monotonic()

    def answer(self, body: bytes, query: str) -> dict:
        """The JSON answer to one POST /detect.

        Args:
            body (bytes): the image file.
            query (str): the URL's query string (format, thresh, nms, classes, name).

        Returns:
            dict: the detections.json record, or darknet's object with `format=darknet`.

        Raises:
            InputError: an image that cannot be decoded, or a bad parameter (the answer is then a 400).
        """
        with self._figures:
            self.requests += 1
            frame_id = self.requests
        try:
            # a parameter given empty (thresh=) is refused as its value, not taken as left out
            params = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
            unknown = sorted(set(params) - {"format", "thresh", "nms", "classes", "name"})
            if unknown:
                raise InputError(f"unknown parameter {unknown[0]!r}: POST /detect takes format, thresh, nms, classes "
                                 "and name")
            form = params.get("format", "darknet_py")
            if form not in ("darknet_py", "darknet"):
                raise InputError(f"format={form}: give darknet_py (a detections.json record) or darknet")
            thresh, nms = _fraction(params, "thresh", self.thresh), _fraction(params, "nms", self.nms)
            classes = None
            if "classes" in params:  # names or ids, checked: an unknown one is an error, not an empty answer
                wanted = [item.strip() for item in params["classes"].split(",") if item.strip()]
                if not wanted:
                    raise InputError("classes=: give class names or ids, separated by commas (classes=person,car)")
                classes = class_filter(wanted, self.names, "classes=")
            if not body:
                raise InputError("the request has no body: POST the image file itself (curl --data-binary @dog.jpg)")
            dets, spent = self._worker.submit(self._detect_one, body, thresh, nms, classes).result()
        except Exception:  # noqa: BLE001 - counted, then answered by the handler (400, or 500 for a bug)
            with self._figures:
                self.failed += 1
            raise
        with self._figures:
            self.images += 1
            self.seconds += spent
        name = params.get("name", "")
        if form == "darknet":
            return darknet_frame(dets, frame_id, name or None)
        return detection_record(dets, name)

    def begin(self) -> bool:
        """A POST arrives: count it as being answered until `end`; False once the service is draining (the request is
        then refused, and its client may send it again elsewhere)."""
        with self._idle:
            if self._stopping:
                return False
            self._answering += 1
            self._taken += 1
            taken = self._taken
        events.emit(f"request-taken {taken}")  # tests stop the server at this exact moment
        return True

    def end(self) -> None:
        """A POST counted by `begin` has been answered (its reply written)."""
        with self._idle:
            self._answering -= 1
            self._idle.notify_all()

    def drain(self, timeout: float) -> int:
        """Stop taking POSTs and wait until those being answered have their replies (a stop that answers what it
        took: a client never loses a request it sent before the stop).

        Args:
            timeout (float): the longest wait, in seconds.

        Returns:
            int: POSTs still unanswered when the wait ended (0: every one was answered).
        """
        with self._idle:
            self._stopping = True
            self._idle.wait_for(lambda: self._answering == 0, timeout)
            return self._answering

    def _detect_one(self, *args) -> tuple[object, float]:
        """One request's detections and seconds, on a detection thread: by detect_alone when no other detection is
        under way (a lone client gets every core), else by detect (a share of them)."""
        with self._figures:
            alone = self._running == 0 and self._detect_alone is not None
            self._running += 1
            self.alone += alone
        try:
            return _timed(self._detect_alone if alone else self._detect, *args)
        finally:
            with self._figures:
                self._running -= 1

    def close(self) -> None:
        """Let the detection threads go (after the server has stopped)."""
        self._worker.shutdown(wait=True)

    def refused(self) -> None:
        """Count a request refused before detection (a wrong path, method or size)."""
        with self._figures:
            self.requests += 1
            self.failed += 1

    def health(self) -> dict:
        """The figures /health answers with.

        Returns:
            dict: `{"model", "requests", "failed", "images", "mean_ms" (per image detected; None before the first),
            "up_s"}`.
        """
        with self._figures:
            mean = self.seconds * 1000 / self.images if self.images else None
            return {"model": self.model, "requests": self.requests, "failed": self.failed, "images": self.images,
                    "mean_ms": None if mean is None else round(mean, 3),
                    "up_s": round(time.monotonic() - self.started, 3)}

    def metrics(self) -> bytes:
        """/health's figures in Prometheus' text format (prometheus_client's exposition)."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_ApiCollector(self))
        return generate_latest(registry)


class _ApiCollector:
    """The service's figures at each scrape, as prometheus_client metric families."""

    def __init__(self, service: DetectService) -> None:
        self.service = service

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        figures, model = self.service.health(), [self.service.model]
        for name, help_text, value in (("requests", "detection requests received", figures["requests"]),
                                       ("failed", "requests answered with an error", figures["failed"]),
                                       ("images", "images detected", figures["images"]),
                                       ("detect_seconds", "seconds spent detecting", self.service.seconds)):
            family = CounterMetricFamily(f"darknet_py_api_{name}", help_text, labels=["model"])
            family.add_metric(model, value)
            yield family
        up = GaugeMetricFamily("darknet_py_api_up_seconds", "seconds since the server started", labels=["model"])
        up.add_metric(model, figures["up_s"])
        yield up


def _timed(detect: Callable, *args) -> tuple[object, float]:
    started = time.perf_counter()
    found = detect(*args)
    return found, time.perf_counter() - started


def _fraction(params: dict[str, str], key: str, default: float) -> float:
    if key not in params:
        return default
    try:
        value = float(params[key])
    except ValueError:
        raise InputError(f"{key}={params[key]}: give a number in [0, 1]") from None
    if not 0 <= value <= 1:
        raise InputError(f"{key}={params[key]}: give a number in [0, 1]")
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client sending many images keeps its connection
    server_version = "darknet_py"
    server: "_Server"
    _head_only = False  # the request being answered is a HEAD: its headers are sent, not its body

    @property
    def timeout(self) -> float:  # type: ignore[override]  - socketserver reads it once, in setup()
        """Seconds a connection may stay silent: mid-body (408), or between requests (closed)."""
        return self.server.idle_s

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        service = self.server.service
        if not service.begin():
            self._refuse(503, "the server is stopping: send the image again to another (or, later, this) server")
            return
        try:
            self._post()
        finally:  # after the reply is written: the stop waits for it (drain)
            service.end()

    def _post(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/detect":
            self._refuse(404, "not here: POST images to /detect")
            return
        length = self.headers.get("Content-Length")
        if length is None:
            self._refuse(411, "send the image with a Content-Length (curl --data-binary @dog.jpg does)")
            return
        if not (length.strip().isascii() and length.strip().isdigit()):  # "²" is a digit to isdigit(), not to int()
            self._refuse(400, f"Content-Length {length!r} is not a number of bytes")
            return
        if int(length) > MAX_BODY:
            self._refuse(413, f"the body is {int(length):,} bytes; at most {MAX_BODY:,} are taken")
            return
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:  # a client that sends part of a body and goes quiet holds no thread for ever
            self._refuse(408, f"nothing of the body came for {self.timeout:g} s (Content-Length {int(length):,} "
                              "bytes): send the whole image at once")
            return
        if len(body) < int(length):  # the client closed its side before the whole body came
            self._refuse(400, f"the body ended after {len(body):,} of the {int(length):,} bytes its Content-Length "
                              "gives")
            return
        try:
            answer = self.server.service.answer(body, url.query)
        except DarknetError as exc:
            self._send(400, {"error": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - a bug: said to the client, and the server goes on
            self._send(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})
            return
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):  # a page to try the model in a browser: choose or drop an image
            self._send_bytes(200, "text/html; charset=utf-8", resources.files(__package__).joinpath(PAGE).read_bytes())
        elif path == "/health":
            self._send(200, self.server.service.health())
        elif path == "/metrics":
            self._send_bytes(200, METRICS_TYPE, self.server.service.metrics())
        elif path == "/detect":
            self._refuse(405, "POST the image to /detect (curl --data-binary @dog.jpg http://HOST:PORT/detect)")
        else:
            self._refuse(404, "not here: POST images to /detect; GET / (a page to try it), /health, /metrics")

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        """GET's status and headers, without the body (a monitor asking whether /health answers)."""
        self._head_only = True  # one connection carries several requests: only this one's body is left out
        try:
            self.do_GET()
        finally:
            self._head_only = False

    def _other_method(self) -> None:
        self._refuse(405, f"{self.command} is not taken here: POST images to /detect; GET / (a page to try it), "
                          "/health, /metrics")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other_method  # noqa: N815 - http.server's names

    def _refuse(self, status: int, message: str) -> None:
        self.server.service.refused()
        self._send(status, {"error": message})

    def _send(self, status: int, answer: dict) -> None:
        self._send_bytes(status, JSON_TYPE, json.dumps(answer).encode())

    def _send_bytes(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        if status == 405:
            self.send_header("Allow", "POST" if urlsplit(self.path).path == "/detect" else "GET, HEAD")
        if status >= 400:  # a refused body may still be on its way: this connection ends with the answer
            self.send_header("Connection", "close")
            self.close_connection = True
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not self._head_only:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line that is no HTTP, headers too long, a method it has no
        handler for) in JSON too, as every answer of the API is — not its HTML page; with a status line even for
        a request that named no HTTP version (HTTP/0.9's bare body is not spoken here)."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self.server.service.refused()
        self._send(code, {"error": message or explain or HTTPStatus(code).phrase})

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - a request per image is not news
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client stuck in a send never keeps the program from exiting
    service: DetectService

    def __init__(self, address: tuple[str, int], idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (or went silent) before its answer was written is its own loss: no traceback in the
        server's console (socketserver prints one per request); anything else is a bug, whose traceback it prints."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


def listen(host: str = "127.0.0.1", port: int = 8080, idle_s: float = IDLE_S) -> ThreadingHTTPServer:
    """A socket listening on host:port, not answering yet (`serve` starts that): a port in use fails here, before a
    model is loaded for it; requests that come meanwhile wait in the socket's queue.

    Args:
        host (str): the address to listen on (127.0.0.1: this machine only).
        port (int): the port (0: any free one; `server.server_address` says which).
        idle_s (float): seconds a connection may stay silent: a body that stops coming is answered 408, an idle
            kept-alive connection is closed (a client cannot hold a thread for ever).

    Returns:
        ThreadingHTTPServer: the bound server.

    Raises:
        InputError: the address cannot be listened on (a port in use, an unknown host).
    """
    server_class = _Server6 if ":" in host else _Server
    try:
        return server_class((host, port), idle_s)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def model_service(model: Backend, name: str, names: list[str] | None = None, thresh: float = 0.25, nms: float = 0.45,
                  in_flight: int | None = None) -> DetectService:
    """The service of `darknet-py server` for a loaded model: requests detected with *names*, several at once on the
    CPU where the backend has a concurrent twin (a lone request on the model and every core, one beside another on
    the twin and a share of them).

    Args:
        model (Backend): the loaded model (darknet_py.load).
        name (str): the model's name, for /health.
        names (list of str or None): the class names answers carry; None: the model's (an export's), else COCO's
            for 80 classes, else class_0, class_1, ...
        thresh (float): the score threshold of a request that names none.
        nms (float): the NMS threshold of a request that names none.
        in_flight (int or None): requests detected at once; None: `media.run.default_calls()` (2 on 2 cores or
            more) where the backend can (else 1, quietly); a number the backend cannot take is a warning, and 1.

    Returns:
        DetectService: ready for `serve`.
    """
    names = list(names or model.names or default_names(model.num_classes))
    detector, calls = concurrent_calls(model, in_flight if in_flight is not None else default_calls(),
                                       warn=in_flight is not None)

    def detect_with(backend: Backend) -> Callable:
        def detect(image: bytes, thresh: float, nms: float, classes: tuple[int, ...] | None):
            return backend.detect(image, thresh, nms, names=names, classes=classes)[0]
        return detect

    return DetectService(detect_with(detector), name, names, thresh, nms, calls,
                         detect_alone=detect_with(model) if detector is not model else None)


def serve_until_stopped(server: ThreadingHTTPServer, service: DetectService, drain_s: float = DRAIN_S) -> int:
    """Answer requests (`serve`) until Ctrl-C or SIGTERM, then stop as a server should: new connections refused at
    once, the requests already taken answered (for up to *drain_s* seconds; a second stop ends the process at once),
    the detection threads let go.

    Args:
        server (ThreadingHTTPServer): from `listen`.
        service (DetectService): what answers.
        drain_s (float): how long the requests already taken have to be answered after the stop.

    Returns:
        int: requests left unanswered when the drain ended (0: every one was answered).
    """
    try:
        # a stop while the server thread starts is held to here, inside the try: its requests are drained as any
        # other stop's (raised between serve() and the try, it skipped the drain and lost a request already taken)
        with interrupt.deferred():
            serve(server, service)
            events.emit("serving")  # tests stop the server here: the thread serves, the main thread is not yet waiting
        forever = threading.Event()
        while not forever.wait(1.0):  # a timed wait, so Ctrl-C is seen at once
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()  # new connections are refused; the requests already taken are answered first
        events.emit("draining")
        unanswered = service.drain(drain_s)
        service.close()
    return unanswered


def serve(server: ThreadingHTTPServer, service: DetectService) -> None:
    """Answer the requests to *server* (from `listen`) with *service*, on threads of their own, until
    `server.shutdown()`; `server.server_close()` then closes the socket."""
    server.service = service
    threading.Thread(target=server.serve_forever, name="detect-api", daemon=True).start()
