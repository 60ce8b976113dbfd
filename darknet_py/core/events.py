"""Named moments of a run, for tests and benchmarks that must act at an exact point, never on a timer.

With DARKNET_PY_EVENTS=PATH in the environment, each event is appended to PATH as one line: a FIFO
the caller reads (or a plain file). Processes that inherit the environment report too (the model
actors of a Ray this process starts). Writes never block: with no reader, or a full pipe, the event
is dropped. With DARKNET_PY_PAUSE_AT=NAME as well, a process holds at that event: one that handles
stop signals (interrupt.stop_on_signals) until a stop signal arrives, so a test can interrupt it
exactly there; any other (a model actor) until it is ended. Without these variables an event
costs one environment lookup.
"""
from __future__ import annotations

import os

from . import interrupt

EVENTS = "DARKNET_PY_EVENTS"
PAUSE_AT = "DARKNET_PY_PAUSE_AT"
PAUSE_LIMIT_S = 600  # a held process that is never signalled goes on after this, rather than hang for ever


def emit(name: str) -> None:
    """Report that the run has reached the moment *name*, when DARKNET_PY_EVENTS asks for events.

    The name is appended as one line to the DARKNET_PY_EVENTS path without blocking; if it cannot be written (no
    reader, a full pipe, a bad path) the event is dropped and nothing else happens. When it was written and
    DARKNET_PY_PAUSE_AT names this event, the process then holds here (interrupt.pause_until_stopped) until a stop
    signal, or for at most PAUSE_LIMIT_S seconds.

    Args:
        name (str): the event, one word (a line of the events file).

    Raises:
        Interrupted: a stop signal arrived while the process was held at this event.
    """
    path = os.environ.get(EVENTS)
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        try:
            os.write(fd, (name + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        return  # no reader, a full pipe, a bad path: events are best effort
    if os.environ.get(PAUSE_AT) == name:
        interrupt.pause_until_stopped(PAUSE_LIMIT_S)
