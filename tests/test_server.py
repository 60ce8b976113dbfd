"""`darknet-py server`: the real program, listening on a real socket, asked over HTTP by a real client (urllib). Its
answers are what `model.detect` gives for the same image file in this process, number for number; bad requests get
a JSON error and the server goes on; /metrics is read back by prometheus_client's own parser; Ctrl-C stops it."""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import darknet_py
from darknet_py.media.darknet_json import darknet_frame
from darknet_py.media.sinks import detection_record
from darknet_py.pipeline.detections import Detections
from tests.chromium import Chromium, wait_for
from tests.conftest import official, photos
from tests.event_pipe import EventPipe

REPO = Path(__file__).resolve().parents[1]
WAIT = 60  # seconds: a generous bound for a busy machine, never a pace


@pytest.fixture(scope="module")
def server():
    """`darknet-py server --port 0` with yolov4-tiny: (its URL, the process); stopped with Ctrl-C at the end."""
    cfg, weights = official("yolov4-tiny")
    process = subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "server", "--cfg", str(cfg), "--weights",
                                str(weights), "--port", "0"], cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env={**os.environ})
    try:
        for line in process.stderr:  # the line that says where it listens: the server is up when it is printed
            if line.startswith("serving "):
                url = line.split(" at ", 1)[1].split("/detect", 1)[0]
                break
        else:
            pytest.fail(f"the server did not start (exit {process.wait(WAIT)})")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(WAIT)


@pytest.fixture(scope="module")
def model():
    return darknet_py.load(*official("yolov4-tiny"))


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.timeout(300)
def test_each_answer_is_model_detect_of_the_same_file(server, model) -> None:
    url, _ = server
    for photo in photos():
        status, answer = _post(f"{url}/detect", photo.read_bytes())
        assert status == 200
        assert answer == json.loads(json.dumps(detection_record(model.detect(str(photo))[0], "")))
    dog = next(photo for photo in photos() if photo.name == "dog.jpg")
    status, answer = _post(f"{url}/detect?format=darknet&name=dog.jpg&thresh=0.5", dog.read_bytes())
    assert status == 200 and answer["filename"] == "dog.jpg"
    expected = darknet_frame(model.detect(str(dog), 0.5)[0], answer["frame_id"], "dog.jpg")
    assert answer == expected and [o["name"] for o in answer["objects"]] == ["dog", "truck", "bicycle"]
    status, answer = _post(f"{url}/detect?classes=dog,2", dog.read_bytes())  # a name and an id
    assert status == 200 and [d["name"] for d in answer["detections"]] == ["dog", "car"]
    assert answer == json.loads(json.dumps(detection_record(model.detect(str(dog), classes=(16, 2))[0], "")))


def _same_answer(answer: dict, expected: dict) -> None:
    """A POST's record against model.detect's: the same detections, within the tolerance docs/performance.md gives a
    concurrent twin (scores 1e-4, boxes 0.5 px): requests beside another run on the twin (--in-flight, 2 by default)."""
    assert {key: value for key, value in answer.items() if key != "detections"} == \
        {key: value for key, value in expected.items() if key != "detections"}
    assert [d["name"] for d in answer["detections"]] == [d["name"] for d in expected["detections"]]
    for mine, theirs in zip(answer["detections"], expected["detections"]):
        assert abs(mine["score"] - theirs["score"]) <= 1e-4
        assert max(abs(a - b) for a, b in zip(mine["box"], theirs["box"])) <= 0.5


@pytest.mark.timeout(300)
def test_requests_at_once_get_their_own_answers(server, model) -> None:
    url, _ = server
    images = photos()
    expected = {photo.name: json.loads(json.dumps(detection_record(model.detect(str(photo))[0], photo.name)))
                for photo in images}

    def ask(photo: Path) -> tuple[str, int, dict]:
        return (photo.name, *_post(f"{url}/detect?name={photo.name}", photo.read_bytes()))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, images * 4))
    assert len(answers) == 4 * len(images) and all(status == 200 for _, status, _ in answers)
    for name, _, answer in answers:
        _same_answer(answer, expected[name])


@pytest.mark.timeout(300)
def test_in_flight_2_detects_two_requests_at_once_a_lone_one_on_every_core() -> None:
    """--in-flight 2 (the default on 2 cores or more): two requests detected at once, a request that starts beside
    another on the model's concurrent twin (half the cores), one alone on the model itself (every core)."""
    from darknet_py.live.detect_api import DetectService

    together = threading.Barrier(2, timeout=WAIT)  # passes only if two detections run at once
    nothing = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["a"], (4, 3))
    service = DetectService(lambda body, thresh, nms, classes: together.wait() * 0 or nothing, "barrier", ["a"],
                            in_flight=2)
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: service.answer(b"x", ""), range(2)))
        assert answers == [{"source": "", "width": 4, "height": 3, "detections": []}] * 2
        assert service.health()["images"] == 2
    finally:
        service.close()
    with pytest.raises(darknet_py.InputError, match="--in-flight must be at least 1, got 0"):
        DetectService(lambda *args: None, "none", [], in_flight=0)

    # a request alone gets the model on every core (detect_alone); one that starts beside it, the twin's share
    beside = threading.Event()
    used: list[str] = []

    def on_every_core(*args):
        used.append("alone")
        assert beside.wait(WAIT), "the second request did not run beside the first"
        return nothing

    def on_a_share(*args):
        used.append("share")
        beside.set()
        return nothing

    service = DetectService(on_a_share, "adaptive", ["a"], in_flight=2, detect_alone=on_every_core)
    try:
        with ThreadPoolExecutor(2) as pool:
            assert len(list(pool.map(lambda _: service.answer(b"x", ""), range(2)))) == 2
        assert sorted(used) == ["alone", "share"] and service.alone == 1
        for _ in range(3):  # one client, one request after another: each alone
            service.answer(b"x", "")
        assert used[2:] == ["alone"] * 3 and service.alone == 4 and service.health()["images"] == 5
    finally:
        service.close()


@pytest.mark.timeout(120)
def test_model_service_is_the_command_s_service_for_a_script(model) -> None:
    """live.detect_api.model_service: two at once by default on this 2-core CPU (a lone request on the model), one at
    a time when asked; each answer is model.detect's record of the file."""
    from darknet_py.live.detect_api import model_service

    dog = next(photo for photo in photos() if photo.name == "dog.jpg")
    expected = json.loads(json.dumps(detection_record(model.detect(str(dog))[0], "dog.jpg")))
    assert model.names is None  # a cfg's model: COCO's names for its 80 classes, as detect gives them
    for in_flight, calls, alone in ((None, 2, 1), (1, 1, 0)):
        service = model_service(model, "yolov4-tiny", in_flight=in_flight)
        try:
            assert service.in_flight == calls
            assert json.loads(json.dumps(service.answer(dog.read_bytes(), "name=dog.jpg"))) == expected
            assert service.alone == alone  # the lone request ran on the model itself
        finally:
            service.close()


@pytest.mark.timeout(120)
def test_bad_requests_are_answered_and_the_server_goes_on(server) -> None:
    url, _ = server
    before = json.loads(urllib.request.urlopen(f"{url}/health", timeout=WAIT).read())
    status, answer = _post(f"{url}/detect", b"not an image")
    assert status == 400 and answer["error"].startswith("cannot decode image")
    assert _post(f"{url}/detect?thresh=2", b"x") == (400, {"error": "thresh=2: give a number in [0, 1]"})
    assert _post(f"{url}/detect?size=9", b"x")[0] == 400
    status, answer = _post(f"{url}/detect?classes=unicorn", b"x")
    assert status == 400 and answer["error"].startswith("classes= unicorn: not a class of this model (80 classes")
    assert _post(f"{url}/detect", b"")[1]["error"].startswith("the request has no body")
    assert _post(f"{url}/elsewhere", b"x")[0] == 404
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/detect", timeout=WAIT)
    assert refused.value.code == 405 and refused.value.headers["Allow"] == "POST"
    status, answer = _post(f"{url}/detect", next(iter(photos())).read_bytes())
    assert status == 200 and answer["detections"]  # still serving
    after = json.loads(urllib.request.urlopen(f"{url}/health", timeout=WAIT).read())
    assert after["requests"] - before["requests"] == 8 and after["failed"] - before["failed"] == 7
    assert after["images"] - before["images"] == 1 and after["model"] == "yolov4-tiny" and after["mean_ms"] > 0
    scraped = urllib.request.urlopen(f"{url}/metrics", timeout=WAIT).read().decode()
    samples = {sample.name: sample.value for family in text_string_to_metric_families(scraped)
               for sample in family.samples}
    figures = json.loads(urllib.request.urlopen(f"{url}/health", timeout=WAIT).read())
    assert samples["darknet_py_api_requests_total"] == figures["requests"]
    assert samples["darknet_py_api_failed_total"] == figures["failed"]
    assert samples["darknet_py_api_images_total"] == figures["images"]


@pytest.mark.timeout(120)
def test_other_methods_empty_parameters_and_a_cut_body_are_json_errors(server) -> None:
    """Every answer of the API is JSON, a refusal too: PUT, DELETE, PATCH, OPTIONS (405, with what is allowed); a
    parameter given empty (thresh=, classes=) is refused, not taken as left out; a body shorter than its
    Content-Length (the client closed its side) is said to be cut; HEAD /health is GET's answer without the body."""
    url, _ = server
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        request = urllib.request.Request(f"{url}/health", data=b"x", method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=WAIT)
        assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD", method
        assert json.loads(refused.value.read())["error"].startswith(f"{method} is not taken here"), method
    assert _post(f"{url}/detect?thresh=", b"x") == (400, {"error": "thresh=: give a number in [0, 1]"})
    assert _post(f"{url}/detect?classes=", b"x")[1]["error"].startswith("classes=: give class names or ids")
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    with socket.create_connection((host, port), timeout=WAIT) as conn:
        conn.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhello")
        conn.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and json.loads(body) == {
        "error": "the body ended after 5 of the 1,000 bytes its Content-Length gives"}
    with urllib.request.urlopen(urllib.request.Request(f"{url}/health", method="HEAD"), timeout=WAIT) as reply:
        assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/json")
        assert int(reply.headers["Content-Length"]) > 0 and reply.read() == b""


@pytest.mark.timeout(300)
def test_the_page_draws_and_lists_a_chosen_image_s_answer(server, model, tmp_path: Path) -> None:
    """GET / in a real browser (Chromium): an image chosen in its file input is posted to /detect, and the page lists
    the answer (model.detect's record for the file) and draws its boxes over the image; a file that is no image shows
    the server's error."""
    url, _ = server
    dog = next(photo for photo in photos() if photo.name == "dog.jpg")
    expected = json.loads(json.dumps(detection_record(model.detect(str(dog))[0], "dog.jpg")))
    answered = wait_for("window.lastAnswer || document.getElementById('error').textContent",
                        """({answer: window.lastAnswer || null, error: document.getElementById('error').textContent,
                            rows: [...document.querySelectorAll('#detections tbody tr')].map(
                                tr => [...tr.children].map(td => td.textContent)),
                            model: document.getElementById('model').textContent,
                            png: document.getElementById('canvas').toDataURL('image/png')})""")
    with Chromium(tmp_path / "chromium") as browser:
        browser.goto(url + "/")
        browser.choose_file("#file", dog)
        shown = browser.evaluate(answered)
        (tmp_path / "page.png").write_bytes(browser.screenshot())
        not_an_image = tmp_path / "notes.txt"
        not_an_image.write_text("not an image")
        browser.evaluate("window.lastAnswer = null")
        browser.choose_file("#file", not_an_image)
        refused = browser.evaluate(answered)
    assert shown["error"] == "" and shown["answer"] == expected and shown["model"] == "yolov4-tiny"
    assert [row[0] for row in shown["rows"]] == [d["name"] for d in expected["detections"]] == ["dog", "truck",
                                                                                                  "bicycle", "car"]
    drawn = cv2.imdecode(np.frombuffer(base64.b64decode(shown["png"].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    image = cv2.imread(str(dog))
    assert drawn.shape == image.shape
    difference = np.abs(drawn.astype(int) - image.astype(int)).max(axis=2)
    marked = np.zeros(image.shape[:2], bool)  # each box's outline (a few px wide) and the label above its corner
    for d in expected["detections"]:
        x1, y1, x2, y2 = (round(v) for v in d["box"])
        marked[max(0, y1 - 40):y2 + 6, max(0, x1 - 6):x2 + 6] = True
        marked[y1 + 6:y2 - 6, x1 + 6:x2 - 6] = False
    assert np.median(difference[~marked]) <= 2  # elsewhere the browser's decoding of the same JPEG
    best = expected["detections"][0]["box"]  # drawn last, on top: its left edge is its class colour all along
    x1, y1, y2 = round(best[0]), round(best[1]), round(best[3])
    assert np.median(difference[y1 + 10:y2 - 10, x1]) > 40
    assert refused["error"].startswith("cannot decode image") and refused["answer"] is None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("held_at", [None, "serving"], ids=["serving", "starting"])
def test_a_stop_answers_the_requests_already_taken(model, held_at: str | None) -> None:
    """SIGTERM (a scheduler's stop) while a request is on its way: its image still arrives after the stop, and it
    gets its answer before the server ends with 143 — also when the stop lands while the server is still starting
    (held where its thread serves and the main thread is not yet waiting: the request taken by then is drained too);
    while it drains, a request on a kept-alive connection is refused with 503."""
    cfg, weights = official("yolov4-tiny")
    dog = next(photo for photo in photos() if photo.name == "dog.jpg")
    body = dog.read_bytes()
    expected = json.loads(json.dumps(detection_record(model.detect(str(dog))[0], "dog.jpg")))
    with EventPipe() as events:
        process = subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "server", "--cfg", str(cfg), "--weights",
                                    str(weights), "--port", "0"], cwd=REPO, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, **events.env(held_at)})
        try:
            url = next(line for line in process.stderr if line.startswith("serving ")).split(" at ", 1)[1]
            port = int(url.split("/detect", 1)[0].rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
                client.sendall(f"POST /detect?name=dog.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:1000])
                events.wait_for("request-taken 1", process)  # the server has the request, not yet its image
                process.send_signal(signal.SIGTERM)
                events.wait_for("draining", process)  # stopped: no new connection, this request still answered
                client.sendall(body[1000:])
                reply = http.client.HTTPResponse(client)
                reply.begin()
                status, answer = reply.status, json.loads(reply.read())
            assert process.wait(WAIT) == 143
            last = process.stderr.read().strip().splitlines()[-1]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT)
    assert status == 200 and answer == expected
    assert last == "1 image(s) detected, 0 request(s) answered with an error"

    from darknet_py.live.detect_api import DetectService, listen, serve

    server = listen("127.0.0.1", 0)
    service = DetectService(lambda *args: model.detect(str(dog))[0], "tiny", ["person"])
    serve(server, service)
    try:
        kept = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=WAIT)
        kept.request("POST", "/detect", body=b"x")
        assert kept.getresponse().read() and service.health()["images"] == 1  # answered, the connection kept
        assert service.drain(WAIT) == 0
        kept.request("POST", "/detect", body=b"x")
        reply = kept.getresponse()
        assert reply.status == 503 and json.loads(reply.read())["error"].startswith("the server is stopping")
        kept.close()
    finally:
        server.shutdown()
        server.server_close()
        service.close()


@pytest.mark.timeout(120)
def test_a_client_that_goes_quiet_or_hangs_up_holds_nothing_and_prints_no_traceback(model, capfd) -> None:
    """A body that stops coming held its thread for ever (answered only when the client closed); a client that hung up
    before its answer printed socketserver's 25-line traceback in the server's console."""
    from darknet_py.format.names import default_names
    from darknet_py.live.detect_api import DetectService, listen, serve

    detecting, go_on = threading.Event(), threading.Event()

    def detect(*args):
        detecting.set()
        assert go_on.wait(WAIT)  # the client is gone before its answer is written
        return model.detect(str(photos()[0]))[0]

    server = listen("127.0.0.1", 0, idle_s=1.0)
    service = DetectService(detect, "tiny", default_names(80))
    serve(server, service)
    port = server.server_address[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
            conn.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhello")  # then silence
            reply = b"".join(iter(lambda: conn.recv(65536), b""))
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408") and json.loads(body) == {
            "error": "nothing of the body came for 1 s (Content-Length 1,000 bytes): send the whole image at once"}
        for length in (b"abc", b"\xb2"):  # "\xb2" is Latin-1's superscript 2: a digit to str.isdigit, not to int
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
                conn.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
                reply = b"".join(iter(lambda: conn.recv(65536), b""))
            assert reply.startswith(b"HTTP/1.1 400") and b"is not a number of bytes" in reply, reply
        for line in (b"HELLO\r\n\r\n", b"FETCH /detect HTTP/1.1\r\nHost: x\r\n\r\n"):  # no HTTP; no such method
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as conn:
                conn.sendall(line)
                reply = b"".join(iter(lambda: conn.recv(65536), b""))
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] in (b"400", b"501") and "error" in json.loads(body), reply  # JSON, not HTML
        image = photos()[0].read_bytes()
        handled, told = threading.Event(), server.handle_error
        server.handle_error = lambda *args: (told(*args), handled.set())  # what socketserver does with a failed request
        conn = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        conn.sendall(b"POST /detect HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(image) + image)
        assert detecting.wait(WAIT)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # a reset: the answer's write fails
        go_on.set()
        assert handled.wait(WAIT)
        assert service.health()["images"] == 1  # detected; its answer had nowhere to go
    finally:
        server.shutdown()
        server.server_close()
        service.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err


@pytest.mark.timeout(120)
def test_ctrl_c_stops_it_with_its_figures(server) -> None:
    url, process = server
    process.send_signal(signal.SIGINT)
    assert process.wait(WAIT) == 130
    last = process.stderr.read().strip().splitlines()[-1]
    assert last.endswith("request(s) answered with an error") and " image(s) detected, " in last
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/health", timeout=WAIT)


def test_bad_options_are_one_line(capsys) -> None:
    """Each before the model loads: a port in use is said before the (here missing) model files are looked for."""
    from darknet_py import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, message in ((["--thresh", "2"], "--thresh 2.0: give a number in [0, 1]"),
                              (["--port", "70000"], "--port 70000: give a port from 1 to 65535"),
                              (["--in-flight", "0"], "--in-flight must be at least 1, got 0"),
                              (["--port", str(port), "--cfg", "missing.cfg", "--weights", "missing.weights"],
                               f"cannot listen on 127.0.0.1:{port}: Address already in use")):
            assert cli.main(["server", *args]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
