"""The torch model's twin for several detect() calls at once (`Backend.concurrent`): the same model, each call
running torch on its share of the threads.

On a small CPU one eager forward on all of torch's threads leaves them idle part of the time (they meet at the end of
every layer); two forwards at once on one thread each finish more of them (benchmarks/results/in_flight.md).
Unlike onnxruntime and OpenVINO, torch has no thread count per model, and `torch.set_num_threads` also changes
the process default that every thread takes when it first runs torch. But torch's CPU wheels run their parallel
loops and oneDNN's convolutions on OpenMP, whose team size is a setting of the calling thread
(`omp_set_num_threads`). So a twin's call sets the calling thread's OpenMP setting to its share through the OpenMP
library torch loaded, and puts it back when the call returns: nothing else in the process changes, and the
calling thread is as it was. Where that library cannot be found (not Linux, another parallel backend), there is
no twin.
"""
from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
from typing import Sequence

import numpy as np
import torch

from ..pipeline.backend import Candidates, Gated
from ..pipeline.detections import Detections
from ..pipeline.preprocess import ImageLike

_OPENMP_NAMES = re.compile(r"lib(gomp|iomp5|omp)[^/]*\.so")


@functools.cache
def openmp_runtime() -> ctypes.CDLL | None:
    """The OpenMP library torch runs on in this process, or None (torch on another backend, or not found).

    Read from the libraries the process has mapped (/proc/self/maps): the one in torch's own folder (pip wheels
    bundle libgomp), else the only one mapped.
    """
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            found = sorted({line.split()[-1] for line in maps if _OPENMP_NAMES.search(line.rsplit("/", 1)[-1])})
    except OSError:
        return None
    own = [path for path in found if path.startswith(os.path.dirname(torch.__file__) + os.sep)]
    chosen = own or (found if len(found) == 1 else [])
    if not chosen:
        return None
    try:
        return ctypes.CDLL(chosen[0])  # already loaded: the same library, the same settings
    except OSError:
        return None


class TorchTwin:
    """A Darknet model for *calls* detect() calls at once from as many threads, torch's threads split between them.

    Every attribute is the model's (the same network, weights and options). detect(), candidates() and
    candidates_above() run with the calling thread's OpenMP threads set to its share and put back afterwards. Made
    by `Darknet.concurrent`, which decides where it applies (eager float32 on the CPU, no recurrent state, OpenMP);
    if the model is compiled, moved or cast after that, the twin's calls run one at a time with the model's settings.
    """

    def __init__(self, model, calls: int, openmp: ctypes.CDLL) -> None:
        self._model = model
        self._threads = max(1, torch.get_num_threads() // calls)
        self._openmp = openmp
        self._one_at_a_time = threading.Lock()  # for a model changed since (see _on_share)

    def __getattr__(self, name: str):
        if name.startswith("_"):  # the twin's own (and, while a copy is being made, not yet set): never the model's
            raise AttributeError(name)
        return getattr(self._model, name)

    def _on_share(self, call, *args, **kwargs):
        if not self._model.runs_eager_float32_on_cpu():  # compiled, moved or cast since: one call at a time, with the model's settings
            with self._one_at_a_time:
                return call(*args, **kwargs)
        torch.get_num_threads()  # torch's own first setting of this thread, which would otherwise replace ours
        previous = self._openmp.omp_get_max_threads()
        self._openmp.omp_set_num_threads(self._threads)
        try:
            return call(*args, **kwargs)
        finally:
            self._openmp.omp_set_num_threads(previous)

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               **options) -> list[Detections]:
        """The model's detect(), on the calling thread's share of torch's threads."""
        return self._on_share(self._model.detect, images, conf_thresh, nms_thresh, **options)

    def candidates(self, pixels: np.ndarray | torch.Tensor) -> Candidates:
        """The model's `candidates`, run on this twin's share of the threads."""
        return self._on_share(self._model.candidates, pixels)

    def candidates_above(self, pixels: np.ndarray | torch.Tensor, objectness_thresh: float) -> Gated:
        """The model's `candidates_above`, run on this twin's share of the threads."""
        return self._on_share(self._model.candidates_above, pixels, objectness_thresh)

    def concurrent(self, calls: int) -> None:
        """None: a twin is not split again."""
        return None  # a twin of a twin would split the shares again
