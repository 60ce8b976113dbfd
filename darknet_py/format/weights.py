"""Read and write darknet .weights files: a small header, then one float32 stream.

Header (darknet's load_weights): int32 major, minor, revision, then `seen` — a uint64
when major*10+minor >= 2, else a uint32. Every float after the header belongs to a
layer, in layer order; the model decides how many each layer takes.
"""
from __future__ import annotations

import io
import os
import stat
import struct
import sys
from dataclasses import dataclass
from typing import IO, Iterable

import numpy as np

from ..core.errors import WeightsError
from ..core.fileio import atomic_write

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
        """Whether `seen` is stored in 8 bytes (version 0.2 on) rather than 4."""
        return self.major * 10 + self.minor >= 2

    @property
    def nbytes(self) -> int:
        """The header's size in the file: 20 bytes, or 16 before version 0.2."""
        return 12 + (8 if self.seen_is_64bit else 4)

    def pack(self) -> bytes:
        """The header as darknet writes it (little-endian int32 version numbers, then `seen`)."""
        seen = struct.pack("<Q" if self.seen_is_64bit else "<I", self.seen)
        return struct.pack("<iii", self.major, self.minor, self.revision) + seen


def _describe(path: str) -> str:
    return os.path.basename(path)


def _parse_header(start: bytes | np.ndarray, size: int, name: str) -> WeightsHeader:
    """The header from the file's first bytes (20 or fewer) and its size; a WeightsError for what is not one."""
    if size < 12:
        raise WeightsError(f"{name}: {size} bytes is too short for a darknet weights header (at least 16 bytes)")
    major, minor, revision = struct.unpack_from("<iii", start, 0)
    if not all(0 <= v <= _MAX_VERSION_FIELD for v in (major, minor, revision)):
        raise WeightsError(
            f"{name}: unrecognised header version {major}.{minor}.{revision}; "
            "darknet weights start with small version numbers such as 0.2.5 — is this a darknet .weights file?"
        )
    header = WeightsHeader(major, minor, revision, 0)
    if size < header.nbytes:
        raise WeightsError(f"{name}: file ends inside the header ({size} bytes, header needs {header.nbytes})")
    (seen,) = struct.unpack_from("<Q" if header.seen_is_64bit else "<I", start, 12)
    body = size - header.nbytes
    if body % 4:
        raise WeightsError(f"{name}: {body} bytes after the header is not a whole number of float32 values")
    return WeightsHeader(major, minor, revision, seen)


def read_weights(path: str | os.PathLike[str]) -> tuple[WeightsHeader, np.ndarray]:
    """Return the header and every float after it (float32; writable, so torch can read it without a copy)."""
    with WeightsFile(path) as source:
        floats = np.empty(source.count, np.float32)
        source.read_into(floats)
    return source.header, floats


class WeightsFile:
    """A .weights file read front to back a piece at a time (Network.load_weights): the floats go from the file into
    a piece-sized buffer and on into the network's tensors, so the whole file is never in memory beside them.

    Attributes:
        header (WeightsHeader): the file's header.
        count (int): the number of floats after it.
        name (str): the file's name, for messages.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = os.fspath(path)
        self.name = _describe(path)
        try:
            self._handle: IO[bytes] = open(path, "rb")
        except OSError as exc:
            raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
        try:
            info = os.fstat(self._handle.fileno())
            if stat.S_ISREG(info.st_mode):
                size = info.st_size
            else:  # a pipe (`--weights <(zcat yolov4.weights.gz)`) has no size to check first: read it whole
                data = self._handle.read()
                self._handle.close()
                self._handle, size = io.BytesIO(data), len(data)
            start = self._handle.read(20)
        except OSError as exc:
            self._handle.close()
            raise WeightsError(f"cannot read weights file {path}: {exc.strerror or exc}") from None
        try:
            self.header = _parse_header(start, size, self.name)
            self._handle.seek(self.header.nbytes)
        except BaseException:
            self._handle.close()
            raise
        self.count = (size - self.header.nbytes) // 4

    def read_into(self, out: np.ndarray) -> None:
        """Fill `out` (float32, contiguous) with the next `out.size` floats of the file.

        Raises:
            WeightsError: the file ended early or could not be read (it changed since it was opened).
        """
        try:
            got = self._handle.readinto(memoryview(out).cast("B"))
        except OSError as exc:
            raise WeightsError(f"cannot read weights file {self.name}: {exc.strerror or exc}") from None
        if got != out.nbytes:
            raise WeightsError(f"{self.name} ended early: it was cut short while it was being read")
        if sys.byteorder == "big":  # the file is little-endian
            out.byteswap(inplace=True)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "WeightsFile":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


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
