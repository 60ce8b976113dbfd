"""A camera's recording in segments (--segment, --keep-segments): a file per SECONDS of the stream, each a whole video
of the frames its index line says, the oldest deleted beyond N, finished segments whole when the process is killed;
and a camera run again into its folder going on from the last run (records, segments, dataset files); against a real
RTSP server (GStreamer's, tests/rtsp_server.py), files decoded by OpenCV's FFmpeg.

Every wait is on an event of the run (`segment-begun N`; darknet_py.core.events).
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from darknet_py import cli
from darknet_py.media.recording import SEGMENT_TIME_FORMAT, SegmentedRecording, Segmenting
from darknet_py.media.sinks import AnnotatedVideoSink, Result
from darknet_py.pipeline.detections import Detections
from tests.conftest import CLIP_FRAMES, VIDEO, darknet_warnings, frame_count, official, refused_before_work, shared_path
from tests.event_pipe import interrupt_at, kill_at
from tests.rtsp_camera import RtspCamera

WAIT = 300.0  # a hang guard for each wait; reached only when something is broken
SECONDS = 2  # --segment in the camera tests: 50 frames of the 25 fps camera


@pytest.fixture
def camera():
    with RtspCamera(shared_path(VIDEO / "car_traffic_small.mp4")) as started:
        yield started


def _detect(camera: RtspCamera, out: Path, *flags: str) -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return [sys.executable, "-m", "darknet_py.cli", "detect", camera.url, "--cfg", str(cfg), "--weights", str(weights),
            "--size", "160", "--save-json", "jsonl", "--segment", str(SECONDS), "--output", str(out), *flags]


def _index(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "cam.segments.jsonl").read_text().splitlines()]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def _check_index(index: list[dict], records: list[dict], every_frame: bool = False) -> None:
    """Each segment begins at a record: its frame, time and date (`utc`, the same text); SECONDS or more of the stream
    after the one before; named by that date, on the clock of the stream's time. The first begins with the run's first
    record: with *every_frame* (--keep-all-frames) the stream's first frame, at time 0; in the newest-frame mode
    whichever frame the model took first (FFmpeg hands over the stream's first frames at once, so the reader may have
    replaced the first before the model was free: that frame's time, not 0, is the segment's)."""
    record = {record["frame"]: record for record in records}
    assert index[0]["first_frame"] == records[0]["frame"] == 0
    assert (index[0]["time"] == 0.0) if every_frame else (0.0 <= index[0]["time"] == records[0]["time"] < SECONDS)
    start = datetime.fromisoformat(index[0]["utc"]) - timedelta(seconds=index[0]["time"])  # the stream's time 0
    for before, segment in zip(index, index[1:]):
        assert segment["time"] - before["time"] >= SECONDS
        assert segment["first_frame"] > before["first_frame"]
    for segment in index:
        first = record[segment["first_frame"]]
        assert (segment["time"], segment["utc"]) == (first["time"], first["utc"])
        date = datetime.fromisoformat(segment["utc"])
        assert abs(date - (start + timedelta(seconds=segment["time"]))) <= timedelta(milliseconds=1)
        assert segment["file"] == f"cam_{date.astimezone(timezone.utc).strftime(SEGMENT_TIME_FORMAT)}.mp4"
    assert abs(start - datetime.now(timezone.utc)) < timedelta(seconds=WAIT)


def _records_of(index: list[dict], records: list[dict], k: int) -> list[dict]:
    """The records of segment k: from its first frame up to the next segment's."""
    end = index[k + 1]["first_frame"] if k + 1 < len(index) else float("inf")
    return [record for record in records if index[k]["first_frame"] <= record["frame"] < end]


def _check_video(path: Path, records: list[dict]) -> None:
    """A segment (decoded by OpenCV's FFmpeg from its start: it plays on its own) holds exactly its records' frames at
    the camera's size, each shown at its record's time since the segment's first, to the millisecond."""
    capture = cv2.VideoCapture(str(path))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 180)
    shown = []
    while capture.read()[0]:
        shown.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    capture.release()
    assert len(shown) == len(records) == frame_count(path)
    expected = [(record["time"] - records[0]["time"]) * 1000 for record in records]
    assert np.abs(np.array(shown) - expected).max() <= 1.0, list(zip(shown, expected))


def _run(camera: RtspCamera, out: Path, segments_begun: int, *flags: str) -> None:
    """`detect` on the camera until its *segments_begun*th segment has begun, then Ctrl-C (exit 130)."""
    interrupt_at(_detect(camera, out, *flags), f"segment-begun {segments_begun}")


@pytest.mark.timeout(int(WAIT))
def test_a_camera_recorded_in_segments_keeps_the_newest_each_a_whole_video_of_its_frames(camera: RtspCamera,
                                                                                          tmp_path: Path) -> None:
    """--segment 2 --keep-segments 2 (every frame detected: --keep-all-frames), stopped with Ctrl-C once the 4th
    segment has begun: the index lists 4 (or, by the time the stop lands, more) segments; only the newest 2 are on
    disk, the older deleted; each kept file plays from its first frame and holds exactly its records' frames, at the
    camera's size, each at its record's time, and a whole segment is 2 s of the 25 fps camera: 50 frames."""
    out = tmp_path / "out"
    _run(camera, out, 4, "--keep-segments", "2", "--keep-all-frames")
    index, records = _index(out), _records(out)
    assert len(index) >= 4
    _check_index(index, records, every_frame=True)
    kept = [segment["file"] for segment in index[-2:]]
    assert sorted(path.name for path in out.iterdir()) == sorted(["cam.segments.jsonl", "detections.jsonl", *kept])
    for k in (len(index) - 2, len(index) - 1):
        _check_video(out / index[k]["file"], _records_of(index, records, k))
    assert len(_records_of(index, records, len(index) - 2)) == SECONDS * 25  # the stream's clock: every frame 40 ms


@pytest.mark.timeout(int(WAIT))
def test_a_killed_segmented_recording_keeps_its_finished_segments_whole(camera: RtspCamera, tmp_path: Path) -> None:
    """SIGKILL (no handler runs) just as the 3rd segment has begun: the first two are finished videos holding every
    frame their index lines say, each at its record's time (newest-frame mode: the frames skipped take their time);
    nothing else is there but the 3rd (in place, no temporary file; its file appears with its first frame encoded)."""
    out = tmp_path / "out"
    kill_at(_detect(camera, out), "segment-begun 3")
    index, records = _index(out), _records(out)
    assert len(index) == 3
    _check_index(index, records)
    files = {path.name for path in out.iterdir()}
    assert {"cam.segments.jsonl", "detections.jsonl", index[0]["file"], index[1]["file"]} <= files
    assert files <= {"cam.segments.jsonl", "detections.jsonl", *(segment["file"] for segment in index)}
    for k in (0, 1):
        _check_video(out / index[k]["file"], _records_of(index, records, k))


@pytest.mark.timeout(int(WAIT))
def test_a_camera_run_again_into_its_folder_goes_on_from_the_last_run(camera: RtspCamera, tmp_path: Path) -> None:
    """A camera service restarted into the same folder (--exist-ok) loses nothing the last run wrote: its records'
    lines stay and the new run's follow, each dated; --keep-segments 3 counts the last run's segments (the index goes
    on), so the oldest are deleted across the restart; the training set's frames and labels are named by their date,
    so the new run (whose frames are numbered from 0 again) writes over none of them, and its list goes on."""
    out = tmp_path / "out"
    flags = ("--keep-segments", "3", "--save-frames", "10", "--save-txt", "--exist-ok")
    _run(camera, out, 2, *flags)
    first_records = (out / "detections.jsonl").read_text()
    first_frames = {path.name: path.read_bytes() for path in (out / "frames").iterdir()}
    first_labels = {path.name: path.read_bytes() for path in (out / "labels").iterdir()}
    first_list = (out / "frames.txt").read_text()
    first_index = _index(out)
    assert len(first_index) >= 2 and first_frames and first_labels
    _run(camera, out, 3, *flags)
    records, index = _records(out), _index(out)
    assert (out / "detections.jsonl").read_text().startswith(first_records)
    second = records[len(first_records.splitlines()):]
    assert second and second[0]["frame"] == 0 and second[0]["utc"] > json.loads(first_records.splitlines()[-1])["utc"]
    assert index[:len(first_index)] == first_index and len(index) >= len(first_index) + 3
    _check_index(index[len(first_index):], second)
    assert sorted(path.name for path in out.glob("cam_*.mp4")) == sorted(segment["file"] for segment in index[-3:])
    for folder, files in (("frames", first_frames), ("labels", first_labels)):  # the first run's files, as they were
        assert {name: (out / folder / name).read_bytes() for name in files} == files
    listed = (out / "frames.txt").read_text()
    assert listed.startswith(first_list) and len(listed.splitlines()) == len(list((out / "frames").glob("*.jpg")))
    assert all(Path(line).is_file() for line in listed.splitlines())


@pytest.mark.timeout(int(WAIT))
def test_a_cameras_recording_plays_in_the_cameras_time(camera: RtspCamera, tmp_path: Path) -> None:
    """The default newest-frame mode at the network's own size (frames the model cannot keep up with are skipped):
    each frame of the one-file recording shows (OpenCV's FFmpeg) at its record's time since the first, to the
    millisecond, so the video lasts as long as the camera was watched, whatever was skipped."""
    out = tmp_path / "out"
    cfg, weights = official("yolov4-tiny")
    command = [sys.executable, "-m", "darknet_py.cli", "detect", camera.url, "--cfg", str(cfg), "--weights",
               str(weights), "--save-json", "jsonl", "--output", str(out)]
    interrupt_at(command, "frames-detected 40")
    records = _records(out)
    capture, shown = cv2.VideoCapture(str(out / "cam.mp4")), []
    while capture.read()[0]:
        shown.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    assert len(shown) == len(records) >= 40
    expected = [(record["time"] - records[0]["time"]) * 1000 for record in records]
    assert np.abs(np.array(shown) - expected).max() <= 1.0, list(zip(shown, expected))


def test_a_cameras_one_file_recording_never_writes_over_an_earlier_runs(tmp_path: Path) -> None:
    earlier = tmp_path / "cam.mp4"
    earlier.write_bytes(b"the last run's recording")
    sink = AnnotatedVideoSink(earlier)
    for k in range(3):
        sink.write(Result("rtsp://cam/1", k, _frame(40 * k), _no_detections(), 25.0, stream_time=k / 25,
                          captured=float(k), wall_time=1_796_601_600 + k / 25))
    sink.finish()
    assert earlier.read_bytes() == b"the last run's recording"
    assert sink.path == str(tmp_path / "cam-2.mp4") and frame_count(tmp_path / "cam-2.mp4") == 3


def _no_detections() -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["x"], (96, 64))


def _frame(value: int) -> np.ndarray:
    return np.full((64, 96, 3), value, np.uint8)


def test_segments_never_write_over_or_delete_a_file_the_run_did_not_make(tmp_path: Path) -> None:
    """Two segments named for the same second (a rerun into the same folder leaves the first run's files there):
    the new one gets `-2`; --keep-segments 1 deletes this run's older segments and nothing else. MJPG segments are
    written under a temporary name and renamed when finished."""
    at = datetime(2026, 12, 7, 8, 0, 0, tzinfo=timezone.utc)
    earlier_run = tmp_path / f"cam_{at.strftime(SEGMENT_TIME_FORMAT)}.avi"
    earlier_run.write_bytes(b"a file this run did not make")
    recording = SegmentedRecording(tmp_path / "cam.avi", Segmenting(1, keep=1), 25, (96, 64), "mjpg")
    for k, first in enumerate((0, 3, 5)):
        recording.begin(first, float(k), (at + timedelta(seconds=k)).timestamp())
        for value in range(first, first + (3 if k == 0 else 2)):
            recording.write(_frame(value))
    recording.release()
    names = [json.loads(line)["file"] for line in (tmp_path / "cam.segments.jsonl").read_text().splitlines()]
    assert names == ["cam_20261207T080000Z-2.avi", "cam_20261207T080001Z.avi", "cam_20261207T080002Z.avi"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([earlier_run.name, names[2],
                                                                       "cam.segments.jsonl"])
    assert earlier_run.read_bytes() == b"a file this run did not make"
    assert frame_count(tmp_path / names[2]) == 2


@pytest.mark.parametrize("flags, line", [
    (["--keep-segments", "3"], "error: --keep-segments N keeps the newest N files of --segment SECONDS: give --segment"),
    (["--segment", "0.5"], "error: --segment 0.5: give the seconds of each file, 1 or more"),
    (["--segment", "60", "--keep-segments", "0"], "error: --keep-segments 0: give how many files to keep, 1 or more"),
    (["--segment", "60", "--no-save"], "error: --segment cuts the annotated video into files, and --no-save writes"),
    (["--segment", "60", "--ray"], "error: --segment is not available with --ray"),
])
def test_segment_flags_that_mean_nothing_are_one_line_before_any_work(flags: list[str], line: str, tmp_path: Path,
                                                                      capsys) -> None:
    refused_before_work(flags, line, tmp_path / "o", capsys)


def test_segment_given_for_a_file_is_one_warning_and_one_video(clip: Path, tmp_path: Path, recwarn) -> None:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160",
                     "--segment", "1", "--keep-segments", "1", "--output", str(out)]) == 0
    warning = f"{clip} is a file: its annotated video is one file (--segment cuts the recordings of cameras and live " \
              "streams)"
    assert darknet_warnings(recwarn) == [warning]
    assert [path.name for path in out.iterdir()] == ["clip.mp4"] and frame_count(out / "clip.mp4") == CLIP_FRAMES
