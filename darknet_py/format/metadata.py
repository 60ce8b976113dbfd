"""darknet_py's metadata in exported graphs (ONNX, OpenVINO IR): the key it lives under, its format
version, the output formats, and reading it back.

`darknet_py.export` writes it, the graph runtimes in `darknet_py.backends` read it; both import it from here.
"""
from __future__ import annotations

import json

from ..core.errors import InputError

OUTPUT_FORMATS = ("raw", "boxes", "nms", "classes")  # classes: a classifier's probabilities
METADATA_KEY = "darknet_py"
FORMAT_VERSION = 2  # 2: each head records its kind (yolo, region, gaussian_yolo); 1 meant yolo
# Defaults of the `nms` graph's optional inputs (initializers a session may override).
NMS_DEFAULTS = {"conf_thresh": 0.25, "iou_thresh": 0.45, "max_det": 100}


def parse_metadata(raw: str | None, source: str) -> dict:
    """The "darknet_py" metadata of an export, or one clear error naming the file."""
    if raw is None:
        raise InputError(f"{source} has no darknet_py metadata: export it with `darknet-py export` "
                         "(other models can be run with their runtime directly)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise InputError(f"{source} holds unreadable darknet_py metadata (not JSON); export it again") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"{source} was written by a newer darknet_py (format {meta['format_version']}); upgrade")
    return meta
