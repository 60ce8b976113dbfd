"""darknet_py: Darknet .cfg/.weights inference in PyTorch, ONNX and onnxruntime."""
from .api import load
from .cfg import Section, parse_text, read_cfg
from .errors import CfgError, DarknetError, InputError, WeightsError
from .layers.yolo import DarknetWarning
from .model import Darknet, LayerInfo
from .weights import WeightsHeader, read_weights, write_weights

__version__ = "0.1.0"

__all__ = [
    "CfgError", "Darknet", "DarknetError", "DarknetWarning", "InputError", "LayerInfo", "Section",
    "WeightsError", "WeightsHeader", "load", "parse_text", "read_cfg", "read_weights", "write_weights",
]
