"""media.outputs.Outputs: the files `darknet-py detect` writes, chosen in one place. A script that builds its sinks
from Outputs and runs a source through them writes what the CLI writes for the same flags, byte for byte; and each
output flag names the sink it asks for, in the CLI's order."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.core.errors import DarknetWarning, InputError
from darknet_py.media.heatmap_sink import HeatmapOptions
from darknet_py.media.outputs import Outputs
from darknet_py.media.run import run_source
from tests.conftest import CLIP_FRAMES, darknet_warnings, official, photos, shared_path
from tests.event_pipe import kill_at

pytestmark = pytest.mark.timeout(600)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_script_through_outputs_writes_what_the_cli_writes(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    paths = [str(path) for path in photos()[:4]]
    listed = tmp_path / "images.txt"
    listed.write_text("".join(f"{path}\n" for path in paths))
    by_cli = tmp_path / "cli"
    assert cli.main(["detect", str(listed), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "darknet",
                     "--save-txt", "--save-crops", "--output", str(by_cli)]) == 0

    model = darknet_py.load(cfg, weights)
    outputs = Outputs(json="darknet", yolo_labels=True, crops=True)
    by_script = tmp_path / "script"
    by_script.mkdir()
    sinks = outputs.sinks(by_script, "images", paths)
    report = run_source("images", paths, lambda images: model.detect(
        images, 0.25, 0.45, class_scores=outputs.darknet_box_order), sinks)
    assert report.done == len(paths)

    written, expected = _files(by_script), _files(by_cli)
    assert "result.json" in expected and any(name.startswith("labels/") for name in expected)
    assert any(name.startswith("crops/") for name in expected) and any(name.endswith(".jpg") for name in expected)
    assert written.keys() == expected.keys()
    for name, data in expected.items():
        if name.endswith(".jpg"):  # annotated images and crops: JPEGs of the same pixels (encoder equal too)
            assert written[name] == data, name
        else:
            assert written[name].decode() == data.decode(), name


def test_a_script_through_detect_into_folder_gets_the_cli_s_folder_files_and_lines(tmp_path: Path, monkeypatch,
                                                                                  capsys) -> None:
    """media.detect_run.detect_into_folder: a fresh runs/detect/N, the CLI's files in it, the CLI's last lines; a
    run that writes nothing leaves no folder behind."""
    from darknet_py.media.detect_run import detect_into_folder

    cfg, weights = official("yolov4-tiny")
    paths = [str(path) for path in photos()[:3]]
    monkeypatch.chdir(tmp_path)
    listed = tmp_path / "images.txt"
    listed.write_text("".join(f"{path}\n" for path in paths))
    assert cli.main(["detect", str(listed), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "darknet",
                     "--save-txt"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"3 image(s) → {Path('runs/detect/1')}"

    model = darknet_py.load(cfg, weights)
    outputs = Outputs(json="darknet", yolo_labels=True)
    outcome = detect_into_folder("images", paths, lambda images: model.detect(
        images, 0.25, 0.45, class_scores=outputs.darknet_box_order), outputs, model.names)
    assert outcome.lines == [f"3 image(s) → {Path('runs/detect/2')}"]  # the next fresh folder, the CLI's line
    assert outcome.exit_code() == 0 and not outcome.errors and [r.done for r in outcome.reports] == [3]
    by_cli, by_script = _files(tmp_path / "runs/detect/1"), _files(tmp_path / "runs/detect/2")
    assert "result.json" in by_cli and by_script.keys() == by_cli.keys()
    for name, data in by_cli.items():
        assert by_script[name] == data, name

    nothing = detect_into_folder("images", paths, lambda images: model.detect(images), Outputs(annotated=False))
    assert nothing.lines == ["3 image(s)"] and not (tmp_path / "runs/detect/3").exists()


def test_each_flag_asks_for_its_sink_in_the_cli_s_order(tmp_path: Path) -> None:
    every = Outputs(json="darknet_py", yolo_labels=True, ext_output=True, darknet_labels=True, crops=True, show=True,
                    heatmap=HeatmapOptions())
    kinds = [type(sink).__name__ for sink in every.sinks(tmp_path, "images", ["a.jpg"])]
    assert kinds == ["ExtOutputSink", "RecordsJsonSink", "YoloLabelsSink", "AnnotatedImagesSink", "DarknetLabelsSink",
                     "CropsSink", "HeatmapSink", "ShowSink"]
    video = Outputs(json="coco", frames_every=5, annotated=True, codec="mjpg")
    sinks = video.sinks(tmp_path, "video", "walk.mp4", ["person"])
    assert [type(sink).__name__ for sink in sinks] == ["CocoDatasetSink", "AnnotatedVideoSink", "FramesDatasetSink"]
    assert sinks[1].path == str(tmp_path / "walk.avi")
    assert Outputs(annotated=False).sinks(tmp_path, "images", ["a.jpg"]) == []
    assert video.darknet_box_order and Outputs(json="darknet").darknet_box_order
    assert not Outputs(json="coco").darknet_box_order


def test_outputs_refuse_what_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--save-json yaml: expected one of darknet_py, jsonl, darknet, coco"):
        Outputs(json="yaml")
    with pytest.raises(InputError, match="coco.json lists the model's classes"):
        Outputs(json="coco").sinks(tmp_path, "images", ["a.jpg"])


def test_jsonl_records_are_the_json_records_a_line_each(clip: Path, tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    for kind, out in (("darknet_py", tmp_path / "json"), ("jsonl", tmp_path / "jsonl")):
        assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160",
                         "--no-save", "--save-json", kind, "--output", str(out)]) == 0
    records = json.loads((tmp_path / "json" / "detections.json").read_text())
    lines = (tmp_path / "jsonl" / "detections.jsonl").read_text().splitlines()
    assert len(records) == CLIP_FRAMES and [json.loads(line) for line in lines] == records
    assert sorted(path.name for path in (tmp_path / "jsonl").iterdir()) == ["detections.jsonl"]


@pytest.mark.timeout(300)
def test_a_killed_run_keeps_every_jsonl_record_written_before(clip: Path, tmp_path: Path) -> None:
    """SIGKILL (no handler runs: out of memory, `kill -9`) after the 5th frame: detections.jsonl holds the 5 records
    written so far, each line whole, the records a finished run gives for those frames."""
    cfg, weights = official("yolov4-tiny")
    whole = tmp_path / "whole"
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--size", "160", "--no-save",
                     "--save-json", "jsonl", "--output", str(whole)]) == 0
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(clip), "--cfg", str(cfg), "--weights",
               str(weights), "--size", "160", "--no-save", "--save-json", "jsonl", "--output", str(killed)]
    kill_at(command, "frames-detected 5")  # held there: the 5th record is written
    kept = (killed / "detections.jsonl").read_text()
    assert kept.endswith("\n")
    assert kept.splitlines() == (whole / "detections.jsonl").read_text().splitlines()[:5]


def test_collected_json_on_a_camera_or_stream_is_a_warning(tmp_path: Path, recwarn) -> None:
    """A live source (its frames carry when the camera sent them) runs until stopped: --save-json (and darknet) hold
    every record until then, which the first frame's warning says; jsonl does not, and a file's frames do not."""
    from darknet_py.media.sinks import DarknetJsonSink, RecordsJsonSink, RecordsLinesSink, Result
    from darknet_py.pipeline.detections import Detections

    nothing = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["a"], (4, 3))
    image = np.zeros((3, 4, 3), np.uint8)
    for sink, flag in ((RecordsJsonSink(tmp_path / "a.json"), "--save-json"),
                       (DarknetJsonSink(tmp_path / "b.json"), "--save-json darknet")):
        with pytest.warns(DarknetWarning, match=f"runs until it is stopped: {flag} holds every frame's record in "
                                                "memory") as caught:
            sink.write(Result("rtsp://user:secret@cam/stream", 0, image, nothing, captured=1.0))
        sink.write(Result("rtsp://user:secret@cam/stream", 1, image, nothing, captured=1.1))  # once, at the first
        assert len(caught) == 1 and "secret" not in str(caught[0].message)
    recwarn.clear()
    lines = RecordsLinesSink(tmp_path / "c.jsonl")
    lines.write(Result("cam", 0, image, nothing, captured=1.0))
    lines.finish()
    RecordsJsonSink(tmp_path / "d.json").write(Result("walk.mp4", 0, image, nothing))  # a file ends
    assert not darknet_warnings(recwarn)


def test_a_cameras_records_go_on_from_an_earlier_runs_even_one_killed_mid_line(tmp_path: Path) -> None:
    """A camera's (or stream's) detections.jsonl is appended to by a run into the same folder, a file's replaced; a
    line an earlier run was killed in the middle of stays on its own, the new run's lines whole after it."""
    from darknet_py.media.sinks import RecordsLinesSink, Result
    from darknet_py.pipeline.detections import Detections

    none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), ["x"], (4, 3))
    image = np.zeros((3, 4, 3), np.uint8)
    path = tmp_path / "detections.jsonl"
    earlier = '{"source": "rtsp://cam/1", "frame": 0}\n{"source": "rtsp://cam/1", "fra'
    path.write_text(earlier)
    sink = RecordsLinesSink(path)
    sink.write(Result("rtsp://cam/1", 0, image, none, 25.0, stream_time=0.0, captured=1.0, wall_time=1_796_601_600.0))
    sink.finish()
    lines = path.read_text().splitlines()
    assert lines[:2] == earlier.splitlines() and json.loads(lines[2])["utc"] == "2026-12-07T00:00:00.000Z"
    assert len(lines) == 3
    sink = RecordsLinesSink(path)
    sink.write(Result("walk.mp4", 0, image, none, 25.0))  # a file's run: the file replaced
    sink.finish()
    assert [json.loads(line)["source"] for line in path.read_text().splitlines()] == ["walk.mp4"]


def test_line_files_survive_logrotate_copytruncate(tmp_path: Path) -> None:
    """detections.jsonl and events.jsonl are appended to: after logrotate's copytruncate (the file copied, then cut to
    nothing under the running process), the next line starts the file, with no hole of NULs where it ended."""
    from darknet_py.media.sinks import RecordsLinesSink, Result
    from darknet_py.pipeline.detections import Detections

    one = Detections(np.array([[1, 1, 3, 2]], np.float32), np.array([0.9], np.float32), np.array([0], np.int64),
                     ["person"], (4, 3))
    image = np.zeros((3, 4, 3), np.uint8)
    sink = RecordsLinesSink(tmp_path / "detections.jsonl")
    for frame in range(3):
        sink.write(Result("cam", frame, image, one))
    rotated = (tmp_path / "detections.jsonl").read_bytes()
    os.truncate(tmp_path / "detections.jsonl", 0)  # what copytruncate does once it has copied the file
    sink.write(Result("cam", 3, image, one))
    sink.finish()
    assert len(rotated.splitlines()) == 3
    after = (tmp_path / "detections.jsonl").read_bytes()
    assert b"\0" not in after and [json.loads(line)["frame"] for line in after.splitlines()] == [3]


def test_an_annotated_copy_is_never_written_over_its_source(tmp_path: Path, capsys) -> None:
    """--output the sources' own folder with --exist-ok: an image's annotated copy (its own name) or a video's (its stem
    and the codec's container) would replace the file read; refused before the model loads, the file as it was; the
    same run as a script is refused alike; --no-save, or a video whose copy takes another extension, runs."""
    from darknet_py.media.detect_run import detect_into_folder
    from tests.conftest import IMAGES, VIDEO

    folder = tmp_path / "mine"
    folder.mkdir()
    photo = folder / "dog.jpg"
    photo.write_bytes(shared_path(IMAGES / "dog.jpg").read_bytes())
    video = folder / "walk.avi"
    video.write_bytes(shared_path(VIDEO / "vtest_480x360_h264.avi").read_bytes())
    kept = {path: path.read_bytes() for path in (photo, video)}
    cfg, weights = official("yolov4-tiny")
    model = ["--cfg", str(cfg), "--weights", str(weights)]
    for source, flags in ((folder, []), (photo, []), (video, ["--codec", "mjpg"])):
        assert cli.main(["detect", str(source), *model, *flags, "--output", str(folder), "--exist-ok"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith(f"error: {photo if source != video else video}: its annotated copy would be written "
                                  f"over it (--output {folder} is its folder)"), err
    with pytest.raises(InputError, match="its annotated copy would be written over it"):
        detect_into_folder("images", [str(photo)], lambda images: [], Outputs(), output=str(folder))
    assert {path: path.read_bytes() for path in kept} == kept and sorted(folder.iterdir()) == sorted(kept)
    assert cli.main(["detect", str(photo), *model, "--no-save", "--save-txt", "--output", str(folder), "--exist-ok"]) == 0
    assert photo.read_bytes() == kept[photo] and (folder / "labels" / "dog.txt").is_file()


def test_a_run_that_gives_nothing_writes_nothing_over_an_earlier_runs_whole_files(tmp_path: Path) -> None:
    """A camera's service restarted while the camera is down, then stopped: its detections.json, result.json and
    coco.json (files of one run, chosen beside an earlier run's at the first frame) were written over with nothing."""
    from darknet_py.media.coco_dataset import CocoDatasetSink
    from darknet_py.media.sinks import DarknetJsonSink, RecordsJsonSink

    made = {"detections.json": lambda path: RecordsJsonSink(path), "result.json": lambda path: DarknetJsonSink(path),
            "coco.json": lambda path: CocoDatasetSink(path, ["person"])}
    for name, sink in made.items():
        earlier = tmp_path / "earlier" / name
        earlier.parent.mkdir(exist_ok=True)
        earlier.write_text("the earlier run's")
        sink(earlier).finish()
        assert earlier.read_text() == "the earlier run's", name
        fresh = tmp_path / "fresh" / name
        fresh.parent.mkdir(exist_ok=True)
        sink(fresh).finish()  # in a folder of its own, a run of nothing still says so
        assert json.loads(fresh.read_text()) is not None, name
