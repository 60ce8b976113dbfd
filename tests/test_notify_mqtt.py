"""--notify mqtt://…: events, clips and watched images published to a real MQTT broker (Mosquitto, started here) under
TOPIC/SOURCE/TYPE, each equal to its line in the run's files, and the retained states objects, counts and snapshot;
TOPIC/SOURCE/status online, then offline — said by the run when it ends, by the broker (the connection's last will)
when the run is killed; a broker that is down gets every message in order once it is back (and each state's last);
a lost acknowledgement; a user and password, a wrong password, TLS with the broker's certificate checked.

Every wait is on an event of the run or the notifier (notify-failed N, notify-delivered N, watch-idle N) or on a message
the subscriber receives; none on time.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import signal
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
from prometheus_client import generate_latest

from darknet_py import cli
from darknet_py.live.health import metrics_registry
from darknet_py.media import notify_mqtt
from darknet_py.media.notify import STATE_EVERY_S, Notifier, NotifySink
from darknet_py.media.sinks import Result
from darknet_py.media.source_status import SourceStatus
from darknet_py.pipeline.detections import Detections
from tests.conftest import IMAGES, darknet_warnings, free_port, refused_before_work
from tests.event_pipe import EventPipe
from tests.mqtt_broker import Broker, Proxy, Subscriber, make_certificates
from tests.test_clips import _lines, _model_args, video  # noqa: F401 - the clip video, a shared fixture
from tests.test_notify import receiver
from tests.test_tracking import crossing, expected  # noqa: F401 - the generated crossing, shared fixtures
from tests.test_watch import WatchRun, _command, _records


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(tmp_path / "broker").start()
    try:
        yield started
    finally:
        started.stop()


@contextlib.contextmanager
def subscribed(broker: Broker, topic: str, **kwargs) -> Iterator[Subscriber]:
    subscriber = Subscriber(broker, topic, **kwargs)
    try:
        yield subscriber
    finally:
        subscriber.close()


def _objects_states(records: list[dict], fps: float | None = None) -> tuple[list[tuple[int, dict]], set[int]]:
    """(frame, objects) of each `objects` state a run over frames with *records* (detections.jsonl; an untracked
    file's give no time: frame / *fps*) sends, by the
    rule the docs give — the first frame's, then a change at least STATE_EVERY_S of video time after the last one
    sent, and the last frame's if it differs from the last sent — and the frames whose state, sent during the run, has
    more of some class than the one before (each sends a snapshot)."""
    sent: list[tuple[int, dict]] = []
    rose: set[int] = set()
    sent_at = 0.0
    for record in records:
        objects = dict(sorted(Counter(found["name"] for found in record["detections"]).items()))
        time = record["time"] if "time" in record else record["frame"] / fps
        if not sent or (objects != sent[-1][1] and time - sent_at >= STATE_EVERY_S):
            before = sent[-1][1] if sent else {}
            if any(count > before.get(name, 0) for name, count in objects.items()):
                rose.add(record["frame"])
            sent.append((record["frame"], objects))
            sent_at = time
    if objects != sent[-1][1]:
        sent.append((records[-1]["frame"], objects))
    return sent, rose


def _video_frames(path: Path) -> list[np.ndarray]:
    """Every frame of *path*, decoded by OpenCV (the reference the snapshots are compared with)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _check_snapshots(snapshots: list[bytes], frames: list[np.ndarray], at_frames: list[int]) -> None:
    """Each snapshot is a JPEG of the video's frame it should be (of all frames, the closest to it) with boxes drawn on
    it (pixels far from the frame's)."""
    assert len(snapshots) == len(at_frames)
    for jpeg, frame_index in zip(snapshots, at_frames):
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == frames[0].shape
        distances = [float(np.abs(picture.astype(np.int16) - frame).mean()) for frame in frames]
        assert int(np.argmin(distances)) == frame_index, (frame_index, sorted(range(len(frames)), key=distances.__getitem__)[:3])
        assert int((np.abs(picture.astype(np.int16) - frames[frame_index]).max(axis=2) > 80).sum()) > 100  # drawn


@pytest.mark.timeout(300)
def test_each_event_clip_and_state_is_published_under_its_source_and_type(crossing: Path, expected: dict,  # noqa: F811
                                                                          tmp_path: Path, broker: Broker) -> None:
    """The generated crossing counted at its line and zone, with clips around the events: the broker gets `online` on
    darknet/crossing/status, each events.jsonl line on darknet/crossing/event and each clips.jsonl line (with the clip's
    absolute path) on …/clip, in their files' order; retained states: on …/counts the counts at the first frame and
    after each frame with events (the last equal to counts.json), on …/objects the classes in view by the rule the docs
    give, checked against detections.jsonl, on …/snapshot the annotated frame of each event and of each rise in the
    objects, each the video's frame it should be (OpenCV's decoding) with boxes drawn; then `offline`. A subscriber that
    comes later is told the last of each state and that the run is down. The run's last line says how many were
    delivered."""
    out, url = tmp_path / "out", f"{broker.url}/darknet"
    with subscribed(broker, "darknet/#") as subscriber:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = cli.main(["detect", str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0",
                             "--track", "--line", expected["shapes"]["lines"][0], "--zone",
                             expected["shapes"]["zones"][0], "--clips", "0.4", "--clip-on", "events", "--no-save",
                             "--save-json", "jsonl", "--notify", url, "--output", str(out)])
        assert code == 0, stderr.getvalue()
        events, clips = _lines(out / "events.jsonl"), _lines(out / "clips.jsonl")
        records = _lines(out / "detections.jsonl")
        counts = json.loads((out / "counts.json").read_text())
        counted_frames = sorted({records[0]["frame"], *(event["frame"] for event in events)})
        objects, rose = _objects_states(records)
        snapshot_frames = sorted({*(event["frame"] for event in events), *rose})
        assert events and clips and len(objects) >= 2
        got = subscriber.take(2 + len(events) + len(clips) + len(counted_frames) + len(objects) + len(snapshot_frames))
        assert subscriber.received.empty()  # `offline` was published last: nothing else can be on its way
    assert got[0] == ("darknet/crossing/status", "online", False)
    assert got[-1] == ("darknet/crossing/status", "offline", False)
    published: dict[str, list[dict]] = {}
    for topic, payload, retained in got[1:-1]:
        assert not retained  # live: a subscriber already there gets a retained message as any other
        published.setdefault(topic, []).append(payload if topic.endswith("/snapshot") else json.loads(payload))
    _check_snapshots(published.pop("darknet/crossing/snapshot"), _video_frames(crossing.parent / "crossing.avi"),
                     snapshot_frames)
    assert published.pop("darknet/crossing/event") == [{"type": "event", "source": "crossing", **event} for event in events]
    assert published.pop("darknet/crossing/clip") == [
        {"type": "clip", "source": "crossing", **clip, "path": str((out / clip["file"]).resolve())} for clip in clips]
    sent_counts = published.pop("darknet/crossing/counts")
    assert [state["frame"] for state in sent_counts] == counted_frames
    assert {key: sent_counts[-1][key] for key in counts} == counts and set(sent_counts[-1]["inside"]) == set(counts["zones"])
    sent_objects = published.pop("darknet/crossing/objects")
    assert [(state["frame"], state["objects"]) for state in sent_objects] == objects
    times = {record["frame"]: record["time"] for record in records}
    assert [state["time"] for state in sent_objects] == [times[frame] for frame, _ in objects]
    assert not published
    assert f"notify: {len(got) - 2} delivered to {url}\n" in stderr.getvalue()
    with subscribed(broker, "darknet/crossing/+") as later:
        last = {topic: (payload, retained) for topic, payload, retained in later.take(4)}
    assert last.pop("darknet/crossing/snapshot")[1]
    assert last == {"darknet/crossing/status": ("offline", True),
                    "darknet/crossing/counts": (json.dumps(sent_counts[-1]), True),
                    "darknet/crossing/objects": (json.dumps(sent_objects[-1]), True)}


@pytest.mark.timeout(300)
def test_several_sources_each_have_their_topics_and_status(video, tmp_path: Path, broker: Broker) -> None:  # noqa: F811
    """Two videos of one name through one model: each one's clips go to darknet/walk/clip and darknet/walk-2/clip, its
    objects to …/objects, and each has its own status (online first, offline last: a connection each, so one source's
    end is not taken for the others')."""
    path, _ = video
    twin = tmp_path / "twin" / path.name
    twin.parent.mkdir()
    twin.write_bytes(path.read_bytes())
    out = tmp_path / "out"
    with subscribed(broker, "darknet/#") as subscriber:
        assert cli.main(["detect", str(path), str(twin), *_model_args(), "--clips", "1", "--no-save", "--notify",
                         f"{broker.url}/darknet", "--output", str(out)]) == 0
        got: list[tuple[str, str, bool]] = []
        while sum(payload == "offline" for _, payload, _ in got) < 2:  # each source's last message
            got.append(subscriber.next())
    for name in ("walk", "walk-2"):
        mine = [(topic.split("/")[2], payload) for topic, payload, _ in got if topic.split("/")[1] == name]
        assert mine[0] == ("status", "online") and mine[-1] == ("status", "offline")
        assert [json.loads(payload) for kind, payload in mine if kind == "clip"] == [
            {"type": "clip", "source": name, **clip, "path": str((out / name / clip["file"]).resolve())}
            for clip in _lines(out / name / "clips.jsonl")]
        assert {kind for kind, _ in mine} == {"status", "clip", "objects", "snapshot"}


@pytest.mark.timeout(300)
def test_a_video_alone_sends_a_broker_its_objects_in_view(video, tmp_path: Path, broker: Broker) -> None:  # noqa: F811
    """A video file with neither lines nor clips, which a webhook would have nothing from: a broker is sent its objects
    states (the first frame's first, the last frame's last, as detections.jsonl counts them) and their pictures."""
    path, _ = video
    out = tmp_path / "out"
    with subscribed(broker, "d/#") as subscriber:
        assert cli.main(["detect", str(path), *_model_args(), "--no-save", "--save-json", "jsonl", "--notify",
                         f"{broker.url}/d", "--output", str(out)]) == 0
        got: list[tuple[str, str | bytes, bool]] = []
        while not got or got[-1][1] != "offline":
            got.append(subscriber.next())
    records = _lines(out / "detections.jsonl")
    objects = [json.loads(payload) for topic, payload, _ in got if topic == "d/walk/objects"]
    expected_states, rose = _objects_states(records, cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS))
    assert [(state["frame"], state["objects"]) for state in objects] == expected_states
    assert sum(topic == "d/walk/snapshot" for topic, _, _ in got) == len(rose) > 0


@pytest.mark.timeout(300)
def test_a_webhook_and_a_broker_each_get_every_event(crossing: Path, expected: dict, tmp_path: Path,  # noqa: F811
                                                      broker: Broker) -> None:
    """--notify given twice, an HTTP receiver and a broker: each gets every events.jsonl line (the webhook with the
    --notify-header, the broker without: it has none), the broker its states too, the webhook no states; the run's last
    lines count each."""
    out, url = tmp_path / "out", f"{broker.url}/darknet"
    with subscribed(broker, "darknet/crossing/event") as subscriber, receiver() as hook:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = cli.main(["detect", str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0",
                             "--track", "--line", expected["shapes"]["lines"][0], "--no-save", "--notify", hook.url,
                             "--notify", url, "--notify-header", "Authorization: Bearer s3cret", "--output", str(out)])
        assert code == 0, stderr.getvalue()
        events = _lines(out / "events.jsonl")
        published = [json.loads(payload) for _, payload, _ in subscriber.take(len(events))]
    assert events
    assert hook.taken() == published == [{"type": "event", "source": "crossing", **event} for event in events]
    assert set(hook.authorization) == {"Bearer s3cret"}
    err = stderr.getvalue()
    assert f"notify: {len(events)} delivered to {hook.url}\n" in err and "s3cret" not in err
    to_broker = re.search(rf"notify: (\d+) delivered to {re.escape(url)}\n", err)
    assert to_broker and int(to_broker[1]) > len(events)  # the states too


def _frame(frame: int, names: list[str]) -> Result:
    """A 10 fps video's frame holding one box of each class in *names* (of dog, cat)."""
    classes = ["dog", "cat"]
    found = Detections(np.zeros((len(names), 4), np.float32), np.ones(len(names), np.float32),
                       np.array([classes.index(name) for name in names], np.int64), classes, (64, 48))
    return Result("yard.mp4", frame, np.zeros((48, 64, 3), np.uint8), found, fps=10.0)


@pytest.mark.timeout(120)
def test_the_objects_state_is_the_latest_at_most_once_a_second(broker: Broker, notifier_events: EventPipe) -> None:
    """Frames at 10 fps: the first frame's objects are sent; a change 0.1 s later is held back (less than a second
    after the last sent), a return to what was sent sends nothing, a change 1.2 s in is sent, and the last frame's
    objects, different from the last sent and too soon to be sent, are sent when the run ends. A snapshot goes with each
    state sent during the run that holds more of a class than the one before."""
    # each frame, and the messages delivered once it is written (each one let go before the next frame: a frame's
    # state waiting behind another is replaced by a newer one only while the broker is away, never here)
    frames = [(0, ["dog"], 2), (1, [], 2), (2, ["dog"], 2), (5, ["dog", "dog"], 2), (12, ["cat", "dog"], 4),
              (13, ["cat"], 4)]
    with subscribed(broker, "t/#") as subscriber:
        sink = NotifySink(Notifier(f"{broker.url}/t", source="yard"), "yard")
        for frame, names, delivered in frames:
            sink.write(_frame(frame, names))
            notifier_events.wait_for(f"notify-delivered {delivered}", None)
        sink.finish()
        got = [subscriber.next() for _ in range(7)]
    assert got[0][:2] == ("t/yard/status", "online") and got[-1][:2] == ("t/yard/status", "offline")
    assert [(topic, json.loads(payload)) for topic, payload, _ in got[1:-1] if topic == "t/yard/objects"] == [
        ("t/yard/objects", {"type": "objects", "source": "yard", "objects": objects, "frame": frame, "time": frame / 10})
        for frame, objects in ((0, {"dog": 1}), (12, {"cat": 1, "dog": 1}), (13, {"cat": 1}))]
    # a snapshot where something came into view: the first frame, and frame 12's cat (not the end's fewer)
    assert [topic for topic, _, _ in got[1:-1]] == ["t/yard/objects", "t/yard/snapshot"] * 2 + ["t/yard/objects"]
    for _, jpeg, _ in got[2:5:2]:
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)


@pytest.mark.timeout(120)
def test_a_picture_the_encoder_refuses_is_dropped_and_the_messages_after_it_go(broker: Broker, notifier_events: EventPipe,
                                                                              recwarn) -> None:
    """A picture JPEG cannot hold (no pixels), queued between two messages: one warning, counted undelivered; the
    notifier's thread goes on and delivers the next message (it used to end the thread, and every message after)."""
    with subscribed(broker, "t/yard/#") as subscriber:
        notifier = Notifier(f"{broker.url}/t", source="yard")
        notifier.post({"type": "event", "source": "yard", "n": 1})
        notifier.post_image("yard", "snapshot", np.zeros((0, 0, 3), np.uint8))
        notifier.post({"type": "event", "source": "yard", "n": 2})
        notifier_events.wait_for("notify-delivered 2", None)  # the two events (the status is the connection's own)
        report = notifier.close(30)
        got = [subscriber.next() for _ in range(4)]
    assert [(topic, payload) for topic, payload, _ in got] == [
        ("t/yard/status", "online"), ("t/yard/event", '{"type": "event", "source": "yard", "n": 1}'),
        ("t/yard/event", '{"type": "event", "source": "yard", "n": 2}'), ("t/yard/status", "offline")]
    assert (report.delivered, report.undelivered) == (2, 1)
    assert darknet_warnings(recwarn) == [f"--notify {broker.url}/t: cannot JPEG-encode a 0x0x3 uint8 image: "
                                         f"{report.last_error.split(': ', 1)[1]}: that picture is dropped"]


@pytest.mark.timeout(300)
def test_a_run_killed_is_marked_offline_by_the_broker(tmp_path: Path, broker: Broker) -> None:
    """--watch with --notify mqtt://…/cams: each photo something is found in is published on cams/yard/detections as its
    detections.jsonl record (with file and path), and its picture on cams/yard/snapshot (the photo, boxes drawn); then
    the run is SIGKILLed — no handler runs, nothing of ours says goodbye — and the broker publishes the connection's
    last will, `offline` on cams/yard/status, retained. Before, --serve's /health showed the 4 messages delivered."""
    folder, out = tmp_path / "yard", tmp_path / "out"
    folder.mkdir()
    shutil.copy(IMAGES / "dog.jpg", folder / "dog.jpg")
    port = free_port()
    with subscribed(broker, "cams/#") as subscriber, \
            WatchRun(_command(folder, out, "--notify", f"{broker.url}/cams", "--serve", str(port))) as run:
        assert subscriber.next() == ("cams/yard/status", "online", False)
        run.wait_for("watch-idle 1")
        shutil.copy(IMAGES / "horses.jpg", folder / "horses.jpg")
        run.wait_for("watch-idle 2")
        run.wait_for("notify-delivered 4")
        published = subscriber.take(4)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60) as answer:
            (source,) = json.loads(answer.read())["sources"]
        run.process.send_signal(signal.SIGKILL)
        assert run.process.wait(60) == -signal.SIGKILL
        assert subscriber.next() == ("cams/yard/status", "offline", False)
    assert source["notify"] == [{"url": f"{broker.url}/cams", "up": True, "waiting": 0, "delivered": 4, "refused": 0,
                                 "undelivered": 0, "replaced": 0, "last_error": ""}]
    records = _records(out)
    assert [Path(record["source"]).name for record in records] == ["dog.jpg", "horses.jpg"]
    assert [(topic, json.loads(payload)) for topic, payload, _ in published[::2]] == [
        ("cams/yard/detections", {"type": "detections", "source": "yard", "file": name,
                                  "path": str((folder / name).resolve()),
                                  **{key: value for key, value in record.items() if key != "source"}})
        for name, record in zip(("dog.jpg", "horses.jpg"), records)]
    assert [topic for topic, _, _ in published[1::2]] == ["cams/yard/snapshot"] * 2
    for (_, jpeg, _), name in zip(published[1::2], ("dog.jpg", "horses.jpg")):
        picture, photo = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.imread(str(IMAGES / name))
        difference = np.abs(picture.astype(np.int16) - photo).max(axis=2)
        assert picture.shape == photo.shape and np.median(difference) < 8 and (difference > 80).sum() > 100
    with subscribed(broker, "cams/yard/status") as later:
        assert later.next() == ("cams/yard/status", "offline", True)


@pytest.mark.timeout(300)
def test_a_broker_that_is_down_gets_every_message_in_order_once_it_is_back(tmp_path: Path, notifier_events: EventPipe,
                                                                            recwarn) -> None:
    """The broker stops (keeping its sessions, as Mosquitto with persistence does across a restart); a state is posted,
    its first try fails (one warning), then 5 events each followed by a newer state: once the broker is started again
    on its port every event is delivered, in order, to a subscriber whose session the broker kept — after the run's
    `online` — with the first state (on its way when the broker went) and the last (the 4 between replaced)."""
    broker = Broker(tmp_path / "broker", persistence=True).start()
    try:
        with subscribed(broker, "t/#", session="test-subscriber") as subscriber:
            broker.stop()
            notifier = Notifier(f"{broker.url}/t")
            notifier.post({"type": "counts", "source": "gate", "n": 0}, retain=True)
            notifier_events.wait_for("notify-failed 1", None)  # no broker: not connected within the try
            for n in range(5):
                notifier.post({"type": "event", "source": "gate", "n": n})
                notifier.post({"type": "counts", "source": "gate", "n": n + 1}, retain=True)
            broker.start()
            notifier_events.wait_for("notify-delivered 7", None)
            report = notifier.close()
            got = subscriber.take(9)
    finally:
        broker.stop()
    assert got[0][:2] == ("t/status", "online") and got[-1][:2] == ("t/status", "offline")
    # the first state was on its way when the broker went; of the 5 posted while it was away, the last one
    assert [(topic, json.loads(payload)) for topic, payload, _ in got[1:-1]] == [
        ("t/gate/counts", {"type": "counts", "source": "gate", "n": 0}),
        *(("t/gate/event", {"type": "event", "source": "gate", "n": n}) for n in range(5)),
        ("t/gate/counts", {"type": "counts", "source": "gate", "n": 5})]
    assert (report.delivered, report.refused, report.undelivered, report.replaced) == (7, 0, 0, 4)
    warned = darknet_warnings(recwarn)
    assert len(warned) == 1 and warned[0].startswith(f"--notify {broker.url}/t: cannot be reached: "), warned
    assert "trying again, messages kept in order" in warned[0]


@pytest.mark.timeout(300)
def test_health_and_metrics_show_a_receiver_that_is_down_then_back(tmp_path: Path, notifier_events: EventPipe,
                                                                   recwarn) -> None:
    """A source's /health figures and /metrics (SourceStatus, as --serve shows them) with a --notify broker that is not
    there yet: down, the message waiting, the reason; once the broker is started on its port: up, delivered."""
    broker = Broker(tmp_path / "broker")
    url = f"{broker.url}/t"
    status = SourceStatus("cam")
    sink = NotifySink(Notifier(url, source="cam"), "cam")
    sink.watch(status)
    registry = metrics_registry(lambda: [status])
    try:
        sink.notifier.post({"type": "event", "source": "cam", "n": 0})
        notifier_events.wait_for("notify-failed 1", None)
        (down,) = status.snapshot()["notify"]
        assert (down["url"], down["up"], down["waiting"], down["delivered"]) == (url, False, 1, 0)
        assert down["last_error"].startswith("cannot be reached: ")
        assert f'darknet_py_notify_up{{source="cam",url="{url}"}} 0.0' in generate_latest(registry).decode()
        broker.start()
        notifier_events.wait_for("notify-delivered 1", None)
        (up,) = status.snapshot()["notify"]
        assert (up["up"], up["waiting"], up["delivered"]) == (True, 0, 1)
        text = generate_latest(registry).decode()
        assert f'darknet_py_notify_up{{source="cam",url="{url}"}} 1.0' in text
        assert f'darknet_py_notify_delivered_total{{source="cam",url="{url}"}} 1.0' in text
        sink.finish()
    finally:
        broker.stop()
    assert len(darknet_warnings(recwarn)) == 1


@pytest.mark.timeout(300)
def test_a_message_whose_acknowledgement_is_lost_is_resent_by_paho_not_published_again(
        broker: Broker, notifier_events: EventPipe, monkeypatch, recwarn) -> None:
    """Through a proxy that loses the broker's answers: a message is published (the broker has it: a subscriber gets
    it), its acknowledgement never comes back and the try fails (ANSWER_S, made 1 s here); then the connection is cut.
    On reconnecting, paho-mqtt resends it — the same packet id, flagged DUP — and the notifier's next try collects its
    acknowledgement: delivered once; the run itself publishes it no second time (the next PUBLISH is the next message).
    QoS 1 is at least once: the subscriber may see it twice."""
    monkeypatch.setattr(notify_mqtt, "ANSWER_S", 1.0)
    proxy = Proxy(broker)
    try:
        with subscribed(broker, "t/#") as subscriber:
            notifier = Notifier(f"mqtt://127.0.0.1:{proxy.port}/t")
            assert subscriber.next()[:2] == ("t/status", "online")
            proxy.hold_answers.set()
            notifier.post({"type": "event", "source": "gate", "n": 0})
            first_flags, first_id, first = proxy.published("t/gate/event")
            assert subscriber.next()[:2] == ("t/gate/event", json.dumps({"type": "event", "source": "gate", "n": 0}))
            notifier_events.wait_for("notify-failed 1", None)  # no acknowledgement within the try
            proxy.cut()
            again_flags, again_id, again = proxy.published("t/gate/event")
            notifier_events.wait_for("notify-delivered 1", None)
            notifier.post({"type": "event", "source": "gate", "n": 1})
            notifier_events.wait_for("notify-delivered 2", None)
            _, _, following = proxy.published("t/gate/event")  # the next message, not another copy of the first
            report = notifier.close()
    finally:
        proxy.close()
    assert (first_flags & 0x08, again_flags & 0x08) == (0, 0x08) and again_id == first_id  # DUP, the same packet
    assert first == again == json.dumps({"type": "event", "source": "gate", "n": 0}).encode()
    assert following == json.dumps({"type": "event", "source": "gate", "n": 1}).encode()
    assert (report.delivered, report.undelivered) == (2, 0)
    assert darknet_warnings(recwarn) == [f"--notify mqtt://127.0.0.1:{proxy.port}/t: no acknowledgement from the broker within "
                                  f"1 s; trying again, messages kept in order (up to 10000)"]


@pytest.mark.timeout(300)
def test_a_user_and_password_in_the_url_log_in_and_a_wrong_one_is_warned_of(tmp_path: Path,
                                                                             notifier_events: EventPipe,
                                                                             recwarn) -> None:
    """A broker that asks for a password: `mqtt://user:p%40ss@…` logs in as user with p@ss, and a source named with
    wildcards is one topic level (`a+b#c` → a_b_c); a wrong password is refused by the broker: one warning that says
    so, the message counted not delivered, and the password shown nowhere."""
    broker = Broker(tmp_path / "broker", users={"cam": "p@ss"}).start()
    try:
        with subscribed(broker, "t/#", user=("cam", "p@ss")) as subscriber:
            sink = NotifySink(Notifier(f"mqtt://cam:p%40ss@127.0.0.1:{broker.port}/t"), "a+b#c")
            sink.notifier.post({"type": "event", "source": sink.source, "n": 0})
            notifier_events.wait_for("notify-delivered 1", None)
            sink.finish()
            got = subscriber.take(3)
        wrong = NotifySink(Notifier(f"mqtt://cam:wrong@127.0.0.1:{broker.port}/t"), "gate")
        wrong.notifier.post({"type": "event", "source": "gate", "n": 1})
        notifier_events.wait_for("notify-failed 1", None)
        wrong.finish()
    finally:
        broker.stop()
    assert got[1] == ("t/a_b_c/event", json.dumps({"type": "event", "source": "a+b#c", "n": 0}), False)
    assert sink.summary() == f"notify: 1 delivered to mqtt://***@127.0.0.1:{broker.port}/t"
    warned = darknet_warnings(recwarn)
    assert warned == [f"--notify mqtt://***@127.0.0.1:{broker.port}/t: the broker refused the connection: Not "
                      f"authorized; trying again, messages kept in order (up to 10000)"]
    assert wrong.summary() == (f"notify: 0 delivered to mqtt://***@127.0.0.1:{broker.port}/t, 1 not delivered (last: "
                               f"the broker refused the connection: Not authorized)")


@pytest.mark.timeout(300)
def test_mqtts_checks_the_brokers_certificate(tmp_path: Path, notifier_events: EventPipe, monkeypatch,
                                              recwarn) -> None:
    """A broker over TLS whose certificate a CA made here signed: with that CA as the trusted bundle (SSL_CERT_FILE, as
    for OpenSSL) the message is delivered; with the system's CAs only, the connection fails on the certificate."""
    ca, cert, key = make_certificates(tmp_path)
    broker = Broker(tmp_path / "broker", tls=(cert, key)).start()
    url = f"mqtts://127.0.0.1:{broker.port}/t"
    try:
        untrusted = Notifier(url)
        untrusted.post({"type": "event", "source": "gate", "n": 0})
        notifier_events.wait_for("notify-failed 1", None)
        assert untrusted.close().undelivered == 1
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with subscribed(broker, "t/#", ca=ca) as subscriber:
            trusted = Notifier(url)
            trusted.post({"type": "event", "source": "gate", "n": 1})
            notifier_events.wait_for("notify-delivered 1", None)
            assert trusted.close().delivered == 1
            got = subscriber.take(3)
    finally:
        broker.stop()
    assert got[1] == ("t/gate/event", json.dumps({"type": "event", "source": "gate", "n": 1}), False)
    warned = darknet_warnings(recwarn)
    assert len(warned) == 1 and "certificate verify failed" in warned[0], warned


@pytest.mark.parametrize("url, flags, line", [
    ("mqtt://", [], "error: --notify mqtt://: give the broker, mqtt://HOST[:PORT]/TOPIC"),
    ("mqtt://broker:port/t", [], "error: --notify mqtt://broker:port/t: the port must be a number from 1 to 65535"),
    ("mqtt://broker/cams/#", [], "error: --notify mqtt://broker/cams/#: the topic 'cams/#' holds + or #, MQTT's "
                                 "wildcards, which a message cannot be published to"),
    ("mqtt://broker/cams?qos=2", [], "error: --notify mqtt://broker/cams?qos=2: an MQTT URL is mqtt://HOST[:PORT]/TOPIC, "
                                     "without ?…"),
    ("mqtt://broker/cams/+/x", [], "error: --notify mqtt://broker/cams/+/x: the topic 'cams/+/x' holds + or #, MQTT's "
                                   "wildcards, which a message cannot be published to"),
    ("mqtt://b/t", ["--notify", "mqtt://b/t"], "error: --notify mqtt://b/t is given twice: each URL would get every "
                                               "message twice"),
    ("mqtt://u:secret@broker/t", ["--notify-header", "X-Token: s3cret"],
     "error: --notify-header: headers go with an http(s):// --notify; an MQTT broker (mqtt://***@broker/t) takes none "
     "(put a user and password in the URL)"),
])
def test_mqtt_urls_that_mean_nothing_are_one_line_before_any_work(url: str, flags: list[str], line: str,
                                                                   tmp_path: Path, capsys) -> None:
    refused_before_work(["--notify", url, "--clips", "2", *flags], line, tmp_path / "o", capsys)
