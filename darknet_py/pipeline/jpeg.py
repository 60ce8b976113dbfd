"""A picture as JPEG bytes (OpenCV's encoder): what the live streams, the clips' lead-in and the MQTT snapshots send
or keep — and as PNG bytes, the heat map served at /heatmap — with one error for the encoder's refusal."""
from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """*image* as JPEG.

    Args:
        image (np.ndarray): (H, W, 3) BGR or (H, W) grey uint8, as OpenCV takes it.
        quality (int): JPEG quality, 0 to 100.

    Returns:
        bytes: the JPEG file's bytes.

    Raises:
        InputError: OpenCV cannot encode it (an empty image; a shape or type JPEG cannot hold).
    """
    return _encoded(image, ".jpg", "JPEG", [cv2.IMWRITE_JPEG_QUALITY, quality])


def encode_png(image: np.ndarray) -> bytes:
    """*image* as PNG (OpenCV's default compression, as cv2.imwrite writes a .png).

    Args:
        image (np.ndarray): (H, W, 3) BGR or (H, W) grey, uint8 or uint16, as OpenCV takes it.

    Returns:
        bytes: the PNG file's bytes.

    Raises:
        InputError: OpenCV cannot encode it.
    """
    return _encoded(image, ".png", "PNG")


def _encoded(image: np.ndarray, extension: str, kind: str, params: list[int] | None = None) -> bytes:
    """cv2.imencode, its refusal (a False, or a cv2.error) as one InputError with OpenCV's reason."""
    try:
        ok, encoded = cv2.imencode(extension, image, params or [])
        reason = ""
    except cv2.error as error:
        ok, reason = False, f": {str(error).strip().splitlines()[-1]}"
    if not ok:
        raise InputError(f"cannot {kind}-encode a {'x'.join(map(str, image.shape))} {image.dtype} image{reason}")
    return encoded.tobytes()
