"""Waits between tries of something that failed and may work again later (a camera to reconnect, a webhook receiver
to reach): the first wait, doubling each time, never above the longest."""
from __future__ import annotations

from typing import Iterator


def backoff(first: float, longest: float) -> Iterator[float]:
    """The waits between tries: *first*, doubling each time, never above *longest*.

    Args:
        first (float): the first wait, seconds.
        longest (float): the longest wait, seconds.

    Returns:
        Iterator[float]: the waits, for ever.
    """
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, longest)
