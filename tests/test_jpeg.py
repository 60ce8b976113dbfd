"""pipeline.jpeg.encode_jpeg, what the live streams, the clips' lead-in and the MQTT snapshots encode with: OpenCV's
JPEG at the quality asked, and one InputError for what it cannot encode."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from darknet_py.core.errors import InputError
from darknet_py.pipeline.jpeg import encode_jpeg
from tests.conftest import IMAGES, shared_path

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("quality", [50, 95])
def test_the_bytes_are_opencvs_jpeg_at_that_quality(quality: int) -> None:
    image = cv2.imread(str(shared_path(IMAGES / "dog.jpg")))
    ok, expected = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok and encode_jpeg(image, quality) == expected.tobytes()
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(image, quality), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == image.shape


def test_an_image_jpeg_cannot_hold_is_one_input_error() -> None:
    with pytest.raises(InputError, match=r"^cannot JPEG-encode a 0x0x3 uint8 image"):
        encode_jpeg(np.zeros((0, 0, 3), np.uint8), 80)
