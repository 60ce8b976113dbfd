"""Live view of a detection run: darknet's MJPEG and JSON streams, and a page that shows both.

    with LiveView(LiveOptions(serve=8080)) as live:      # servers start; their URLs in live.urls
        live.wait_for_viewers(1)                          # optional: start when someone watches
        run_video(source, detect, output, sinks=[live])   # a sink: write() publishes, finish() ends the streams

The detection loop only calls publish() (a reference swap; boxes are drawn and JPEGs made on the viewers'
threads); see feed.py for why viewers never slow it. `watch(status)` adds a source's figures
(media.source_status) to `/health` and `/metrics` (health.py).

The detection server of `darknet-py server` (POST an image, get its detections as JSON) is detect_api.py.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import warnings
from dataclasses import dataclass

from ..core import interrupt
from ..core.errors import DarknetWarning, InputError
from ..media.sinks import Result
from ..media.source_status import SourceStatus
from .feed import LiveFeed, LiveFrame
from .health import SourceBoard
from .server import start_server

__all__ = ["LiveFeed", "LiveFrame", "LiveOptions", "LiveView", "SourceView", "is_loopback"]

DARKNET_JPEG_QUALITY = 40  # demo.c's jpeg_quality for -mjpeg_port


@dataclass(frozen=True)
class LiveOptions:
    serve: int | None = None  # page + /mjpeg + /json on this port
    mjpeg_port: int | None = None  # darknet's -mjpeg_port
    json_port: int | None = None  # darknet's -json_port
    host: str = "127.0.0.1"
    quality: int = DARKNET_JPEG_QUALITY

    @property
    def wanted(self) -> bool:
        return any(port is not None for port in (self.serve, self.mjpeg_port, self.json_port))

    def check(self) -> None:
        ports = {"--serve": self.serve, "--mjpeg-port": self.mjpeg_port, "--json-port": self.json_port}
        given = {flag: port for flag, port in ports.items() if port is not None}
        for flag, port in given.items():
            if not 0 <= port <= 65535:
                raise InputError(f"{flag} {port}: a port is 0..65535 (0 picks a free one)")
        fixed = [port for port in given.values() if port]
        if len(fixed) != len(set(fixed)):
            raise InputError(f"{', '.join(f'{f} {p}' for f, p in given.items())}: each stream needs its own port")
        if not 1 <= self.quality <= 100:
            raise InputError(f"--mjpeg-quality {self.quality}: JPEG quality is 1..100")


def is_loopback(host: str) -> bool:
    """True when *host* (an address or a name) reaches only this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def publish_result(feed: LiveFeed, result: Result) -> None:
    """Publish one result to *feed*: the annotated copy if a sink drew it, else a viewer draws it as the result
    draws itself (with a tracking stage's ids, trails and counts); an image's path is darknet's `filename`; a
    stage's stream fields (tracking's `counts`) go into the frame's JSON."""
    feed.publish(result.image, result.detections, result.drawn,
                 filename=result.source if result.frame is None else None,
                 render=lambda: result.annotated, extra=result.stream_fields())


class SourceView:
    """The live view of one source of several, as a result sink: write() publishes, finish() ends its streams."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed

    def write(self, result: Result) -> None:
        publish_result(self.feed, result)

    def finish(self) -> None:
        self.feed.end()


class LiveView:
    """The servers asked for in *options*, fed by one LiveFeed; a context manager that closes them."""

    def __init__(self, options: LiveOptions) -> None:
        options.check()
        self.options, self.feed, self.board = options, LiveFeed(), SourceBoard()
        self.feeds = [self.feed]  # one per source (several sources: /mjpeg/N, /json/N); the first is `feed`
        self._feeds_lock = threading.Lock()
        self.urls: dict[str, str] = {}  # "serve" / "mjpeg" / "json" → the URL it answers on
        self._servers = []
        if not is_loopback(options.host):
            warnings.warn(f"--host {options.host} is not loopback: anyone who can reach this machine can watch "
                          "the streams (there is no authentication)", DarknetWarning, stacklevel=2)
        try:
            for kind, port in (("serve", options.serve), ("mjpeg", options.mjpeg_port), ("json", options.json_port)):
                if port is not None:
                    server = start_server(kind, options.host, port, self.feed, options.quality, self.board,
                                          self._source_feed)
                    self._servers.append(server)
                    host = f"[{options.host}]" if ":" in options.host else options.host
                    self.urls[kind] = f"http://{host}:{server.server_address[1]}/"
        except BaseException:
            self.close()
            raise

    def describe(self) -> list[str]:
        """One line per server, for the terminal."""
        lines = {"serve": "live view: {url}  (streams: {url}mjpeg, {url}json; {url}health, {url}metrics)",
                 "mjpeg": "MJPEG stream: {url}", "json": "JSON stream: {url}"}
        return [lines[kind].format(url=url) for kind, url in self.urls.items()]

    def source(self, index: int) -> "SourceView":
        """A sink for source *index* of several: its frames at /mjpeg/INDEX and /json/INDEX (source 0's also at
        /mjpeg and /json, and on the page's main view)."""
        with self._feeds_lock:
            while len(self.feeds) <= index:
                self.feeds.append(LiveFeed())
            return SourceView(self.feeds[index])

    def _source_feed(self, index: int) -> LiveFeed | None:
        with self._feeds_lock:
            return self.feeds[index] if index < len(self.feeds) else None

    def watch(self, source: SourceStatus) -> None:
        """Report *source*'s figures at /health and /metrics (--serve)."""
        self.board.add(source)

    def publish(self, image, dets, drawn=None, filename: str | None = None, render=None, extra=None) -> None:
        """The newest frame (see LiveFeed.publish); returns at once."""
        self.feed.publish(image, dets, drawn, filename, render, extra)

    def write(self, result: Result) -> None:
        """As a result sink (darknet_py.media.sinks): publish the image or frame, with its annotated copy if a
        sink before this one drew it (else a viewer draws it, as the result draws itself: with a tracking stage's
        ids, trails and counts); an image's path is darknet's `filename`; a stage's stream fields (tracking's
        `counts`) go into the frame's JSON.

        Args:
            result (Result): one image's or video frame's result.
        """
        publish_result(self.feed, result)

    def wait_for_viewers(self, count: int) -> None:
        self.feed.wait_for_viewers(count)

    def finish(self) -> None:
        """The source has ended (also the sink's finish()): each viewer is sent the last frame, then its
        stream closes."""
        self.feed.end()

    def hold(self) -> None:
        """Keep serving (the last frame, to new viewers) until Ctrl-C or SIGTERM, the way such a run ends: the program
        then exits 0."""
        forever = threading.Event()
        try:
            while not forever.wait(1.0):  # a timed wait, so Ctrl-C is seen at once
                pass
        except KeyboardInterrupt:
            interrupt.expected()

    def close(self) -> None:
        with self._feeds_lock:
            for feed in self.feeds:
                feed.end()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
