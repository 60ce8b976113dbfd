"""The program's first moments: a stop signal before the CLI takes charge of it ends the start-up with one
line and exit 130 / 143, never a KeyboardInterrupt traceback from inside an import.

Only stdlib modules the interpreter has already loaded are imported here, so that the handler can be
installed before anything else of darknet_py is (a Ctrl-C 40 ms after the start landed in an import of
core.interrupt itself, benchmarks/results/sigint_ray.md). A library user's `import darknet_py.cli` keeps
its own handlers: `started_as_program()` tells the program apart.
"""
from __future__ import annotations

import os
import signal
import sys


def started_as_program() -> bool:
    """Whether this process is `darknet-py` or `python -m darknet_py.cli` being started (while `-m` locates
    the module, sys.argv[0] is "-m"; the console script's is its path)."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) == "darknet-py"


def quit_at_once(signum: int, frame: object) -> None:
    """A stop signal during start-up: one line, and the process ends with 128 + the signal's number.

    A signal handler: it writes "interrupted" to stderr and ends the process with os._exit (no cleanup, no
    traceback).

    Args:
        signum (int): the signal received.
        frame (frame or None): the interrupted stack frame (unused).
    """
    os.write(2, b"interrupted\n")
    os._exit(128 + signum)


def quit_during_startup() -> None:
    """SIGINT and SIGTERM end the process at once (quit_at_once) until a command takes charge of them."""
    signal.signal(signal.SIGINT, quit_at_once)
    signal.signal(signal.SIGTERM, quit_at_once)
