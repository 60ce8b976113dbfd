"""darknet's own image arithmetic on float pixels (src/image.c), as `darknet classifier predict` uses it.

Images here are float32 arrays (channels, height, width), RGB in [0, 1], like darknet's `image`.
resize_image is darknet's bilinear resize: align-corners scale (in − 1)/(out − 1), a horizontal pass
into a temporary image, then a vertical pass; every step in float32 as the C code computes it
(including its quirks: the last column copies the last source column, the last row skips the
lower neighbour). resize_min scales the shorter side to a length; crop_image cuts a window,
repeating the border where the window leaves the image. unreadable_stand_in is what darknet detects on in place
of an image it cannot load.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import InputError

BLANK_SIDE = 10  # darknet's stand-in for an image it cannot load: make_image(10, 10, c), all zeros


def unreadable_stand_in(channels: int) -> np.ndarray:
    """The image darknet goes on with after "Cannot load image": load_image_stb and load_image_cv both return
    make_image(10, 10, c), a black 10x10 image, and `detector test` and `detector map` detect on it.

    Args:
        channels (int): the network's input channels, 1 or 3.

    Returns:
        ndarray[10, 10] or ndarray[10, 10, 3]: zeros, uint8 (grey for a 1-channel network, else BGR).
    """
    return np.zeros((BLANK_SIDE, BLANK_SIDE) if channels == 1 else (BLANK_SIDE, BLANK_SIDE, 3), np.uint8)


def to_float_rgb(image_bgr: np.ndarray) -> np.ndarray:
    """HWC BGR uint8 → CHW RGB float32 / 255, as darknet's load_image_color fills its image."""
    return np.divide(image_bgr[:, :, ::-1].transpose(2, 0, 1), np.float32(255.0), dtype=np.float32)


def resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    channels, in_h, in_w = im.shape
    if (in_w, in_h) == (w, h):
        return im.copy()
    if w < 1 or h < 1:
        raise InputError(f"cannot resize a {in_w}x{in_h} image to {w}x{h}")
    with np.errstate(divide="ignore", invalid="ignore"):  # a 1-pixel side: darknet's scale is inf, unused
        w_scale = np.float32(in_w - 1) / np.float32(w - 1)
        h_scale = np.float32(in_h - 1) / np.float32(h - 1)
    # horizontal pass: part is w × in_h
    sx = np.arange(w, dtype=np.float32) * w_scale if w > 1 else np.zeros(1, np.float32)
    ix = sx.astype(np.int64)
    dx = (sx - ix.astype(np.float32))[None, None, :]
    left = im[:, :, np.minimum(ix, in_w - 1)]
    right = im[:, :, np.minimum(ix + 1, in_w - 1)]
    part = (np.float32(1) - dx) * left + dx * right
    part[:, :, w - 1] = im[:, :, in_w - 1]
    if in_w == 1:
        part[:] = im[:, :, :1]
    # vertical pass
    sy = np.arange(h, dtype=np.float32) * h_scale if h > 1 else np.zeros(1, np.float32)
    iy = sy.astype(np.int64)
    dy = (sy - iy.astype(np.float32))[None, :, None]
    out = (np.float32(1) - dy) * part[:, np.minimum(iy, in_h - 1), :]
    if in_h > 1:
        lower = (dy * part[:, np.minimum(iy + 1, in_h - 1), :])[:, : h - 1]
        out[:, : h - 1] += lower
    return out.astype(np.float32, copy=False)


def resize_min(im: np.ndarray, side: int) -> np.ndarray:
    """The shorter side scaled to `side` (integer arithmetic as darknet's), the other in proportion."""
    _, h, w = im.shape
    if w < h:
        h, w = (h * side) // w, side
    else:
        w, h = (w * side) // h, side
    return im if (w, h) == im.shape[:0:-1] else resize_image(im, w, h)


def crop_image(im: np.ndarray, dx: int, dy: int, w: int, h: int) -> np.ndarray:
    """The w × h window at (dx, dy); coordinates outside the image take the nearest border pixel."""
    _, in_h, in_w = im.shape
    rows = np.clip(np.arange(h) + dy, 0, in_h - 1)
    cols = np.clip(np.arange(w) + dx, 0, in_w - 1)
    return np.ascontiguousarray(im[:, rows][:, :, cols])


def c_half(value: int) -> int:
    """value / 2 in C: integer division truncating toward zero."""
    return -((-value) // 2) if value < 0 else value // 2


def center_crop_min(im: np.ndarray, width: int, height: int) -> np.ndarray:
    """predict_classifier's pre-processing: shorter side to the network width, then the centred
    width × height window."""
    resized = resize_min(im, width)
    _, h, w = resized.shape
    return crop_image(resized, c_half(w - width), c_half(h - height), width, height)
