"""Image dimensions from the file header, without decoding the pixels.

Used only to explain a failed decode: OpenCV refuses images over
OPENCV_IO_MAX_IMAGE_PIXELS (2^30 by default) and says nothing but "None".
"""
from __future__ import annotations

import os
import struct
from typing import Callable

OPENCV_DEFAULT_MAX_PIXELS = 1 << 30
HEADER_BYTES = 64 * 1024  # JPEG frame headers can sit behind EXIF/ICC segments


def opencv_max_pixels() -> int:
    value = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", "")
    return int(value) if value.isdigit() else OPENCV_DEFAULT_MAX_PIXELS


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 24:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # negative height = top-down rows


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 10:
        return None
    return struct.unpack("<HH", head[6:10])


_JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = struct.unpack(">H", head[at + 2 : at + 4])[0]
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return width, height
        at += 2 + length
    return None


_READERS: tuple[Callable[[bytes], tuple[int, int] | None], ...] = (_png, _jpeg, _bmp, _gif)


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or GIF header; None when unknown or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError:
        return None
    return encoded_size(head)


def encoded_size(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(width, height) from the start of an image file's bytes (PNG, JPEG, BMP or GIF); None when unknown."""
    head = bytes(data[:HEADER_BYTES])
    for reader in _READERS:
        size = reader(head)
        if size is not None:
            return size
    return None
