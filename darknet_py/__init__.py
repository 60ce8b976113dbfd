"""darknet_py: Darknet .cfg/.weights inference in PyTorch, ONNX, onnxruntime and OpenVINO.

The public API: `load()` and what it returns (`Darknet`, or a graph runtime's detector, all meeting
the `Backend` protocol), the result types, darknet's files, and the errors. The code is organised by
role (see the docs' "Package map"): core, format, model, pipeline, backends, export, evaluate, media,
live, distributed, cli; each imports only roles below it.

The names below are imported on first use (PEP 562): `import darknet_py` itself loads nothing heavy,
so the `darknet-py` program can take charge of Ctrl-C before torch is loaded.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .core.version import __version__

if TYPE_CHECKING:
    from .api import fastest_backend, load
    from .backends import Backend, BackendTraits
    from .backends.torch import Darknet
    from .core.errors import CfgError, DarknetError, DarknetWarning, InputError, WeightsError
    from .format.cfg import Section, parse_text, read_cfg
    from .format.weights import WeightsHeader, read_weights, write_weights
    from .media.track import track
    from .media.video_frames import VideoFrames, video_frames
    from .model.network import LayerInfo, Network
    from .pipeline.classifications import Classification
    from .pipeline.detections import Detection, Detections
    from .pipeline.tracking import LineCounter, ZoneCounter

_PUBLIC = {  # name → the module that defines it
    "load": "api", "fastest_backend": "api",
    "Backend": "backends", "BackendTraits": "backends",
    "Darknet": "backends.torch",
    "CfgError": "core.errors", "DarknetError": "core.errors", "DarknetWarning": "core.errors",
    "InputError": "core.errors", "WeightsError": "core.errors",
    "Section": "format.cfg", "parse_text": "format.cfg", "read_cfg": "format.cfg",
    "WeightsHeader": "format.weights", "read_weights": "format.weights", "write_weights": "format.weights",
    "LayerInfo": "model.network", "Network": "model.network",
    "Classification": "pipeline.classifications",
    "Detection": "pipeline.detections", "Detections": "pipeline.detections",
    "track": "media.track", "video_frames": "media.video_frames", "VideoFrames": "media.video_frames",
    "LineCounter": "pipeline.tracking", "ZoneCounter": "pipeline.tracking",
}

__all__ = [
    "Backend", "BackendTraits", "CfgError", "Classification", "Darknet", "DarknetError", "DarknetWarning",
    "Detection", "Detections", "InputError", "LayerInfo", "LineCounter", "Network", "Section", "WeightsError", "WeightsHeader",
    "VideoFrames", "ZoneCounter", "__version__", "fastest_backend", "load", "parse_text", "read_cfg", "read_weights", "track",
    "video_frames", "write_weights",
]
assert sorted(__all__) == sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'darknet_py' has no attribute '{name}'")
    value = vars(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"))[name]
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
