#!/usr/bin/env bash
# One command from a fresh checkout to a test run: makes .venv, installs CPU torch pinned
# (an unpinned torch pulls GBs of CUDA wheels), the package and its dev extra, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[dev]"
python -m pytest -q "$@"
