"""Cameras that stay up, against a real RTSP server (GStreamer's, tests/rtsp_server.py) that the tests kill and
start again: the run reconnects and goes on, /health follows, the records hold both sides of the gap, the newest
frame is detected by default, and credentials never show.

Every wait is on an event: the server's ready line, the run's events (`source-dropped N`, `source-reconnected N`,
`frames-detected N`; darknet_py.core.events), a stderr line, /health. The one timed wait is the outage itself
(how long the camera stays away is the scenario, not a synchronisation).
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from darknet_py.core.credentials import hide_credentials
from darknet_py.core.events import EVENTS
from darknet_py.media.live_reader import LiveSourceOptions
from darknet_py.media.sinks import RecordsJsonSink
from darknet_py.media.video import run_video
from darknet_py.pipeline.detections import Detections
from tests.conftest import REPO, VIDEO, official, shared_path
from tests.event_pipe import EventPipe, kill_at
from tests.rtsp_camera import RtspCamera

WAIT = 300.0  # a hang guard for each wait; reached only when something is broken
OUTAGE_S = 10.0  # how long the camera stays away (the scenario)
SECRET = "s3cret-pw"
STOP_LIMIT_S = 2.0  # Ctrl-C ends a many-camera run within this, every output finished (issue 28)


@pytest.fixture
def camera():
    with RtspCamera(shared_path(VIDEO / "car_traffic_small.mp4")) as started:
        yield started


def _model_args() -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return ["--cfg", str(cfg), "--weights", str(weights)]


class Detect:
    """`darknet-py detect …` in a subprocess, reporting its events; its stderr lines kept as they come."""

    def __init__(self, events: EventPipe, *args: str) -> None:
        command = [sys.executable, "-m", "darknet_py.cli", "detect", *args, *_model_args(), "--size", "160"]
        self.process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env()},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self.ended = False  # its stderr has been read to the end
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, pattern: str) -> re.Match:
        while True:
            line = self.lines.get(timeout=WAIT)
            self.ended = line is None
            assert line is not None, f"detect ended before {pattern!r}:\n{''.join(self.seen)}"
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def finish(self, signum: int | None = None) -> tuple[int, str]:
        if signum is not None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=WAIT)
        finally:
            self.process.kill()
        while not self.ended and (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
        self.ended = True
        return code, "".join(self.seen)


def health(url: str) -> dict:
    (source,) = health_all(url)
    return source


def health_all(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "health", timeout=WAIT) as response:
        return json.loads(response.read())["sources"]


def wait_health(url: str, condition) -> list[dict]:
    """Poll /health until *condition*(its sources) holds (each answer one look at the run; WAIT is the hang guard)."""
    end = time.monotonic() + WAIT
    while not condition(sources := health_all(url)):
        assert time.monotonic() < end, f"/health never met the condition: {sources}"
        threading.Event().wait(0.1)
    return sources


def test_a_camera_that_drops_for_ten_seconds_is_reconnected_and_nothing_is_lost(camera: RtspCamera,
                                                                                 tmp_path: Path) -> None:
    url = camera.url.replace("rtsp://", f"rtsp://viewer:{SECRET}@")  # the server asks for none; FFmpeg sends none
    out = tmp_path / "out"
    with EventPipe() as events:
        run = Detect(events, url, "--serve", "0", "--save-json", "--output", str(out))
        try:
            page = run.wait_line(r"live view: (http://127\.0\.0\.1:\d+/)").group(1)
            events.wait_for("frames-detected 5", run.process)
            before = health(page)
            assert before["state"] == "connected" and before["frames"] >= 5 and before["lag_s"] >= 0
            camera.kill()
            events.wait_for("source-dropped 1", run.process)
            during = health(page)
            assert during["state"] == "reconnecting" and during["drops"] == 1
            threading.Event().wait(OUTAGE_S)  # the camera stays away (the scenario's length, not a synchronisation)
            assert health(page)["state"] == "reconnecting"
            camera.start()  # back on the same port
            events.wait_for("source-reconnected 1", run.process)
            after = health(page)
            assert after["state"] == "connected" and after["drops"] == 1
            events.wait_for(f"frames-detected {after['frames'] + 5}", run.process)
            with urllib.request.urlopen(page, timeout=WAIT) as response:
                shown = response.read().decode()
        finally:
            code, err = run.finish(signal.SIGINT)
    assert code == 130, err
    assert re.search(r"stream lost after \d+ frames of this connection; reconnecting", err), err
    assert re.search(r"reconnected after \d+\.\d s \(\d+ tries\)", err), err
    records = json.loads((out / "detections.json").read_text())
    assert [r["frame"] for r in records] == list(range(len(records)))  # one numbering across the gap
    times = [r["time"] for r in records]
    assert times == sorted(times)
    gap = max(b - a for a, b in zip(times, times[1:]))
    assert gap >= OUTAGE_S  # records from before and after the outage, the gap in their stream time
    split = next(i for i, (a, b) in enumerate(zip(times, times[1:])) if b - a == gap) + 1
    assert split >= 5 and len(records) - split >= 5
    # the credentials are nowhere: not on stderr, in the records, the file names or the page
    assert SECRET not in err and SECRET not in shown and SECRET not in json.dumps(records)
    assert {r["source"] for r in records} == {before["source"], during["source"], after["source"]} == {
        hide_credentials(url)}
    assert all(SECRET not in path.name for path in out.rglob("*"))
    assert sorted(path.name for path in out.iterdir()) == ["cam.mp4", "detections.json"]


@pytest.mark.timeout(int(WAIT))
def test_a_killed_camera_run_keeps_its_recording_but_the_last_seconds(camera: RtspCamera, tmp_path: Path) -> None:
    """SIGKILL (no handler runs: out of memory, `kill -9`) after 150 frames of a camera were detected and encoded:
    the annotated video, written in place as a fragmented MP4, plays its frames up to the last keyframe (2 s at
    most are lost: at 25 frames/s, frame 100's), with the camera's size, each frame at its time on the camera's clock;
    and it was no temporary file."""
    out = tmp_path / "out"
    kill_at([sys.executable, "-m", "darknet_py.cli", "detect", camera.url, *_model_args(), "--size", "160", "--output",
             str(out)], "frames-detected 150", "frames-encoded 150")  # encoded, the detection loop held at 150
    assert sorted(path.name for path in out.iterdir()) == ["cam.mp4"]
    import cv2

    capture = cv2.VideoCapture(str(out / "cam.mp4"))
    shown = []  # each frame's time in the video, ms
    while capture.read()[0]:
        shown.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    assert len(shown) >= 100 and (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == \
        (320, 180)
    capture.release()
    # on the camera's clock: after the first frame (whose time is its arrival), frames a whole number of the camera's
    # 40 ms apart — the frames skipped for newer ones take their time
    steps = np.diff(shown[1:])
    assert shown == sorted(set(shown)) and np.all(np.abs(steps - 40 * np.round(steps / 40)) <= 1.0), shown


def test_reconnect_n_gives_up_with_exit_1_and_the_outputs_finished(camera: RtspCamera, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with EventPipe() as events:
        run = Detect(events, camera.url, "--reconnect", "2", "--save-json", "--output", str(out))
        try:
            events.wait_for("frames-detected 3", run.process)
            camera.kill()  # and never back
            code, err = run.finish()
        finally:
            run.process.kill()
    assert code == 1, err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith(f"error: {camera.url}: gave up after 2 reconnect tries (--reconnect 2); last error:"), err
    records = json.loads((out / "detections.json").read_text())
    assert len(records) >= 3 and [r["frame"] for r in records] == list(range(len(records)))


@pytest.mark.timeout(int(WAIT))
def test_video_frames_of_a_camera_go_on_across_a_drop(camera: RtspCamera, monkeypatch) -> None:
    """darknet_py.video_frames, for one's own loop, reconnects as detect does: the loop waits across the outage."""
    with EventPipe() as events:
        monkeypatch.setenv(EVENTS, str(events.path))  # the reader thread reports its drop and reconnection here
        back = threading.Event()

        def bring_the_camera_back() -> None:
            events.wait_for("source-dropped 1", None)
            camera.start()
            events.wait_for("source-reconnected 1", None)
            back.set()

        video = darknet_py.video_frames(camera.url)
        assert video.live and video.size == (320, 180) and video.fps == 25
        after, times, captured = 0, [], []
        for image in video:
            assert image.shape == (180, 320, 3)
            times.append(video.time)
            captured.append((video.captured, time.monotonic()))
            if video.count == 5:
                camera.kill()
                threading.Thread(target=bring_the_camera_back, daemon=True).start()
            after += back.is_set()
            if after == 5:  # frames taken after the reconnection (all but the one held at most are from the new one)
                break
    assert video.count >= 10 and video.gave_up is None
    assert times == sorted(times) and max(np.diff(times)) > 0.5  # the stream's own times, the outage among them
    sent = [moment for moment, _ in captured]  # when the camera sent each frame: before the loop had it, in order
    assert sent == sorted(sent) and all(moment <= taken for moment, taken in captured)
    assert max(np.diff(sent)) > 0.5  # the outage


def _empty(frame: np.ndarray) -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["x"],
                      (frame.shape[1], frame.shape[0]))


def _slow_model(frames: int, seconds: float):
    """A model that takes *seconds* a frame (slower than the 25 fps camera), stopping the run after *frames*."""
    done = []

    def detect_batch(images):
        if len(done) >= frames:
            raise KeyboardInterrupt
        threading.Event().wait(seconds)  # the model's cost, emulated
        done.extend(images)
        return [_empty(image) for image in images]
    return detect_batch


@pytest.mark.parametrize("keep_all", [False, True], ids=["latest-frame", "keep-all-frames"])
def test_a_slow_model_detects_the_newest_frame_unless_asked_to_keep_all(camera: RtspCamera, tmp_path: Path,
                                                                        keep_all: bool) -> None:
    records = RecordsJsonSink(tmp_path / "detections.json")
    report = run_video(camera.url, _slow_model(10, 0.2), sinks=[records],
                       live=LiveSourceOptions(keep_all_frames=keep_all))
    assert report.interrupted and report.live and report.frames == 10
    times = [r["time"] for r in json.loads(records.path.read_text())]
    steps = np.diff(times)
    if keep_all:  # every frame, one 25 fps frame interval apart: what is detected falls behind the camera
        # (a connection's first frame comes without a presentation time from FFmpeg's RTSP: timed on arrival)
        assert report.dropped_frames == 0 and np.allclose(steps[1:], 0.04, atol=0.005), steps
    else:  # the newest each time: about one model time apart, the frames in between dropped and counted
        assert report.dropped_frames >= 9 * 3 and steps.min() >= 0.12, (report.dropped_frames, steps)


def test_two_cameras_through_one_model_one_drops_the_other_keeps_going(camera: RtspCamera, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with RtspCamera(shared_path(VIDEO / "vtest_480x360_h264.avi"), path="/door") as other, EventPipe() as events:
        run = Detect(events, camera.url, other.url, "--serve", "0", "--save-json", "--output", str(out))
        try:
            page = run.wait_line(r"live view: (http://127\.0\.0\.1:\d+/)").group(1)
            events.wait_for("frames-detected 10", run.process)
            camera.kill()
            events.wait_for("source-dropped 1", run.process)
            first, second = health_all(page)
            assert (first["state"], second["state"]) == ("reconnecting", "connected")
            # the other camera goes on while the first is away: 10 more of its frames
            during_first, during_second = wait_health(page, lambda now: now[1]["frames"] >= second["frames"] + 10)
            assert during_first["state"] == "reconnecting"
            camera.start()
            events.wait_for("source-reconnected 1", run.process)
            back = health_all(page)[0]
            assert back["state"] == "connected"
            wait_health(page, lambda now: now[0]["frames"] >= back["frames"] + 5)  # the first camera's frames again
        finally:
            stopping = time.monotonic()
            code, err = run.finish(signal.SIGINT)
            stopped_in = time.monotonic() - stopping
    assert code == 130, err
    assert stopped_in <= STOP_LIMIT_S, f"Ctrl-C took {stopped_in:.1f} s"  # the bound, files finished included
    assert sorted(path.name for path in out.iterdir()) == ["cam", "door"]
    for name in ("cam", "door"):
        records = json.loads((out / name / "detections.json").read_text())
        assert [r["frame"] for r in records] == list(range(len(records))) and len(records) >= 10
        assert {r["source"] for r in records} == {camera.url if name == "cam" else other.url}
        assert (out / name / f"{name}.mp4").is_file()
