"""The torch backend: `Darknet`, the network of `darknet_py.model` with detect() and classify().

`darknet_py.load(cfg, weights)` returns one. It is the network itself (an `nn.Module`: `forward_heads`,
`.half()`, `.to("cuda")`, weights in and out) plus how detect() runs it: `runner()` makes the
pixels → candidates path for the current device and dtype (CUDA graphs, torch.compile; see
`darknet_py.backends.torch_runner`), and `accelerate()` chooses between them. It meets the
`Backend` protocol the pipeline, the CLI and the Ray driver call.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ..core.errors import InputError
from ..model.network import Network
from ..pipeline.backend import BackendTraits, Candidates, Gated, Portable
from ..pipeline.classifications import Classification
from ..pipeline.classify import classify
from ..pipeline.detect import detect
from ..pipeline.detections import Detections
from ..pipeline.preprocess import ImageLike
from .torch_runner import RunnerOptions, TorchRunner
from .torch_twin import TorchTwin, openmp_runtime

PRECISIONS = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64"}


class Darknet(Network):
    """A darknet network as a torch module, with darknet's detect() and classify().

    `forward` / `forward_heads` return the input of every detection layer ([yolo], [region],
    [Gaussian_yolo]) in cfg order, or for a classifier its output (see `Network.forward_heads`).
    """

    names: list[str] | None = None  # the torch model carries no class names: the caller's, else COCO's

    def __init__(self, sections, size: int | Sequence[int] | None = None, *, init_weights: bool = True) -> None:
        super().__init__(sections, size, init_weights=init_weights)
        self.runner_options = RunnerOptions()
        self._runner: TorchRunner | None = None  # made on first use; see runner()

    # -- how detect() runs the network ----------------------------------------------------
    def accelerate(self, cuda_graphs: bool = True, compile: bool = False) -> "Darknet":
        """Choose how detect() runs the network.

        Args:
            cuda_graphs (bool): on CUDA, replay captured CUDA graphs (default on).
            compile (bool): torch.compile the network (off by default: seconds of compiling per input
                shape, each shape checked against the eager network before use; on the CPU with frozen
                weights). See darknet_py.backends.torch_runner.

        Returns:
            Darknet: this model.
        """
        self.runner_options = RunnerOptions(cuda_graphs, compile)
        self._runner = None
        return self

    def runner(self) -> TorchRunner:
        """The pixels → decoded candidates path detect() uses, made for the current device and dtype."""
        if self._runner is None:
            self._runner = TorchRunner(self, self.runner_options)
        return self._runner

    def _apply(self, fn, recurse=True):
        self._runner = None  # .to() / .half() / .cuda(): captured graphs hold the old tensors
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_runner": None}  # copies and pickles (Ray) rebuild their own

    # -- the Backend protocol ---------------------------------------------------------------
    @property
    def traits(self) -> BackendTraits:
        """What this model is and can do (see `BackendTraits`): torch, its device and precision, whether it
        replays CUDA graphs."""
        dtype = next(self.parameters(), torch.zeros(())).dtype
        return BackendTraits(name="torch", device=str(self.device), precision=PRECISIONS.get(dtype, str(dtype)),
                             replays_graphs=self.device.type == "cuda" and self.runner_options.cuda_graphs
                             and not self.stateful,
                             candidates=bool(self.head_indices))

    @property
    def input_device(self) -> torch.device | None:
        """The device `candidates` wants its pixels on (see `Backend.input_device`)."""
        return self.runner().input_device

    def candidates(self, pixels: np.ndarray | torch.Tensor) -> Candidates:
        """Decoded candidates on the model's device; see `Backend.candidates`. With CUDA graphs the
        tensors are the graph's own outputs: read them before the next call."""
        return self.runner()(pixels)

    def candidates_above(self, pixels: np.ndarray | torch.Tensor, objectness_thresh: float) -> Gated:
        """The candidates whose objectness exceeds the threshold; see `Backend.candidates_above` (on the CPU,
        [yolo] heads decode only those rows: darknet_py.pipeline.yolo_gate)."""
        return self.runner().candidates_above(pixels, objectness_thresh)

    def portable(self) -> Portable:
        """This model in a form that pickles to other processes (Ray's actors); see `Backend.portable`."""
        return Portable("torch", self)

    def concurrent(self, calls: int) -> TorchTwin | None:
        """The same model for *calls* detect() calls at once, each call on its share of torch's threads
        (backends/torch_twin.py): eager float32 on the CPU with at least *calls* torch threads, torch on OpenMP.
        None on CUDA, for compiled networks (torch.compile's code is not made for calls from several threads),
        recurrent ones (their state runs frame after frame), classifiers and other dtypes."""
        if (calls < 2 or not self.runs_eager_float32_on_cpu() or self.stateful or not self.head_indices
                or torch.get_num_threads() < calls):
            return None
        openmp = openmp_runtime()
        return None if openmp is None else TorchTwin(self, calls, openmp)

    def runs_eager_float32_on_cpu(self) -> bool:
        """Whether the network runs eagerly (not compiled) in float32 on the CPU: what a TorchTwin's calls need, asked
        when it is made (`concurrent`) and at each of its calls (the model may be compiled, moved or cast since)."""
        return (self.device.type == "cpu" and not self.runner_options.compile
                and next(self.parameters()).dtype == torch.float32)

    def detect(self, images: ImageLike | Sequence[ImageLike], conf_thresh: float = 0.25, nms_thresh: float = 0.45,
               **options) -> list[Detections]:
        """Detections for one image or several (BGR arrays as cv2 reads them, paths, bytes, tensors, PIL images).

        Args:
            images: an image path, a BGR uint8 array (H, W, 3), an image file's bytes, a (C, H, W) RGB tensor as
                torchvision's, a PIL image, or a list of them (or an (N, H, W, 3) array, an (N, C, H, W) tensor).
            conf_thresh (float): score threshold (darknet's `-thresh`, default 0.25).
            nms_thresh (float): NMS overlap threshold (default 0.45).
            **options: see darknet_py.pipeline.detect.DetectOptions (multi_label, letterbox, resize, classes,
                nms_kind, names, ...); tiles, tile_overlap and roi: darknet_py.pipeline.detect.detect.

        Returns:
            list[Detections]: one per image, in input order.
        """
        if not self.head_indices:
            name = os.path.basename(self.cfg_path)
            raise InputError(f"{name} is a classifier (no detection layer): use classify" if self.is_classifier else
                             f"{name}: darknet_py does not decode its detection layers (YOLOv1 [detection])")
        return detect(self, images, conf_thresh, nms_thresh, **options)

    def classify(self, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
                 names: list[str] | None = None) -> list[Classification]:
        """The `top` classes of one image or several, with darknet's `classifier predict` pre-processing.

        Args:
            images: an image path, a BGR uint8 array, or a list of them.
            top (int): classes per image, best first.
            names (list[str], optional): class names (default: generic names).

        Returns:
            list[Classification]: one per image. See darknet_py.pipeline.classify.
        """
        return classify(self, images, top, names=names)
