"""Work arrays that outlive one image: kept per thread, by name, while their shape and type stay (a video's
frames, a folder of same-sized photos). A fresh multi-megabyte array per image costs more in page faults than
the arithmetic done in it, and reused memory is still in cache."""
from __future__ import annotations

import threading

import numpy as np


class ThreadBuffers(threading.local):
    """Named host arrays, one set per thread (each thread that asks gets its own: no locking, no sharing)."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """This thread's array *name* of *shape* and *dtype*: the one held if it matches, else a new one (its
        contents are whatever the last user left).

        Args:
            name (str): what the array is for; different jobs use different names.
            shape (tuple of int): its shape.
            dtype: its numpy type (default float32).

        Returns:
            ndarray: uninitialised, or as the previous caller of the same name left it.
        """
        held = self.buffers.get(name)
        if held is None or held.shape != shape or held.dtype != dtype:
            held = self.buffers[name] = np.empty(shape, dtype)
        return held
