"""The classification pipeline: images → darknet's `classifier predict` pre-processing → network →
class probabilities → top-k Classifications.

Pre-processing is predict_classifier's (src/classifier.c): the shorter side resized to the network
width with darknet's own bilinear resize, then the centred width × height window. The network's
output is its last layer that is not [cost] (darknet's get_network_output); with a class hierarchy
(a [softmax] with tree=) each probability is multiplied by its parent's (hierarchy_predictions).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch

from ..core.errors import InputError
from ..format.names import default_names
from .classifications import Classification, top_classes
from .darknet_image import center_crop_min, to_float_rgb
from .detect import ImageLike, as_image_list, load_image


def prepare(images: ImageLike | Sequence[ImageLike], width: int, height: int) -> tuple[np.ndarray, list[str]]:
    """(N, 3, height, width) float32 network input and each image's source path ("" for arrays)."""
    items = as_image_list(images)
    pixels = np.empty((len(items), 3, height, width), np.float32)
    sources = []
    for i, item in enumerate(items):
        image, source = load_image(item)
        pixels[i] = center_crop_min(to_float_rgb(image), width, height)
        sources.append(source)
    return pixels, sources


def hierarchy_predictions(probabilities: np.ndarray, parents: Sequence[int] | None) -> np.ndarray:
    """Each class's probability times its parent's, parents first (darknet's hierarchy_predictions)."""
    if not parents:
        return probabilities
    out = probabilities.copy()
    for j, parent in enumerate(parents[: out.shape[-1]]):
        if parent >= 0:
            out[..., j] *= out[..., parent]
    return out


def classify_with(run: Callable[[np.ndarray], np.ndarray], width: int, height: int, images, top: int,
                  names: list[str] | None, outputs: int, hierarchy: Sequence[int] | None = None) -> list[Classification]:
    """The pipeline around any backend: `run` maps network-ready pixels to (N, outputs) probabilities."""
    if not isinstance(top, int) or top < 1:
        raise InputError(f"top must be a positive integer, got {top!r}")
    names = names or default_names(outputs)
    if len(names) < outputs:
        raise InputError(f"the model outputs {outputs} classes but only {len(names)} names were given")
    if not as_image_list(images):
        return []
    pixels, sources = prepare(images, width, height)
    probabilities = hierarchy_predictions(run(pixels).reshape(len(pixels), -1), hierarchy)
    return [top_classes(p, top, names, source) for p, source in zip(probabilities, sources)]


def classify(model, images: ImageLike | Sequence[ImageLike], top: int = 5, *,
             names: list[str] | None = None) -> list[Classification]:
    """Classify one image or several (as detect() takes them: BGR arrays, paths, bytes, (C, H, W) RGB tensors, PIL
    images): one Classification each."""
    if not model.is_classifier:
        raise InputError(f"{os.path.basename(model.cfg_path)} is a detector (it has detection layers): use detect")
    dtype = next(model.parameters(), torch.zeros(())).dtype

    def run(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            (out,) = model.run_frames(torch.from_numpy(pixels).to(model.device, dtype))
        return out.float().reshape(len(pixels), -1).cpu().numpy()

    return classify_with(run, model.width, model.height, images, top, names, model.num_classes, model.hierarchy)
