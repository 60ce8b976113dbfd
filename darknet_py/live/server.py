"""HTTP servers for the live view (standard library only): one thread per viewer, each sending the
newest frame whenever it is ready for one, so a viewer's pace never reaches the detection loop.

Routes: `--serve` holds the page at `/`, `/mjpeg`, `/json` (server-sent events), `/status`, and each source's
figures at `/health` (JSON) and `/metrics` (Prometheus; see health.py); with several sources, source N's streams at
`/mjpeg/N` and `/json/N` (`/mjpeg` and `/json`: the first source's); source N's recent clips (`--clips`, as /health
lists them) at `/clips/N/NAME`; source N's heat map so far (--heatmap) at `/heatmap/N` (`/heatmap`: the first's);
`--mjpeg-port` / `--json-port` serve darknet's stream at every path, as darknet does.
"""
from __future__ import annotations

import json
import os
import re
import select
import socket
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import unquote, urlsplit

from ..core.errors import InputError
from .feed import LiveFeed
from .health import CONTENT_TYPE as METRICS_TYPE
from .health import SourceBoard
from .streams import DARKNET_JSON, EVENTS, MJPEG, StreamFormat

# A viewer whose socket takes no bytes for this long is dropped (a stalled one is kept until then:
# it simply skips frames), so a peer that vanished without closing does not hold a thread forever.
SEND_TIMEOUT = 60.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # streams end by closing the connection, as darknet's do
    server_version = "darknet_py"
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        routes = ROUTES[self.server.kind]
        action = routes.get(path) or routes.get("*")
        per_source = SOURCE_STREAM.fullmatch(path) if self.server.kind == "serve" else None
        if per_source is not None:  # /mjpeg/N, /json/N: source N's stream, when there are several sources
            feed = self.server.source_feeds(int(per_source["index"]))
            if feed is None:
                self.send_error(404, f"no source {per_source['index']} (sources are numbered from 0)")
                return
            self.stream(MJPEG if per_source["kind"] == "mjpeg" else EVENTS, feed)
            return
        heatmap = HEATMAP.fullmatch(path) if self.server.kind == "serve" else None
        if heatmap is not None:  # /heatmap/N (/heatmap: the first source's): the picture of the heat map so far
            self.heatmap(int(heatmap["index"] or 0))
            return
        clip = CLIP_FILE.fullmatch(path) if self.server.kind == "serve" else None
        if clip is not None:  # /clips/N/NAME: a recent clip of source N, as /health lists it (the page links there)
            self.clip(int(clip["index"]), unquote(clip["name"]))
            return
        if action is None:
            self.send_error(404, "not here: the page is at /, the streams at /mjpeg and /json")
            return
        action(self)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - viewers coming and going are not news
        pass

    def _send_body(self, content_type: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(body)

    def page(self) -> None:
        self._send_body("text/html; charset=utf-8", resources.files(__package__).joinpath("page.html").read_bytes())

    def status(self) -> None:
        self._send_body("application/json", json.dumps(self.server.feed.status()).encode())

    def health(self) -> None:
        self._send_body("application/json", self.server.board.health())

    def metrics(self) -> None:
        self._send_body(METRICS_TYPE, self.server.board.metrics())

    def heatmap(self, index: int) -> None:
        """Send source *index*'s heat map so far (--heatmap), drawn now, as PNG."""
        if index >= len(self.server.board.sources()):
            self.send_error(404, f"no source {index} (sources are numbered from 0)")
            return
        picture = self.server.board.heatmap_png(index)
        if picture is None:
            self.send_error(404, f"no heat map of source {index} (give --heatmap; it is drawn from the first frame on)")
            return
        self._send_body("image/png", picture)

    def clip(self, index: int, name: str) -> None:
        """Send a recent clip's file (only a file /health lists: never another path)."""
        path = self.server.board.clip_file(index, name)
        try:
            handle = open(path, "rb") if path is not None else None
        except FileNotFoundError:  # deleted since (--keep-clips)
            handle = None
        if handle is None:
            self.send_error(404, f"no recent clip {name!r} of source {index} (the page links to those /health lists)")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            wanted = byte_range(self.headers.get("Range"), size)
            if wanted is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start, end, partial = wanted
            self.send_response(206 if partial else 200)
            self.send_header("Content-Type", CLIP_TYPES.get(path.suffix.lower(), "application/octet-stream"))
            self.send_header("Accept-Ranges", "bytes")  # a browser seeks in the clip by asking for parts of it
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
            self.send_header("Content-Length", str(end - start))
            self.end_headers()
            handle.seek(start)
            left = end - start
            try:
                while left > 0 and (chunk := handle.read(min(CLIP_CHUNK, left))):
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except OSError:  # the viewer left
                self.close_connection = True

    def stream(self, form: StreamFormat, feed: LiveFeed | None = None) -> None:
        self.connection.settimeout(SEND_TIMEOUT)
        self.send_response(200)
        self.send_header("Content-Type", form.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        feed = feed or self.server.feed
        with feed.viewer():
            try:
                self.wfile.write(form.opening)
                sent = 0
                while (frame := feed.next_frame(sent, gone=self._viewer_left)) is not None:
                    self.wfile.write(form.frame(frame, sent == 0, self.server.quality))
                    sent = frame.frame_id
                self.wfile.write(form.closing)
            except OSError:  # the viewer left (reset, broken pipe) or took nothing for SEND_TIMEOUT
                self.close_connection = True

    def _viewer_left(self) -> bool:
        """While no frame comes: has the viewer closed its end? (It sends nothing after its request.)"""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def byte_range(header: str | None, size: int) -> tuple[int, int, bool] | None:
    """The part of a *size*-byte file an HTTP `Range` header asks for, as (start, end, whether a range was asked):
    [start, end) of the file; the whole file and False without one, or with one this server does not serve (several
    ranges, another unit, an invalid one: HTTP lets it send all); None for a range the file does not hold (a 416).

    Args:
        header (str or None): `bytes=START-END`, `bytes=START-` or `bytes=-LAST`.
        size (int): the file's length.
    """
    found = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if found is None or found[1] == found[2] == "" or (found[1] and found[2] and int(found[2]) < int(found[1])):
        return 0, size, False
    if found[1] == "":  # the last N bytes
        last = min(int(found[2]), size)
        return (size - last, size, True) if last > 0 else None
    start = int(found[1])
    end = min(int(found[2]) + 1, size) if found[2] else size
    return (start, end, True) if start < size else None


SOURCE_STREAM = re.compile(r"/(?P<kind>mjpeg|json)/(?P<index>\d+)")
CLIP_FILE = re.compile(r"/clips/(?P<index>\d+)/(?P<name>[^/]+)")
HEATMAP = re.compile(r"/heatmap(?:/(?P<index>\d+))?")
CLIP_TYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo"}
CLIP_CHUNK = 1 << 20
ROUTES: dict[str, dict[str, Callable[[_Handler], None]]] = {  # server kind → path → action; "*": every path
    "serve": {"/": _Handler.page, "/index.html": _Handler.page, "/status": _Handler.status,
              "/health": _Handler.health, "/metrics": _Handler.metrics,
              "/mjpeg": partial(_Handler.stream, form=MJPEG), "/json": partial(_Handler.stream, form=EVENTS)},
    "mjpeg": {"*": partial(_Handler.stream, form=MJPEG)},
    "json": {"*": partial(_Handler.stream, form=DARKNET_JSON)},
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a viewer stuck in a send never keeps the program from exiting

    def __init__(self, address: tuple[str, int], kind: str, feed: LiveFeed, quality: int, board: SourceBoard,
                 source_feeds: Callable[[int], LiveFeed | None]) -> None:
        self.kind, self.feed, self.quality, self.board, self.source_feeds = kind, feed, quality, board, source_feeds
        super().__init__(address, _Handler)


class _Server6(_Server):
    address_family = socket.AF_INET6


def start_server(kind: str, host: str, port: int, feed: LiveFeed, quality: int, board: SourceBoard | None = None,
                 source_feeds: Callable[[int], LiveFeed | None] = lambda index: None) -> ThreadingHTTPServer:
    """A running server of *kind* ("serve", "mjpeg", "json") on host:port (0: any free port); *board*: the sources
    /health and /metrics report on; *source_feeds*: source N's feed for /mjpeg/N and /json/N (None: no such source)."""
    server_class = _Server6 if ":" in host else _Server
    try:
        server = server_class((host, port), kind, feed, quality, board or SourceBoard(), source_feeds)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name=f"live-{kind}", daemon=True).start()
    return server
