"""Result sinks (darknet_py.media.sinks): each sink's output on a real photo, exactly; the video sink and the
runs finishing their files when a stop or an error ends the loop; and one record format for the CLI and
the Ray driver.

pytest-timeout is not installed here: every test is small, and the one that starts Ray runs it in a child
process under a timeout. Nothing waits on a timer.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.darknet_json import darknet_frame_text, darknet_json_file
from darknet_py.media.run import run_images
from darknet_py.media.sinks import (
    AnnotatedImagesSink,
    AnnotatedVideoSink,
    DarknetJsonSink,
    ExtOutputSink,
    RecordsJsonSink,
    Result,
    ShowSink,
    YoloLabelsSink,
    detection_record,
    finish_all,
)
from darknet_py.media.video import run_video
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.preprocess import read_image
from tests.conftest import CLIP_FRAMES, IMAGES, REPO, frame_count, official, shared_path

RUN_LIMIT_S = 900  # a hang guard for the child process that starts Ray, not a speed requirement
PHOTOS = ["dog.jpg", "giraffe.jpg", "horses.jpg", "person.jpg"]


@pytest.fixture(scope="module")
def model():
    return darknet_py.load(*official("yolov4-tiny"))


@pytest.fixture(scope="module")
def dog(model) -> tuple[str, np.ndarray, Detections]:
    """The shared dog photo (as given), its pixels and its detections (dog, bicycle, truck)."""
    path = str(shared_path(IMAGES / "dog.jpg"))
    image = read_image(path)
    dets = model.detect(image)[0]
    dets.source = path
    assert len(dets) >= 3
    return path, image, dets


def _image(dog, **fields) -> Result:
    path, image, dets = dog
    return Result(path, None, image, dets, **fields)


def _none(image: np.ndarray, names: list[str] | None = None) -> Detections:
    return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names or ["x"],
                      (image.shape[1], image.shape[0]))


def _two_boxes() -> Detections:
    return Detections(np.array([[10.4, 20.5, 110.6, 220.5], [200, 30, 260, 90]], np.float32),
                      np.array([0.973, 0.5], np.float32), np.array([1, 0], np.int64), ["cat", "dog"], (320, 240))


def _clip_frames(clip: Path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(clip)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    capture.release()
    assert len(frames) == CLIP_FRAMES
    return frames


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*")]


# -- each sink, its exact output -------------------------------------------------------------------------------
def test_records_json_holds_one_record_per_image_or_frame(tmp_path: Path, dog) -> None:
    path, image, dets = dog
    sink = RecordsJsonSink(tmp_path / "detections.json")
    sink.write(_image(dog))
    sink.write(Result("walk.mp4", 3, image, dets, fps=25.0))
    sink.finish()
    image_record = json.loads(dets.to_json())  # what model.detect's Detections say of themselves
    frame_record = {**image_record, "source": "walk.mp4", "frame": 3}
    assert detection_record(dets, path) == image_record
    assert detection_record(dets, "walk.mp4", 3) == frame_record
    assert list(frame_record) == ["source", "width", "height", "detections", "frame"]
    assert (tmp_path / "detections.json").read_text() == json.dumps([image_record, frame_record])
    assert _no_temporaries(tmp_path)


def test_darknet_result_json_numbers_the_results_and_names_the_images(tmp_path: Path, dog) -> None:
    path, image, dets = dog
    sink = DarknetJsonSink(tmp_path / "result.json")
    sink.write(_image(dog))
    sink.write(Result("walk.mp4", 0, image, dets, fps=25.0))
    sink.finish()
    text = (tmp_path / "result.json").read_text()
    assert text == darknet_json_file([darknet_frame_text(dets, 1, path), darknet_frame_text(dets, 2)])
    first, second = json.loads(text)
    assert (first["frame_id"], first["filename"], second["frame_id"]) == (1, path, 2) and "filename" not in second
    assert {o["name"] for o in first["objects"]} >= {"dog", "bicycle", "truck"}


def test_yolo_labels_one_file_per_image_or_frame(tmp_path: Path, dog) -> None:
    path, image, dets = dog
    sink = YoloLabelsSink(tmp_path / "labels")
    sink.write(_image(dog))
    sink.write(Result("walk.mp4", 3, image, dets, fps=25.0))
    sink.write(Result("0", 1, image, _none(image), fps=25.0))  # a camera, as given on the command line
    sink.finish()
    labels = tmp_path / "labels"
    assert sorted(p.name for p in labels.iterdir()) == ["camera0_1.txt", "dog.txt", "walk_3.txt"]
    assert (labels / "dog.txt").read_text() == (labels / "walk_3.txt").read_text() == dets.to_yolo_txt()
    assert len(dets.to_yolo_txt().splitlines()) == len(dets)
    assert (labels / "camera0_1.txt").read_text() == ""


def test_annotated_images_are_the_drawn_photo_under_its_name(tmp_path: Path, dog) -> None:
    path, image, dets = dog
    sink = AnnotatedImagesSink(tmp_path)
    sink.write(_image(dog))
    sink.write(Result(str(tmp_path / "dog.photo"), None, image, dets))  # no OpenCV writer for .photo: .jpg added
    sink.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dog.jpg", "dog.photo.jpg"]
    ok, expected = cv2.imencode(".jpg", dets.draw(image))
    assert ok and (tmp_path / "dog.jpg").read_bytes() == expected.tobytes()
    assert (tmp_path / "dog.photo.jpg").read_bytes() == expected.tobytes()


def test_ext_output_lines_are_darknets(capsys) -> None:
    dets = _two_boxes()
    image = np.zeros((240, 320, 3), np.uint8)
    sink = ExtOutputSink()
    sink.write(Result("data/a.jpg", None, image, dets, milliseconds=12.5))
    sink.write(Result("walk.mp4", 7, image, dets, fps=25.0))
    sink.write(Result("0", 0, image, _none(image), fps=25.0))
    sink.finish()
    boxes = ("dog: 97%\t(left_x:   10   top_y:   21   width:  100   height:  200)\n"
             "cat: 50%\t(left_x:  200   top_y:   30   width:   60   height:   60)\n")
    assert capsys.readouterr().out == ("data/a.jpg: Predicted in 12.500000 milli-seconds.\n" + boxes
                                       + "walk:7: 2 objects\n" + boxes
                                       + "camera0:0: 0 objects\n")


def test_ext_output_of_a_photo(capsys, dog) -> None:
    path, _, dets = dog
    ExtOutputSink().write(_image(dog, milliseconds=3.0))
    assert capsys.readouterr().out == f"{path}: Predicted in 3.000000 milli-seconds.\n{dets.ext_output()}\n"


def test_the_annotated_image_is_drawn_once_for_every_sink(tmp_path: Path, dog, monkeypatch) -> None:
    path, image, dets = dog
    drawn, shown = [], []
    counted = dataclasses.replace(dets)
    counted.draw = lambda picture: drawn.append(dets.draw(picture)) or drawn[-1]
    monkeypatch.setattr(cv2, "imshow", lambda title, picture: shown.append(picture))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: -1)
    result = Result(path, None, image, counted)
    assert result.drawn is None
    sinks = [AnnotatedImagesSink(tmp_path), ShowSink(), AnnotatedVideoSink(tmp_path / "dog.mp4")]
    for sink in sinks:
        sink.write(result)
    finish_all(sinks)
    assert len(drawn) == 1 and shown[0] is drawn[0] is result.drawn is result.annotated
    assert frame_count(tmp_path / "dog.mp4") == 1


def test_a_live_view_is_a_sink(dog) -> None:
    path, image, dets = dog
    with LiveView(LiveOptions()) as live:  # no server: the feed alone
        live.write(_image(dog))
        first = live.feed.next_frame(0)
        assert (first.frame_id, first.filename, first.image is image, first.dets is dets) == (1, path, True, True)
        live.write(Result("walk.mp4", 0, image, dets, fps=25.0))
        assert live.feed.next_frame(1).filename is None  # darknet's video frames carry no filename
        live.finish()
        assert live.feed.next_frame(2) is None  # ended


# -- files finished whatever ends the loop ---------------------------------------------------------------------
@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_the_video_sink_leaves_a_playable_file_when_the_loop_is_cut_short(clip: Path, tmp_path: Path, stop) -> None:
    out = tmp_path / "out.mp4"
    sink = AnnotatedVideoSink(out)
    with pytest.raises(stop):
        try:
            for index, frame in enumerate(_clip_frames(clip)):
                if index == 5:
                    raise stop("stopped")
                sink.write(Result(str(clip), index, frame, _none(frame), fps=25.0))
        finally:
            sink.finish()
    assert sink.frames == 5 and frame_count(out) == 5
    capture = cv2.VideoCapture(str(out))
    assert (capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) \
        == (25, 320, 180)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left


def test_a_video_sink_given_no_frame_writes_no_file(tmp_path: Path) -> None:
    AnnotatedVideoSink(tmp_path / "out.mp4").finish()
    assert not list(tmp_path.iterdir())


def _stop_at(frame: int, exc: BaseException):
    seen = []

    def detect_batch(frames):
        if len(seen) >= frame:
            raise exc
        seen.extend(frames)
        return [_none(f) for f in frames]
    return detect_batch


def test_run_video_finishes_every_sink_before_reporting_an_error(clip: Path, tmp_path: Path) -> None:
    out, records = tmp_path / "out.mp4", tmp_path / "detections.json"
    with pytest.raises(darknet_py.InputError, match=r"stopped after 4 frames: out of memory; .*out.mp4 holds the 4 frames"):
        run_video(str(clip), _stop_at(4, RuntimeError("out of memory")), batch=2,
                  sinks=[AnnotatedVideoSink(out), RecordsJsonSink(records)])
    assert frame_count(out) == 4
    assert json.loads(records.read_text()) == [{"source": str(clip), "width": 320, "height": 180, "detections": [],
                                                "frame": i} for i in range(4)]


def test_run_images_keeps_the_images_done_when_stopped(tmp_path: Path) -> None:
    paths = [str(shared_path(IMAGES / name)) for name in PHOTOS[:3]]
    calls = []

    def detect_batch(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return [_none(image) for image in images]

    report = run_images(paths, detect_batch, [RecordsJsonSink(tmp_path / "detections.json"),
                                              YoloLabelsSink(tmp_path / "labels")])
    assert (report.done, report.interrupted) == (1, True)
    assert report.summary() == "1 image(s), interrupted — the images done are saved"
    assert [r["source"] for r in json.loads((tmp_path / "detections.json").read_text())] == paths[:1]
    assert [p.name for p in (tmp_path / "labels").iterdir()] == ["dog.txt"]


# -- the CLI and the Ray driver write the same records -----------------------------------------------------------
def test_cli_video_records_carry_the_video_and_the_frame(clip: Path, tmp_path: Path, model) -> None:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "--save-txt",
                     "--no-save", "--output", str(out)]) == 0
    expected = [detection_record(dets, str(clip), i) for i, dets in enumerate(model.detect(_clip_frames(clip)))]
    assert json.loads((out / "detections.json").read_text()) == expected
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(f"clip_{i}.txt" for i in range(CLIP_FRAMES))
    assert sorted(p.name for p in out.iterdir()) == ["detections.json", "labels"]  # --no-save: no video


def _kill_processes_with(marker: bytes) -> None:
    """SIGKILL what is left of the private Ray: processes whose environment holds our own RAY_TMPDIR."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


def test_the_cli_and_ray_write_the_same_records(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(shared_path(IMAGES / name), photos / name)
    cfg, weights = official("yolov4-tiny")
    model = ["--cfg", str(cfg), "--weights", str(weights)]
    here, on_ray = tmp_path / "here", tmp_path / "ray"
    assert cli.main(["detect", str(photos), *model, "--save-json", "--output", str(here)]) == 0

    ray_tmpdir = tempfile.mkdtemp(prefix="dpray-", dir="/tmp")  # a private Ray: found by nobody, finding nobody's
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": ray_tmpdir}
    try:
        result = subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(photos), *model, "--ray",
                                 "--workers", "1", "--output", str(on_ray)], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=RUN_LIMIT_S)
    finally:
        _kill_processes_with(f"RAY_TMPDIR={ray_tmpdir}".encode())
        shutil.rmtree(ray_tmpdir, ignore_errors=True)
    assert result.returncode == 0, result.stderr

    by_source = lambda record: record["source"]  # noqa: E731
    cli_records = sorted(json.loads((here / "detections.json").read_text()), key=by_source)
    ray_records = sorted(map(json.loads, (on_ray / "detections.jsonl").read_text().splitlines()), key=by_source)
    assert [r["source"] for r in cli_records] == sorted(str(photos / name) for name in PHOTOS)
    assert ray_records == cli_records and all(r["detections"] for r in cli_records)
    # the annotated images, written by the same sink: the same names, each a decodable picture
    assert sorted(p.name for p in (on_ray / "images").iterdir()) == sorted(p.name for p in here.glob("*.jpg"))
    assert all(cv2.imread(str(p)) is not None for p in (on_ray / "images").iterdir())
