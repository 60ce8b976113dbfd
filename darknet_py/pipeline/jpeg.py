"""A picture as JPEG bytes (OpenCV's encoder): what the live streams, the clips' lead-in and the MQTT snapshots send
or keep, with one error for the encoder's refusal."""
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
    try:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        reason = ""
    except cv2.error as error:
        ok, reason = False, f": {str(error).strip().splitlines()[-1]}"
    if not ok:
        raise InputError(f"cannot JPEG-encode a {'x'.join(map(str, image.shape))} {image.dtype} image{reason}")
    return encoded.tobytes()
