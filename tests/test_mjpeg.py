"""An HTTP MJPEG camera (multipart JPEGs with no length, as most IP cameras and our own `--serve` send): read as a
live source through PyAV, timed by the frames' arrival, since the stream carries no time of its own (FFmpeg's
demuxer numbers the frames as if at 25 frames/s, whatever the camera's pace).

The camera is a real HTTP server in this process, sending a JPEG every PACE_S seconds (it sleeps between frames, so
it can never send faster); `darknet-py detect` reads it in a subprocess and is stopped on its events.
"""
from __future__ import annotations

import http.server
import json
import signal
import socketserver
import statistics
import threading
from pathlib import Path

import cv2
import pytest

import darknet_py
from tests.conftest import VIDEO, official, shared_path
from tests.event_pipe import EventPipe
from tests.test_rtsp import Detect, health

pytestmark = pytest.mark.timeout(600)
PACE_S = 0.1  # the camera's frame interval: 10 frames/s, far from the 25 FFmpeg assumes
FRAMES = 40


class MjpegCamera(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs, self.stopping = jpegs, threading.Event()
        super().__init__(("127.0.0.1", 0), MjpegHandler)


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        jpegs, index = self.server.jpegs, 0
        try:
            while not self.server.stopping.wait(PACE_S if index else 0):
                jpeg = jpegs[index % len(jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(jpeg), jpeg))
                index += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader went away

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mjpeg_camera():
    capture = cv2.VideoCapture(str(shared_path(VIDEO / "vtest_480x360_h264.avi")))
    jpegs = []
    while len(jpegs) < 50 and (frame := capture.read()[1]) is not None:
        jpegs.append(cv2.imencode(".jpg", frame)[1].tobytes())
    capture.release()
    server = MjpegCamera(jpegs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    server.stopping.set()
    server.shutdown()
    server.server_close()


def test_an_mjpeg_camera_is_read_live_and_timed_by_arrival(mjpeg_camera: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with EventPipe() as events:
        run = Detect(events, mjpeg_camera, "--keep-all-frames", "--no-save", "--save-json", "--serve", "0",
                     "--output", str(out))
        try:
            page = run.wait_line(r"live view: (http://127\.0\.0\.1:\d+/)").group(1)
            events.wait_for(f"frames-detected {FRAMES}", run.process)
            figures = health(page)
        finally:
            code, err = run.finish(signal.SIGINT)
    assert code == 130, err
    assert figures["state"] == "connected" and figures["drops"] == 0 and figures["lag_s"] >= 0, figures
    records = json.loads((out / "detections.json").read_text())
    assert [r["frame"] for r in records] == list(range(len(records))) and len(records) >= FRAMES
    assert all(r["source"] == mjpeg_camera for r in records)
    steps = [b["time"] - a["time"] for a, b in zip(records, records[1:])]
    assert min(steps) >= 0
    # every frame kept: the run's clock follows the camera's pace, not FFmpeg's 25 frames/s numbering (0.04 s)
    assert statistics.median(steps) > (PACE_S + 0.04) / 2, steps


def test_a_stream_behind_an_image_name_is_refused_not_read_for_ever(mjpeg_camera: str) -> None:
    """An http(s) URL ending in .jpg is fetched as one image (darknet_py.pipeline.image_url); a server that answers
    with an endless MJPEG stream is one clear error instead of a read that never ends."""
    url = mjpeg_camera.replace("/video.mjpg", "/snapshot.jpg")  # the camera streams on every path
    model = darknet_py.load(*official("yolov4-tiny"))
    with pytest.raises(darknet_py.InputError, match=r"snapshot\.jpg serves a stream \(multipart/x-mixed-replace\), "
                                                    r"not one image file$"):
        model.detect(url)
