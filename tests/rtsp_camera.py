"""Test side of tests/rtsp_server.py: a real RTSP 'camera' the tests start, kill and start again on the same port.

    with RtspCamera(VIDEO / "car_traffic_small.mp4") as camera:   # started; camera.url once it listens
        ...
        camera.kill()     # the camera drops (SIGKILL to the one process this object started)
        camera.start()    # back on the same port, ready when it returns

start() waits for the server's `ready rtsp://…` line on its stdout (never a sleep), bounded by READY_LIMIT_S.
The server runs under the system Python (/usr/bin/python3), which has PyGObject and GStreamer's typelibs.
"""
from __future__ import annotations

import re
import selectors
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
READY_LIMIT_S = 120  # a hang guard: the server is ready in about a second


class RtspCamera:
    """The RTSP server serving *video* (scaled to *size*, at *fps*, looped) on 127.0.0.1.

    Args:
        video (Path): the file to serve.
        size (str): "WxH" sent.
        fps (int): frames per second sent.
        path (str): the stream's path on the server.
    """

    def __init__(self, video: Path, size: str = "320x180", fps: int = 25, path: str = "/cam") -> None:
        self.video, self.size, self.fps, self.path = video, size, fps, path
        self.port = 0  # 0 until the first start: then the port it got, kept for restarts
        self.url = ""
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        """Start the server (on the port of the first start, if there was one) and return its URL once it listens."""
        assert self.process is None, "already running"
        command = [SYSTEM_PYTHON, str(SERVER), str(self.video), "--port", str(self.port), "--size", self.size,
                   "--fps", str(self.fps), "--path", self.path]
        self._errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty server never blocks on it
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=self._errors, text=True)
        line = self._ready_line()
        self.url = re.match(r"ready (rtsp://127\.0\.0\.1:(\d+)/\S*)", line).group(1)
        self.port = int(self.url.split(":")[2].split("/")[0])
        return self.url

    def _ready_line(self) -> str:
        process = self.process
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            end = time.monotonic() + READY_LIMIT_S
            while time.monotonic() < end:
                if selector.select(1.0):  # 1 s slices only to notice a server that died
                    line = process.stdout.readline()
                    if line.startswith("ready "):
                        return line
                    if not line:
                        break  # the server ended
                elif process.poll() is not None:
                    break
        self.kill()
        self._errors.seek(0)
        error = self._errors.read()
        raise AssertionError(f"the RTSP server did not start: {error}")

    def kill(self) -> None:
        """The camera drops: the server process is killed at once (no goodbye to its clients)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.stdout.close()
            self.process = None

    def __enter__(self) -> "RtspCamera":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
