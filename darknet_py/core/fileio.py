"""Atomic file output: a failed or interrupted write never leaves a partial file."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import IO, Iterator

from .errors import InputError


def refuse_overwrite(path: str | os.PathLike[str], exist_ok: bool) -> None:
    """A user's file is never replaced unasked."""
    if os.path.exists(path) and not exist_ok:
        raise InputError(f"{os.fspath(path)} exists; pass --exist-ok to overwrite it")


def read_bytes(path: str, error: type[Exception], what: str) -> bytes:
    """The whole file, or `error` saying which file could not be read and why."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weights files run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mkstemp_like_open(path: str, suffix: str) -> tuple[int, str]:
    """mkstemp creates 0600 files; give the final file the mode open() would (0666 & ~umask)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename it into place on success."""
    fd, tmp = _mkstemp_like_open(os.fspath(path), ".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, os.fspath(path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[str]:
    """Yield a temporary path for writers that need a file name (cv2, onnx, torch.save)."""
    path = os.fspath(path)
    fd, tmp = _mkstemp_like_open(path, suffix or ".tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_image(target: str | os.PathLike[str], image) -> None:
    """cv2.imwrite, atomically, with OpenCV's failures as one InputError."""
    import cv2

    target = os.fspath(target)
    with atomic_path(target, os.path.splitext(target)[1]) as tmp:
        try:
            written = cv2.imwrite(tmp, image)
        except cv2.error as error:
            raise InputError(f"cannot write {target}: {str(error).strip().splitlines()[-1]}") from error
        if not written:
            raise InputError(f"cannot write {target}")
