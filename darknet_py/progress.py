"""A small progress line for long work: count, rate, ETA (stderr, no dependency)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None = None, stream=sys.stderr) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.count, self.start, self._last = 0, time.monotonic(), 0.0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.count / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self._show()

    def _show(self, end: str = "\r") -> None:
        rate = self.rate
        if self.total:
            eta = (self.total - self.count) / rate if rate > 0 else 0
            text = f"{self.label}: {self.count}/~{self.total} frames  {rate:5.1f} frames/s  ETA {eta:4.0f}s"
        else:
            text = f"{self.label}: {self.count} frames  {rate:5.1f} frames/s"
        print(text.ljust(70), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        self._show(end="\n")
