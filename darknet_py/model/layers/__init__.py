"""Layer builders; importing the family modules fills the registry."""
from . import (
    combine,
    connected,
    contrastive,
    conv,
    detection,
    gaussian_yolo,
    pooling,
    recurrent,
    region,
    resample,
    softmax,
    xnor,
    yolo,
)
from .registry import BuildContext, Built, Shape, builder_for, register, supported_types

__all__ = ["Built", "BuildContext", "Shape", "builder_for", "register", "supported_types"]
