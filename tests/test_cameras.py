"""Cameras that stay up, without a network: credentials hidden everywhere, the backoff, the frame buffers
(every frame or the newest), the reconnecting reader against captures that drop, the figures behind /health and
/metrics, and the CLI's flags. The real RTSP server's tests are in test_rtsp.py.

Nothing waits on a timer for correctness: the fake captures end on their own, and each wait is bounded.
"""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from darknet_py import cli
from darknet_py.core.credentials import hide_credentials
from darknet_py.core.errors import InputError
from darknet_py.core.retry import backoff
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.frame_buffer import END, FrameQueue, LatestFrame
from darknet_py.media.live_reader import LiveReader, LiveSourceOptions
from darknet_py.media.sinks import Result, video_stem
from darknet_py.media.source_status import SourceStatus
from darknet_py.media.tracking_sinks import EventsJsonlSink, TrackedResult
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.tracking.counting import CountEvent
from tests.conftest import CLIP_FRAMES, darknet_warnings, frame_count, official

WAIT = 120.0  # a hang guard: every wait here ends in well under a second when things work
QUICK = LiveSourceOptions(first_delay_s=0.001, longest_delay_s=0.004)  # the backoff's shape, without its seconds


# -- credentials ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, shown", [
    ("rtsp://admin:secret@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
    ("rtsp://admin@cam/1", "rtsp://***@cam/1"),
    ("rtsp://user:p@ss@cam/1?x=1", "rtsp://***@cam/1?x=1"),  # a raw "@" in the password: hidden whole
    ("http://cam/snapshot@2x.jpg", "http://cam/snapshot@2x.jpg"),  # an "@" in the path is not a credential
    ("rtsp://cam:554/live", "rtsp://cam:554/live"),
    ("cannot open 'rtsps://a:b@x/1' nor 'http://c:d@y/'", "cannot open 'rtsps://***@x/1' nor 'http://***@y/'"),
    ("video.mp4", "video.mp4"),
])
def test_credentials_are_hidden(given: str, shown: str) -> None:
    assert hide_credentials(given) == shown


def test_output_names_of_a_url_never_hold_its_credentials() -> None:
    assert video_stem("rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101") == "101"
    assert video_stem("rtsp://admin:secret@10.0.0.5") == "stream"
    assert video_stem("http://127.0.0.1:8000/clip.avi") == "clip"


# -- backoff and buffers --------------------------------------------------------------------------------------
def test_backoff_doubles_from_one_second_to_thirty() -> None:
    delays = backoff(1.0, 30.0)
    assert [next(delays) for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_latest_frame_keeps_only_the_newest_and_counts_the_rest() -> None:
    slot = LatestFrame()
    for item in range(5):
        slot.put(item)
    assert slot.get() == 4 and slot.dropped == 4
    slot.put(5)
    slot.close()
    assert slot.get() == 5 and slot.get() is END and slot.dropped == 4


def test_frame_queue_keeps_every_frame_and_never_blocks_a_reader_once_abandoned() -> None:
    frames = FrameQueue(2)
    frames.put(1)
    frames.put(2)
    frames.abandon()
    frames.put(3)  # full, and nobody takes: returns instead of waiting for ever
    frames.close()
    assert [frames.get(), frames.get()] in ([1, 2], [2, END])


# -- the reconnecting reader ------------------------------------------------------------------------------------
class FakeCapture:
    """A connection that gives *frames* frames (each filled with its number), then drops."""

    def __init__(self, frames: int, start: int = 0, shape=(4, 6, 3)) -> None:
        self.left, self.next, self.shape, self.released = frames, start, shape, False

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        self.next += 1
        return True, np.full(self.shape, self.next - 1, np.uint8)

    def release(self) -> None:
        self.released = True


def connections(*plan):
    """reopen() for LiveReader: each entry a FakeCapture to hand out, or an exception to raise (a refused try)."""
    plan, handed = list(plan), []

    def reopen():
        item = plan.pop(0) if plan else ConnectionRefusedError("refused: 'rtsp://u:pw@cam/1'")
        if isinstance(item, Exception):
            raise item
        handed.append(item)
        return item
    return reopen, handed


def read_all(reader: LiveReader, buffer) -> list:
    reader.start()
    items = []
    while (item := buffer.get()) is not END:
        items.append(item)
    reader.join(WAIT)
    assert not reader.is_alive()
    return items


def test_a_stride_counts_a_live_sources_frames_across_reconnects() -> None:
    """--vid-stride 3 on a camera: every 3rd frame received, counted over the connections (3 + 2 + 2 frames), each
    with the run's clock as without a stride."""
    reopen, _ = connections(FakeCapture(2, start=100), FakeCapture(2, start=200))
    buffer = FrameQueue(64)
    reader = LiveReader("cam", FakeCapture(3), reopen, buffer, LiveSourceOptions(reconnect=2, first_delay_s=0.001,
                        longest_delay_s=0.004), SourceStatus("cam"), threading.Event(), lambda line: None, stride=3)
    items = read_all(reader, buffer)
    assert [int(item.image[0, 0, 0]) for item in items] == [0, 100, 201]  # received 1st, 4th, 7th
    times = [item.time for item in items]
    assert times == sorted(times) and times[0] == 0.0 and all(item.index is None for item in items)


def test_video_frames_and_track_take_every_nth_frame(clip: Path) -> None:
    """video_frames(vid_stride=N): the clip's frames 0, N, 2N, … as OpenCV reads them, `.frame` and `.time` theirs in
    the file; track(vid_stride=N) on frames given as arrays takes the same ones."""
    import darknet_py

    capture, frames = cv2.VideoCapture(str(clip)), []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    video = darknet_py.video_frames(str(clip), vid_stride=5)
    seen = [(video.frame, video.time, image) for image in video]
    assert [(frame, time) for frame, time, _ in seen] == [(0, 0.0), (5, 0.2), (10, 0.4)] and video.count == 3
    assert all(np.array_equal(image, frames[frame]) for frame, _, image in seen)
    with pytest.raises(InputError, match="--vid-stride 0"):
        darknet_py.video_frames(str(clip), vid_stride=0)

    class Model:  # what track() calls of a model: the frames it was given are what it detects on
        def detect(self, image, *args, **kwargs):
            given.append(image)
            return [_dets([])]
    given: list = []
    assert len(list(darknet_py.track(Model(), iter(frames), vid_stride=4))) == 3
    assert all(a is b for a, b in zip(given, frames[::4])) and len(given) == 3


def test_a_dropped_source_is_reconnected_and_its_frames_go_on(monkeypatch) -> None:
    emitted, lines = [], []
    monkeypatch.setattr("darknet_py.media.live_reader.events.emit", emitted.append)
    first = FakeCapture(3)
    reopen, handed = connections(ConnectionRefusedError("refused"), FakeCapture(2, start=100),
                                 FakeCapture(2, start=200))
    status, buffer = SourceStatus("rtsp://u:pw@cam/1"), FrameQueue(64)
    reader = LiveReader("rtsp://u:pw@cam/1", first, reopen, buffer, LiveSourceOptions(reconnect=2,
                        first_delay_s=0.001, longest_delay_s=0.004), status, threading.Event(), lines.append)
    items = read_all(reader, buffer)
    assert [int(item.image[0, 0, 0]) for item in items] == [0, 1, 2, 100, 101, 200, 201]
    times = [item.time for item in items]
    assert times == sorted(times) and times[0] == 0.0  # the run's clock: increasing across the gaps
    origins = [item.captured - item.time for item in items]  # when the camera sent it: the run's clock, anchored
    assert max(origins) - min(origins) < 1e-5
    assert first.released and all(capture.released for capture in handed)
    assert emitted == ["source-dropped 1", "source-reconnected 1", "source-dropped 2", "source-reconnected 2",
                       "source-dropped 3"]
    assert reader.gave_up.startswith("rtsp://***@cam/1: gave up after 2 reconnect tries (--reconnect 2)")
    assert len(lines) == 5 and all("pw" not in line for line in lines)  # one line per drop and per reconnect
    assert "reconnected after" in lines[1] and "(2 tries)" in lines[1]
    assert status.snapshot()["drops"] == 3 and status.state == "reconnecting"


def test_reconnect_zero_gives_up_at_the_first_drop() -> None:
    buffer = FrameQueue(8)
    reader = LiveReader("0", FakeCapture(2), connections()[0], buffer, LiveSourceOptions(reconnect=0),
                        SourceStatus("0"), threading.Event(), lambda line: None)
    assert len(read_all(reader, buffer)) == 2 and "not reconnecting (--reconnect 0)" in reader.gave_up


def test_a_stop_ends_the_reader_while_it_waits_to_reconnect() -> None:
    stop, buffer, lines = threading.Event(), FrameQueue(8), []
    reported = threading.Event()

    def report(line: str) -> None:
        lines.append(line)
        reported.set()
    reader = LiveReader("cam", FakeCapture(1), connections()[0], buffer, LiveSourceOptions(first_delay_s=WAIT),
                        SourceStatus("cam"), stop, report)
    reader.start()
    assert reported.wait(WAIT)  # dropped: now waiting WAIT seconds before its first try
    stop.set()
    reader.join(WAIT)
    assert not reader.is_alive() and reader.gave_up is None


def test_a_connection_at_another_size_is_fitted_to_the_first() -> None:
    buffer = FrameQueue(8)
    reopen, _ = connections(FakeCapture(1, shape=(8, 12, 3)))
    reader = LiveReader("cam", FakeCapture(1), reopen, buffer, LiveSourceOptions(reconnect=1, first_delay_s=0.001),
                        SourceStatus("cam"), threading.Event(), lambda line: None)
    assert [item.image.shape for item in read_all(reader, buffer)] == [(4, 6, 3), (4, 6, 3)]


# -- /health and /metrics ---------------------------------------------------------------------------------------
def _dets(labels: list[int]) -> Detections:
    n = len(labels)
    return Detections(np.zeros((n, 4), np.float32), np.ones(n, np.float32), np.array(labels, np.int64),
                      ["person", "car"], (6, 4))


def test_source_figures() -> None:
    now = [100.0]
    status = SourceStatus("rtsp://u:pw@cam/1", clock=lambda: now[0])
    image = np.zeros((4, 6, 3), np.uint8)
    for i in range(10):
        now[0] += 0.5
        # the camera sent frame i at 100.2 + 0.1 i: the detections fall behind by 0.4 s a frame
        status.write(Result("cam", i, image, _dets([0, 0, 1]), captured=100.2 + 0.1 * i))
    now[0] += 1.0
    assert status.dropped() == 1
    figures = status.snapshot()
    (drop,) = figures.pop("recent")  # what happened lately: the drop, dated
    assert figures == {"source": "rtsp://***@cam/1", "state": "reconnecting", "fps": 1.8, "last_frame_age_s": 1.0,
                       "lag_s": 3.9, "frames": 10, "drops": 1, "dropped_frames": 0, "detections": {"person": 20, "car": 10}}
    assert {key: drop[key] for key in ("type", "state", "drops")} == {"type": "source", "state": "reconnecting",
                                                                      "drops": 1}
    now[0] += 2.5
    status.connected()
    back, again = status.snapshot()["recent"]  # newest first
    assert (back["state"], back["drops"], back["down_s"]) == ("connected", 1, 2.5) and again == drop
    assert back["utc"] >= drop["utc"]
    status.finish()
    assert status.state == "ended"


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return response.headers["Content-Type"], response.read()


def test_health_and_metrics_endpoints() -> None:
    status = SourceStatus("rtsp://admin:secret@cam/1")
    status.write(Result("cam", 0, np.zeros((4, 6, 3), np.uint8), _dets([0, 1, 1]), captured=time.monotonic()))
    with LiveView(LiveOptions(serve=0)) as live:
        live.watch(status)
        url = live.urls["serve"]
        kind, body = _get(url + "health")
        assert kind == "application/json"
        (health,) = json.loads(body)["sources"]
        assert health["source"] == "rtsp://***@cam/1" and health["state"] == "connected" and health["frames"] == 1
        kind, body = _get(url + "metrics")
    assert kind.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "secret" not in text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    source = ("source", "rtsp://***@cam/1")
    assert samples[("darknet_py_source_up", (source,))] == 1.0
    assert samples[("darknet_py_source_state", (source, ("state", "reconnecting")))] == 0.0
    assert samples[("darknet_py_source_frames_total", (source,))] == 1.0
    assert 0 <= samples[("darknet_py_source_lag_seconds", (source,))] < WAIT  # written just before the server started
    assert samples[("darknet_py_source_drops_total", (source,))] == 0.0
    assert samples[("darknet_py_detections_total", (("class", "car"), source))] == 2.0
    assert samples[("darknet_py_detections_total", (("class", "person"), source))] == 1.0


# -- the CLI ------------------------------------------------------------------------------------------------------
def test_a_negative_reconnect_is_one_clear_line(capsys, tmp_path: Path) -> None:
    assert cli.main(["detect", "0", "--reconnect", "-1", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --reconnect -1: give a number of tries") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_camera_that_comes_back_then_goes_for_good(clip: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """No camera on CI: index 0 plays the clip, twice (the camera comes back once), then cannot be opened."""
    monkeypatch.setenv("DARKNET_PY_ZOO", str(official("yolov4-tiny")[0].parents[1]))
    real, opened = cv2.VideoCapture, []

    def camera(source):
        opened.append(source)
        return real(str(clip) if len(opened) <= 2 else str(tmp_path / "unplugged"))
    monkeypatch.setattr(cv2, "VideoCapture", camera)
    out = tmp_path / "out"
    code = cli.main(["detect", "0", "--reconnect", "1", "--keep-all-frames", "--save-json", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.rstrip().splitlines()[-1].startswith("error: camera 0: gave up after 1 reconnect try (--reconnect 1)")
    assert err.count("stream lost") == 2 and err.count("reconnected after") == 1
    assert opened == [0, 0, 0]
    records = json.loads((out / "detections.json").read_text())
    assert [r["frame"] for r in records] == list(range(2 * CLIP_FRAMES))  # one numbering across the reconnect
    times = [r["time"] for r in records]
    assert times == sorted(times) and times[CLIP_FRAMES] - times[CLIP_FRAMES - 1] >= 1.0  # the gap: the 1 s wait
    monkeypatch.undo()  # the real cv2.VideoCapture again, to count the video's frames
    assert frame_count(out / "camera0.mp4") == 2 * CLIP_FRAMES  # one annotated video, the gap left out


def test_a_cameras_records_and_events_carry_the_frames_date(clip: Path, tmp_path: Path, monkeypatch) -> None:
    """A live source's records (and events) carry `utc`: this machine's clock when the first frame came, plus the
    record's `time`, to the millisecond; a file's records carry none (test_tracking's schemas)."""
    monkeypatch.setenv("DARKNET_PY_ZOO", str(official("yolov4-tiny")[0].parents[1]))
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda source: real(str(clip)))  # camera 0 plays the clip, then ends
    out = tmp_path / "out"
    before = datetime.now(timezone.utc)
    assert cli.main(["detect", "0", "--reconnect", "0", "--keep-all-frames", "--size", "160", "--save-json", "jsonl",
                     "--no-save", "--output", str(out)]) == 1  # the camera ends: gave up at once
    after = datetime.now(timezone.utc)
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(records) == CLIP_FRAMES
    dates = [datetime.fromisoformat(record["utc"]) for record in records]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["utc"]) for record in records)
    assert before - timedelta(milliseconds=1) <= dates[0] <= dates[-1] <= after
    for record, date in zip(records, dates):
        assert abs((date - dates[0]).total_seconds() - (record["time"] - records[0]["time"])) <= 0.0011


def test_an_event_of_a_live_frame_carries_its_date(tmp_path: Path) -> None:
    event = CountEvent(7, 0.28, 3, 0, "person", "line", "door", "in")
    frame = np.zeros((4, 4, 3), np.uint8)
    sink = EventsJsonlSink(tmp_path / "events.jsonl")
    sink.write(TrackedResult("rtsp://cam/1", 7, frame, _dets([]), 25.0, stream_time=0.28, captured=1.0,
                             wall_time=1_796_601_600.28, events=(event,)))
    sink.write(TrackedResult("walk.mp4", 7, frame, _dets([]), 25.0, events=(event,)))  # a file's frame: no date
    sink.finish()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert lines == [{**event.to_dict(), "utc": "2026-12-07T00:00:00.280Z"}, event.to_dict()]


# -- many sources, one model ------------------------------------------------------------------------------------
def test_many_sources_share_one_detection_loop_each_with_its_own_outputs(clip: Path, tmp_path: Path) -> None:
    from darknet_py.media.many_sources import run_many
    from darknet_py.media.sinks import RecordsJsonSink

    batches: list[int] = []

    def detect_batch(frames):
        batches.append(len(frames))
        return [_dets([0]) for _ in frames]
    records = [RecordsJsonSink(tmp_path / f"{i}.json") for i in range(2)]
    statuses = [SourceStatus(str(clip)), SourceStatus(str(clip))]
    reports = run_many([str(clip), str(clip)], detect_batch, [[records[0]], [records[1]]], statuses=statuses)
    assert [report.frames for report in reports] == [CLIP_FRAMES, CLIP_FRAMES]
    assert sum(batches) == 2 * CLIP_FRAMES and max(batches) <= 2  # one frame a source a batch
    for sink in records:  # files keep every frame, each source numbered on its own
        assert [r["frame"] for r in json.loads(sink.path.read_text())] == list(range(CLIP_FRAMES))
    assert [status.state for status in statuses] == ["ended", "ended"]


def test_source_names_are_distinct_and_never_hold_credentials() -> None:
    from darknet_py.media.sources import source_names

    assert source_names(["rtsp://a:pw@cam1/live", "rtsp://a:pw@cam2/live", 0, "walk.mp4", "rtsp://a:pw@cam3"]) == [
        "live", "live-2", "camera0", "walk", "stream"]


def test_each_source_of_several_has_its_own_streams() -> None:
    import urllib.error

    image = np.zeros((4, 6, 3), np.uint8)
    with LiveView(LiveOptions(serve=0)) as live:
        second = live.source(1)
        url = live.urls["serve"]
        second.write(Result("door", 0, image, _dets([1])))
        second.finish()  # the source ends: its JSON stream sends the last frame, then ends
        kind, body = _get(url + "json/1")
        assert kind == "text/event-stream"
        frames = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:") and
                  line != "data: {}"]
        assert [[o["name"] for o in frame["objects"]] for frame in frames] == [["car"]]
        with pytest.raises(urllib.error.HTTPError, match="404"):
            _get(url + "mjpeg/7")


def test_detect_with_several_videos_writes_each_ones_outputs_in_its_folder(clip: Path, tmp_path: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    assert cli.main(["detect", str(clip), str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160",
                     "--save-json", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert sorted(path.name for path in out.iterdir()) == ["clip", "clip-2"]
    for name in ("clip", "clip-2"):
        assert f"{name}: {CLIP_FRAMES} frames (320x180, 25 fps) → {out / name}" in err
        records = json.loads((out / name / "detections.json").read_text())
        assert [r["frame"] for r in records] == list(range(CLIP_FRAMES))
        assert frame_count(out / name / "clip.mp4") == CLIP_FRAMES
    # with nothing to write, no folder is left behind (neither the sources' nor the one they would share)
    empty = tmp_path / "nothing" / "out"
    assert cli.main(["detect", str(clip), str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160",
                     "--no-save", "--output", str(empty)]) == 0
    assert not (tmp_path / "nothing").exists()
    assert f"clip-2: {CLIP_FRAMES} frames (320x180, 25 fps)\n" in capsys.readouterr().err
    # each source's notes follow its line: what --save-frames kept of it, in its folder
    kept = tmp_path / "kept"
    assert cli.main(["detect", str(clip), str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160",
                     "--no-save", "--save-frames", "4", "--output", str(kept)]) == 0
    lines = capsys.readouterr().err.splitlines()
    for name in ("clip", "clip-2"):
        summary = lines.index(f"{name}: {CLIP_FRAMES} frames (320x180, 25 fps) → {kept / name}")
        assert lines[summary + 1] == (f"frames: 3 image(s) with darknet label files in {kept / name / 'frames'}, "
                                      f"listed in {kept / name / 'frames.txt'} (darknet's {kept / name / 'obj.data'})")
        assert len((kept / name / "frames.txt").read_text().splitlines()) == 3


def test_live_options_given_for_a_file_are_one_warning_and_change_nothing(clip: Path, tmp_path: Path, recwarn) -> None:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160", "--no-save",
                     "--save-json", "--reconnect", "3", "--keep-all-frames", "--output", str(out)]) == 0
    warning = (f"{clip} is a file, read frame by frame to its end: --reconnect and --keep-all-frames apply to cameras "
               "and live streams only")
    assert darknet_warnings(recwarn) == [warning]
    assert len(json.loads((out / "detections.json").read_text())) == CLIP_FRAMES  # every frame, as without them


def test_several_sources_must_be_videos(tmp_path: Path, capsys) -> None:
    photo = str(official("yolov4-tiny")[0])  # any file that is not a video: read as an image source
    assert cli.main(["detect", "0", photo, "--output", str(tmp_path / "o")]) == 2
    assert "several sources must each be a video, a stream or a camera" in capsys.readouterr().err


def test_dropped_frames_are_reported_in_the_progress_and_last_lines() -> None:
    import io

    from darknet_py.core.progress import Progress
    from darknet_py.media.run import RunReport
    from darknet_py.media.video import VideoReport

    report = VideoReport(40, 25.0, (320, 180), False, None, 0, live=True, dropped_frames=160, drops=2)
    assert RunReport(40, False, report).summary() == (
        "40 frames (320x180, 25 fps), 160 dropped for newer ones, 2 connection(s) lost")
    stream = io.StringIO()
    progress = Progress("cam", None, stream=stream, detail=lambda: "160 dropped for newer")
    progress.update(40)
    progress.close()
    assert stream.getvalue().rstrip().endswith("frames/s  160 dropped for newer")


def test_a_cameras_progress_line_gives_its_rate_now_not_its_average_since_it_started(monkeypatch) -> None:
    """A camera that ran at 25 frames/s for an hour, then at 2: its log lines (every 10 s) say 2.0 within 10 s."""
    import io

    from darknet_py.core import progress as progress_module

    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = progress_module.Progress("cam", None, stream=stream)
    for _ in range(3600 * 25):  # an hour at 25 frames/s
        clock[0] += 0.04
        progress.update()
    for _ in range(40):  # then 20 s at 2
        clock[0] += 0.5
        progress.update()
    lines = stream.getvalue().splitlines()
    assert lines[-1].endswith(" frames    2.0 frames/s") and lines[-3].endswith(" frames   25.0 frames/s")
    progress.close()  # the last line: the rate of the last 10 s too
    assert stream.getvalue().splitlines()[-1] == "cam: 90040 frames    2.0 frames/s"
