"""`darknet-py detect` end to end: each source kind, each output format, clear failures."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

from tests.conftest import IMAGES, REPO, VIDEO, as_another_user, official, shared_path


def _run(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DARKNET_PY_ZOO": str(shared_path(REPO.parent / "shared" / "zoo")), **(env or {})}
    return subprocess.run([sys.executable, "-m", "darknet_py.cli", *args], cwd=cwd, capture_output=True, text=True, env=environment)


def test_image_with_default_model_and_every_output(tmp_path: Path) -> None:
    result = _run("detect", str(shared_path(IMAGES / "dog.jpg")), "--output", str(tmp_path), "--ext-output",
                  "--save-json", "--save-txt")
    assert result.returncode == 0, result.stderr
    assert "dog: " in result.stdout and "left_x:" in result.stdout
    annotated = cv2.imread(str(tmp_path / "dog.jpg"))
    assert annotated is not None and annotated.shape == cv2.imread(str(IMAGES / "dog.jpg")).shape
    records = json.loads((tmp_path / "detections.json").read_text())
    assert {d["name"] for d in records[0]["detections"]} >= {"dog", "bicycle", "truck"}
    lines = (tmp_path / "labels" / "dog.txt").read_text().splitlines()
    assert len(lines) == len(records[0]["detections"]) and all(len(line.split()) == 6 for line in lines)


def test_folder_glob_and_fresh_run_dirs(tmp_path: Path) -> None:
    cfg, weights = official("yolov3-tiny")
    for _ in range(2):
        result = _run("detect", str(shared_path(IMAGES)), "--cfg", str(cfg), "--weights", str(weights), "--batch", "4", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "detect").iterdir()) == ["1", "2"]
    assert len(list((tmp_path / "runs/detect/1").glob("*.jpg"))) == len(list(IMAGES.glob("*.jpg")))
    # a folder shows its progress as a video does (count, rate, ETA), its last line before the summary
    photos_total = len(list(shared_path(IMAGES).glob("*.jpg")))
    assert result.stderr.splitlines()[-2].startswith(f"detect: {photos_total}/{photos_total} images "), result.stderr
    result = _run("detect", str(IMAGES / "[dg]*.jpg"), "--no-save", "--ext-output", "--output", str(tmp_path / "g"))
    assert result.returncode == 0 and "dog.jpg:" in result.stdout and "giraffe.jpg:" in result.stdout
    assert not (tmp_path / "g").exists()  # nothing written: no empty folder left (nor named in the last line)
    assert result.stderr.splitlines()[-1] == "2 image(s)"
    result = _run("detect", str(IMAGES / "dog.jpg"), "--no-save", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.splitlines()[-1] == "1 image(s)"
    assert "detect:" not in result.stderr  # one image: no progress line
    assert sorted(p.name for p in (tmp_path / "runs" / "detect").iterdir()) == ["1", "2"]  # no runs/detect/3


def test_runs_started_together_never_share_a_folder(tmp_path: Path) -> None:
    """Each run claims its runs/detect/N with one mkdir that fails when N exists: three detects started at once
    (a shell loop with &) get 1, 2 and 3, each with its own image (choosing N by looking first gave them all 1,
    each overwriting the others' files); so do sixteen threads claiming at the same moment."""
    from darknet_py.media.run_folders import run_folder

    environment = {**os.environ, "DARKNET_PY_ZOO": str(shared_path(REPO.parent / "shared" / "zoo"))}
    names = ["dog.jpg", "horses.jpg", "giraffe.jpg"]
    runs = [subprocess.Popen([sys.executable, "-m", "darknet_py.cli", "detect", str(shared_path(IMAGES / name))],
                             cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for name in names]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], errors
    folders = sorted((tmp_path / "runs" / "detect").iterdir())
    assert [f.name for f in folders] == ["1", "2", "3"]
    assert sorted(p.name for f in folders for p in f.iterdir()) == sorted(names)  # one image in each
    root = tmp_path / "threads"
    start = threading.Barrier(16)

    def claim(_: int) -> Path:
        start.wait(timeout=60)
        return run_folder(None, root)[0]

    with ThreadPoolExecutor(16) as pool:
        claimed = list(pool.map(claim, range(16)))
    assert sorted(int(f.name) for f in claimed) == list(range(1, 17))


def test_video_keeps_every_decoded_frame_size_and_timing(tmp_path: Path) -> None:
    """pedestrians.avi's header claims 682 frames at 50 frames/s; 341 decode, 40 ms apart (the others are empty
    "repeat the last frame" entries). The annotated copy holds the 341 at the times FFmpeg reads in the source: it
    plays as long as the source (and frame / fps, a record's time when tracked, is the frame's time there)."""
    import av

    source = shared_path(VIDEO / "pedestrians.avi")
    # at 128 px: the frames, their sizes and times are the point, not what is detected in them
    result = _run("detect", str(source), "--output", str(tmp_path), "--batch", "4", "--save-json", "--size", "128")
    assert result.returncode == 0, result.stderr
    assert "341 frames (1280x720, 25 fps)" in result.stderr
    assert "pedestrians.avi: 341/~341 frames" in result.stderr  # the progress line's total: 682 × 25 / 50
    capture = cv2.VideoCapture(str(tmp_path / "pedestrians.mp4"))  # H.264, which browsers play (test_video_writer.py)
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 341 and capture.get(cv2.CAP_PROP_FPS) == 25
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    with av.open(str(source)) as container:  # FFmpeg's own timestamps, independent of OpenCV and of us
        times = sorted(frame.time for frame in container.decode(video=0))  # presentation order
    times = [t - times[0] for t in times]  # from the first picture, as the copy starts
    with av.open(str(tmp_path / "pedestrians.mp4")) as container:
        written = [frame.time for frame in container.decode(video=0)]
    records = json.loads((tmp_path / "detections.json").read_text())
    assert len(times) == len(written) == len(records) == 341 and [r["frame"] for r in records] == list(range(341))
    half_a_frame = 0.5 / 25 + 1e-3  # the source's last picture sits half a frame early
    assert max(abs(a - b) for a, b in zip(times, written)) <= half_a_frame


def test_vid_stride_detects_every_nth_frame_numbered_and_timed_as_in_the_source(tmp_path: Path) -> None:
    """--vid-stride 5 on pedestrians.avi: the records are frames 0, 5, 10, … with their times in the source (frame /
    25 fps), each one's detections those of that frame as OpenCV reads it; the annotated video holds those frames at
    5 fps, so it plays as long as the source."""
    import numpy as np

    import darknet_py

    source = str(shared_path(VIDEO / "pedestrians.avi"))
    result = _run("detect", source, "--output", str(tmp_path), "--vid-stride", "5", "--save-json", "--size", "320")
    assert result.returncode == 0, result.stderr
    assert "69 frames (1280x720, 25 fps), every 5th frame" in result.stderr
    records = json.loads((tmp_path / "detections.json").read_text())
    assert [r["frame"] for r in records] == list(range(0, 341, 5))
    assert [r["time"] for r in records] == [round(frame / 25, 6) for frame in range(0, 341, 5)]
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights, size=320)
    capture, frames = cv2.VideoCapture(source), []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    assert sum(bool(r["detections"]) for r in records) > 60  # people are found
    for record in records:  # each record: its own frame's detections
        expected = json.loads(model.detect(frames[record["frame"]])[0].to_json())["detections"]
        assert [d["name"] for d in record["detections"]] == [d["name"] for d in expected]
        assert np.allclose([d["box"] for d in record["detections"]], [d["box"] for d in expected], atol=1e-2)
    video = cv2.VideoCapture(str(tmp_path / "pedestrians.mp4"))
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 69 and video.get(cv2.CAP_PROP_FPS) == 5


@pytest.mark.parametrize("args, message", [
    (["detect", "dog.jpg", "--vid-stride", "2"], "error: --vid-stride takes every Nth frame of a video; the source is "
                                                 "1 separate image(s)"),
    (["detect", "dog.jpg", "--vid-stride", "0"], "error: --vid-stride 0: give a number of frames, 1 or more"),
    (["detect", "dog.jpg", "--ray", "--vid-stride", "3"], "error: --vid-stride 3 is not available with --ray"),
    (["detect", "dog.jpg", "--ray", "--save-json"], "error: --save-json is not available with --ray (results go to "
                                                    "OUTPUT/detections.jsonl)"),
    (["detect", "nowhere.jpg"], "error: source not found: nowhere.jpg"),
    (["detect", "dog.jpg", "--model", "yolov9"], "error: unknown model 'yolov9'"),
    (["detect", "dog.jpg", "--half"], "error: --half needs the torch backend on a CUDA device"),
    (["detect", "dog.jpg", "--thresh", "2"], "error: confidence threshold must be a number in [0, 1]"),
    (["detect", "dog.jpg", "--cfg", "x.cfg"], "error: --cfg needs --weights"),
    (["detect", "dog.jpg", "--size", "416", "416", "416"], "error: --size 416 416 416: give N (square) or W H, not 3"),
    (["info", "yolov4-tiny", "--size", "0"], "error: --size 0: give the network's input size in whole pixels, 1 or more"),
    (["detect", "dog.jpg", "--model", "yolov3-tiny", "--cfg", "x.cfg", "--weights", "x.weights"],
     "error: --model yolov3-tiny names an official model's files; --cfg and --weights name(s) your own"),
    (["map", "--data", "x.data", "--conf-thresh", "7"], "error: --conf-thresh must be in [0, 1], got 7.0"),
    (["detect", "dog.jpg", "--codec", "xvid"], "error: argument --codec: invalid choice: 'xvid' (choose from 'h264', "
                                               "'mp4v', 'mjpg') (`darknet-py detect --help` lists the options)"),
    (["detect", "dog.jpg", "--no-such-flag"], "error: unrecognized arguments: --no-such-flag"),
    (["detect", "dog.jpg", "--segment", "5"], "error: --segment is for a video, a stream or a camera; the source is "
                                              "images"),
    (["detect", "dog.jpg", "--keep-all-frames"], "error: --keep-all-frames is for a video, a stream or a camera"),
    (["detect", "dog.jpg", "--mjpeg-quality", "50"], "error: --mjpeg-quality needs --serve, --mjpeg-port or "
                                                     "--json-port"),
    (["detect", "dog.jpg", "--blur", "person", "--no-save", "--save-json"], "error: --blur changes the pictures a run "
                                                                             "writes or shows, and with --no-save"),
])
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    args = [str(IMAGES / a) if a == "dog.jpg" else a for a in args]
    result = _run(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message) and "Traceback" not in result.stderr
    if "--help` lists" in message or "unrecognized" in message:  # argparse's errors too: one line, no usage first
        assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("args, shown", [
    (["--help"], "{detect,classify,export,info,scale,map,server,slice,anchors}"),
    (["info", "--help"], "--dot"),
    (["scale", "--help"], "--depth"),
    (["detect", "--help"], "--save-labels"),
    (["classify", "--help"], "--top"),
    (["export", "--help"], "--int8"),
    (["map", "--help"], "--points"),
    (["server", "--help"], "--port"),
    (["slice", "--help"], "--min-visible"),
    (["anchors", "--help"], "--clusters"),
])
def test_help_and_light_commands_load_no_torch(args: list[str], shown: str) -> None:
    """Only the command that runs builds its options, and they are built without torch (1.7 s of imports): the
    program's help, a command's help (detect's and map's took 2 s) and a command that needs no network answer at once, and
    still list what they list."""
    code = ("import sys; from darknet_py import cli\n"
            f"try: cli.main({args!r})\n"
            "except SystemExit: pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr.strip() == "False", result.stderr
    assert shown in result.stdout


def test_every_command_still_has_its_options() -> None:
    """A command's options are there when it is named, after the program's own --debug too."""
    result = _run("--debug", "detect", "--help")
    assert result.returncode == 0 and "--save-labels" in result.stdout
    result = _run("detect", "--thresh")
    assert result.returncode == 2 and "argument --thresh: expected one argument" in result.stderr


def test_classes_by_name_or_id_and_an_unknown_class_refused(tmp_path: Path) -> None:
    """--classes takes the model's class names or ids (as --blur does); a class the model lacks ends the run with one
    line before any output, where filtering on it would have found nothing without a word."""
    found = {}
    for name, classes in (("names", ["dog", "bicycle"]), ("ids", ["16", "1"])):
        result = _run("detect", str(IMAGES / "dog.jpg"), "--classes", *classes, "--save-json", "--no-save",
                      "--output", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        found[name] = json.loads((tmp_path / name / "detections.json").read_text())[0]["detections"]
    assert found["names"] == found["ids"] and {d["name"] for d in found["names"]} == {"dog", "bicycle"}
    for wrong in ("80", "unicorn"):
        result = _run("detect", str(IMAGES / "dog.jpg"), "--classes", "dog", wrong, "--output", str(tmp_path / wrong))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: --classes {wrong}: not a class of this model "
                                                                 "(80 classes: person, bicycle")
        assert not (tmp_path / wrong).exists()


def test_unreadable_image_and_broken_weights(tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    result = _run("detect", str(fake), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "cannot decode image" in result.stderr
    cfg, weights = official("yolov4-tiny")
    short = tmp_path / "short.weights"
    short.write_bytes(weights.read_bytes()[:-400])
    result = _run("detect", str(IMAGES / "dog.jpg"), "--cfg", str(cfg), "--weights", str(short), "--output", str(tmp_path / "o"))
    assert result.returncode == 2 and "holds 6,062,714 floats after the header, the cfg needs 6,062,814" in result.stderr
    assert not list((tmp_path / "o").glob("*.jpg"))


def test_an_unreadable_image_among_others_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """One broken file in a folder stopped the whole run (the images after it never detected): it is skipped with a
    warning naming it, as darknet goes on past "Cannot load image" and --ray records it; only a run where no image
    could be read is an error, in one line."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a-broken.jpg").write_text("not an image")  # first in name order
    (photos / "dog.jpg").write_bytes(shared_path(IMAGES / "dog.jpg").read_bytes())
    (photos / "z-empty.png").write_bytes(b"")
    out = tmp_path / "out"
    result = _run("detect", str(photos), "--output", str(out), "--save-json")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warned == [f"warning: cannot decode image: {photos / name} (not an image, or a format OpenCV cannot read); "
                      "skipped" for name in ("a-broken.jpg", "z-empty.png")]
    assert result.stderr.splitlines()[-1] == f"1 image(s), 2 unreadable skipped → {out}"
    assert [r["source"] for r in json.loads((out / "detections.json").read_text())] == [str(photos / "dog.jpg")]
    assert cv2.imread(str(out / "dog.jpg")) is not None
    (photos / "dog.jpg").unlink()
    result = _run("detect", str(photos), "--no-save", "--save-json", "darknet", "--output", str(tmp_path / "failed"))
    assert result.returncode == 2 and "warning" not in result.stderr
    assert not (tmp_path / "failed").exists()  # no result.json of nothing beside the error
    assert result.stderr.splitlines()[-1] == (f"error: none of the 2 images could be read (the first: cannot decode "
                                              f"image: {photos / 'a-broken.jpg'} (not an image, or a format OpenCV "
                                              "cannot read))")


def test_images_of_one_name_in_several_folders(tmp_path: Path) -> None:
    """A glob that goes down into folders ('photos/**/*.jpg': recursive) with a/x.jpg and b/x.jpg: their annotated
    images (labels, crops) would take one name in the run's folder, the second silently replacing the first, so the
    run is refused before the model loads (the weights here are broken); records alone (--no-save --save-json) keep
    each path and run. A folder that holds only folders says how to reach their images."""
    root = tmp_path / "photos"
    for folder, photo in (("a", "dog.jpg"), ("b", "horses.jpg")):
        (root / folder).mkdir(parents=True)
        (root / folder / "x.jpg").write_bytes(shared_path(IMAGES / photo).read_bytes())
    cfg, weights = official("yolov4-tiny")
    broken = tmp_path / "broken.weights"
    broken.write_bytes(weights.read_bytes()[:1000])
    pattern = str(root / "**" / "*.jpg")
    first, second = root / "a" / "x.jpg", root / "b" / "x.jpg"
    (root / "b" / "x.png").write_bytes(b"")  # another extension: the stem alone is shared (labels, crops)
    for extra, outputs, key, matched in (([], "annotated image", "x.jpg", pattern),
                                         (["--no-save", "--save-txt"], "label", "x", pattern),
                                         (["--save-crops"], "annotated image and crops", "x", pattern),
                                         (["--save-txt"], "label", "x", str(root / "b" / "x.*"))):
        pair = (first, second) if matched == pattern else (root / "b" / "x.jpg", root / "b" / "x.png")
        result = _run("detect", matched, "--cfg", str(cfg), "--weights", str(broken), "--output", str(tmp_path / "o"),
                      *extra)
        assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
            f"error: {pair[0]} and {pair[1]} would write their {outputs} under one name ({key}) in the run's folder, the "
            "second replacing the first: detect them in separate runs (or with --no-save and --save-json, whose "
            "records keep each path)"), result.stderr
    result = _run("detect", pattern, "--no-save", "--save-json", "--output", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    assert [r["source"] for r in json.loads((tmp_path / "o" / "detections.json").read_text())] == [str(first), str(second)]
    result = _run("detect", str(root), "--no-save")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        f"in folder {root}; it holds 2 folder(s) (a, …): give one, or a glob that goes down into them ('{pattern}')")


def test_an_output_folder_with_files_needs_exist_ok(tmp_path: Path, capsys) -> None:
    """A folder with files is refused without --exist-ok; with it, the last line names the folder only when this
    run wrote there (it used to say "→ out" after a --no-save run that wrote nothing)."""
    from darknet_py import cli

    cfg, weights = official("yolov4-tiny")
    dog = [str(shared_path(IMAGES / "dog.jpg")), "--cfg", str(cfg), "--weights", str(weights)]
    out = tmp_path / "out"
    out.mkdir()
    (out / "dog.jpg").write_bytes(b"my own picture")
    assert cli.main(["detect", *dog, "--output", str(out)]) == 2
    assert (out / "dog.jpg").read_bytes() == b"my own picture"  # untouched, nothing added
    assert sorted(p.name for p in out.iterdir()) == ["dog.jpg"]
    capsys.readouterr()
    assert cli.main(["detect", *dog, "--output", str(out), "--exist-ok"]) == 0
    assert cv2.imread(str(out / "dog.jpg")) is not None
    assert capsys.readouterr().err.splitlines()[-1] == f"1 image(s) → {out}"
    assert cli.main(["detect", *dog, "--output", str(out), "--exist-ok", "--no-save"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "1 image(s)"  # nothing written: no folder named
    assert cli.main(["detect", *dog, "--output", str(out), "--exist-ok", "--no-save", "--save-txt"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"1 image(s) → {out}"  # its labels/dog.txt
    (tmp_path / "file").write_text("x")
    assert cli.main(["detect", *dog, "--output", str(tmp_path / "file")]) == 2


def test_folders_it_cannot_write_in_are_refused_before_the_model_loads() -> None:
    """A read-only image folder (--save-labels writes beside the images), --output in it, runs/detect under a
    read-only working folder, an export into it: one line naming the folder, exit 2, nothing written. The weights
    file is broken, so the refusal proves it came before the model loaded (seconds, or minutes of export work)."""
    base = Path(tempfile.mkdtemp(prefix="darknet_py-readonly-"))  # not tmp_path: its parents are root's alone (0700)
    readonly = base / "images"
    try:
        base.chmod(0o755)
        readonly.mkdir()
        shutil.copy(shared_path(IMAGES / "dog.jpg"), readonly / "dog.jpg")
        cfg, _ = official("yolov4-tiny")
        (base / "broken.weights").write_bytes(b"\0" * 20)
        (base / "broken.weights").chmod(0o644)
        readonly.chmod(0o555)
        for folder in (base, readonly):
            assert os.access(folder, os.R_OK | os.X_OK)
        program = [sys.executable, "-m", "darknet_py.cli"]
        model = ["--cfg", str(cfg), "--weights", str(base / "broken.weights")]
        detect = [*program, "detect", str(readonly / "dog.jpg"), *model]
        denied = f"cannot write in {readonly} (permission denied)"
        cases = [
            ([*detect, "--save-labels", "--no-save", "--output", str(base / "new")], base,
             f"error: --save-labels writes each label file where darknet does (beside its image, or images/…→labels/…): "
             f"{denied}"),
            ([*detect, "--output", str(readonly / "out" / "deeper")], base, f"error: --output: {denied}"),
            (detect, readonly, f"error: the run's folder runs/detect/N: {denied}"),
            ([*program, "export", *model, "-o", str(readonly / "m.onnx")], base, f"error: {readonly / 'm.onnx'}: {denied}"),
        ]
        for command, cwd, line in cases:
            result = subprocess.run(as_another_user(command), cwd=cwd, capture_output=True, text=True, timeout=120)
            assert result.returncode == 2 and result.stderr.strip().splitlines() == [line], result.stderr
        assert sorted(p.name for p in readonly.iterdir()) == ["dog.jpg"] and not (base / "new").exists()
    finally:
        if readonly.exists():
            readonly.chmod(0o755)
        shutil.rmtree(base)


def test_a_read_only_file_system_is_said_so(tmp_path: Path) -> None:
    """--output on a file system mounted read-only (a camera's SD card, a backup share): refused before the model loads
    saying so, not "permission denied" (access() refuses both alike; root, who may write anywhere else, too)."""
    mounted = tmp_path / "ro"
    mounted.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mounted)], capture_output=True,
                           text=True, timeout=60)
    assert mount.returncode == 0, f"the test mounts a read-only tmpfs (as root): {mount.stderr}"
    try:
        cfg, _ = official("yolov4-tiny")
        result = _run("detect", str(IMAGES / "dog.jpg"), "--cfg", str(cfg), "--weights", str(tmp_path / "none.weights"),
                      "--output", str(mounted / "out"))
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            f"error: --output: cannot write in {mounted} (a read-only file system)"], result.stderr
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, timeout=60)


def test_a_folder_source_says_which_videos_it_leaves_out(tmp_path: Path, clip: Path) -> None:
    """A folder SOURCE is its images: a video beside them is named in a warning, and a folder of videos only is
    an error that says how to run them, not just "no images"."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(shared_path(IMAGES / "dog.jpg"), folder / "dog.jpg")
    shutil.copy(clip, folder / "walk.avi")
    (folder / "notes.txt").write_text("not a source")
    result = _run("detect", str(folder), "--no-save")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 0 and lines[-1] == "1 image(s)", result.stderr
    assert f"warning: {folder}: a folder SOURCE is its images; 1 video(s) there are left out (walk.avi): give videos " \
           "as SOURCEs of their own (several at once: detect a.mp4 b.mp4)" in lines
    (folder / "dog.jpg").unlink()
    shutil.copy(clip, folder / "run.avi")
    result = _run("detect", str(folder), "--no-save")
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        f"in folder {folder}; it holds 2 video(s) (run.avi, …): give videos as SOURCEs of their own (several at once: "
        "detect a.mp4 b.mp4)"), result.stderr


def test_a_photo_with_an_extension_opencv_cannot_write_is_saved_as_jpg(tmp_path: Path) -> None:
    from darknet_py import cli

    cfg, weights = official("yolov4-tiny")
    photo = tmp_path / "dog.photo"  # a JPEG under a name cv2.imwrite has no writer for
    photo.write_bytes(shared_path(IMAGES / "dog.jpg").read_bytes())
    assert cli.main(["detect", str(photo), "--cfg", str(cfg), "--weights", str(weights), "--output", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["dog.photo.jpg"]
    assert cv2.imread(str(tmp_path / "o" / "dog.photo.jpg")).shape == cv2.imread(str(photo)).shape
