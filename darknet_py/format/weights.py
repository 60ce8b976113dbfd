"""Read and write darknet .weights files: a small header, then one float32 stream.

Header (darknet's load_weights): int32 major, minor, revision, then `seen` — a uint64
when major*10+minor >= 2, else a uint32. Every float after the header belongs to a
layer, in layer order; the model decides how many each layer takes.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..core.errors import WeightsError
from ..core.fileio import atomic_write, read_writable

# Versions above this are not darknet files (darknet itself treats >1000 as a
# "transposed" marker for fully-connected layers, which inference cfgs do not use).
_MAX_VERSION_FIELD = 1000


@dataclass(frozen=True)
class WeightsHeader:
    """The .weights header: version (major, minor, revision) and `seen`, the images trained on
    (uint64 from version 0.2 on, uint32 before)."""

    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2

    @property
    def nbytes(self) -> int:
        return 12 + (8 if self.seen_is_64bit else 4)

    def pack(self) -> bytes:
        seen = struct.pack("<Q" if self.seen_is_64bit else "<I", self.seen)
        return struct.pack("<iii", self.major, self.minor, self.revision) + seen


def _describe(path: str) -> str:
    return os.path.basename(path)


def read_weights(path: str | os.PathLike[str]) -> tuple[WeightsHeader, np.ndarray]:
    """Return the header and every float after it (float32, little-endian)."""
    path = os.fspath(path)
    # a writable buffer: the floats go into torch tensors without another copy (Network.load_weight_array)
    data = read_writable(path, WeightsError, "weights file")
    name = _describe(path)
    if len(data) < 12:
        raise WeightsError(f"{name}: {len(data)} bytes is too short for a darknet weights header (at least 16 bytes)")
    major, minor, revision = struct.unpack_from("<iii", data, 0)
    if not all(0 <= v <= _MAX_VERSION_FIELD for v in (major, minor, revision)):
        raise WeightsError(
            f"{name}: unrecognised header version {major}.{minor}.{revision}; "
            "darknet weights start with small version numbers such as 0.2.5 — is this a darknet .weights file?"
        )
    header = WeightsHeader(major, minor, revision, 0)
    if len(data) < header.nbytes:
        raise WeightsError(f"{name}: file ends inside the header ({len(data)} bytes, header needs {header.nbytes})")
    fmt = "<Q" if header.seen_is_64bit else "<I"
    (seen,) = struct.unpack_from(fmt, data, 12)
    header = WeightsHeader(major, minor, revision, seen)
    body = len(data) - header.nbytes
    if body % 4:
        raise WeightsError(f"{name}: {body} bytes after the header is not a whole number of float32 values")
    floats = np.frombuffer(data, dtype="<f4", offset=header.nbytes).astype(np.float32, copy=False)
    return header, floats


def write_weights(path: str | os.PathLike[str], header: WeightsHeader, floats: np.ndarray | Iterable[np.ndarray]) -> None:
    """Write header + floats atomically (no partial file on failure).

    Args:
        path: the .weights file to write.
        header: its header.
        floats: the floats after the header: one array, or the layers' arrays in file order (written one after
            the other, never joined: a 1.1 GB network is not copied twice more on its way to the file).
    """
    with atomic_write(path) as handle:
        handle.write(header.pack())
        for part in [floats] if hasattr(floats, "__array__") else floats:  # an array (or tensor), or arrays
            handle.write(np.ascontiguousarray(part, dtype="<f4").reshape(-1).data)
