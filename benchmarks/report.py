"""How a benchmark leaves its figures: a JSON file under benchmarks/results/ (or --out), written whole or not at all,
and the same JSON printed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from darknet_py.core.fileio import atomic_write


def write_json(folder: Path, name: str, result: Any, indent: int = 1) -> Path:
    """Write *result* as FOLDER/NAME (the folder made if missing; atomically) and print it.

    Args:
        folder (Path): where the results go (a benchmark's --out).
        name (str): the file name, e.g. "vid_stride.json".
        result: what was measured, as JSON-serialisable values.
        indent (int): JSON indentation, in the file and on stdout.

    Returns:
        Path: the file written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with atomic_write(path, "w") as handle:
        json.dump(result, handle, indent=indent)
    print(json.dumps(result, indent=indent))
    return path
