"""Read darknet .cfg text into Sections, the way darknet's read_cfg does.

Darknet strips every whitespace character from a line, treats lines starting with
`#` or `;` as comments, opens a section on `[type]`, and reads `key=value` otherwise.
When a key repeats inside a section, the first occurrence wins (option_find walks
the list from the front). Values are kept as text; typed getters parse them on demand
so each error can name the file, line, section and key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, TypeVar

from ..core.errors import CfgError
from ..core.fileio import read_bytes

T = TypeVar("T")
_REQUIRED = object()

# The [net] section may be spelled either way (darknet's string_to_layer_type).
NET_TYPES = ("net", "network")


@dataclass
class Section:
    """One `[type]` block: its options as text and where each came from."""

    type: str
    line: int
    path: str = "<string>"
    index: int = -1  # layer index in the network; -1 for [net]
    options: dict[str, str] = field(default_factory=dict)
    option_lines: dict[str, int] = field(default_factory=dict)
    # a key given again in the section: (key, value, line); darknet reads the first and ignores these
    repeated: list[tuple[str, str, int]] = field(default_factory=list)

    # -- locating ---------------------------------------------------------------
    def where(self, key: str | None = None) -> str:
        """Where the section (or its option `key`) is: "file.cfg:LINE: [type] (layer N)", for messages."""
        line = self.option_lines.get(key, self.line) if key else self.line
        layer = f" (layer {self.index})" if self.index >= 0 else ""
        return f"{os.path.basename(self.path)}:{line}: [{self.type}]{layer}"

    def error(self, message: str, key: str | None = None) -> CfgError:
        """A CfgError saying `message` at `where(key)` (the caller raises it)."""
        return CfgError(f"{self.where(key)}: {message}")

    # -- typed access -------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether the section sets option `key`."""
        return key in self.options

    def _get(self, key: str, default: object, parse: Callable[[str], T], kind: str) -> T:
        if key not in self.options:
            if default is _REQUIRED:
                raise self.error(f"missing required option '{key}'")
            return default  # type: ignore[return-value]
        text = self.options[key]
        try:
            return parse(text)
        except OverflowError:
            raise self.error(f"option '{key}' is out of range: '{text}' (darknet reads a 32-bit integer)", key) from None
        except ValueError:
            raise self.error(f"option '{key}' must be {kind}, found '{text}'", key) from None

    def get_int(self, key: str, default: object = _REQUIRED) -> int:
        """Option `key` parsed as an integer (darknet's 32-bit int); `default` when it is not set, a CfgError
        naming the line when it is required (no default) and missing or when its text is not an integer."""
        return self._get(key, default, _parse_int, "an integer")

    def get_float(self, key: str, default: object = _REQUIRED) -> float:
        """Option `key` parsed as a number; `default` when it is not set, a CfgError naming the line when it is
        required (no default) and missing or when its text is not a number."""
        return self._get(key, default, _parse_float, "a number")

    def get_str(self, key: str, default: object = _REQUIRED) -> str:
        """Option `key` as its text; `default` when it is not set, a CfgError naming the line when it is required (no
        default) and missing."""
        return self._get(key, default, str, "text")

    def get_ints(self, key: str, default: object = _REQUIRED) -> list[int]:
        """Option `key` parsed as a comma-separated list of integers; `default` when it is not set, a CfgError
        naming the line when it is required (no default) and missing or when its text is not such a list."""
        return self._get(key, default, lambda t: _parse_list(t, _parse_int), "a comma-separated list of integers")

    def get_floats(self, key: str, default: object = _REQUIRED) -> list[float]:
        """Option `key` parsed as a comma-separated list of numbers; `default` when it is not set, a CfgError
        naming the line when it is required (no default) and missing or when its text is not such a list."""
        return self._get(key, default, lambda t: _parse_list(t, _parse_float), "a comma-separated list of numbers")


def _parse_int(text: str) -> int:
    value = int(text)
    if not -(2 ** 31) <= value < 2 ** 31:
        raise OverflowError(text)
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def _parse_list(text: str, parse: Callable[[str], T]) -> list[T]:
    items = text.split(",")
    if items and items[-1] == "":  # darknet tolerates one trailing comma
        items = items[:-1]
    if not items or any(item == "" for item in items):
        raise ValueError(text)
    return [parse(item) for item in items]


def _strip_line(raw: str) -> str:
    # darknet's strip() removes every whitespace character, not only the ends.
    line = "".join(raw.split())
    # Inline comments are not darknet syntax, but atoi/atof stop at them there;
    # cutting them keeps "size=3 # note" meaning size=3 for every value type.
    for mark in ("#", ";"):
        cut = line.find(mark, 1)
        if cut > 0:
            line = line[:cut]
    return line


def parse_text(text: str, path: str = "<string>") -> list[Section]:
    """Parse cfg text. The first section is [net]; layer sections follow, indexed from 0."""
    sections: list[Section] = []
    name = os.path.basename(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_line(raw)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{name}:{number}: malformed section header '{raw.strip()}' (expected '[type]')")
            sections.append(Section(type=line[1:-1], line=number, path=path))
            continue
        if not sections:
            raise CfgError(f"{name}:{number}: option '{raw.strip()}' appears before the first [section]")
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise CfgError(f"{name}:{number}: cannot parse '{raw.strip()}' (expected key=value)")
        current = sections[-1]
        if key not in current.options:  # first occurrence wins, as in darknet
            current.options[key] = value
            current.option_lines[key] = number
        else:
            current.repeated.append((key, value, number))
    if not sections:
        raise CfgError(f"{name}: no [sections] found; is this a darknet .cfg file?")
    if sections[0].type not in NET_TYPES:
        first = sections[0]
        raise CfgError(f"{name}:{first.line}: the first section must be [net], found [{first.type}]")
    for index, section in enumerate(sections[1:]):
        section.index = index
        if section.type in NET_TYPES:
            raise section.error("a second [net] section is not allowed")
    return sections


def read_cfg_text(path: str | os.PathLike[str]) -> str:
    """A .cfg file's text (UTF-8, else Latin-1, as darknet reads bytes); a CfgError for a binary file or one that
    cannot be read."""
    path = os.fspath(path)
    data = read_bytes(path, CfgError, "cfg file")
    if b"\0" in data:
        raise CfgError(f"{os.path.basename(path)}: is a binary file, not a darknet .cfg (text) file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_cfg(path: str | os.PathLike[str]) -> list[Section]:
    """Read and parse a .cfg file; errors name the file and line."""
    return parse_text(read_cfg_text(path), os.fspath(path))


def layer_sections(sections: Iterable[Section]) -> list[Section]:
    """The layer sections (everything after [net])."""
    return [s for s in sections if s.index >= 0]


def unused_options(section: Section) -> list[str]:
    """The options of a layer section darknet ignores, one message each: a key its parser never reads for this kind
    of section (a misspelt `activaton=`, a training option of another layer) and a key given again (darknet reads the
    first), as darknet prints them (`Unused field: 'key = value'`) when it loads the cfg; none for [net], as in darknet,
    nor for a section kind darknet does not know (refused where the layer is built).

    Args:
        section (Section): a layer section.

    Returns:
        list of str: "FILE:LINE: [type] (layer N): option 'key = value' is ignored, as darknet ignores it (…)".
    """
    from .darknet_options import EVERY_LAYER, LAYER_OPTIONS

    known = LAYER_OPTIONS.get(section.type)
    if known is None:
        return []
    unread = [(key, value, section.option_lines[key]) for key, value in section.options.items()
              if key not in known and key not in EVERY_LAYER]
    again = [(key, value, line) for key, value, line in section.repeated]
    messages = []
    for key, value, line in sorted(unread + again, key=lambda entry: entry[2]):
        why = ("given again: darknet reads the first" if (key, value, line) in again
               else f"darknet reads no '{key}' in a [{section.type}] section")
        layer = f" (layer {section.index})" if section.index >= 0 else ""
        messages.append(f"{os.path.basename(section.path)}:{line}: [{section.type}]{layer}: option '{key} = {value}' is "
                        f"ignored ({why}; its 'Unused field')")
    return messages
