"""backends/: what runs the network. One protocol (`Backend`, pixels in, candidates out), three runtimes.

- `torch` (`Darknet`, darknet_py.backends.torch): the network as a torch module, on CPU or CUDA,
  with CUDA graphs and torch.compile (darknet_py.backends.torch_runner).
- `onnxruntime` (`OnnxDetector`) and `openvino` (`OpenVinoDetector`): graphs written by
  `darknet-py export`, sharing darknet_py.backends.graph; exported classifiers come back as
  `GraphClassifier`.

May import: pipeline, model, format, core. The graph runtimes' packages are imported only when used.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

from ..core.errors import InputError

if TYPE_CHECKING:
    from ..pipeline.backend import Backend, BackendTraits, Candidates, Portable
    from .graph import GraphDetector

# The protocol's names, imported from pipeline.backend on first use (PEP 562): it brings torch, and the command line
# reads BACKENDS (its --backend choices) from here to build its options, `detect --help` included, without torch.
_PROTOCOL = ("Backend", "BackendTraits", "Candidates", "Portable")

# Runtimes of exported graphs: name → (module, class), imported only when used (their packages are heavy or optional).
GRAPH_BACKENDS = {
    "onnxruntime": ("darknet_py.backends.onnxruntime", "OnnxDetector"),
    "openvino": ("darknet_py.backends.openvino", "OpenVinoDetector"),
}
BACKENDS = ("torch", *GRAPH_BACKENDS)
# What a model file's suffix says about the runtime that reads it by default.
EXPORT_SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino"}

__all__ = ["BACKENDS", "Backend", "BackendTraits", "Candidates", "EXPORT_SUFFIXES", "GRAPH_BACKENDS", "Portable",
           "exported_file", "graph_backend", "rebuild"]


def __getattr__(name: str):
    if name not in _PROTOCOL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = vars(importlib.import_module("darknet_py.pipeline.backend"))[name]
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def graph_backend(name: str) -> type[GraphDetector]:
    """The detector class of a graph runtime ("onnxruntime", "openvino"), its module imported now."""
    try:
        module, cls = GRAPH_BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown graph backend '{name}'; use one of {', '.join(GRAPH_BACKENDS)}") from None
    return vars(importlib.import_module(module))[cls]


def exported_file(path: str | os.PathLike[str] | None) -> str | None:
    """The default backend of an exported model file (`.onnx`, OpenVINO `.xml`), None for other files."""
    return None if path is None else EXPORT_SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())


def rebuild(portable: Portable, device: str, width: int, height: int, threads: int) -> Backend:
    """The backend a `Portable` describes, made in this process (a Ray actor).

    Args:
        portable (Portable): from `Backend.portable()` in another process.
        device (str): where to run it ("cpu", "cuda", "cuda:N").
        width, height (int): the network input size the other process used.
        threads (int): torch (and graph runtime) threads in this process.

    Returns:
        Backend: ready to take `candidates()` calls.
    """
    import torch  # here: inside this package, the name `torch` at module level is the torch backend module

    torch.set_num_threads(threads)
    if portable.backend == "torch":
        return portable.payload.to(device)
    return graph_backend(portable.backend)(portable.payload, device=device, size=(width, height), threads=threads,
                                           **portable.options)
