"""A small progress line for long work: count, rate, ETA (stderr, no dependency).

On a terminal the line redraws in place twice a second; in a log (not a tty) a plain line
is written every 10 seconds instead, so CI logs stay readable. Work with a total shows the rate
since the start (and the ETA from it); work without one (a camera, for weeks) the rate over the
last RECENT_S seconds: what it does now, not its average since it started.
"""
from __future__ import annotations

import sys
import time
from collections import deque
from typing import Callable, TextIO

RECENT_S = 10.0  # the window of the rate shown for work without a total


class Progress:
    """A progress line on a stream: the count so far, the rate, and an ETA when the total is known.

    On a terminal the line is redrawn in place at most twice a second; on any other stream (a log) a plain line is
    written at most every 10 seconds. `close()` writes the final line.

    Args:
        label (str): what the work is, at the start of the line.
        total (int or None): how many units the work has; None (or 0): unknown, so no total and no ETA.
        stream (text stream or None): where the line goes; None: sys.stderr.
        unit (str): what is counted ("frames", "images"), shown after the count and in the rate.
        approximate (bool): the total is an estimate: shown as "~TOTAL".
        detail (callable or None): called at each line for more to say at its end (e.g. a camera's frames
            dropped for newer ones).
    """

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None, unit: str = "frames",
                 approximate: bool = False, detail: Callable[[], str] | None = None) -> None:
        self.label, self.total, self.unit, self.approximate = label, total, unit, approximate
        self.detail = detail  # more to say at the end of the line (e.g. a camera's frames dropped for newer ones)
        self.stream = stream if stream is not None else sys.stderr
        self.count, self.start, self._last = 0, time.monotonic(), 0.0
        self._logged: int | None = None  # the count of the last plain line written (not on a terminal)
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._seen: deque[tuple[float, int]] = deque([(self.start, 0)])  # (time, count) at each line, RECENT_S back

    @property
    def rate(self) -> float:
        """Units done per second since the start (0.0 before any time has passed)."""
        elapsed = time.monotonic() - self.start
        return self.count / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1) -> None:
        """Count *n* more units done, and redraw (or log) the line if it is time to.

        Args:
            n (int): units done since the last update.
        """
        self.count += n
        now = time.monotonic()
        if now - self._last >= (0.5 if self._tty else 10.0):
            self._last = now
            self._show(end="\r" if self._tty else "\n")

    def _recent_rate(self) -> float:
        """Units done per second over about the last RECENT_S seconds (since the start, before that); each call is
        one more sample of the window (so only the shown line asks)."""
        now = time.monotonic()
        while len(self._seen) > 1 and now - self._seen[1][0] >= RECENT_S:
            self._seen.popleft()  # the oldest sample kept is the newest one RECENT_S or more back
        since, counted = self._seen[0]
        self._seen.append((now, self.count))
        return (self.count - counted) / (now - since) if now > since else 0.0

    def _show(self, end: str) -> None:
        rate = self.rate if self.total else self._recent_rate()
        if self.total:
            eta = max(self.total - self.count, 0) / rate if rate > 0 else 0
            about = "~" if self.approximate else ""
            text = f"{self.label}: {self.count}/{about}{self.total} {self.unit}  {rate:5.1f} {self.unit}/s  ETA {eta:4.0f}s"
        else:
            text = f"{self.label}: {self.count} {self.unit}  {rate:5.1f} {self.unit}/s"
        if self.detail is not None:
            text += f"  {self.detail()}"
        print(text.ljust(70) if self._tty else text, end=end, file=self.stream, flush=True)
        self._logged = self.count

    def close(self) -> None:
        """Write the line once more, ending it with a newline (whether or not it is time to); in a log, not when the
        last line written already says the final count."""
        if self._tty or self._logged != self.count:
            self._show(end="\n")
