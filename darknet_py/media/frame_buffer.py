"""Decoded frames between the reader thread and the detection loop: every frame, or only the newest.

- `FrameQueue` keeps every frame (a bounded queue: the reader waits when detection is behind). Files always
  use it, and live sources with `--keep-all-frames`.
- `LatestFrame` keeps one: a new frame replaces one not yet taken (counted in `dropped`). Live sources use it
  by default, so a model slower than the camera always detects what the camera sees now; the reader keeps
  reading (and decoding) at the camera's pace, which also empties the camera's and FFmpeg's buffers.

Both end with `close()`: `get()` then returns `END` once what is held has been taken. For many sources read
by one loop (many_sources.py), `take_ready()` never waits, and *on_change* (given at construction) is called
after each put() and close(), so the loop can wait for whichever source has something.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

END = object()  # get()'s answer once the reader has closed the buffer and nothing is left


class FrameQueue:
    """Every frame, in order; put() waits while *size* frames are waiting to be detected.

    Args:
        size (int): frames held at most.
    """

    dropped = 0  # never drops

    def __init__(self, size: int, on_change: Callable[[], None] = lambda: None) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stopping = threading.Event()
        self._on_change = on_change

    def put(self, item: Any) -> bool:
        """Hand over a frame (waits for room); False when it was dropped because abandon() was called."""
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                self._on_change()
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """No more frames: get() returns END after the ones held (waits for room like put(); returns at once
        once abandon() was called)."""
        if not self.put(END):  # abandoned: nobody reads; END only if there is room (nothing waits for it)
            try:
                self._queue.put_nowait(END)
            except queue.Full:
                pass
            self._on_change()

    def abandon(self) -> None:
        """The consumer stops taking frames: a reader blocked in put() returns."""
        self._stopping.set()

    def get(self) -> Any:
        return self._queue.get()

    def take_ready(self) -> Any:
        """The oldest frame held, END once closed and empty, or None when nothing is ready (never waits)."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None


class LatestFrame:
    """The newest frame only: put() never waits; a frame not taken before the next one comes is dropped."""

    def __init__(self, on_change: Callable[[], None] = lambda: None) -> None:
        self._on_change = on_change
        self._changed = threading.Condition()
        self._item: Any = None
        self._held = False
        self._closed = False
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._changed:
            if self._held:
                self.dropped += 1
            self._item, self._held = item, True
            self._changed.notify_all()
        self._on_change()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._on_change()

    def abandon(self) -> None:
        pass  # put() never waits

    def get(self) -> Any:
        """The newest frame, waiting for one; END once closed with nothing held."""
        with self._changed:
            while not self._held and not self._closed:
                self._changed.wait()
            if not self._held:
                return END
            item, self._item, self._held = self._item, None, False
            return item

    def take_ready(self) -> Any:
        """The newest frame, END once closed with nothing held, or None when nothing is ready (never waits)."""
        with self._changed:
            if self._held:
                item, self._item, self._held = self._item, None, False
                return item
            return END if self._closed else None
