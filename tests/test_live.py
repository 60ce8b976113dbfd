"""Live view: darknet's MJPEG and JSON streams, the page in headless Chromium, viewers that stall or leave.

Every wait is on an event (a line on the program's stderr, a connected viewer, a frame received, a
condition in the page), each bounded so a failure fails instead of hanging.
"""
from __future__ import annotations

import gc
import http.server
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import warnings
import weakref
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py import InputError, cli
from darknet_py.live import LiveOptions, LiveView, is_loopback
from darknet_py.media.darknet_json import darknet_frame
from darknet_py.pipeline.detections import Detections
from tests.chromium import Chromium, wait_for
from tests.conftest import IMAGES, REPO, VIDEO, ZOO_CFG, darknet_warnings, official, shared_path

WAIT = 600.0  # upper bound of any one wait: generous, since the machine may be busy; never reached when things work


# -- helpers ----------------------------------------------------------------------------------------------
class LiveRun:
    """`darknet-py detect …` in a subprocess; its stderr lines are read as they come."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "DARKNET_PY_ZOO": str(shared_path(REPO.parent / "shared" / "zoo"))}
        self.process = subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "detect", *args], cwd=REPO, env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, pattern: str) -> re.Match:
        while True:
            try:
                line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"no line matching {pattern!r} in {WAIT} s:\n" + "".join(self.seen))
            if line is None:
                pytest.fail(f"detect ended (exit {self.process.wait()}) before {pattern!r}:\n" + "".join(self.seen))
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def url(self, label: str) -> str:
        return self.wait_line(rf"{label}: (http://127\.0\.0\.1:\d+/)").group(1)

    def finish(self, interrupt: bool = False) -> int:
        if interrupt:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail("detect did not end")
        while self.lines.get(timeout=WAIT) is not None:
            pass
        return code

    def stderr(self) -> str:
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


class HttpStream:
    """GET *url* on a raw socket, as a viewer does: the status line, the headers, and the body as a file."""

    def __init__(self, url: str) -> None:
        host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()
        self.socket = socket.create_connection((host, int(port)), timeout=WAIT)
        self.socket.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        self.body = self.socket.makefile("rb")
        self.status = self.body.readline().decode().strip()
        self.headers = {}
        while (line := self.body.readline().decode().strip()):
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def close(self) -> None:
        """Leave: a reader blocked on the body (any thread) sees the end at once."""
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()


def mjpeg_frames(body, limit: int | None = None):
    """JPEG parts of darknet's MJPEG stream, as decoded BGR images, until *limit* or the stream's end."""
    count = 0
    while limit is None or count < limit:
        line = body.readline()
        if not line:
            return
        if line.strip() == b"":
            continue
        assert line.strip() == b"--mjpegstream", line
        part = {}
        while (header := body.readline().decode().strip()):
            name, _, value = header.partition(":")
            part[name.lower()] = value.strip()
        assert part["content-type"] == "image/jpeg"
        data = body.read(int(part["content-length"]))
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None, "a part that is not a JPEG"
        count += 1
        yield image


class EventReader(threading.Thread):
    """Reads a server-sent-event stream in the background: frames (darknet objects) and the end event."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.stream = HttpStream(url)
        self.headers, self.body = self.stream.headers, self.stream.body
        self.frames: list[dict] = []
        self.ended = False
        self.changed = threading.Condition()
        self.start()

    def run(self) -> None:
        event, data = "message", []
        try:
            for raw in self.body:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    with self.changed:
                        if event == "end":
                            self.ended = True
                        else:
                            self.frames.append(json.loads("\n".join(data)))
                        self.changed.notify_all()
                    event, data = "message", []
        except (OSError, ValueError):  # closed by the test
            pass
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def wait_frames(self, count: int) -> list[dict]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.frames) >= count or self.ended, WAIT)
            return list(self.frames)

    def close(self) -> None:
        self.stream.close()
        self.join(WAIT)


def clipped_corners(obj: dict) -> tuple[float, float, float, float]:
    """A darknet object's box (unclipped centre and size, as darknet writes it) as corners clipped to the image."""
    r = obj["relative_coordinates"]
    x1, x2 = r["center_x"] - r["width"] / 2, r["center_x"] + r["width"] / 2
    y1, y2 = r["center_y"] - r["height"] / 2, r["center_y"] + r["height"] / 2
    return max(x1, 0.0), max(y1, 0.0), min(x2, 1.0), min(y2, 1.0)


def assert_frame_matches_record(frame: dict, record: dict) -> None:
    """A streamed darknet object against --save-json's record of the same frame. darknet lists each box's
    classes together and its boxes unclipped; the record lists detections by score, boxes clipped to the
    image in pixels rounded to 0.01 px: compared as sets, corners clipped."""
    width, height = record["width"], record["height"]
    ours = sorted((o["class_id"], o["name"], o["confidence"], clipped_corners(o)) for o in frame["objects"])
    theirs = sorted((d["class_id"], d["name"], d["score"], (d["box"][0] / width, d["box"][1] / height,
                                                           d["box"][2] / width, d["box"][3] / height))
                    for d in record["detections"])
    assert [t[:2] for t in ours] == [t[:2] for t in theirs]
    tolerance = 0.011 / min(width, height) + 2e-6  # 0.01 px rounding of the record, and %f's 6 decimals (twice)
    for (_, _, confidence, corners), (_, _, score, box) in zip(ours, theirs):
        assert confidence == pytest.approx(score, abs=1e-6)
        assert corners == pytest.approx(box, abs=tolerance)


def _no_detections(image: np.ndarray) -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["person"],
                      (image.shape[1], image.shape[0]))


# -- end to end, the program as a user runs it ---------------------------------------------------------------
def test_serve_pedestrians_streams_and_page(tmp_path: Path) -> None:
    """--serve on the shared video: ≥ 20 MJPEG frames of 1280x720, the JSON events equal --save-json's
    records of the same frames, and headless Chromium shows the image and the current frame's classes."""
    video, out = shared_path(VIDEO / "pedestrians.avi"), tmp_path / "out"
    run = LiveRun(str(video), "--serve", "0", "--wait-viewers", "2", "--keep-serving", "--save-json", "--no-save",
                  "--output", str(out))
    try:
        base = run.url("live view")
        events = EventReader(base + "json")  # viewer 1
        mjpeg = HttpStream(base + "mjpeg")  # viewer 2: detection starts now
        assert mjpeg.status.endswith("200 OK")
        assert mjpeg.headers["content-type"] == "multipart/x-mixed-replace; boundary=mjpegstream"
        frames = list(mjpeg_frames(mjpeg.body, limit=20))
        mjpeg.close()
        assert len(frames) == 20 and all(f.shape == (720, 1280, 3) for f in frames)
        streamed = events.wait_frames(20)
        events.close()
        assert events.headers["content-type"] == "text/event-stream" and len(streamed) >= 20

        with Chromium(tmp_path / "chromium") as browser:
            browser.goto(base)
            page = browser.evaluate(wait_for(
                "document.body.dataset.frameId && document.getElementById('stream').naturalWidth > 0",
                """(() => { const img = document.getElementById('stream'), r = img.getBoundingClientRect();
                   return {frame: Number(document.body.dataset.frameId),
                           classes: [...document.querySelectorAll('#detections tbody tr')].map(
                               tr => [tr.querySelector('.name').textContent, Number(tr.querySelector('.count').textContent)]),
                           natural: [img.naturalWidth, img.naturalHeight],
                           box: [r.x, r.y, r.width, r.height], fps: document.getElementById('fps').textContent}; })()"""))
            png = browser.screenshot()
        (tmp_path / "serve.png").write_bytes(png)
    finally:
        code = run.finish(interrupt=True)
    assert code in (0, 130), run.stderr()  # 0: stopped while serving the last frame; 130: while detecting

    records = json.loads((out / "detections.json").read_text())
    assert records and all(r["width"] == 1280 for r in records)  # one record per frame, in order
    ids = [frame["frame_id"] for frame in streamed]
    assert ids == sorted(set(ids)) and ids[0] >= 1 and ids[-1] <= len(records)
    for frame in streamed:
        assert_frame_matches_record(frame, records[frame["frame_id"] - 1])

    assert page["natural"] == [1280, 720]
    shown = records[page["frame"] - 1]["detections"]
    counts: dict[str, int] = {}
    for det in shown:
        counts[det["name"]] = counts.get(det["name"], 0) + 1
    assert shown and dict(page["classes"]) == counts  # e.g. {"person": 27}: the classes of the frame on the page

    screenshot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = (round(v) for v in page["box"])
    assert w >= 320 and h >= 180
    shown_image = screenshot[y:y + h, x:x + w]
    assert shown_image.std() > 20, "the page's image area is blank"


def test_darknet_ports_stream_a_folder_and_files_are_still_written(tmp_path: Path) -> None:
    """--mjpeg-port / --json-port as darknet's: its headers and framing; one frame per image; outputs as usual."""
    photos = sorted(shared_path(IMAGES).glob("*.jpg"))
    out = tmp_path / "out"
    run = LiveRun(str(IMAGES), "--mjpeg-port", "0", "--json-port", "0", "--wait-viewers", "2", "--save-json",
                  "--output", str(out))
    try:
        mjpeg_url, json_url = run.url("MJPEG stream"), run.url("JSON stream")
        json_stream = HttpStream(json_url + "anything")  # darknet's servers answer every path
        results: dict = {}
        reader = threading.Thread(target=lambda: results.setdefault("json", json_stream.body.read()), daemon=True)
        reader.start()
        mjpeg = HttpStream(mjpeg_url)
        images = list(mjpeg_frames(mjpeg.body))
        reader.join(WAIT)
    finally:
        code = run.finish()
    assert code == 0, run.stderr()

    assert json_stream.status == "HTTP/1.0 200 OK" and json_stream.headers["content-type"] == "application/json"
    text = results["json"].decode()
    assert text.startswith("[\n") and text.endswith("\n]\n")
    frames = json.loads(text)  # a stream that ran to the end is one JSON document
    assert len(frames) == 1 or "}, \n{" in text  # darknet's separator between frames
    records = json.loads((out / "detections.json").read_text())
    assert [f["frame_id"] for f in frames] == sorted({f["frame_id"] for f in frames}) and frames[-1]["frame_id"] == len(photos)
    for frame in frames:
        record = records[frame["frame_id"] - 1]
        assert frame["filename"] == record["source"]  # the path as given, as darknet writes it
        assert_frame_matches_record(frame, record)

    assert mjpeg.status == "HTTP/1.0 200 OK"
    assert mjpeg.headers["content-type"] == "multipart/x-mixed-replace; boundary=mjpegstream"
    assert images and images[-1].shape == cv2.imread(str(photos[-1])).shape  # the last image is always delivered
    assert sorted(p.name for p in out.glob("*.jpg")) == [p.name for p in photos]  # files written as without a server


def test_a_stream_url_source_feeds_the_json_port(tmp_path: Path, clip: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                       directory=str(clip.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = LiveRun(f"http://127.0.0.1:{server.server_port}/{clip.name}", "--json-port", "0", "--wait-viewers", "1",
                      "--save-json", "--output", str(tmp_path))
        try:
            frames = json.loads(HttpStream(run.url("JSON stream")).body.read())
        finally:
            code = run.finish()
    finally:
        server.shutdown()
    assert code == 0, run.stderr()
    records = json.loads((tmp_path / "detections.json").read_text())
    assert frames[-1]["frame_id"] == len(records) == 12
    for frame in frames:
        assert_frame_matches_record(frame, records[frame["frame_id"] - 1])


# -- the server in this process: stalled and departing viewers ----------------------------------------------------
def test_a_stalled_viewer_never_blocks_detection_nor_keeps_old_frames() -> None:
    rng = np.random.default_rng(0)
    with LiveView(LiveOptions(serve=0, quality=90)) as live:
        port = int(live.urls["serve"].rsplit(":", 1)[1].rstrip("/"))
        viewer = socket.socket()
        viewer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        viewer.connect(("127.0.0.1", port))
        viewer.sendall(b"GET /mjpeg HTTP/1.1\r\nHost: x\r\n\r\n")
        assert live.feed.wait_for_viewers(1, timeout=WAIT)
        # noise JPEGs (~1 MB each) fill the socket buffers within a frame or two; the viewer never reads
        published: list[weakref.ref] = []
        last = None

        def detect_loop() -> None:
            nonlocal last
            for _ in range(60):
                image = rng.integers(0, 256, (720, 1280, 3), np.uint8)
                published.append(weakref.ref(image))
                live.publish(image, _no_detections(image))
                last = image

        loop = threading.Thread(target=detect_loop, daemon=True)
        loop.start()
        loop.join(WAIT)
        assert not loop.is_alive(), "publish() waited for a stalled viewer"
        final = last.copy()
        last = None
        gc.collect()
        alive = sum(ref() is not None for ref in published)
        assert alive <= 3, f"{alive} of 60 frames still held: frames pile up behind a stalled viewer"
        live.finish()
        # the viewer reads again: it gets what was already in flight, then the newest frame, then the end
        body = viewer.makefile("rb")
        viewer.close()
        while body.readline().strip():
            pass
        received = list(mjpeg_frames(body))
    # what the kernel's socket buffers already held (a few ~2 MB noise frames), then the newest: not all 60
    assert 1 <= len(received) <= 10, f"{len(received)} of 60 frames sent to a stalled viewer: it should skip"
    def likeness(a: np.ndarray, b: np.ndarray) -> float:  # of the luma: JPEG keeps it, noise frames share none
        gray = [cv2.cvtColor(x, cv2.COLOR_BGR2GRAY).ravel().astype(float) for x in (a, b)]
        return float(np.corrcoef(*gray)[0, 1])

    assert likeness(received[-1], final) > 0.5  # the newest came last, after frames already in flight
    assert all(likeness(old, final) < 0.1 for old in received[:-1])


def test_viewers_that_leave_are_cleaned_up() -> None:
    with LiveView(LiveOptions(serve=0, json_port=0)) as live:
        serve_port = int(live.urls["serve"].rsplit(":", 1)[1].rstrip("/"))
        json_port = int(live.urls["json"].rsplit(":", 1)[1].rstrip("/"))
        # leaving while no frame comes (the server notices the closed connection by itself)
        idle = []
        for port, path in ((serve_port, "/mjpeg"), (serve_port, "/json"), (json_port, "/")):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            idle.append(sock)
        assert live.feed.wait_for_viewers(3, timeout=WAIT)
        for sock in idle:
            sock.close()
        assert live.feed.wait_for_viewer_count(0, timeout=WAIT)
        # leaving mid-stream (the next send fails)
        stream = HttpStream(live.urls["serve"] + "mjpeg")
        assert live.feed.wait_for_viewers(1, timeout=WAIT)
        image = np.zeros((32, 48, 3), np.uint8)
        live.publish(image, _no_detections(image))
        assert next(mjpeg_frames(stream.body)).shape == (32, 48, 3)
        stream.close()
        for _ in range(3):
            live.publish(image, _no_detections(image))
        assert live.feed.wait_for_viewer_count(0, timeout=WAIT)
        with urllib.request.urlopen(live.urls["serve"] + "status", timeout=WAIT) as reply:
            assert json.loads(reply.read()) == {"frames": 4, "viewers": 0, "ended": False}


def test_viewers_get_annotated_frames_though_the_loop_drew_none() -> None:
    image = np.full((180, 320, 3), 128, np.uint8)
    dets = Detections(np.array([[40, 30, 200, 150]], np.float32), np.array([0.9], np.float32), np.array([0]),
                      ["person"], (320, 180))
    with LiveView(LiveOptions(serve=0, quality=95)) as live:
        stream = HttpStream(live.urls["serve"] + "mjpeg")
        assert live.feed.wait_for_viewers(1, timeout=WAIT)
        live.publish(image, dets)  # no annotated copy: --no-save draws nothing in the detection loop
        shown = next(mjpeg_frames(stream.body))
        stream.close()
    assert np.array_equal(image, np.full((180, 320, 3), 128, np.uint8))  # the loop's frame is left as it was
    expected = dets.draw(image).astype(int)
    assert np.abs(shown.astype(int) - expected).mean() < 2 < np.abs(shown.astype(int) - image).mean()


def test_page_and_unknown_paths() -> None:
    with LiveView(LiveOptions(serve=0)) as live:
        with urllib.request.urlopen(live.urls["serve"], timeout=WAIT) as reply:
            page = reply.read().decode()
        assert reply.headers["content-type"].startswith("text/html")
        assert '<img id="stream" src="/mjpeg"' in page and 'new EventSource("/json")' in page
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(live.urls["serve"] + "nope", timeout=WAIT)


# -- darknet's JSON object, options -------------------------------------------------------------------------
def test_darknet_frame_object() -> None:
    names = ["person", "dont_show car", "dog"]
    dets = Detections(np.array([[10, 20, 110, 70], [0, 0, 50, 50], [200, 100, 400, 200], [5, 5, 6, 6]], np.float32),
                      np.array([0.9, 0.8, 0.5, 0.004], np.float32), np.array([0, 1, 2, 0]), names, (400, 200))
    frame = darknet_frame(dets, 7)
    assert list(frame) == ["frame_id", "objects"] and frame["frame_id"] == 7
    # dont_show names and confidences ≤ 0.005 are left out, as darknet does; the boxes come in the order darknet's
    # do_nms_sort leaves them: sorted by the last class's score last, so the dog's box (0.5 in class 2) comes before
    # the person's (0 in class 2), whatever their best scores
    assert frame["objects"] == [
        {"class_id": 2, "name": "dog", "confidence": 0.5,
         "relative_coordinates": {"center_x": 0.75, "center_y": 0.75, "width": 0.5, "height": 0.5}},
        {"class_id": 0, "name": "person", "confidence": 0.9,
         "relative_coordinates": {"center_x": 0.15, "center_y": 0.225, "width": 0.25, "height": 0.25}},
    ]
    assert list(darknet_frame(dets, 1, "data/dog.jpg"))[:2] == ["frame_id", "filename"]


def test_options_are_checked_and_a_public_host_warned_about(tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="each stream needs its own port"):
        LiveOptions(serve=8090, mjpeg_port=8090).check()
    with pytest.raises(InputError, match="quality is 1..100"):
        LiveOptions(serve=0, quality=0).check()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with pytest.raises(InputError, match=rf"cannot listen on 127.0.0.1:{taken.getsockname()[1]}"):
        LiveView(LiveOptions(serve=taken.getsockname()[1]))
    taken.close()
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LiveView(LiveOptions(serve=0)).close()
        assert not caught
        LiveView(LiveOptions(serve=0, host="0.0.0.0")).close()
    assert darknet_warnings(caught) == [
        "--host 0.0.0.0 is not loopback: anyone who can reach this machine can watch the streams "
        "(there is no authentication)"]

    photo = str(shared_path(IMAGES / "dog.jpg"))
    for args, message in [(["--keep-serving"], "--keep-serving needs --serve, --mjpeg-port or --json-port"),
                          (["--serve", "0", "--ray"], "--serve, --mjpeg-port and --json-port are not available with --ray"),
                          (["--serve", "0", "--wait-viewers", "-1"], "--wait-viewers -1: give a number of viewers")]:
        assert cli.main(["detect", photo, "--output", str(tmp_path / "o"), *args]) == 2
        assert f"error: {message}" in capsys.readouterr().err


def test_the_live_url_is_printed_only_once_the_model_is_loaded(tmp_path: Path, capsys) -> None:
    """A model that cannot be loaded is the one error line; no URL of a page that would never come."""
    photo = str(shared_path(IMAGES / "dog.jpg"))
    missing = tmp_path / "missing.weights"
    code = cli.main(["detect", photo, "--cfg", str(shared_path(ZOO_CFG / "yolov4-tiny.cfg")), "--weights", str(missing),
                     "--serve", "0", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and str(missing) in err
    assert "http://" not in err
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", photo, "--cfg", str(cfg), "--weights", str(weights), "--serve", "0", "--no-save",
                     "--output", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err
    assert "http://127.0.0.1:" in err and err.index("http://") < err.index("1 image(s)")


def test_a_stop_while_waiting_for_viewers_leaves_no_run_folder(tmp_path: Path) -> None:
    """Ctrl-C before the first viewer came: exit 130 and no empty output folder (it was made before the wait)."""
    out = tmp_path / "out"
    run = LiveRun(str(shared_path(IMAGES / "dog.jpg")), "--serve", "0", "--wait-viewers", "1", "--save-json",
                  "--output", str(out))
    run.wait_line(r"waiting for 1 viewer\(s\)")
    assert run.finish(interrupt=True) == 130, run.stderr()
    assert not out.exists()
