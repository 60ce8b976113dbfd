"""How a video source (or a folder watched for images: --watch) is doing, for `/health` and `/metrics`
(darknet_py.live): its state, frame rate, the age of its last frame, how far the detections lag behind the camera, frames detected, connection drops,
frames dropped for the newest one, detections per class, and the counts of its lines and zones (--track).

The reader thread reports the connection (`connected`, `dropped`, `ended`); the detection loop reports
each frame as a sink (`write`); the live server's threads read a `snapshot()`. Everything is behind one lock,
and each call is a few additions: nothing here slows the loop.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Callable

from ..core.credentials import hide_credentials
from ..core.dates import utc_text
from .sinks import Result
from .tracking_sinks import TrackedResult

CONNECTED, RECONNECTING, ENDED = "connected", "reconnecting", "ended"
FPS_WINDOW_S = 5.0  # the frame rate is measured over the last few seconds: a stall shows at once
RECENT = 20  # happenings (counting events, clips, drops and returns) that /health lists, the newest


class SourceStatus:
    """The figures of one source; a result sink (write/finish) for the frames detected.

    Args:
        source (str): the source as given (credentials are hidden here, once).
        clock (callable): seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, source: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = hide_credentials(str(source))
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CONNECTED
        self._frames = 0
        self._drops = 0
        self._dropped_frames: Callable[[], int] = lambda: 0
        self._last_frame: float | None = None
        self._lag: float | None = None
        self._frame_times: deque[float] = deque()
        self._started = clock()
        self._classes: Counter[str] = Counter()
        self._counts: dict | None = None  # a tracking stage's line and zone counts (--track --line/--zone)
        self._inside: dict = {}
        self._lost_at: float | None = None  # when the connection dropped, while reconnecting
        self._listeners: list[Callable[[dict], None]] = []
        self._recent: deque[dict] = deque(maxlen=RECENT)
        self._clip_files: dict[str, Path] = {}  # the recent clips' files by name: the only files the page links to
        self._notifiers: list[Callable[[], dict]] = []  # each --notify URL's figures (Notifier.figures)
        self._heatmap: Callable[[], bytes | None] | None = None  # --heatmap: the picture of the map so far

    def on_change(self, listener: Callable[[dict], None]) -> None:
        """Call *listener* as the connection drops (`{"state": "reconnecting", "drops": N, "utc": date}`) and comes
        back (`{"state": "connected", "drops": N, "down_s": seconds it was away, "utc": date}`), in the reader's thread
        (--notify)."""
        self._listeners.append(listener)

    def add_notifier(self, figures: Callable[[], dict]) -> None:
        """Show a --notify URL's delivery in `snapshot()` (its `notify` list): *figures* gives them (Notifier.figures;
        called on the viewers' threads)."""
        self._notifiers.append(figures)

    def show_heatmap(self, picture: Callable[[], bytes | None]) -> None:
        """Serve this source's heat map (--heatmap) at /heatmap/N: *picture* gives it as PNG bytes, or None before the
        first frame (HeatmapSink.picture_png; called on the viewers' threads)."""
        self._heatmap = picture

    def heatmap_png(self) -> bytes | None:
        """The heat map's picture so far as PNG bytes; None without --heatmap or before the first frame."""
        return self._heatmap() if self._heatmap is not None else None

    # -- the reader's side ---------------------------------------------------------------------------
    def count_dropped_frames(self, dropped: Callable[[], int]) -> None:
        """Where the frames dropped for newer ones are counted (the reader's LatestFrame.dropped)."""
        self._dropped_frames = dropped

    def dropped(self) -> int:
        """The connection has dropped; the reader is reconnecting. Returns the number of drops so far."""
        with self._lock:
            self._drops += 1
            self._state, self._lost_at = RECONNECTING, self._clock()
            change = {"state": RECONNECTING, "drops": self._drops, "utc": utc_text(time.time())}
            self._recent.append({"type": "source", **change})
        self._tell(change)
        return change["drops"]

    def connected(self) -> None:
        """The connection is back (after dropped())."""
        with self._lock:
            back = self._state == RECONNECTING and self._lost_at is not None
            change = {"state": CONNECTED, "drops": self._drops,
                      "down_s": round(self._clock() - self._lost_at, 3) if back else 0.0, "utc": utc_text(time.time())}
            self._state, self._lost_at = CONNECTED, None
            if back:
                self._recent.append({"type": "source", **change})
        if back:
            self._tell(change)

    def clip(self, line: dict, path: Path) -> None:
        """A clip of this source is finished and listed (ClipsSink's listener; its clips.jsonl *line*, its file)."""
        with self._lock:
            self._recent.append({"type": "clip", **line})
            self._clip_files[Path(line["file"]).name] = path
            shown = {Path(happening["file"]).name for happening in self._recent if happening["type"] == "clip"}
            self._clip_files = {name: file for name, file in self._clip_files.items() if name in shown}

    def clip_file(self, name: str) -> Path | None:
        """The file of the recent clip named *name* (as /health lists it), if it is still on disk; else None."""
        with self._lock:
            path = self._clip_files.get(name)
        return path if path is not None and path.is_file() else None

    def _tell(self, change: dict) -> None:
        for listener in self._listeners:  # outside the lock: a listener may take its time, never the viewers'
            listener(change)

    def ended(self) -> None:
        with self._lock:
            self._state = ENDED

    # -- the detection loop's side (a sink) -----------------------------------------------------------
    def write(self, result: Result) -> None:
        now = self._clock()
        with self._lock:
            self._frames += 1
            self._last_frame = now
            if result.captured is not None:  # a live source's frame: how long ago the camera sent it
                # at least 0 by construction (live_reader dates a frame no later than its arrival); the floor only
                # keeps a caller's own clock (tests) from reporting a negative lag
                self._lag = max(now - result.captured, 0.0)
            elif result.watched_image:  # a watched folder's image: since its file
                self._lag = max(time.time() - result.wall_time, 0.0)  # was written (another machine's clock: >= 0)
            self._frame_times.append(now)
            self._classes.update(result.detections.labels)
            if isinstance(result, TrackedResult) and (result.counts.get("lines") or result.counts.get("zones")):
                self._counts, self._inside = result.counts, result.inside  # fresh dicts each frame: kept as they are
                date = {"utc": result.utc} if result.wall_time is not None else {}
                self._recent.extend({"type": "event", **event.to_dict(), **date} for event in result.events)

    def finish(self) -> None:
        self.ended()

    # -- the viewers' side ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def snapshot(self) -> dict:
        """`/health`'s object for this source.

        Returns:
            dict: `source` (credentials hidden), `state` ("connected", "reconnecting" or "ended"), `fps` (frames
            detected per second over the last FPS_WINDOW_S seconds), `last_frame_age_s` (None before the first
            frame), `lag_s` (a live source: how long before its results were written the camera sent the last
            frame detected, by the stream's clock; a watched folder: how long after its file was written the last
            image's results were; None before the first frame and for files), `frames` (detected; images),
            `drops` (connections lost), `dropped_frames` (frames skipped for newer ones: latest-frame mode),
            `detections` ({class name: count}); with lines or zones counted (--track --line/--zone), also `counts`
            (counts.json's object so far) and `inside` ({zone: {class name: tracks inside now}}); once anything has
            happened, `recent`: the last RECENT counting events (events.jsonl's lines), clips (clips.jsonl's) and
            drops and returns of the connection (--notify's source messages), newest first, each with its `type`;
            with --notify, `notify`: each URL's delivery (Notifier.figures: `url`, `up`, `waiting`, `delivered`, …);
            with --heatmap, `heatmap`: true (its picture is at /heatmap/N).
        """
        now = self._clock()
        with self._lock:
            while self._frame_times and self._frame_times[0] < now - FPS_WINDOW_S:
                self._frame_times.popleft()
            window = min(FPS_WINDOW_S, now - self._started)
            return {"source": self.source, "state": self._state,
                    "fps": round(len(self._frame_times) / window, 3) if window > 0 else 0.0,
                    "last_frame_age_s": None if self._last_frame is None else round(now - self._last_frame, 3),
                    "lag_s": None if self._lag is None else round(self._lag, 3),
                    "frames": self._frames, "drops": self._drops, "dropped_frames": int(self._dropped_frames()),
                    "detections": dict(self._classes),
                    **({} if self._counts is None else {"counts": self._counts, "inside": self._inside}),
                    **({"recent": list(reversed(self._recent))} if self._recent else {}),
                    **({"notify": [figures() for figures in self._notifiers]} if self._notifiers else {}),
                    **({"heatmap": True} if self._heatmap is not None else {})}
