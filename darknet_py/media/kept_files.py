"""The newest N of the files a run's index lists (`--keep-segments N`, `--keep-clips N`): the files a line file lists
as they are made (a recording's STEM.segments.jsonl, clips.jsonl), of which only the newest N stay on disk, the oldest
deleted as each new one is added — an earlier run's into the same folder counted too, since the index goes on from it.
Only files the index lists are ever deleted.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections import deque
from pathlib import Path
from typing import Iterable


def listed_files(index: Path, folder: Path) -> list[Path]:
    """The files the JSON lines of *index* list (each line's `file`) that are still on disk, oldest first, each once; a
    line a killed run left cut short is passed over, and a listed name is only ever looked for in *folder* (never a
    path elsewhere, whatever the line says)."""
    listed: dict[Path, None] = {}  # in order, each once
    with contextlib.suppress(FileNotFoundError), open(index, encoding="utf-8") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                listed[folder / Path(json.loads(line)["file"]).name] = None
    return [path for path in listed if path.is_file()]


class KeptFiles:
    """The newest *keep* files, oldest first: `add()` a new one, and the oldest beyond *keep* are deleted.

    Args:
        keep (int or None): how many to keep; None: every one (and none is held: a run of weeks in short segments
            would hold millions of names).
        earlier (iterable of Path): files kept before this run (listed_files of the index), oldest first.
    """

    def __init__(self, keep: int | None, earlier: Iterable[Path] = ()) -> None:
        self.keep = keep
        self._kept: deque[Path] = deque(earlier if keep is not None else ())

    def add(self, path: Path) -> None:
        """*path* is the newest file (a name added again — a file's rerun writing the same clip — moves to the end);
        the oldest beyond `keep` are deleted."""
        if self.keep is None:
            return
        if path in self._kept:
            self._kept.remove(path)
        self._kept.append(path)
        while len(self._kept) > self.keep:
            with contextlib.suppress(FileNotFoundError):  # removed by someone else already: nothing to do
                os.unlink(self._kept.popleft())
