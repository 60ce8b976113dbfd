"""Headless Chromium (Debian's `chromium` package; tests/run.sh installs it) driven over the DevTools protocol.

    with Chromium(tmp_path) as browser:
        browser.goto("http://127.0.0.1:8080/")
        value = browser.evaluate("new Promise(…)")      # awaited in the page, returned by value
        png = browser.screenshot()

Tests fail, never skip, when the browser is missing. Every wait is on an event (the DevTools line on
stderr, a reply, a promise in the page), each bounded so a broken page fails instead of hanging.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

# Without the background-networking flags the closed network here refuses Chromium's own connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--mute-audio", "--autoplay-policy=no-user-gesture-required", "--window-size=1120,620"]
START_TIMEOUT = 120.0  # a busy 2-core machine takes seconds to start a browser
CALL_TIMEOUT = 120.0


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is missing: tests/run.sh installs Debian's package (apt-get install -y chromium)")
    return found


class Chromium:
    def __init__(self, profile: Path) -> None:
        import websocket  # websocket-client, in the dev extra

        profile.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # its own process group: killing it ends its renderers too
        watchdog = threading.Timer(START_TIMEOUT, self._kill)  # a browser that never says where it listens
        watchdog.start()
        try:
            url = self._devtools_url()
        finally:
            watchdog.cancel()
        threading.Thread(target=self._drain, daemon=True).start()  # keep stderr from filling up
        self._socket = websocket.create_connection(url, timeout=CALL_TIMEOUT, suppress_origin=True)
        self._ids = itertools.count(1)
        self._events: list[str] = []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    def _devtools_url(self) -> str:
        lines = []
        for line in self._process.stderr:
            lines.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
        self._kill()
        pytest.fail("Chromium exited without opening its DevTools port:\n" + "".join(lines[-20:]))

    def _kill(self) -> None:
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _drain(self) -> None:
        for _ in self._process.stderr:
            pass

    def call(self, method: str, session: bool = False, **params) -> dict:
        """Send one DevTools command and return its result; events that arrive meanwhile are kept."""
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        while True:
            reply = self._receive()
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _receive(self) -> dict:
        reply = json.loads(self._socket.recv())
        if "method" in reply:
            self._events.append(reply["method"])
        return reply

    def wait_event(self, method: str) -> None:
        """Until the page sends event *method* (e.g. Page.domContentEventFired), counting from the last goto."""
        while method not in self._events:
            self._receive()

    def goto(self, url: str) -> None:
        """Open *url* and return once its document is parsed (not loaded: an MJPEG image never finishes)."""
        self._events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.domContentEventFired")

    def evaluate(self, expression: str):
        """The value of *expression* in the page (a promise is awaited); a thrown error fails the test."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, awaitPromise=True,
                           returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(f"in the page: {details.get('exception', {}).get('description') or details}")
        return result["result"].get("value")

    def choose_file(self, selector: str, path: Path) -> None:
        """Choose *path* in the page's file input *selector*, as a user does in its dialog (its change event fires)."""
        root = self.call("DOM.getDocument", session=True)["root"]["nodeId"]
        node = self.call("DOM.querySelector", session=True, nodeId=root, selector=selector)["nodeId"]
        assert node, f"no {selector} in the page"
        self.call("DOM.setFileInputFiles", session=True, nodeId=node, files=[str(path)])

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png")["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # noqa: BLE001 - it may be gone already; it is killed below either way
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._kill()
            self._process.wait()
        self._socket.close()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(condition_js: str, value_js: str, timeout_s: float = 90) -> str:
    """A page expression that resolves to *value_js* once *condition_js* holds (checked on each animation
    every 50 ms while the page runs), and rejects after *timeout_s* seconds of waiting."""
    return f"""new Promise((resolve, reject) => {{
        const start = performance.now();
        const check = () => {{
            try {{ if ({condition_js}) return resolve({value_js}); }} catch (e) {{ return reject(e); }}
            if (performance.now() - start > {timeout_s * 1000}) return reject(new Error("timed out waiting for: " + {json.dumps(condition_js)}));
            setTimeout(check, 50);
        }};
        check();
    }})"""
