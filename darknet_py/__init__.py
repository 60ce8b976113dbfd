"""darknet_py: Darknet .cfg/.weights inference in PyTorch, ONNX, onnxruntime and OpenVINO.

The public API: `load()` and what it returns (`Darknet`, or a graph runtime's detector, all meeting
the `Backend` protocol), the result types, darknet's files, and the errors. The code is organised by
role (see the docs' "Package map"): core, format, model, pipeline, backends, export, evaluate, media,
live, distributed, cli; each imports only roles below it.
"""
from .api import load
from .backends import Backend, BackendTraits
from .backends.torch import Darknet
from .core.errors import CfgError, DarknetError, DarknetWarning, InputError, WeightsError
from .core.version import __version__
from .format.cfg import Section, parse_text, read_cfg
from .format.weights import WeightsHeader, read_weights, write_weights
from .model.network import LayerInfo, Network
from .pipeline.classifications import Classification
from .pipeline.detections import Detections

__all__ = [
    "Backend", "BackendTraits", "CfgError", "Classification", "Darknet", "DarknetError", "DarknetWarning",
    "Detections", "InputError", "LayerInfo", "Network", "Section", "WeightsError", "WeightsHeader", "__version__",
    "load", "parse_text", "read_cfg", "read_weights", "write_weights",
]
