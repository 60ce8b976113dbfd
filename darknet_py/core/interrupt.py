"""Ctrl-C (SIGINT) and a scheduler's SIGTERM: a stop that is never lost and never takes long.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to be. In a
Ray driver that can be inside Ray: its C++ core polls signals and turns the exception into a
status, a finaliser or atexit callback prints and drops it ("Exception ignored in ..."), and
`ray.init` replaces the SIGTERM handler with its own `sys.exit(15)` (and a head node's "kill
everything, exit 1"). So a stop is first *recorded* here, where no library can swallow it, then
raised as `Interrupted`; loops that wait on others call `check()`; work that must not be cut in
half runs under `deferred()`; and `deadline()` bounds how long the way out may take.

Signal handlers belong to the process, so the state is one per process; `stop_on_signals()`
installs it for one command (the CLI does) and puts the previous handlers back afterwards.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_EXIT_CODES = tuple(128 + signum for signum in STOP_SIGNALS)  # 130, 143
WATCH_S = 0.1  # how often the deadline watchdog looks


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal; `exit_code` is what a shell reports for it (128 + the signal number).

    A KeyboardInterrupt, so that code which handles Ctrl-C handles SIGTERM's stop the same way.

    Args:
        signum (int): the signal that asked for the stop (SIGINT or SIGTERM); the exception's message is its name.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.installed = 0  # nesting depth of stop_on_signals()
        self.previous: dict[int, object] = {}
        self.signum: int | None = None  # the stop signal received, once one is
        self.deferring = 0
        self.held = False  # a stop arrived inside deferred(): raised when the block ends
        self.message = ""  # the deadline's word to the user: what a stop keeps, how to go on
        self.announced = False


_state = _State()


def received() -> int | None:
    """The signal number of the stop asked for, or None."""
    return _state.signum


def expected() -> None:
    """The stop received was the way this run ends (`--keep-serving` serves until Ctrl-C or SIGTERM): the program exits
    0, its work whole, not with the stop's 130 or 143."""
    _state.signum = None


def exit_code(default: int = 130) -> int:
    """The exit status for a stop: 128 + the stop signal's number, as a shell reports it.

    Args:
        default (int): the status when no stop signal was recorded (a KeyboardInterrupt from elsewhere);
            Ctrl-C's 130.

    Returns:
        int: 128 + the recorded signal's number, or *default*.
    """
    return 128 + _state.signum if _state.signum is not None else default


def check() -> None:
    """Raise Interrupted if a stop was asked for: the exception the handler raised may have been swallowed.

    Inside `deferred()` it does nothing: the stop is raised when the block ends.

    Raises:
        Interrupted: a stop signal was recorded (and no `deferred()` block is running).
    """
    if _state.signum is not None and not _state.deferring:
        raise Interrupted(_state.signum)


def announce(message: str | None = None) -> None:
    """Tell the user, once, what a stop keeps and how to go on; later calls write nothing.

    Args:
        message (str or None): the line to write on stderr; None (or empty): the running `deadline()`'s message,
            or "interrupted" outside one.
    """
    if not _state.announced:
        _state.announced = True
        _write_stderr(message or _state.message or "interrupted")


def _write_stderr(text: str) -> None:
    # os.write: no Python-level lock that a stuck main thread could be holding
    os.write(2, (text.rstrip("\n") + "\n").encode(errors="replace"))


def _exit_now() -> None:
    announce()
    os._exit(exit_code())


def _on_signal(signum: int, frame) -> None:
    if _state.signum is not None:  # a second signal: the user insists
        _exit_now()
    _state.signum = signum
    if _state.deferring:
        _state.held = True
    else:
        raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM become a recorded stop + Interrupted for the duration; nests; off the main thread
    (where Python allows no handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state.installed == 0:
        _state.previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
        _state.signum, _state.announced, _state.held = None, False, False
    _state.installed += 1
    try:
        yield
    finally:
        _state.installed -= 1
        if _state.installed == 0:
            for signum, handler in _state.previous.items():
                signal.signal(signum, handler)
            _state.signum = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop that arrives inside waits until the block is done (a finished shard is written, not dropped),
    then is raised; one that came before (and is being handled) does not stop the block or come back.

    Blocks nest: the held stop is raised when the outermost one ends.

    Raises:
        Interrupted: a stop signal arrived while the block ran (raised after it, once no block is left).
    """
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if _state.held and not _state.deferring:
        _state.held = False
        check()


@contextlib.contextmanager
def handlers_kept() -> Iterator[None]:
    """Third-party code run inside (ray.init) cannot replace the stop handlers; its attempts are ignored.

    Ray does the same for its own handlers (ray._private.utils.DeferSigint): signal.signal is looked
    up at call time, so swapping it for the block is enough."""
    if _state.installed == 0 or threading.current_thread() is not threading.main_thread():
        yield
        return
    install = signal.signal

    def keep_ours(signum, handler):
        if signum in STOP_SIGNALS and threading.current_thread() is threading.main_thread():
            return signal.getsignal(signum)
        return install(signum, handler)

    signal.signal = keep_ours
    try:
        yield
    finally:
        signal.signal = install
        for signum in STOP_SIGNALS:  # whatever happened inside (a C extension's sigaction), ours again
            install(signum, _on_signal)


@contextlib.contextmanager
def deadline(seconds: float, message: str) -> Iterator[None]:
    """From a stop signal on, the process ends within `seconds` even if the way out hangs (Ray's teardown,
    a C call that never returns): for work whose finished parts are already safe on disk. `message` is
    printed once, by announce() on the normal way out or by the watchdog before it ends the process.

    A daemon thread watches, every WATCH_S seconds, while the block runs; it ends the process (os._exit, with
    `exit_code()`) once *seconds* have passed since it first saw a recorded stop.

    Args:
        seconds (float): how long the way out may take after a stop signal.
        message (str): what a stop keeps and how to go on, for `announce()`.
    """
    _state.message = message
    done = threading.Event()
    watchdog = threading.Thread(target=_watch, args=(seconds, done), name="stop-deadline", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
        _state.message = ""


def _watch(seconds: float, done: threading.Event) -> None:
    """Polls, rather than waiting on something the signal handler sets: a handler must take no lock."""
    stop_seen = None
    while not done.wait(WATCH_S):
        if _state.signum is None:
            continue
        stop_seen = stop_seen or time.monotonic()
        if time.monotonic() - stop_seen >= seconds:
            _exit_now()


def pause_until_stopped(limit_s: float) -> None:
    """Wait for a stop signal (tests hold a process at an exact point this way; one that does not handle
    them waits to be ended); returns after `limit_s`.

    Args:
        limit_s (float): the longest wait, in seconds.

    Raises:
        Interrupted: a stop signal arrived (or had been recorded) while waiting; held at a point inside `deferred()`,
            the wait ends and the stop is raised when the block ends.
    """
    end = time.monotonic() + limit_s
    while time.monotonic() < end and _state.signum is None:
        time.sleep(0.05)  # a signal cuts the sleep short: the handler raises here (outside deferred())
    check()
