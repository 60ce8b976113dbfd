"""Layer builders; importing the family modules fills the registry."""
from . import combine, contrastive, conv, gaussian_yolo, pooling, region, resample, xnor, yolo  # noqa: F401  (registration)
from .registry import Built, BuildContext, Shape, builder_for, register, supported_types

__all__ = ["Built", "BuildContext", "Shape", "builder_for", "register", "supported_types"]
