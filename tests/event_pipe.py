"""Test side of darknet_py.core.events: a FIFO the process under test reports its moments to.

Tests act on these events (send a signal exactly when a shard is written, while the process is
held there) instead of sleeping or polling files, so they do not depend on the machine's speed.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from darknet_py.core.events import EVENTS, PAUSE_AT

HANG_GUARD_S = 600  # only a broken run waits this long: the events come as soon as the work allows
REPO = Path(__file__).resolve().parents[1]


class EventPipe:
    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="dp-events-")
        self.path = Path(self.folder.name) / "events"
        os.mkfifo(self.path)
        # read-write: we are a writer too, so reads wait for lines instead of seeing an end of file
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        self.seen: list[str] = []
        self._partial = b""

    def env(self, pause_at: str | None = None) -> dict[str, str]:
        """Environment additions for the process under test (held at `pause_at` until it gets a signal)."""
        return {EVENTS: str(self.path), **({PAUSE_AT: pause_at} if pause_at else {})}

    def wait_for(self, name: str, process: subprocess.Popen | None) -> None:
        """Return once `name` has been reported; fail if the process ends without having reported it (None: events of
        this process, from another of its threads)."""
        end = time.monotonic() + HANG_GUARD_S
        while name not in self.seen:
            if process is not None and process.poll() is not None:
                while select.select([self.fd], [], [], 0)[0] and self._read():
                    pass  # what it reported before it ended may still be in the pipe
                assert name in self.seen, f"the process ended (exit {process.returncode}) before '{name}'; saw {self.seen}"
                return
            assert time.monotonic() < end, f"no '{name}' within {HANG_GUARD_S} s; saw {self.seen}"
            if select.select([self.fd], [], [], 1.0)[0]:  # 1 s slices only to notice a process that died
                self._read()

    def _read(self) -> bool:
        """Take what the pipe holds (up to 64 KiB); False when it held nothing."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        self.seen.extend(line.decode() for line in lines)
        return bool(data)

    def close(self) -> None:
        os.close(self.fd)
        self.folder.cleanup()

    def __enter__(self) -> "EventPipe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def kill_at(command: list[str], held_at: str, seen: str | None = None) -> None:
    """Run *command* (from the repository, reporting its events), hold it at event *held_at*, wait until it has also
    reported *seen* (another thread's moment; default: *held_at* itself), then SIGKILL it: no handler runs, as when
    the kernel kills a process out of memory. The test then reads what such a death leaves behind."""
    with EventPipe() as events:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env(held_at)},
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            events.wait_for(seen or held_at, process)
        finally:
            process.kill()
            process.wait(HANG_GUARD_S)


def interrupt_at(command: list[str], event: str) -> str:
    """Run *command* (from the repository, reporting its events) until it reports *event*, then Ctrl-C it (SIGINT) and
    wait for it to finish its files and exit 130, as a user stopping a camera run does. Returns its stderr."""
    with EventPipe() as events:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env()}, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            events.wait_for(event, process)
            process.send_signal(signal.SIGINT)
            err = process.communicate(timeout=HANG_GUARD_S)[1]
        finally:
            process.kill()
    assert process.returncode == 130, err
    return err
