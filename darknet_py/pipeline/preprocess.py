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

Channels: the network's `[net] channels`. 3 reads colour (BGR files and arrays, fed as RGB); 1 reads grey as
darknet built with OpenCV reads a file for such a network (`cv::imread(path, IMREAD_GRAYSCALE)`,
src/image_opencv.cpp: a JPEG's luma as its decoder gives it, not a conversion of the colour pixels), and an
array (a video frame) through `cv::cvtColor` (BGR2GRAY). darknet reads image files with 1 or 3 channels
only; a network with another count takes (H, W, C) arrays of exactly its channels, in their order.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Callable, NoReturn, Union

import cv2
import numpy as np
import torch

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from . import darknet_resize
from .image_header import encoded_size, header_size, opencv_max_pixels
from .image_url import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, fetch_image, is_image_url, url_path

# a BGR uint8 array as cv2 reads it, an image path, an image file's bytes (a JPEG, PNG, … as received), a tensor
# as torchvision holds images ((C, H, W) RGB, uint8 or float in [0, 1]) or a PIL image
ImageLike = Union[np.ndarray, str, os.PathLike, bytes, torch.Tensor, "PIL.Image.Image"]  # noqa: F821 - PIL is optional
ENCODED = (bytes, bytearray, memoryview)  # the types an ImageLike's encoded bytes come as

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


def _checked_uint8(image: np.ndarray, name: str, channels: tuple[int, ...] = (1, 3, 4)) -> np.ndarray:
    """An HxW or HxWxC array with C in *channels*, as uint8 (16-bit keeps its high byte; floats in [0, 1] are
    scaled by 255, others clipped to 0..255, both rounded to the nearest level: v/255·255 can land a hair under v)."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise InputError(f"{name}: expected an HxW or HxWxC image array, got {getattr(image, 'shape', type(image))}")
    if image.ndim == 3 and image.shape[2] not in channels:
        allowed = " or ".join(filter(None, (", ".join(map(str, channels[:-1])), str(channels[-1]))))
        raise InputError(f"{name}: {image.shape[2]} channels; expected {allowed}")
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        # the largest finite value says the range (an all-NaN array has none: numpy would warn, and it is black)
        finite = image[np.isfinite(image)] if image.dtype.kind == "f" else None
        scale = 255.0 if finite is not None and (finite.size == 0 or float(finite.max()) <= 1.0) else 1.0
        levels = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0 / scale, neginf=0.0)  # inf: white
        return np.rint(np.clip(levels * scale, 0, 255)).astype(np.uint8)
    return image


def as_bgr8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Any image cv2 can give (gray, BGRA, 16-bit, float) as 3-channel uint8 BGR."""
    image = _checked_uint8(image, name)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def network_image(image: np.ndarray, channels: int = 3, name: str = "image") -> np.ndarray:
    """An array as a network with *channels* input channels reads it (see the module notes).

    Args:
        image (ndarray[H, W] or ndarray[H, W, C]): grey, BGR or BGRA as cv2 gives them (any depth), or for a
            network of another channel count an array of exactly that many channels.
        channels (int): the network's input channels.
        name (str): what to call the image in errors.

    Returns:
        ndarray: uint8 (H, W, 3) BGR for 3 channels, (H, W) grey for 1, (H, W, C) as given for others.
    """
    if channels == 3:
        return as_bgr8(image, name)
    if channels == 1:
        image = _checked_uint8(image, name)
        if image.ndim == 3 and image.shape[2] > 1:  # cv::cvtColor, as OpenCV users (and darknet's OpenCV paths) convert
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
        return image.reshape(image.shape[:2])
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == channels):
        raise InputError(f"{name}: this network reads {channels} channels; give an (H, W, {channels}) array "
                         f"(got {getattr(image, 'shape', type(image))})")
    return _checked_uint8(image, name, (channels,))


def is_pil_image(value: object) -> bool:
    """Whether *value* is a PIL (Pillow) image, without importing PIL (not a dependency)."""
    return any(kind.__module__ == "PIL.Image" and kind.__name__ == "Image" for kind in type(value).__mro__)


def pil_array(image: "PIL.Image.Image") -> np.ndarray:  # noqa: F821 - PIL is optional
    """A PIL image as the array cv2 would hold: BGR (BGRA with alpha), grey for "L", 16-bit and float kept for
    `network_image` to convert as it converts cv2's (a 32-bit "I" image with levels above 255 as the 16-bit image it
    holds); other modes (palette, CMYK, YCbCr, …) through RGB.

    Args:
        image (PIL.Image.Image): the image (decoded by PIL, so a JPEG's pixels may differ from OpenCV's by its
            decoder's rounding).

    Returns:
        ndarray[H, W] or ndarray[H, W, C]: the pixels.
    """
    if image.mode not in ("RGB", "RGBA", "L", "I;16", "I", "F"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    pixels = np.asarray(image)
    if image.mode == "I" and pixels.size and int(pixels.max()) > 255:
        # PIL's 32-bit grey holds a 16-bit image's levels (what opening a 16-bit PNG and convert("I") give): 16-bit,
        # as cv2 reads such a file, not levels above 255 clipped to white
        pixels = np.clip(pixels, 0, 65535).astype(np.uint16)
    return _rgb_to_bgr(pixels) if pixels.ndim == 3 else pixels


def tensor_array(tensor: torch.Tensor, channels: int = 3) -> np.ndarray:
    """A tensor as torchvision holds an image — (C, H, W), RGB or grey, uint8 or float in [0, 1], any device — as
    the (H, W, C) array cv2 would hold (BGR for a colour or grey network; in the given order for other channel
    counts), for `network_image`.

    Args:
        tensor (Tensor[C, H, W] or Tensor[H, W]): the image.
        channels (int): the network's input channels.

    Returns:
        ndarray: the pixels.

    Raises:
        InputError: a tensor of another shape (an (H, W, C) one is named as such: its channel order is unknown).
    """
    shape = tuple(tensor.shape)
    if tensor.ndim not in (2, 3) or tensor.numel() == 0:
        raise InputError(f"a tensor image is (C, H, W) RGB, as torchvision's, or (H, W) grey; got {shape}")
    if tensor.ndim == 3 and shape[0] not in (1, 3, 4) and shape[2] in (1, 3, 4):
        raise InputError(f"a tensor image is (C, H, W) RGB, as torchvision's; got {shape}: .permute(2, 0, 1) an RGB "
                         "(H, W, C) tensor, or give a BGR numpy array")
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point() and tensor.dtype != torch.float64:
        tensor = tensor.float()  # float16 and bfloat16 have no (or no exact) numpy twin
    pixels = tensor.numpy() if tensor.ndim == 2 else tensor.permute(1, 2, 0).numpy()
    return _rgb_to_bgr(pixels) if pixels.ndim == 3 and channels in (1, 3) else pixels


def _rgb_to_bgr(pixels: np.ndarray) -> np.ndarray:
    """RGB(A) → BGR(A) (a copy); one channel as it is."""
    if pixels.shape[2] in (3, 4):
        return np.ascontiguousarray(np.concatenate([pixels[:, :, 2::-1], pixels[:, :, 3:]], axis=2))
    return pixels


def check_image_channels(channels: int) -> int:
    """*channels* if darknet reads image files for such a network (1: grey, 3: colour); else an InputError."""
    if channels not in (1, 3):
        raise InputError(f"the network reads {channels} channels, but darknet reads image files with 1 (grey) or 3 "
                         f"(colour) only (load_image_cv); give detect() (H, W, {channels}) arrays instead")
    return channels


def read_image(path: str | os.PathLike[str], channels: int = 3) -> np.ndarray:
    """An image file as a network with *channels* input channels reads it (see the module notes).

    Args:
        path (str or PathLike): the image file, or an http(s) URL of one (fetched whole: see image_url).
        channels (int): 3: colour, (H, W, 3) BGR uint8 (grey, alpha and 16-bit converted); 1: (H, W) grey uint8,
            cv2.IMREAD_GRAYSCALE as darknet's OpenCV build reads it.

    Returns:
        ndarray: the pixels.

    Raises:
        InputError: missing or undecodable, or a channel count darknet does not read files with.
    """
    path = os.fspath(path)
    check_image_channels(channels)
    if is_image_url(path):  # fetched, then decoded from its bytes as the file would be (image_url)
        shown = hide_credentials(path)
        return _decoded_bytes(fetch_image(path), channels, shown, shown)
    if os.path.isdir(path):
        raise InputError(f"{path} is a folder, not an image: pass its images (a list of paths), as the command line's "
                         "folder SOURCE does")
    if "://" in path or os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS:
        raise InputError(_not_an_image(path))
    if not os.path.isfile(path):
        raise InputError(f"image not found: {path}")
    return _decoded(lambda flags: cv2.imread(path, flags), channels, path, path, lambda: header_size(path))


def _not_an_image(path: str) -> str:
    """Why a video file or a URL that names no image is not read as an image, and where its frames are read."""
    frames = ("its frames are detected by `darknet-py detect` given it as SOURCE, or in Python by model.detect(frame) "
              "for each frame of darknet_py.video_frames(source) (or darknet_py.track)")
    shown = hide_credentials(path)
    if "://" not in path:
        return f"{shown} is a video, not an image: {frames}"
    if url_path(path) is None:
        return f"{shown} is a stream, not an image: {frames}"
    return (f"{shown} is not read as an image, its path not ending in {', '.join(IMAGE_EXTENSIONS)} (an image served "
            f"under another name: fetch it and pass its bytes); a stream or a video: {frames}")


def decode_image(data: bytes | bytearray | memoryview, channels: int = 3) -> np.ndarray:
    """An image file's bytes (a JPEG, PNG, … as an upload or a socket gives them) as `read_image` reads the file:
    the same decoder, flags and conversions, so the same pixels.

    Args:
        data: the encoded image, the whole file.
        channels (int): as read_image's.

    Returns:
        ndarray: the pixels, as read_image returns them.

    Raises:
        InputError: bytes OpenCV cannot decode as an image.
    """
    check_image_channels(channels)
    return _decoded_bytes(data, channels, "image bytes", f"image bytes ({memoryview(data).nbytes:,} bytes)")


def _decoded_bytes(data: bytes | bytearray | memoryview, channels: int, name: str, described: str) -> np.ndarray:
    """`_decoded` of an encoded image held in memory (cv2.imdecode): an upload's bytes, or a fetched URL's."""
    encoded = np.frombuffer(data, np.uint8)
    return _decoded(lambda flags: _imdecode_as_imread(encoded, flags), channels, name, described,
                    lambda: encoded_size(data))


def _imdecode_as_imread(encoded: np.ndarray, flags: int) -> np.ndarray | None:
    """cv2.imdecode, with cv2.imread's answer for a JPEG cut short: imread decodes what there is (libjpeg fills the
    rest, as darknet's OpenCV build does with such a file) where imdecode gives nothing, so bytes would be refused
    that the same file detects; such bytes are decoded from a temporary file, as the file would be."""
    if not encoded.size:
        return None
    image = cv2.imdecode(encoded, flags)
    if image is not None or bytes(encoded[:3]) != b"\xff\xd8\xff":
        return image
    with tempfile.TemporaryDirectory(prefix="darknet-py-image-") as folder:
        path = os.path.join(folder, "image.jpg")
        encoded.tofile(path)
        return cv2.imread(path, flags)


def _decoded(decode: Callable[[int], np.ndarray | None], channels: int, name: str, described: str,
             header: Callable[[], tuple[int, int] | None]) -> np.ndarray:
    """What read_image and decode_image share: OpenCV's decode (`decode(flags)`: imread or imdecode) with the flags
    darknet reads files with, a failure explained (`described` in the message, `header()` read only then), and the
    pixels converted for the network (`name` in as_bgr8's errors)."""
    try:
        image = decode(cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV 4.x raises (rather than returning None) for some limits and corrupt headers
        image = None
    if image is None:
        _explain_undecodable(described, header())
    return image if channels == 1 else as_bgr8(image, name)


def _explain_undecodable(name: str, size: tuple[int, int] | None) -> NoReturn:
    """Why OpenCV decoded nothing: over its pixel limit (from the header's `size`), or not an image it reads."""
    limit = opencv_max_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise InputError(
            f"image too large: {name} is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over OpenCV's "
            f"limit of {limit:,} (raise it with the environment variable OPENCV_IO_MAX_IMAGE_PIXELS)"
        )
    raise InputError(f"cannot decode image: {name} (not an image, or a format OpenCV cannot read)")


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


def image_channels(image: np.ndarray) -> int:
    """The channels of an image array: 1 for (H, W), else its last axis."""
    return 1 if image.ndim == 2 else image.shape[2]


def prepare(image_bgr: np.ndarray, width: int, height: int, letterbox: bool,
            out: np.ndarray | None = None, resize: str = DEFAULT_RESIZE) -> tuple[np.ndarray, Transform]:
    """BGR uint8 → float32 CHW RGB in [0, 1] at width×height, plus the box transform; a grey (H, W) image
    gives one plane, an (H, W, C) array of another channel count C planes in its order (network_image).
    `out` (C, height, width float32) receives the pixels in place of a new array."""
    pixels = np.empty((image_channels(image_bgr), height, width), np.float32) if out is None else out
    PREPARERS[resize](image_bgr, pixels, letterbox)
    h, w = image_bgr.shape[:2]
    return pixels, transform_for(w, h, width, height, letterbox, resize)


def _prepare_darknet(image_bgr: np.ndarray, pixels: np.ndarray, letterbox: bool) -> None:
    darknet_resize.prepare_into(np.ascontiguousarray(image_bgr), pixels, letterbox)


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
    """HWC BGR uint8 → CHW RGB float32 / 255 in one pass (the exact float32 quotient, as darknet); a grey
    (H, W) image → one plane, another channel count → its planes in order."""
    if bgr.ndim == 2:
        planes = bgr[None]
    elif bgr.shape[2] == 3:
        planes = bgr[:, :, ::-1].transpose(2, 0, 1)
    else:
        planes = bgr.transpose(2, 0, 1)
    np.divide(planes, np.float32(255.0), out=out, dtype=np.float32)
