"""Darknet's layers, one module per section family. Importing this package imports every module in it,
and each registers its section types (builder + description) with `registry.register`: adding a layer
is adding one file here."""
import importlib
import pkgutil

from .registry import (
    BuildContext,
    Built,
    Description,
    Layer,
    LayerInfo,
    Shape,
    builder_for,
    layer_type,
    register,
    supported_types,
)

# Not layer families: the contract itself, and helpers the families share.
_SUPPORT_MODULES = {"registry", "activations", "head", "prepacked", "mish_kernel", "graph_capture"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _SUPPORT_MODULES:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Built", "BuildContext", "Description", "Layer", "LayerInfo", "Shape", "builder_for", "layer_type", "register",
           "supported_types"]
