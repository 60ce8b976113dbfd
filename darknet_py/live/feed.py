"""The newest frame and its detections, handed from the detection loop to any number of viewers.

The detection loop only swaps a reference (publish); it never waits for a viewer, never encodes, never
queues. Each viewer asks for "the newest frame after the one I sent last": a slow or stalled viewer
skips what it missed, and nothing piles up — the feed holds one frame, each viewer at most the one it
is sending. The boxes (unless the loop drew them for its file), the JPEG and the JSON are made on a
viewer's thread, once per frame, shared by all viewers.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Callable, Iterator

import numpy as np

from ..media.darknet_json import darknet_frame
from ..pipeline.detections import Detections
from ..pipeline.jpeg import encode_jpeg


class LiveFrame:
    """One published frame: the image, its detections, and what viewers need, made on first use: the annotated
    image (unless the loop drew one already, for its file), its JPEG, its JSON."""

    def __init__(self, frame_id: int, image: np.ndarray, dets: Detections, drawn: np.ndarray | None,
                 filename: str | None, render: Callable[[], np.ndarray] | None = None, extra: dict | None = None) -> None:
        self.frame_id, self.image, self.dets, self.filename = frame_id, image, dets, filename
        self._drawn = drawn
        self._render = render or (lambda: dets.draw(image))  # e.g. tracking's overlays (ids, trails, counts)
        self._extra = extra or {}
        self._lock = threading.Lock()
        self._jpeg: dict[int, bytes] = {}
        self._json: str | None = None

    def jpeg(self, quality: int) -> bytes:
        with self._lock:  # viewers of the same frame wait for one encoding instead of each making their own
            if quality not in self._jpeg:
                if self._drawn is None:
                    self._drawn = self._render()
                self._jpeg[quality] = encode_jpeg(self._drawn, quality)
            return self._jpeg[quality]

    def json(self) -> str:
        """darknet's per-frame object (darknet_json), plus what a stage adds (tracking: `counts`), as JSON text."""
        with self._lock:
            if self._json is None:
                frame = darknet_frame(self.dets, self.frame_id, self.filename)
                self._json = json.dumps({**frame, **self._extra})
            return self._json


class LiveFeed:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._latest: LiveFrame | None = None
        self._published = 0
        self._ended = False
        self._viewers = 0

    # -- the detection loop's side -------------------------------------------------------------------
    def publish(self, image: np.ndarray, dets: Detections, drawn: np.ndarray | None = None,
                filename: str | None = None, render: Callable[[], np.ndarray] | None = None,
                extra: dict | None = None) -> None:
        """Make *image* (BGR, not modified afterwards) the newest frame; *drawn*: its annotated copy if the
        caller made one, else a viewer draws it (with *render* when given, else `dets.draw`); *extra*: fields
        added to its JSON object. Frames are numbered from 1, as darknet's demo numbers them. Returns at once."""
        with self._changed:
            self._published += 1
            self._latest = LiveFrame(self._published, image, dets, drawn, filename, render, extra)
            self._changed.notify_all()

    def end(self) -> None:
        """The source is finished: viewers get the newest frame, then their stream ends."""
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    # -- the viewers' side ---------------------------------------------------------------------------
    def next_frame(self, after: int, gone=lambda: False, poll: float = 1.0) -> LiveFrame | None:
        """The newest frame numbered above *after*, waiting for one; None once the source has ended with
        nothing newer, or when *gone()* says the viewer has left (asked every *poll* seconds of waiting)."""
        with self._changed:
            while True:
                latest = self._latest
                if latest is not None and latest.frame_id > after:
                    return latest
                if self._ended:
                    return None
                if not self._changed.wait(poll) and gone():
                    return None

    @contextlib.contextmanager
    def viewer(self) -> Iterator[None]:
        """Counts a connected viewer for as long as the block runs."""
        with self._changed:
            self._viewers += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._viewers -= 1
                self._changed.notify_all()

    def wait_for_viewers(self, count: int, timeout: float | None = None) -> bool:
        """Block until at least *count* viewers are connected (False if *timeout* passes first)."""
        return self._wait_until(lambda: self._viewers >= count, timeout)

    def wait_for_viewer_count(self, count: int, timeout: float | None = None) -> bool:
        """Block until exactly *count* viewers are connected: a viewer that left has been cleaned up."""
        return self._wait_until(lambda: self._viewers == count, timeout)

    def _wait_until(self, condition, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = 1.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 1.0))  # wakes now and then, so Ctrl-C is seen while waiting
            return True

    def status(self) -> dict:
        with self._changed:
            return {"frames": self._published, "viewers": self._viewers, "ended": self._ended}

    @property
    def viewers(self) -> int:
        with self._changed:
            return self._viewers
