"""Which options darknet reads in each kind of layer section, from its own parser (src/parser.c at the pinned commit):
the table darknet_py/format/darknet_options.py holds, written again by this script when the reference changes.

darknet marks each option its parser asks for (`option_find*(options, "key", …)`) and, after a layer's section is
parsed, prints `Unused field: 'key = value'` for every other one (option_unused): a misspelt option is ignored with
that line, its default used. Here each layer type's parse function is read for the keys it asks for (a key asked for
in one branch only counts as read: darknet_py then warns for less than darknet, never for more), with the keys
parse_network_cfg_custom asks of every layer's section.

    python -m benchmarks.oracle.darknet_option_names [--source FOLDER] [--write darknet_py/format/darknet_options.py]

tests/test_cfg_options.py checks the result against darknet's own `Unused field` lines on every cfg it ships.
"""
from __future__ import annotations

import argparse
import re
import tarfile
from pathlib import Path

from benchmarks.oracle.darknet_reference import SHARED

REPO = Path(__file__).resolve().parents[2]
ARCHIVE = SHARED / "reference" / "darknet"
FUNCTION = re.compile(r"\n[A-Za-z_][\w \*]*?\b(parse_\w+)\s*\(\s*list\s*\*\s*options[^)]*\)\s*(?://[^\n]*)?\s*\{")
ASKED = re.compile(r"option_find\w*\(\s*options\s*,\s*\"([^\"]+)\"")
LAYER_TYPE = re.compile(r"strcmp\(type, \"\[(\w+)\]\"\)\s*==\s*0")
BRANCH = re.compile(r"lt == (\w+)\)\s*\{?\s*(?:l\s*=\s*)?(parse_\w+)\(")


def parser_source(folder: Path | None = None) -> str:
    """src/parser.c of the reference darknet: from a source folder, or from the archive in ../shared/reference."""
    if folder is not None:
        return (folder / "src" / "parser.c").read_text(errors="replace")
    archive = next(ARCHIVE.glob("darknet-*.tgz"))
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("src/parser.c"))
        return tar.extractfile(member).read().decode(errors="replace")


def _body(source: str, start: int) -> str:
    depth, index = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(source[index], 0)
        index += 1
    return source[start:index]


def option_names(source: str) -> tuple[dict[str, list[str]], list[str]]:
    """({section name: the keys darknet reads in it}, the keys it reads in every layer's section)."""
    bodies = {match.group(1): _body(source, match.end()) for match in FUNCTION.finditer(source)}
    asked = {name: sorted(set(ASKED.findall(body))) for name, body in bodies.items()}
    kinds = source[source.index("LAYER_TYPE string_to_layer_type"):]
    kinds = kinds[:kinds.index("\n}\n")]
    names_of: dict[str, list[str]] = {}
    # each `if (strcmp(type, "[a]")==0 || strcmp(type, "[b]")==0) return KIND;`
    for statement in re.findall(r"if\s*\((.*?)\)\s*return\s+(\w+);", kinds, re.S):
        condition, kind = statement
        names_of.setdefault(kind, []).extend(LAYER_TYPE.findall(condition.replace("==0", " == 0")))
    loop = source[source.index("option_unused(options)") - 20000:source.index("option_unused(options)")]
    every = sorted(set(ASKED.findall(loop[loop.rindex("#endif // GPU"):])))
    table: dict[str, list[str]] = {}
    for kind, function in BRANCH.findall(source):
        for name in names_of.get(kind, []):
            table[name] = asked.get(function, [])
    for name in names_of.get("EMPTY", []):
        table[name] = []
    return dict(sorted(table.items())), every


def module_text(table: dict[str, list[str]], every: list[str]) -> str:
    lines = ['"""The options darknet reads in each kind of layer section (its parser, src/parser.c, at the reference commit):',
             "a key outside these is one darknet ignores, saying `Unused field` (format.cfg warns for it alike).",
             "",
             "Written by `python -m benchmarks.oracle.darknet_option_names --write darknet_py/format/darknet_options.py`.",
             '"""',
             "",
             "# the keys darknet reads in every layer's section, whatever its kind",
             f"EVERY_LAYER = frozenset({every!r})",
             "",
             "# section name (as written between brackets, each of darknet's aliases) -> the keys its parse function reads",
             "LAYER_OPTIONS: dict[str, frozenset[str]] = {"]
    for name, keys in table.items():
        lines.append(f"    {name!r}: frozenset({keys!r}),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="a darknet source folder (default: the reference archive)")
    parser.add_argument("--write", type=Path, help="write the table module here (else print it)")
    args = parser.parse_args()
    text = module_text(*option_names(parser_source(args.source)))
    if args.write:
        args.write.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
