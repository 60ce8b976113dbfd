"""MkDocs hooks for the darknet_py site (mkdocs.yml: `hooks: [docs/hooks.py]`).

- `<!-- darknet-py-help: COMMAND -->` in a page becomes the `--help` text of `darknet-py COMMAND`
  (`<!-- darknet-py-help -->`: the program's own), generated at build time by the parser that
  `darknet_py.cli.main` builds, so the CLI page never drifts from the code.
- Figures that live beside the benchmarks that made them (benchmarks/results/*.png) are published
  under `images/` without a copy in docs/.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parent.parent
HELP_WIDTH = "100"  # argparse wraps at $COLUMNS - 2
HELP_MARKER = re.compile(r"<!--\s*darknet-py-help(?::\s*([\w-]+))?\s*-->")
# site path -> file in the repository, published as it is
EXTRA_FILES = {"images/bench.png": REPO / "benchmarks" / "results" / "bench.png"}


def on_files(files, config):
    for site_path, source in EXTRA_FILES.items():
        if not source.is_file():
            raise PluginError(f"docs/hooks.py: {source} is missing")
        files.append(File.generated(config, site_path, abs_src_path=str(source)))
    return files


def cli_help(command: str | None) -> str:
    """`darknet-py [COMMAND] --help`, exactly as the program prints it (at HELP_WIDTH columns)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from darknet_py.cli import COMMANDS, main

    if command is not None and command not in COMMANDS:
        raise PluginError(f"docs: no darknet-py command '{command}' (known: {', '.join(COMMANDS)})")
    argv = ([command] if command else []) + ["--help"]
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise PluginError(f"docs: `darknet-py {' '.join(argv)}` exited {exit_.code}") from None
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    text = out.getvalue().rstrip()
    if not text.startswith("usage:"):
        raise PluginError(f"docs: `darknet-py {' '.join(argv)}` printed no help")
    return text


def on_page_markdown(markdown, page, config, files):
    def replace(match: re.Match) -> str:
        command = match.group(1)
        shown = "darknet-py" + (f" {command}" if command else "") + " --help"
        return f"```text\n$ {shown}\n{cli_help(command)}\n```"

    return HELP_MARKER.sub(replace, markdown)
