"""Clips of the moments something happens (--clips SECONDS, --clip-on): which frames each clip holds, by the rule the
docs give, worked out here from the run's own records (or events) and from how the test video was made; each clip
decoded by OpenCV's FFmpeg and matched frame by frame against the frames that went in; a camera's clips (the real
RTSP server) finished on Ctrl-C, dated, and going on from an earlier run's; flags that mean nothing refused.

Every wait is on an event of the run (darknet_py.core.events).
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py import cli
from darknet_py.core.dates import utc_stamp
from tests.conftest import SHARED, VIDEO, frame_count, official, opencv_frames, refused_before_work, shared_path
from tests.event_pipe import interrupt_at
from tests.rtsp_camera import RtspCamera
from tests.test_tracking import crossing, expected  # noqa: F401 - the generated crossing, shared fixtures

WAIT = 300.0  # a hang guard for each wait; reached only when something is broken
FPS = 10
DOG_FRAMES = [*range(30, 40), *range(80, 85)]  # the frames showing dog.jpg; the rest are plain grey, empty


def _model_args() -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return ["--cfg", str(cfg), "--weights", str(weights)]


BITS, STRIP = 7, 40  # each frame's number written in its bottom STRIP rows as BITS black or white blocks


def _frames() -> list[np.ndarray]:
    """100 frames, each carrying its number in a strip of blocks along the bottom: above it dog.jpg (dog, bicycle,
    truck: detected) or plain grey (nothing to detect)."""
    dog = cv2.resize(cv2.imread(str(shared_path(SHARED / "data" / "images" / "dog.jpg"))), (640, 480 - STRIP))
    frames = []
    for i in range(100):
        frame = np.full((480, 640, 3), 110, np.uint8)
        if i in DOG_FRAMES:
            frame[:480 - STRIP] = dog
        for bit in range(BITS):
            frame[480 - STRIP:, bit * 640 // BITS:(bit + 1) * 640 // BITS] = 230 if i >> bit & 1 else 25
        frames.append(frame)
    return frames


def _number(frame: np.ndarray) -> int:
    """The number a frame carries (see _frames), read from the middle of each block."""
    width = 640 // BITS
    return sum(1 << bit for bit in range(BITS)
               if frame[480 - STRIP + 10:470, bit * width + 20:(bit + 1) * width - 20].mean() > 128)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """The frames as a lossless video (PNG in AVI, so detection sees exactly them), and the frames."""
    path = tmp_path_factory.mktemp("clips") / "walk.avi"
    frames = _frames()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"png "), FPS, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()
    assert frame_count(path) == len(frames)
    return path, frames


def _clips_by_the_rule(triggers: list[int], seconds: float, frames: int, fps: float) -> list[tuple[int, int]]:
    """The docs' rule, frame numbers of a file at *fps*: a clip from SECONDS before its first trigger to SECONDS after
    its last, triggers less than (or exactly) SECONDS apart in one clip; cut at the video's ends."""
    span = round(seconds * fps)
    groups: list[list[int]] = []
    for frame in triggers:
        if groups and frame - groups[-1][-1] <= span:
            groups[-1].append(frame)
        else:
            groups.append([frame])
    return [(max(0, group[0] - span), min(frames - 1, group[-1] + span)) for group in groups]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(300)
def test_clips_hold_the_seconds_around_each_run_of_detections_frame_for_frame(video, tmp_path: Path) -> None:
    """--clips 1 on a 10 fps video whose frames 30-39 and 80-84 show dog.jpg: two clips, frames 20-49 and 70-94 (a
    second before the first detection to a second after the last), as the records' detections give by the rule too;
    each clip decodes to exactly those frames, in order (each decoded frame's number read from its pixels), and its
    line counts the classes of its detections."""
    path, frames = video
    out = tmp_path / "out"
    code = cli.main(["detect", str(path), *_model_args(), "--clips", "1", "--no-save", "--save-json",
                     "jsonl", "--output", str(out)])
    assert code == 0
    records = _lines(out / "detections.jsonl")
    triggers = [record["frame"] for record in records if record["detections"]]
    assert triggers == DOG_FRAMES  # what the video was made of: detections on dog.jpg only
    expected_clips = _clips_by_the_rule(triggers, 1, len(frames), FPS)
    assert expected_clips == [(20, 49), (70, 94)]
    index = _lines(out / "clips.jsonl")
    assert [(clip["first_frame"], clip["last_frame"]) for clip in index] == expected_clips
    for clip, (first, last) in zip(index, expected_clips):
        assert clip["file"] == f"clips/walk_{first}.mp4" and clip["frames"] == last - first + 1
        assert (clip["time"], clip["seconds"]) == (first / FPS, pytest.approx((last - first) / FPS))
        labels: dict[str, int] = {}
        for record in records[first:last + 1]:
            for detection in record["detections"]:
                labels[detection["name"]] = labels.get(detection["name"], 0) + 1
        assert clip["detections"] == labels and "utc" not in clip  # a file's frames have no date
        assert [_number(image) for image in opencv_frames(out / clip["file"])] == list(range(first, last + 1))
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["walk_20.mp4", "walk_70.mp4"]


@pytest.mark.timeout(300)
def test_clip_classes_choose_the_detections_that_begin_a_clip(video, tmp_path: Path) -> None:
    """--clip-classes dog: the same two clips (every dog.jpg frame has its dog), their lines counting the dogs only,
    the other classes still in the records; --clip-classes person (no one in dog.jpg): no clip, an empty index."""
    path, _ = video
    for wanted, clips in (("dog", [(20, 49, {"dog": 10}), (70, 94, {"dog": 5})]), ("person", [])):
        out = tmp_path / wanted
        assert cli.main(["detect", str(path), *_model_args(), "--clips", "1", "--clip-classes", wanted, "--no-save",
                         "--save-json", "jsonl", "--output", str(out)]) == 0
        assert [(c["first_frame"], c["last_frame"], c["detections"]) for c in _lines(out / "clips.jsonl")] == clips
        names = {d["name"] for record in _lines(out / "detections.jsonl") for d in record["detections"]}
        assert {"dog", "bicycle", "truck"} <= names


@pytest.mark.timeout(300)
def test_keep_clips_deletes_the_oldest_as_each_new_one_is_finished(video, tmp_path: Path) -> None:
    """--keep-clips 1: the index lists both clips, only the newest is on disk; a file the index does not list (a
    user's, in clips/) is left alone."""
    path, _ = video
    out = tmp_path / "out"
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "mine.mp4").write_bytes(b"not the run's")
    code = cli.main(["detect", str(path), *_model_args(), "--clips", "1", "--keep-clips", "1", "--no-save",
                     "--exist-ok", "--output", str(out)])
    assert code == 0
    assert [clip["file"] for clip in _lines(out / "clips.jsonl")] == ["clips/walk_20.mp4", "clips/walk_70.mp4"]
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["mine.mp4", "walk_70.mp4"]
    assert frame_count(out / "clips" / "walk_70.mp4") == 25


@pytest.mark.timeout(300)
def test_clips_on_events_hold_the_seconds_around_each_crossing(crossing: Path, expected: dict,  # noqa: F811
                                                               tmp_path: Path) -> None:
    """--clip-on events --clips 0.4 on the generated crossing (25 fps) counted at its line and zone: clips around the
    frames of events.jsonl by the rule, each decoding to its frame count, its line counting the events that set it
    off by line or zone and direction."""
    out = tmp_path / "out"
    video = crossing.parent / "crossing.avi"
    code = cli.main(["detect", str(video), *_model_args(), "--classes", "0", "--track", "--line",
                     expected["shapes"]["lines"][0], "--zone", expected["shapes"]["zones"][0], "--clips", "0.4",
                     "--clip-on", "events", "--no-save", "--output", str(out)])
    assert code == 0
    events = _lines(out / "events.jsonl")
    assert events
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    expected_clips = _clips_by_the_rule(sorted({event["frame"] for event in events}), 0.4, frame_count(video), fps)
    index = _lines(out / "clips.jsonl")
    assert [(clip["first_frame"], clip["last_frame"]) for clip in index] == expected_clips
    for clip, (first, last) in zip(index, expected_clips):
        inside = [event for event in events if first <= event["frame"] <= last]
        why: dict[str, int] = {}
        for event in inside:
            key = f"{event.get('line', event.get('zone'))} {event['direction']}"
            why[key] = why.get(key, 0) + 1
        assert clip["events"] == why
        assert frame_count(out / clip["file"]) == clip["frames"] == last - first + 1


@pytest.mark.timeout(300)
def test_the_page_lists_the_clips_with_a_link_that_plays_each(video, tmp_path: Path) -> None:
    """--serve with --clips: once the video has ended, headless Chromium shows both clips in the page's `recent` table,
    newest first, each with a link; /health lists them as clips.jsonl does, and each link sends the clip's file, byte
    for byte, or the part of it a Range header asks for (a browser seeking; beyond the file: 416); a name /health does
    not list (another file of the folder, a path out of it) is a 404."""
    from tests.chromium import Chromium, wait_for
    from tests.test_live import LiveRun

    path, _ = video
    out = tmp_path / "out"
    run = LiveRun(str(path), *_model_args(), "--clips", "1", "--serve", "0", "--keep-serving", "--no-save", "--output",
                  str(out))
    try:
        base = run.url("live view")
        with Chromium(tmp_path / "chromium") as browser:
            browser.goto(base)
            rows = browser.evaluate(wait_for(
                "document.getElementById('state').className === 'finished' && "
                "document.querySelectorAll('#recent tbody tr[data-type=clip]').length === 2",
                "[...document.querySelectorAll('#recent tbody tr')].map(tr => [tr.children[2].textContent, "
                "tr.querySelector('a').getAttribute('href')])"))
        with urllib.request.urlopen(base + "health", timeout=60) as reply:
            (source,) = json.loads(reply.read())["sources"]
        sent = {}
        for _, href in rows:
            with urllib.request.urlopen(base + href.lstrip("/"), timeout=60) as reply:
                sent[href] = (reply.headers["Content-Type"], reply.read())
        parts = {}  # a browser seeks by asking for parts of the file (HTTP Range)
        first_href = base + rows[0][1].lstrip("/")
        for asked in ("bytes=100-199", "bytes=-50", "bytes=5-2"):
            with urllib.request.urlopen(urllib.request.Request(first_href, headers={"Range": asked}), timeout=60) as reply:
                parts[asked] = (reply.status, reply.headers["Content-Range"], reply.read())
        with pytest.raises(urllib.error.HTTPError) as beyond:
            urllib.request.urlopen(urllib.request.Request(first_href, headers={"Range": "bytes=99999999-"}), timeout=60)
        refused = [beyond.value.code]
        for name in ("clips.jsonl", "..%2Fclips.jsonl", "walk_21.mp4"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(f"{base}clips/0/{name}", timeout=60)
            refused.append(answer.value.code)
    finally:
        code = run.finish(interrupt=True)
    assert code in (0, 130), "".join(run.seen)
    index = _lines(out / "clips.jsonl")
    assert source["recent"] == [{"type": "clip", **clip} for clip in reversed(index)]
    assert [text.split(":")[0] for text, _ in rows] == ["clip, 2.4 s", "clip, 2.9 s"]
    assert [href for _, href in rows] == ["/clips/0/walk_70.mp4", "/clips/0/walk_20.mp4"]
    for href, (content_type, body) in sent.items():
        assert content_type == "video/mp4" and body == (out / "clips" / href.rsplit("/", 1)[1]).read_bytes()
    assert refused == [416, 404, 404, 404]
    whole = (out / "clips" / "walk_70.mp4").read_bytes()
    size = len(whole)
    assert parts == {"bytes=100-199": (206, f"bytes 100-199/{size}", whole[100:200]),
                     "bytes=-50": (206, f"bytes {size - 50}-{size - 1}/{size}", whole[-50:]),
                     "bytes=5-2": (200, None, whole)}  # an invalid range is ignored: the whole file, as HTTP says


@pytest.fixture
def camera():
    with RtspCamera(shared_path(VIDEO / "car_traffic_small.mp4")) as started:
        yield started


def _camera_run(camera: RtspCamera, out: Path, frames: int) -> None:
    """`detect` on the camera with --clips 0.5, every frame (--keep-all-frames), Ctrl-C once *frames* are done."""
    command = [sys.executable, "-m", "darknet_py.cli", "detect", camera.url, *_model_args(), "--size", "160",
               "--keep-all-frames", "--clips", "0.5", "--no-save", "--save-json", "jsonl", "--exist-ok",
               "--output", str(out)]
    interrupt_at(command, f"frames-detected {frames}")


def _check_camera_clips(index: list[dict], records: list[dict]) -> None:
    """A camera's clips by the rule, on the records' times (the stream's clock): each from 0.5 s before its first
    frame with a detection to 0.5 s after its last (or the run's last frame: Ctrl-C finished it), named and dated by
    its first frame's `utc`, and decoding to its frames."""
    spans: list[list[dict]] = []
    for k, record in enumerate(records):
        if not record["detections"]:
            continue
        if spans and record["time"] - spans[-1][-1]["time"] <= 0.5 + 1e-6:
            spans[-1].append(record)
        else:
            spans.append([record])
    assert spans, "the camera's cars were never detected"
    by_frame = {record["frame"]: k for k, record in enumerate(records)}
    clips = []
    for span in spans:
        first = next(r for r in records if r["time"] >= span[0]["time"] - 0.5 - 1e-6)
        last = [r for r in records if r["time"] <= span[-1]["time"] + 0.5 + 1e-6][-1]
        clips.append((first["frame"], last["frame"]))
    assert [(clip["first_frame"], clip["last_frame"]) for clip in index] == clips
    for clip in index:
        first = records[by_frame[clip["first_frame"]]]
        assert clip["utc"] == first["utc"] and clip["time"] == first["time"]
        stamp = utc_stamp(datetime.fromisoformat(first["utc"]).timestamp())
        assert clip["file"] in (f"clips/cam_{stamp}.mp4", f"clips/cam_{stamp}-2.mp4")
        assert clip["frames"] == by_frame[clip["last_frame"]] - by_frame[clip["first_frame"]] + 1


@pytest.mark.timeout(int(WAIT))
def test_a_cameras_clips_are_finished_on_ctrl_c_dated_and_go_on_across_a_restart(camera: RtspCamera,
                                                                                  tmp_path: Path) -> None:
    """The real RTSP camera (cars in view) with --clips 0.5, stopped with Ctrl-C after 40 frames, then run again into
    its folder: each run's clips follow the rule on its records (the clip open at Ctrl-C finished and listed), each
    named by its first frame's date and decoding to its frames; the second run's lines follow the first's, whose clips
    are all still there as they were."""
    out = tmp_path / "out"
    _camera_run(camera, out, 40)
    first_index, first_records = _lines(out / "clips.jsonl"), _lines(out / "detections.jsonl")
    _check_camera_clips(first_index, first_records)
    first_files = {clip["file"]: (out / clip["file"]).read_bytes() for clip in first_index}
    for clip in first_index:
        assert frame_count(out / clip["file"]) == clip["frames"]
    _camera_run(camera, out, 20)
    index, records = _lines(out / "clips.jsonl"), _lines(out / "detections.jsonl")
    assert index[:len(first_index)] == first_index and len(index) > len(first_index)
    _check_camera_clips(index[len(first_index):], records[len(first_records):])
    assert {name: (out / name).read_bytes() for name in first_files} == first_files
    assert sorted(f"clips/{p.name}" for p in (out / "clips").iterdir()) == sorted(clip["file"] for clip in index)
    start = datetime.fromisoformat(index[0]["utc"])
    assert abs(start - datetime.now(start.tzinfo)) < timedelta(seconds=WAIT)


@pytest.mark.parametrize("flags, line", [
    (["--clips", "0"], "error: --clips 0: give the seconds kept before and after what sets a clip off, more than 0"),
    (["--clip-on", "events"], "error: --clip-on events says what begins a clip of --clips SECONDS: give --clips too"),
    (["--clips", "2", "--clip-on", "events"], "error: --clip-on events begins a clip at a crossing, entry or exit: "
                                              "give --line or --zone"),
    (["--clips", "2", "--ray"], "error: --clips is not available with --ray"),
    (["--keep-clips", "2"], "error: --keep-clips N keeps the newest N clips of --clips SECONDS: give --clips too"),
    (["--clip-classes", "person"], "error: --clip-classes chooses the detections that begin a clip of --clips SECONDS: "
                                   "give --clips too"),
    (["--clips", "1", "--clip-on", "events", "--line", "door=0,0,1,1", "--track", "--clip-classes", "person"],
     "error: --clip-classes chooses the detections that begin a clip; with --clip-on events, crossings do"),
    (["--clips", "2", "--keep-clips", "0"], "error: --keep-clips 0: give how many clips to keep, 1 or more"),
])
def test_clip_flags_that_mean_nothing_are_one_line_before_any_work(flags: list[str], line: str, tmp_path: Path,
                                                                   capsys) -> None:
    refused_before_work(flags, line, tmp_path / "o", capsys)


def test_clips_of_images_are_refused_before_any_work(tmp_path: Path, capsys) -> None:
    image = shared_path(SHARED / "data" / "images" / "dog.jpg")
    assert cli.main(["detect", str(image), "--clips", "2", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == "error: --clips cuts clips out of a video, stream or camera; the source is separate images\n"
    assert not (tmp_path / "o").exists()
