"""A small progress line for long work: count, rate, ETA (stderr, no dependency).

On a terminal the line redraws in place twice a second; in a log (not a tty) a plain line
is written every 10 seconds instead, so CI logs stay readable.
"""
from __future__ import annotations

import sys
import time
from typing import Callable


class Progress:
    def __init__(self, label: str, total: int | None = None, stream=None, unit: str = "frames",
                 approximate: bool = False, detail: Callable[[], str] | None = None) -> None:
        self.label, self.total, self.unit, self.approximate = label, total, unit, approximate
        self.detail = detail  # more to say at the end of the line (e.g. a camera's frames dropped for newer ones)
        self.stream = stream if stream is not None else sys.stderr
        self.count, self.start, self._last = 0, time.monotonic(), 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.count / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= (0.5 if self._tty else 10.0):
            self._last = now
            self._show(end="\r" if self._tty else "\n")

    def _show(self, end: str) -> None:
        rate = self.rate
        if self.total:
            eta = max(self.total - self.count, 0) / rate if rate > 0 else 0
            about = "~" if self.approximate else ""
            text = f"{self.label}: {self.count}/{about}{self.total} {self.unit}  {rate:5.1f} {self.unit}/s  ETA {eta:4.0f}s"
        else:
            text = f"{self.label}: {self.count} {self.unit}  {rate:5.1f} {self.unit}/s"
        if self.detail is not None:
            text += f"  {self.detail()}"
        print(text.ljust(70) if self._tty else text, end=end, file=self.stream, flush=True)

    def close(self) -> None:
        self._show(end="\n")
