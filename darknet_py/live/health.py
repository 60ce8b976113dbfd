"""`/health` (JSON) and `/metrics` (Prometheus text) of the `--serve` server: the figures of each source
(media.source_status.SourceStatus), read when asked, never pushed by the detection loop.

/health:

    {"sources": [{"source": "rtsp://***@cam/1", "state": "connected", "fps": 4.8, "last_frame_age_s": 0.21,
                  "lag_s": 0.43, "frames": 1234, "drops": 1, "dropped_frames": 4400, "detections": {"person": 812}}]}

/metrics (what Prometheus, Grafana Agent or VictoriaMetrics scrape; made by prometheus_client, so the text
format is theirs, exactly):

    darknet_py_source_up{source="..."} 1.0            1 while connected, 0 while reconnecting or ended
    darknet_py_source_state{source="...",state="reconnecting"} 0.0    one series per state, 1 for the current
    darknet_py_source_fps, darknet_py_source_last_frame_age_seconds, darknet_py_source_lag_seconds
    darknet_py_source_frames_total, darknet_py_source_drops_total, darknet_py_source_dropped_frames_total
    darknet_py_detections_total{source="...",class="person"}
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from ..media.source_status import CONNECTED, ENDED, RECONNECTING, SourceStatus

if TYPE_CHECKING:  # prometheus_client is imported where a live view is made: every command's start-up skips it
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

STATES = (CONNECTED, RECONNECTING, ENDED)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text exposition format


class SourceBoard:
    """The sources a live view reports on, and their /health and /metrics bodies (asked from server threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: list[SourceStatus] = []
        self.registry = metrics_registry(self.sources)

    def add(self, source: SourceStatus) -> None:
        with self._lock:
            self._sources.append(source)

    def sources(self) -> list[SourceStatus]:
        with self._lock:
            return list(self._sources)

    def clip_file(self, index: int, name: str) -> Path | None:
        """The file of source *index*'s recent clip *name* (SourceStatus.clip_file); None: no such source or clip."""
        sources = self.sources()
        return sources[index].clip_file(name) if 0 <= index < len(sources) else None

    def heatmap_png(self, index: int) -> bytes | None:
        """Source *index*'s heat map so far as PNG bytes (SourceStatus.heatmap_png); None: no such source, no
        --heatmap, or no frame yet."""
        sources = self.sources()
        return sources[index].heatmap_png() if 0 <= index < len(sources) else None

    def health(self) -> bytes:
        """`/health`'s body: `{"sources": [SourceStatus.snapshot(), ...]}`."""
        return json.dumps({"sources": [source.snapshot() for source in self.sources()]}).encode()

    def metrics(self) -> bytes:
        """`/metrics`'s body, in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class SourceCollector:
    """A prometheus_client collector that reads the sources' snapshots at each scrape.

    Args:
        sources (callable): the SourceStatus objects to report, asked at each scrape (sources come and go).
    """

    def __init__(self, sources: Callable[[], Iterable[SourceStatus]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("darknet_py_source_up", "1 while the source is connected", labels=["source"])
        state = GaugeMetricFamily("darknet_py_source_state", "1 for the source's current state",
                                  labels=["source", "state"])
        fps = GaugeMetricFamily("darknet_py_source_fps", "frames detected per second, last few seconds",
                                labels=["source"])
        age = GaugeMetricFamily("darknet_py_source_last_frame_age_seconds", "seconds since the last frame was "
                                "detected (absent before the first)", labels=["source"])
        lag = GaugeMetricFamily("darknet_py_source_lag_seconds", "how long before its results were written the "
                                "camera sent the last frame detected (live sources)", labels=["source"])
        frames = CounterMetricFamily("darknet_py_source_frames", "frames detected", labels=["source"])
        drops = CounterMetricFamily("darknet_py_source_drops", "connections lost", labels=["source"])
        dropped = CounterMetricFamily("darknet_py_source_dropped_frames", "frames skipped for a newer one "
                                      "(latest-frame mode)", labels=["source"])
        detections = CounterMetricFamily("darknet_py_detections", "detections by class", labels=["source", "class"])
        crossings = CounterMetricFamily("darknet_py_line_crossings", "tracks that crossed a line (--line), by "
                                        "direction and class", labels=["source", "line", "direction", "class"])
        zone_moves = CounterMetricFamily("darknet_py_zone_transitions", "tracks that entered or left a zone (--zone), "
                                         "or stayed in it --dwell seconds (direction dwelling), by class",
                                         labels=["source", "zone", "direction", "class"])
        inside = GaugeMetricFamily("darknet_py_zone_inside", "tracks inside a zone (--zone) now, by class",
                                   labels=["source", "zone", "class"])
        notify_up = GaugeMetricFamily("darknet_py_notify_up", "1 while the --notify receiver takes messages, 0 while "
                                      "it fails", labels=["source", "url"])
        notify_waiting = GaugeMetricFamily("darknet_py_notify_waiting", "--notify messages queued for the receiver",
                                           labels=["source", "url"])
        notify_delivered = CounterMetricFamily("darknet_py_notify_delivered", "--notify messages the receiver took",
                                               labels=["source", "url"])
        for source in self.sources():
            figures = source.snapshot()
            name = figures["source"]
            for notifier in figures.get("notify", ()):
                notify_up.add_metric([name, notifier["url"]], 1.0 if notifier["up"] else 0.0)
                notify_waiting.add_metric([name, notifier["url"]], notifier["waiting"])
                notify_delivered.add_metric([name, notifier["url"]], notifier["delivered"])
            up.add_metric([name], 1.0 if figures["state"] == CONNECTED else 0.0)
            for each in STATES:
                state.add_metric([name, each], 1.0 if figures["state"] == each else 0.0)
            fps.add_metric([name], figures["fps"])
            if figures["last_frame_age_s"] is not None:
                age.add_metric([name], figures["last_frame_age_s"])
            if figures["lag_s"] is not None:
                lag.add_metric([name], figures["lag_s"])
            frames.add_metric([name], figures["frames"])
            drops.add_metric([name], figures["drops"])
            dropped.add_metric([name], figures["dropped_frames"])
            for label, count in sorted(figures["detections"].items()):
                detections.add_metric([name, label], count)
            counts = figures.get("counts", {})  # only where lines or zones are counted
            for line, directions in sorted(counts.get("lines", {}).items()):
                for direction in ("in", "out"):
                    for label, count in sorted(directions[direction].items()):
                        crossings.add_metric([name, line, direction, label], count)
            for zone, directions in sorted(counts.get("zones", {}).items()):
                for direction in ("entered", "exited", "dwelling"):  # dwelling: with --dwell only
                    for label, count in sorted(directions.get(direction, {}).items()):
                        zone_moves.add_metric([name, zone, direction, label], count)
                now = figures.get("inside", {}).get(zone, {})
                for label in sorted({*directions["entered"], *now}):  # 0 for a class that has been and gone
                    inside.add_metric([name, zone, label], now.get(label, 0))
        yield from (up, state, fps, age, lag, frames, drops, dropped, detections, crossings, zone_moves, inside,
                    notify_up, notify_waiting, notify_delivered)


def metrics_registry(sources: Callable[[], Iterable[SourceStatus]]) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one: two live views in one process, as the tests
    make, must not report each other's sources)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SourceCollector(sources))
    return registry
