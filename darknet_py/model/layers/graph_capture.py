"""Whether a layer's call is being captured into a graph: traced (ONNX export), compiled (torch.compile) or
exported (torch.export). The CPU fast paths (prepacked, mish_kernel, in-place activations) step aside then, so
that a graph records the plain torch functions."""
from __future__ import annotations

import torch


def capturing() -> bool:
    """Whether the current call is being traced, compiled or exported."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
