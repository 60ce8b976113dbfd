"""Official model names → local cfg/weights: cache, then DARKNET_PY_ZOO folders, then download.

Downloads go to a temporary file, are checked (sha256 where the manifest has one, else the
published size), and are renamed into the cache only when complete.
"""
from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..core.errors import InputError
from ..core.fileio import atomic_path, sha256_file

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_MANIFEST_PLACES = (
    Path(__file__).resolve().parents[2] / "cfg" / "zoo.json",  # source checkout / editable install
    Path(sys.prefix) / "share" / "darknet_py" / "zoo.json",  # regular install (setup.cfg data_files)
)


def manifest() -> dict:
    """The model zoo's manifest (cfg/zoo.json): the source checkout's, else the installed copy's.

    Returns:
        dict: the parsed JSON; its "models" maps each official name to its entry (the cfg and weights URLs,
        and optionally each file's size and sha256).

    Raises:
        InputError: no manifest is found in this installation.
    """
    for place in _MANIFEST_PLACES:
        if place.is_file():
            return json.loads(place.read_text())
    raise InputError("the model zoo manifest (cfg/zoo.json) is missing from this installation")


def cache_dir() -> Path:
    """Where downloaded models are kept: $DARKNET_PY_CACHE, else ~/.cache/darknet_py (it may not exist yet)."""
    return Path(os.environ.get("DARKNET_PY_CACHE") or Path.home() / ".cache" / "darknet_py")  # set empty: unset


def _mirror_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("DARKNET_PY_ZOO", "").split(os.pathsep) if p]


def _find_local(filename: str, kind: str) -> Path | None:
    for folder in [cache_dir(), *_mirror_dirs()]:
        for candidate in (folder / filename, folder / kind / filename):
            if candidate.is_file():
                return candidate
    return None


def _verify(path: Path, entry: dict, kind: str) -> str | None:
    """None when the file is good, else why not."""
    size, digest = entry.get(f"{kind}_size"), entry.get(f"{kind}_sha256")
    if size is not None and path.stat().st_size != size:
        return f"{path} is {path.stat().st_size:,} bytes, expected {size:,}"
    if digest is not None:
        found = sha256_file(path)
        if found != digest:
            return f"{path} has sha256 {found}, expected {digest}"
    return None


def _download(url: str, target: Path, entry: dict, kind: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname == "127.0.0.1"):  # tests' server
        raise InputError(f"refusing to download over a non-https URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            with open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    done += len(block)
                    if total and sys.stderr.isatty():
                        print(f"\rdownloading {target.name}: {done / total:6.1%} of {total / 1e6:.1f} MB", end="", file=sys.stderr)
            problem = _verify(Path(tmp), entry, kind)
            if problem:  # atomic_path removes the temporary file
                raise InputError(f"download of {url} is corrupt: {problem.replace(tmp, target.name)}")
        if total and sys.stderr.isatty():
            print(file=sys.stderr)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise InputError(
            f"cannot download {url} ({getattr(exc, 'reason', exc)}); download it yourself and put it in "
            f"{cache_dir()} or in a folder listed in DARKNET_PY_ZOO"
        ) from None


def resolve(name: str) -> tuple[Path, Path]:
    """(cfg, weights) for an official model name.

    Each file is a local copy that passes the manifest's size and sha256 checks (in the cache or a DARKNET_PY_ZOO
    folder, directly or under a `cfg`/`weights` subfolder), else it is downloaded into the cache.

    Args:
        name (str): the official model's name (a key of the manifest's "models").

    Returns:
        tuple of (Path, Path): the cfg file and the weights file.

    Raises:
        InputError: an unknown or unsafe name, no manifest, or a download that fails or is corrupt.
    """
    entry = _entry(name)
    return _fetch(name, entry, "cfg"), _fetch(name, entry, "weights")


def resolve_cfg(name: str) -> Path:
    """The cfg of an official model name, without its weights (for what reads the structure only: info, scale).

    Args:
        name (str): the official model's name.

    Returns:
        Path: the cfg file, local or downloaded into the cache (as `resolve` finds it).

    Raises:
        InputError: an unknown or unsafe name, no manifest, or a download that fails or is corrupt.
    """
    return _fetch(name, _entry(name), "cfg")


def is_model_name(text: object) -> bool:
    """Whether *text* is meant as a model's name where a cfg file is expected: a bare word with no folder and no
    extension that names no file here (`load("yolov4-tiny")`, `darknet-py info yolov4-tiny`).

    It does not look in the manifest: `known_name` checks that the word is an official name.

    Args:
        text (object): what was given where a cfg is expected; only a str can be a name.

    Returns:
        bool: True for a str with no path separator and no "." that is not an existing path.
    """
    return isinstance(text, str) and not os.path.exists(text) and os.sep not in text and "." not in text


def cfg_or_name(text: str) -> str:
    """*text* itself, or for an official model's name (see is_model_name) its cfg's path.

    Args:
        text (str): a cfg file's path, or an official model's name.

    Returns:
        str: *text* unchanged, or the name's cfg file (local, or downloaded into the cache).

    Raises:
        InputError: a bare word that is neither a file nor a name, with the names listed.
    """
    if not is_model_name(text):
        return text
    known_name(text)
    return str(resolve_cfg(text))


def known_name(word: str) -> None:
    """InputError, the official names listed, unless *word* (a bare word that names no file) is one of them.

    Args:
        word (str): the bare word given where a file was expected.

    Raises:
        InputError: *word* is not an official model's name (or the manifest is missing).
    """
    known = sorted(manifest()["models"])
    if word not in known:
        raise InputError(f"{word}: no such file, nor an official model's name (those are: {', '.join(known)})")


def _entry(name: str) -> dict:
    models = manifest()["models"]
    if name not in models:
        raise InputError(f"unknown model '{name}'; known: {', '.join(sorted(models))}")
    if not _SAFE_NAME.fullmatch(name):  # the name becomes a file name in the cache: no separators, no '..'
        raise InputError(f"model name '{name}' is not a plain file name")
    return models[name]


def _fetch(name: str, entry: dict, kind: str) -> Path:
    """The model's *kind* ("cfg" or "weights") file: a good local copy, else downloaded into the cache."""
    filename = f"{name}.{kind}"
    local = _find_local(filename, kind)
    if local is not None and _verify(local, entry, kind) is None:
        return local
    target = cache_dir() / filename
    _download(entry[kind], target, entry, kind)
    return target
