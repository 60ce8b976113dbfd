"""media.outputs.Outputs: the files `darknet-py detect` writes, chosen in one place. A script that builds its sinks
from Outputs and runs a source through them writes what the CLI writes for the same flags, byte for byte; and each
output flag names the sink it asks for, in the CLI's order."""
from __future__ import annotations

from pathlib import Path

import pytest

import darknet_py
from darknet_py import cli
from darknet_py.core.errors import InputError
from darknet_py.media.outputs import Outputs
from darknet_py.media.run import run_source
from tests.conftest import official, photos

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
    every = Outputs(json="darknet_py", yolo_labels=True, ext_output=True, darknet_labels=True, crops=True, show=True)
    kinds = [type(sink).__name__ for sink in every.sinks(tmp_path, "images", ["a.jpg"])]
    assert kinds == ["ExtOutputSink", "RecordsJsonSink", "YoloLabelsSink", "AnnotatedImagesSink", "DarknetLabelsSink",
                     "CropsSink", "ShowSink"]
    video = Outputs(json="coco", frames_every=5, annotated=True, codec="mjpg")
    sinks = video.sinks(tmp_path, "video", "walk.mp4", ["person"])
    assert [type(sink).__name__ for sink in sinks] == ["CocoDatasetSink", "AnnotatedVideoSink", "FramesDatasetSink"]
    assert sinks[1].path == str(tmp_path / "walk.avi")
    assert Outputs(annotated=False).sinks(tmp_path, "images", ["a.jpg"]) == []
    assert video.darknet_box_order and Outputs(json="darknet").darknet_box_order
    assert not Outputs(json="coco").darknet_box_order


def test_outputs_refuse_what_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--save-json yaml: expected one of darknet_py, darknet, coco"):
        Outputs(json="yaml")
    with pytest.raises(InputError, match="coco.json lists the model's classes"):
        Outputs(json="coco").sinks(tmp_path, "images", ["a.jpg"])
