"""What a SOURCE argument names (images, a video, a stream, a camera), and output names for sources."""
from __future__ import annotations

import glob
from pathlib import Path

import cv2

from ..core.errors import InputError
from ..pipeline.preprocess import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm"}


def source_items(source: str) -> tuple[str, list[str] | str | int]:
    """("images", [paths]) or ("video", path|url|camera index)."""
    if source.isdigit():
        return "video", int(source)
    if "://" in source:
        return "video", source
    path = Path(source)
    if path.is_dir():
        files = sorted(str(f) for f in path.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise InputError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {source}")
        return "images", files
    if path.is_file():
        return ("video", source) if path.suffix.lower() in VIDEO_EXTENSIONS else ("images", [source])
    matches = sorted(f for f in glob.glob(source) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
    if matches:
        return "images", matches
    raise InputError(f"source not found: {source}")


def annotated_name(source: str) -> str:
    """The source's file name, plus .jpg when OpenCV has no writer for its extension (e.g. photo.raw)."""
    name = Path(source).name
    return name if cv2.haveImageWriter(name) else f"{name}.jpg"
