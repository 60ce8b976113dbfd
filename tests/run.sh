#!/usr/bin/env bash
# One command from a fresh checkout to a test run: makes .venv, installs CPU torch pinned
# (an unpinned torch pulls GBs of CUDA wheels), the package and its dev extra, checks the package's
# shape (import-linter: role packages import downward only, no circles), its style (ruff) and its
# docs (mkdocs build --strict), then runs pytest. Installs Chromium with apt when it is missing (root, or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
# Headless Chromium for the browser tests (tests/test_live.py, tests/test_video_writer.py): Debian's package.
if ! command -v chromium >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[dev]"
lint-imports --no-cache >/dev/null || lint-imports --no-cache  # quiet when kept, the report when broken
ruff check -q .
NO_MKDOCS_2_WARNING=1 mkdocs build --strict -q  # the API reference, the CLI help pages, every link
python -m pytest -q "$@"
