"""--notify URL: each counting event and each clip POSTed as JSON to a real HTTP server started here, equal to its
events.jsonl / clips.jsonl line; a receiver that is down gets every message, in order, once it is back; 5xx tried
again, 4xx not; a receiver that never answers costs the run nothing but a warning and the count in its last line.

Every wait is on an event of the notifier (darknet_py.core.events: notify-failed N, notify-delivered N).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest

from darknet_py import cli
from darknet_py.media.notify import Notifier, NotifySink
from tests.conftest import REPO, VIDEO, darknet_warnings, free_port, official, refused_before_work, shared_path
from tests.event_pipe import EventPipe
from tests.rtsp_camera import RtspCamera
from tests.test_clips import _lines, _model_args, video  # noqa: F401 - the clip video, a shared fixture
from tests.test_tracking import crossing, expected  # noqa: F401 - the generated crossing, shared fixtures

WAIT = 300.0  # a hang guard for each wait; reached only when something is broken


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps what it is POSTed: (status it answered, content type, JSON body)."""

    def __init__(self, port: int = 0, answer: Callable[[int, dict], int] = lambda n, body: 200) -> None:
        self.got: list[tuple[int, str, dict]] = []
        self.paths: list[str] = []
        self.authorization: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = answer(len(receiver.got), body)
                receiver.paths.append(self.path)
                receiver.authorization.append(self.headers.get("Authorization"))
                receiver.got.append((status, self.headers["Content-Type"], body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def taken(self) -> list[dict]:
        """The bodies it answered 2xx, in order."""
        return [body for status, _, body in self.got if status < 300]


@contextlib.contextmanager
def receiver(**kwargs) -> Iterator[Receiver]:
    started = Receiver(**kwargs)
    try:
        yield started
    finally:
        started.close()


@pytest.mark.timeout(300)
def test_each_event_and_clip_is_posted_as_its_line(crossing: Path, expected: dict, tmp_path: Path) -> None:  # noqa: F811
    """The generated crossing counted at its line and zone, with clips around the events: the receiver is POSTed each
    events.jsonl line and each clips.jsonl line (with the clip's absolute path), as JSON, each kind in its file's order,
    each with the --notify-header given (printed nowhere), and the run's last line says how many."""
    out = tmp_path / "out"
    with receiver() as hook:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = cli.main(["detect", str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0",
                             "--track", "--line", expected["shapes"]["lines"][0], "--zone",
                             expected["shapes"]["zones"][0], "--clips", "0.4", "--clip-on", "events", "--no-save",
                             "--notify", hook.url, "--notify-header", "Authorization: Bearer s3cret", "--output",
                             str(out)])
        assert code == 0, stderr.getvalue()
    events, clips = _lines(out / "events.jsonl"), _lines(out / "clips.jsonl")
    assert events and clips
    assert {content for _, content, _ in hook.got} == {"application/json"}
    assert set(hook.authorization) == {"Bearer s3cret"} and "s3cret" not in stderr.getvalue()
    got = hook.taken()
    assert [body for body in got if body["type"] == "event"] == [
        {"type": "event", "source": "crossing", **event} for event in events]
    assert [body for body in got if body["type"] == "clip"] == [
        {"type": "clip", "source": "crossing", **clip, "path": str((out / clip["file"]).resolve())} for clip in clips]
    assert f"notify: {len(events) + len(clips)} delivered to {hook.url}\n" in stderr.getvalue()


@pytest.mark.timeout(300)
def test_several_sources_messages_name_each_source_as_its_folder(video, tmp_path: Path) -> None:  # noqa: F811
    """Two videos of one name through one model: each one's clips are posted with its folder's name (walk, walk-2)
    and their clips' paths in that folder."""
    path, _ = video
    twin = tmp_path / "twin" / path.name
    twin.parent.mkdir()
    twin.write_bytes(path.read_bytes())
    out = tmp_path / "out"
    with receiver() as hook:
        code = cli.main(["detect", str(path), str(twin), *_model_args(), "--clips", "1", "--no-save", "--notify",
                         hook.url, "--output", str(out)])
        assert code == 0
    for name in ("walk", "walk-2"):
        clips = _lines(out / name / "clips.jsonl")
        assert len(clips) == 2
        assert [body for body in hook.taken() if body["source"] == name] == [
            {"type": "clip", "source": name, **clip, "path": str((out / name / clip["file"]).resolve())} for clip in clips]


@pytest.fixture
def camera():
    with RtspCamera(shared_path(VIDEO / "car_traffic_small.mp4")) as started:
        yield started


@pytest.mark.timeout(int(WAIT))
def test_a_cameras_drop_and_return_are_posted(camera: RtspCamera, tmp_path: Path) -> None:
    """The real RTSP camera killed and started again under a run with only --notify: the receiver is POSTed the drop
    (`reconnecting`, drops 1) and the return (`connected`, drops 1, the seconds it was away), dated, in that order."""
    cfg, weights = official("yolov4-tiny")
    with receiver() as hook, EventPipe() as events:
        process = subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "detect", camera.url, "--cfg", str(cfg),
                                    "--weights", str(weights), "--size", "160", "--no-save", "--notify", hook.url,
                                    "--output", str(tmp_path / "out")], cwd=REPO, env={**os.environ, **events.env()},
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        try:
            events.wait_for("frames-detected 5", process)
            camera.kill()
            events.wait_for("notify-delivered 1", process)
            camera.start()
            events.wait_for("notify-delivered 2", process)
            process.send_signal(signal.SIGINT)
            err = process.communicate(timeout=WAIT)[1]
        finally:
            process.kill()
    assert process.returncode == 130, err
    dropped, back = hook.taken()
    assert {k: dropped[k] for k in ("type", "source", "state", "drops")} == {
        "type": "source", "source": "cam", "state": "reconnecting", "drops": 1}
    assert {k: back[k] for k in ("type", "source", "state", "drops")} == {
        "type": "source", "source": "cam", "state": "connected", "drops": 1}
    away = datetime.fromisoformat(back["utc"]) - datetime.fromisoformat(dropped["utc"])
    assert back["down_s"] > 0 and abs(away.total_seconds() - back["down_s"]) < 1.0
    assert "notify: 2 delivered to" in err


@pytest.mark.timeout(120)
def test_a_receiver_that_is_down_gets_every_message_in_order_once_it_is_back(notifier_events: EventPipe,
                                                                              recwarn) -> None:
    port = free_port()
    notifier = Notifier(f"http://127.0.0.1:{port}/hook")
    for n in range(5):
        notifier.post({"n": n})
    notifier_events.wait_for("notify-failed 1", None)  # nothing listens: the first message was not taken
    with receiver(port=port) as hook:
        notifier_events.wait_for("notify-delivered 5", None)
        report = notifier.close()
    assert hook.taken() == [{"n": n} for n in range(5)]
    assert (report.delivered, report.refused, report.undelivered) == (5, 0, 0)
    warned = darknet_warnings(recwarn)
    assert len(warned) == 1 and warned[0].startswith(f"--notify http://127.0.0.1:{port}/hook: cannot be reached:")


@pytest.mark.timeout(120)
def test_a_user_and_password_in_the_url_go_as_basic_authentication(notifier_events: EventPipe) -> None:
    """`http://user:p%40ss@host/hook`: the request goes to the URL without them, with curl's Authorization header
    (`user:p@ss` in base64), and the report shows the URL with them hidden."""
    with receiver() as hook:
        url = hook.url.replace("http://", "http://user:p%40ss@")
        sink = NotifySink(Notifier(url), "cam")
        sink.notifier.post({"n": 0})
        notifier_events.wait_for("notify-delivered 1", None)
        sink.finish()
    assert hook.got[0][2] == {"n": 0} and hook.paths == ["/hook"]
    assert hook.authorization == ["Basic " + base64.b64encode(b"user:p@ss").decode()]
    assert sink.summary() == f"notify: 1 delivered to {hook.url.replace('http://', 'http://***@')}"


@pytest.mark.timeout(120)
def test_a_5xx_is_tried_again_and_a_4xx_is_not(notifier_events: EventPipe, recwarn) -> None:
    """The receiver answers its first request 503 and message 1 always 400: message 0 is taken on its second try,
    message 1 dropped after one (a receiver that refuses a message refuses it again), message 2 taken."""
    def answer(request: int, body: dict) -> int:
        return 503 if request == 0 else 400 if body["n"] == 1 else 200

    with receiver(answer=answer) as hook:
        notifier = Notifier(hook.url)
        for n in range(3):
            notifier.post({"n": n})
        notifier_events.wait_for("notify-delivered 2", None)
        report = notifier.close()
    assert [(status, body["n"]) for status, _, body in hook.got] == [(503, 0), (200, 0), (400, 1), (200, 2)]
    assert (report.delivered, report.refused, report.undelivered) == (2, 1, 0)
    warned = darknet_warnings(recwarn)
    assert [text.split(": ", 1)[1] for text in warned] == [
        "answered 503 Service Unavailable; trying again, messages kept in order (up to 10000)",
        "the receiver refused it with 400 Bad Request: that message is dropped"]


@pytest.mark.timeout(300)
def test_a_receiver_that_never_answers_costs_the_run_a_warning_and_a_count(video, tmp_path: Path,  # noqa: F811
                                                                          recwarn) -> None:
    """Nothing listens at the URL: the run does its work (both clips written and listed), exits 0, warns once, and its
    last line counts the two clips' messages as not delivered."""
    path, _ = video
    url = f"http://127.0.0.1:{free_port()}/hook"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = cli.main(["detect", str(path), *_model_args(), "--clips", "1", "--no-save", "--notify", url, "--output",
                         str(tmp_path / "out")])
    assert code == 0
    assert len(_lines(tmp_path / "out" / "clips.jsonl")) == 2
    err = stderr.getvalue()
    warned = darknet_warnings(recwarn)
    assert len(warned) == 1 and warned[0].startswith(f"--notify {url}: cannot be reached"), warned
    assert f"notify: 0 delivered to {url}, 2 not delivered (last: cannot be reached: " in err


def test_notify_with_nothing_to_post_is_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    """A file with neither lines, zones nor clips has nothing to post (a camera has: its drops; a watched folder: the
    images with detections; a broker would be sent its objects in view: tests/test_notify_mqtt.py)."""
    source = shared_path(VIDEO / "pedestrians.avi")
    assert cli.main(["detect", str(source), "--notify", "http://127.0.0.1:9/x", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == ("error: --notify posts the crossings, entries and exits of --line/--zone, the "
                                       "clips of --clips, a camera's or stream's drops and the images --watch finds "
                                       "something in: give one of them (an mqtt:// broker is also sent a video's "
                                       "objects in view)\n")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags, line", [
    (["--notify", "ftp://host/x", "--clips", "2"], "error: --notify ftp://host/x: give an http:// or https:// URL to POST to"),
    (["--notify", "http://127.0.0.1:9/x", "--ray"], "error: --notify is not available with --ray"),
    (["--notify", "http://127.0.0.1:9/x", "--notify-header", "Bearer s3cret"],
     "error: --notify-header: give NAME: VALUE (e.g. 'Authorization: Bearer TOKEN'); one given is not a header"),
    (["--notify-header", "X-Token: s3cret"], "error: --notify-header is sent with --notify's messages: give --notify URL"),
])
def test_notify_flags_that_mean_nothing_are_one_line_before_any_work(flags: list[str], line: str, tmp_path: Path,
                                                                     capsys) -> None:
    refused_before_work(flags, line, tmp_path / "o", capsys)
