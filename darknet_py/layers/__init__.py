"""Layer builders; importing the family modules fills the registry."""
from . import combine, connected, conv, detection, pooling, recurrent, resample, softmax, yolo  # noqa: F401  (registration side effect)
from .registry import Built, BuildContext, Shape, builder_for, register, supported_types

__all__ = ["Built", "BuildContext", "Shape", "builder_for", "register", "supported_types"]
