"""Image → network input, and network-pixel boxes → image pixels (the exact inverse).

Darknet either stretches the image to the network size or, with [net] letter_box=1,
keeps the aspect ratio (new side = side·min(scale) with integer division), centres it
and fills the rest with 0.5 grey.

Two ways to resize, chosen once per model (`load(..., resize=)`), recorded in exports and run plans:
- "darknet" (default): darknet's own resize_image / letterbox_image, what `darknet detector test`,
  `valid` and `map` feed the network (darknet_resize.py: bit-identical to darknet's floats), with
  darknet's box correction: the letterboxed image sits at the integer offset, boxes come back with
  the float one, (net − new)/2 (correct_yolo_boxes).
- "opencv": cv2.resize(INTER_LINEAR) (half-pixel centres), as OpenCV DNN and darknet's video demo and
  Python wrapper do; boxes come back with the integer offset the image sits at.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NoReturn, Union

import cv2
import numpy as np
import torch

from ..core.errors import InputError
from . import darknet_resize
from .image_header import header_size, opencv_max_pixels

ImageLike = Union[np.ndarray, str, os.PathLike]  # a BGR uint8 array as cv2 reads it, or an image path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # what folders and globs pick up
LETTERBOX_FILL = 0.5
DEFAULT_RESIZE = "darknet"


@dataclass(frozen=True)
class Transform:
    """network_px = image_px · scale + pad (per axis)."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    image_w: int
    image_h: int

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """xyxy boxes in network pixels → image pixels, clipped to the image."""
        out = boxes.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale_y
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.image_w)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.image_h)
        return out

    def to_network(self, boxes: np.ndarray) -> np.ndarray:
        out = boxes.astype(np.float32, copy=True)
        out[:, [0, 2]] = out[:, [0, 2]] * self.scale_x + self.pad_x
        out[:, [1, 3]] = out[:, [1, 3]] * self.scale_y + self.pad_y
        return out


def as_bgr8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any image cv2 can give (gray, BGRA, 16-bit, float) as 3-channel uint8 BGR."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise InputError(f"{name}: expected an HxW or HxWxC image array, got {getattr(image, 'shape', type(image))}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InputError(f"{name}: {image.shape[2]} channels; expected 1, 3 or 4")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        scale = 255.0 if image.dtype.kind == "f" and float(np.nanmax(image)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image.astype(np.float32)) * scale, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"image not found: {path}")
    try:
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV 4.x raises (rather than returning None) for some limits and corrupt headers
        image = None
    if image is None:
        _explain_undecodable(path)
    return as_bgr8(image, path)


def _explain_undecodable(path: str) -> NoReturn:
    size, limit = header_size(path), opencv_max_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise InputError(
            f"image too large: {path} is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over OpenCV's "
            f"limit of {limit:,} (raise it with the environment variable OPENCV_IO_MAX_IMAGE_PIXELS)"
        )
    raise InputError(f"cannot decode image: {path} (not an image, or a format OpenCV cannot read)")


def check_resize(resize: str) -> str:
    if resize not in PREPARERS:
        raise InputError(f"unknown resize '{resize}'; use {' or '.join(PREPARERS)}")
    return resize


def inner_size(image_w: int, image_h: int, width: int, height: int, letterbox: bool) -> tuple[int, int]:
    """The size the image takes inside the network input: all of it, or the letterboxed box."""
    return darknet_resize.letterbox_size(image_w, image_h, width, height) if letterbox else (width, height)


def transform_for(image_w: int, image_h: int, width: int, height: int, letterbox: bool, resize: str) -> Transform:
    """Boxes' way back to the image. darknet corrects letterboxed boxes with the float offset
    (net − new)/2 (correct_yolo_boxes) while OpenCV users place the image at the integer one."""
    new_w, new_h = inner_size(image_w, image_h, width, height, letterbox)
    if resize == "darknet":
        pad_x, pad_y = (width - new_w) / 2, (height - new_h) / 2
    else:
        pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    return Transform(new_w / image_w, new_h / image_h, pad_x, pad_y, image_w, image_h)


def prepare(image_bgr: np.ndarray, width: int, height: int, letterbox: bool,
            out: np.ndarray | None = None, resize: str = DEFAULT_RESIZE) -> tuple[np.ndarray, Transform]:
    """BGR uint8 → float32 CHW RGB in [0, 1] at width×height, plus the box transform.
    `out` (3, height, width float32) receives the pixels in place of a new array."""
    pixels = np.empty((3, height, width), np.float32) if out is None else out
    PREPARERS[resize](image_bgr, pixels, letterbox)
    h, w = image_bgr.shape[:2]
    return pixels, transform_for(w, h, width, height, letterbox, resize)


def _prepare_darknet(image_bgr: np.ndarray, pixels: np.ndarray, letterbox: bool) -> None:
    darknet_resize.prepare_into(np.ascontiguousarray(image_bgr), torch.from_numpy(pixels), letterbox)


def _prepare_opencv(image_bgr: np.ndarray, pixels: np.ndarray, letterbox: bool) -> None:
    height, width = pixels.shape[1:]
    h, w = image_bgr.shape[:2]
    if not letterbox:
        _to_chw(cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR), pixels)
        return
    new_w, new_h = inner_size(w, h, width, height, letterbox)
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pixels.fill(LETTERBOX_FILL)
    left, top = (width - new_w) // 2, (height - new_h) // 2
    _to_chw(resized, pixels[:, top : top + new_h, left : left + new_w])


PREPARERS = {"darknet": _prepare_darknet, "opencv": _prepare_opencv}


def _to_chw(bgr: np.ndarray, out: np.ndarray) -> None:
    """HWC BGR uint8 → CHW RGB float32 / 255 in one pass (the exact float32 quotient, as darknet)."""
    np.divide(bgr[:, :, ::-1].transpose(2, 0, 1), np.float32(255.0), out=out, dtype=np.float32)
