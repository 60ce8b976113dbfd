"""Darknet's class hierarchy files (`tree=`, e.g. data/9k.tree for YOLO9000), read as src/tree.c does.

Each line is "name parent_index" (−1: a root). Darknet groups *consecutive* lines with the same
parent; the softmax over classes runs within each group (softmax_tree), and a class's absolute
probability is its own times its parent's (hierarchy_predictions, parents always come first).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

from ..core.errors import CfgError
from ..core.fileio import read_bytes


@dataclass(frozen=True)
class SoftmaxTree:
    parents: tuple[int, ...]  # per class: its parent's index, or −1

    @cached_property
    def groups(self) -> tuple[tuple[int, int], ...]:
        """(start, size) of each run of consecutive classes with the same parent, in order."""
        runs: list[tuple[int, int]] = []
        for index, parent in enumerate(self.parents):
            if runs and parent == self.parents[index - 1]:
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((index, 1))
        return tuple(runs)

    @cached_property
    def depth(self) -> int:
        """Edges on the longest path from a class to its root."""
        depths: list[int] = []
        for parent in self.parents:
            depths.append(depths[parent] + 1 if parent >= 0 else 0)
        return max(depths, default=0)


def read_tree(path: str, where: str) -> SoftmaxTree:
    """Parse a tree file; `where` (file:line of the option) prefixes every error."""
    data = read_bytes(path, CfgError, "tree file")
    parents: list[int] = []
    for number, line in enumerate(data.decode("latin-1").splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        try:
            parent = int(words[1]) if len(words) > 1 else -1
        except ValueError:
            raise CfgError(f"{where}: {os.path.basename(path)}:{number}: expected 'name parent_index', "
                           f"found '{line.strip()}'") from None
        if not -1 <= parent < len(parents):
            raise CfgError(f"{where}: {os.path.basename(path)}:{number}: parent {parent} must be −1 or an earlier "
                           f"line (0..{len(parents) - 1})")
        parents.append(parent)
    if not parents:
        raise CfgError(f"{where}: tree file {path} lists no classes")
    return SoftmaxTree(tuple(parents))


def resolve_tree_path(value: str, cfg_path: str) -> list[str]:
    """Where to look for a `tree=` file, first hit wins. Darknet opens the path as given, relative to
    the working directory (its cfgs say tree=data/9k.tree, run from the darknet folder); the cfg's
    own folder and the folder above it (darknet's layout: cfg/ beside data/) come after."""
    if os.path.isabs(value):
        return [value]
    cfg_dir = os.path.dirname(os.path.abspath(cfg_path)) if cfg_path and cfg_path != "<string>" else None
    places = [value]
    if cfg_dir:
        places += [os.path.join(cfg_dir, value), os.path.join(os.path.dirname(cfg_dir), value)]
    return list(dict.fromkeys(places))
