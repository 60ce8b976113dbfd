"""The torch model's twin for several detect() calls at once (`Backend.concurrent`): the same model, each calling
thread running torch on its share of the cores.

On a small CPU one eager forward on all of torch's threads leaves them idle part of the time (they meet at the end of
every layer); two forwards at once on one thread each finish more of them: a video written 1.21–1.23× as fast on a
2-core AMD EPYC (benchmarks/results/in_flight.md). Unlike onnxruntime and OpenVINO, torch has no thread count per
model: `torch.set_num_threads` sets the calling thread's OpenMP team size (torch's CPU wheels use OpenMP, whose
thread count is a per-thread setting) *and* the process default, which a thread takes when it first runs a
parallel op. So each calling thread here (1) has torch take its default first, (2) sets its own share, and (3)
puts the process default back from a short-lived helper thread, which must not be the caller's own (setting it
there would undo (2)). Other threads keep their counts; the caller's thread keeps its share afterwards.
"""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import torch

from ..pipeline.backend import Candidates, Gated
from ..pipeline.detections import Detections
from ..pipeline.preprocess import ImageLike

_setting = threading.Lock()  # one thread at a time changes the process default and puts it back


def share_threads(threads: int, default: int) -> None:
    """Run torch on *threads* threads in the calling thread from now on; the process default stays *default*.

    Args:
        threads (int): this thread's intra-op threads.
        default (int): the process default to leave for threads that start torch work later.
    """
    with _setting:
        torch.get_num_threads()  # the thread's first parallel setup, which would otherwise reset (2) later
        torch.set_num_threads(threads)
        helper = threading.Thread(target=_set_default, args=(default,), name="darknet_py-torch-threads")
        helper.start()
        helper.join()


def _set_default(default: int) -> None:
    torch.get_num_threads()
    torch.set_num_threads(default)


class TorchTwin:
    """A Darknet model for *calls* detect() calls at once from as many threads, torch's threads split between them.

    Every attribute is the model's (it is the same network, weights and options); detect(), candidates() and
    candidates_above() first give a thread that calls them for the first time its share of the threads. Made by
    `Darknet.concurrent`, which decides where it applies (eager float32 on the CPU, no recurrent state).
    """

    def __init__(self, model, calls: int) -> None:
        self._model = model
        self._default = torch.get_num_threads()
        self._threads = max(1, self._default // calls)
        self._shared = threading.local()

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def _own_share(self) -> None:
        if not getattr(self._shared, "done", False):
            share_threads(self._threads, self._default)
            self._shared.done = True

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               **options) -> list[Detections]:
        """The model's detect(), on this thread's share of torch's threads."""
        self._own_share()
        return self._model.detect(images, conf_thresh, nms_thresh, **options)

    def candidates(self, pixels: np.ndarray | torch.Tensor) -> Candidates:
        self._own_share()
        return self._model.candidates(pixels)

    def candidates_above(self, pixels: np.ndarray | torch.Tensor, objectness_thresh: float) -> Gated:
        self._own_share()
        return self._model.candidates_above(pixels, objectness_thresh)

    def concurrent(self, calls: int) -> None:
        return None  # a twin of a twin would split the shares again
