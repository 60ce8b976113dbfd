"""Atomic file output: a failed or interrupted write never leaves a partial file."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterable, Iterator, Literal, overload

from .errors import InputError

if TYPE_CHECKING:
    import numpy as np


def refuse_overwrite(path: str | os.PathLike[str], exist_ok: bool) -> None:
    """Before the work that makes an output file: a user's file is never replaced unasked, and a folder the file
    cannot be written in is refused now, not after minutes of work.

    Args:
        path (str or PathLike): the file the work will write.
        exist_ok (bool): whether an existing file may be replaced (--exist-ok).

    Raises:
        InputError: the file exists (without exist_ok), or its folder cannot be written in.
    """
    if os.path.exists(path) and not exist_ok:
        raise InputError(f"{os.fspath(path)} exists; pass --exist-ok to overwrite it")
    require_writable(os.path.dirname(os.path.abspath(path)), os.fspath(path))


def require_writable(folder: str | os.PathLike[str], what: str) -> None:
    """Refuse, before any work, a folder in which files cannot be created: the folder itself or, where it does not
    exist yet, the nearest folder above it that does (where it would be made).

    Args:
        folder (str or PathLike): where the files would go.
        what (str): what would be written there, for the message ("--output", "--save-labels' label files").

    Raises:
        InputError: naming the folder that refuses and why.
    """
    path = os.path.abspath(folder)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        raise InputError(f"{what}: {path} is a file, not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)  # access() refuses those too: say which it is
        raise InputError(f"{what}: cannot write in {path} ({'a read-only file system' if read_only else 'permission denied'})")


@overload
def read_bytes(path: str, error: type[Exception], what: str, missing_ok: Literal[False] = False) -> bytes: ...
@overload
def read_bytes(path: str, error: type[Exception], what: str, missing_ok: bool) -> bytes | None: ...
def read_bytes(path: str, error: type[Exception], what: str, missing_ok: bool = False) -> bytes | None:
    """The whole file, or `error` saying which file could not be read and why.

    Args:
        path (str): the file.
        error (type of Exception): what to raise when it cannot be read (CfgError, WeightsError, InputError...);
            it is called with the message only.
        what (str): what the file is, for the message ("weights", "cfg").
        missing_ok (bool): a file that is not there (nor a folder in its place) is None, not an error: one open, no
            stat first, for files that may be missing by the thousand (a set's label files).

    Returns:
        bytes or None: the file's contents; None for a missing file with *missing_ok*.

    Raises:
        error: the file cannot be opened or read ("cannot read WHAT PATH: REASON").
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        if missing_ok:
            return None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weights files run to gigabytes).

    Args:
        path (str or PathLike): the file.

    Returns:
        str: the digest, 64 lowercase hex digits.

    Raises:
        OSError: the file cannot be opened or read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_NAME_MAX = 255  # the longest file name, in bytes, on Linux file systems (ext4, xfs, btrfs, tmpfs)
_RANDOM = 8  # the characters mkstemp adds


def temporary_prefix(name: str, suffix: str = "") -> str:
    """The prefix for a temporary file or folder beside `name` (tempfile's `prefix`): ".NAME.", NAME cut so that the
    whole temporary name stays a legal file name (a user's 250-byte name is legal; with the temporary's additions
    it would not be).

    Args:
        name (str): the file name the temporary stands in for (no folder).
        suffix (str): the temporary's suffix (tempfile's `suffix`).

    Returns:
        str: the prefix, at most 255 bytes less the suffix and tempfile's 8 random characters.
    """
    room = _NAME_MAX - len(os.fsencode(suffix)) - _RANDOM - 2  # the two dots
    return "." + os.fsencode(name)[:max(room, 0)].decode("utf-8", errors="ignore") + "."


def _mkstemp_like_open(path: str, suffix: str) -> tuple[int, str]:
    """mkstemp creates 0600 files; give the final file the mode open() would (0666 & ~umask)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with _errors_name(path):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(os.path.basename(path), suffix), suffix=suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


@contextlib.contextmanager
def _errors_name(path: str) -> Iterator[None]:
    """An OSError in the block (a name too long, no permission, a full disk) names `path`, the file the user asked
    for, not the temporary one the work was on."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None


def _into_place(tmp: str, path: str) -> None:
    """Rename the finished temporary file to `path`."""
    with _errors_name(path):
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", sync: bool = True) -> Iterator[IO]:
    """Write to a temporary file beside `path`, then rename it into place on success.

    The temporary file gets the mode open() would give a new file, and is flushed and fsynced before the rename;
    on any exception (an interrupt too) it is removed and `path` is left as it was. The folder is made if missing.

    Args:
        path (str or PathLike): the file to write.
        mode (str): the temporary file's open mode ("wb", "w").
        sync (bool): fsync the file before the rename (False: a file of many, an annotated image, written as
            cv2.imwrite writes it, without waiting for the disk).

    Yields:
        IO: the open temporary file.

    Raises:
        OSError: the temporary file cannot be made or moved into place; the error names `path`.
    """
    fd, tmp = _mkstemp_like_open(os.fspath(path), ".tmp")
    try:
        try:
            with os.fdopen(fd, mode) as handle:
                yield handle
                handle.flush()
                if sync:
                    os.fsync(handle.fileno())
        except OSError as exc:  # a write that failed (a full disk) names no file: it is `path`'s
            if exc.filename is None and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None
            raise
        _into_place(tmp, os.fspath(path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[str]:
    """Yield a temporary path for writers that need a file name (cv2, onnx, torch.save).

    The (empty) temporary file is made beside `path` and renamed to it when the block ends without an exception;
    on any exception it is removed and `path` is left as it was. It is not fsynced.

    Args:
        path (str or PathLike): the file to write.
        suffix (str): the temporary's suffix (writers that choose the format by it need the right one);
            "": ".tmp".

    Yields:
        str: the temporary file's path.

    Raises:
        OSError: the temporary file cannot be made or moved into place; the error names `path`.
    """
    path = os.fspath(path)
    fd, tmp = _mkstemp_like_open(path, suffix or ".tmp")
    os.close(fd)
    try:
        yield tmp
        _into_place(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def free_path(path: str | os.PathLike[str], suffix: str | None = None) -> Path:
    """*path*, or where a file is there already the first of `STEM-2.EXT`, `STEM-3.EXT`, … that is free: what a run
    writes where an earlier run's file must not be written over.

    Args:
        path (str or PathLike): the file's own name.
        suffix (str or None): its extension where that has several parts (`.mot.txt`: `cam-2.mot.txt`, not
            `cam.mot-2.txt`); None, or one the name does not end in after a stem: the last part (`cam.mp4`:
            `cam-2.mp4`).
    """
    path = Path(path)
    if suffix is None or not path.name.endswith(suffix) or path.name == suffix:
        suffix = path.suffix
    stem = path.name.removesuffix(suffix)
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{stem}-{n}{suffix}")
    return candidate


def write_image(target: str | os.PathLike[str], image: np.ndarray) -> None:
    """cv2.imwrite's file, atomically: encoded by OpenCV (cv2.imencode, the same encoder and defaults), written by
    Python, so that a failed write says why (a full disk, no permission) and names the file.

    Args:
        target (str or PathLike): the image file; its extension chooses the format.
        image (np.ndarray): the pixels, as cv2.imwrite takes them (BGR or grey).

    Raises:
        InputError: OpenCV cannot encode the image (its error's last line, or no reason).
        OSError: the file cannot be written; the error names *target*.
    """
    import cv2

    target = os.fspath(target)
    if not cv2.haveImageWriter(target):
        raise InputError(f"cannot write {target}: OpenCV writes no image of that kind (give .jpg or .png)")
    try:
        encoded, data = cv2.imencode(os.path.splitext(target)[1] or ".", image)
    except cv2.error as error:
        raise InputError(f"cannot write {target}: {str(error).strip().splitlines()[-1]}") from error
    if not encoded:
        raise InputError(f"cannot write {target}: OpenCV could not encode the image")
    with atomic_write(target, "wb", sync=False) as handle:
        handle.write(data.tobytes())


class LinesFile:
    """A line file that a run appends to for as long as it runs (detections.jsonl, events.jsonl, a recording's
    segments.jsonl), each call's lines in one write, flushed: a run that dies keeps every line written before. Made
    empty on the first call (one already there is replaced) unless told to keep an earlier run's lines, then opened
    for appending, so that logrotate's `copytruncate` works on it — each write goes to the end of the file as it is
    now, not past where a truncated file ended (a hole of NULs).

    Args:
        path (str or PathLike): the file.
        replace (bool): make a file already there empty first; False: append to it (a camera's run after an
            earlier one into the same folder: a restarted service keeps what it wrote before).
    """

    def __init__(self, path: str | os.PathLike[str], replace: bool = True) -> None:
        self.path = Path(path)
        self.replace = replace
        self._handle: IO[str] | None = None

    def append(self, lines: Iterable[str]) -> None:
        """Add *lines* (without their newlines); the file is made on the first call, even with none."""
        if self._handle is None:
            if self.replace:
                open(self.path, "w", encoding="utf-8").close()
            self._handle = open(self.path, "a", encoding="utf-8")
            if not self.replace and not _ends_a_line(self.path):
                self._handle.write("\n")  # an earlier run killed mid-line: its cut line stays cut, not joined to ours
        text = "".join(line + "\n" for line in lines)
        if text:
            self._handle.write(text)
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _ends_a_line(path: Path) -> bool:
    """Whether a file is empty or ends with a newline."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
