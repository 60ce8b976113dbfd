"""Classifiers: model.classify / `darknet-py classify` against `darknet classifier predict` on the
shared photos (PNG copies: darknet decodes with stb_image), the ONNX export of a classifier, and
darknet's own resize (resize_dump) against darknet_py.pipeline.darknet_image."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.pipeline import detect, preprocess
from darknet_py.pipeline.darknet_image import resize_image, to_float_rgb
from tests.conftest import REPO, ZOO_CFG, photos, shared_path
from tests.event_pipe import EventPipe
from weights_tools.synth import synthesize

CLASSIFIER = "tiny.cfg"  # darknet's Tiny Darknet: 224 px, 1000 classes, ~1 BFLOP
TOP = 5
CLASSES = 1000


@pytest.fixture(scope="module")
def tiny(darknet_ref, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("classifier")
    cfg = darknet_ref.folder / "cfg" / CLASSIFIER
    weights = folder / "tiny.weights"
    synthesize(cfg, seed=0).save_weights(weights)
    names = folder / "names.list"
    names.write_text("".join(f"class{i}\n" for i in range(CLASSES)))
    data = folder / "tiny.data"
    data.write_text(f"classes={CLASSES}\nnames={names}\ntop={TOP}\n")
    pngs = []
    for photo in photos():
        png = folder / "photos" / f"{photo.stem}.png"
        png.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(png), cv2.imread(str(photo)))
        pngs.append(png)
    return {"cfg": cfg, "weights": weights, "names": names, "data": data, "pngs": pngs, "folder": folder}


def darknet_predictions(darknet_ref, tiny: dict) -> list[list[tuple[str, float]]]:
    """`darknet classifier predict` over every PNG (paths on stdin, one process)."""
    done = darknet_ref.run("classifier", "predict", tiny["data"], tiny["cfg"], tiny["weights"],
                           stdin="".join(f"{p}\n" for p in tiny["pngs"]))
    lines = [(m[1], float(m[2])) for m in re.finditer(r"^(class\d+): ([0-9.]+)$", done.stdout, re.M)]
    assert len(lines) == TOP * len(tiny["pngs"]), done.stdout[-2000:]
    return [lines[i : i + TOP] for i in range(0, len(lines), TOP)]


def test_classify_equals_darknet_classifier_predict(darknet_ref, tiny: dict) -> None:
    theirs = darknet_predictions(darknet_ref, tiny)
    model = darknet_py.load(tiny["cfg"], tiny["weights"])
    names = [f"class{i}" for i in range(CLASSES)]
    ours = model.classify(tiny["pngs"], top=TOP, names=names)
    for png, mine, expected in zip(tiny["pngs"], ours, theirs):
        assert mine.labels == [name for name, _ in expected], png.name
        assert np.abs(mine.probabilities - [p for _, p in expected]).max() <= 1e-4, png.name
    assert len({tuple(e) for e in theirs}) == len(theirs), "each photo should give its own probabilities"


def test_cli_classify_prints_darknets_lines_and_saves_json(darknet_ref, tiny: dict, tmp_path: Path, capsys) -> None:
    theirs = darknet_predictions(darknet_ref, tiny)
    folder = tiny["pngs"][0].parent
    args = ["classify", str(folder), "--cfg", str(tiny["cfg"]), "--weights", str(tiny["weights"]),
            "--names", str(tiny["names"]), "--top", "3", "--save-json", "--output", str(tmp_path)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    first = sorted(tiny["pngs"])[0]
    expected = theirs[tiny["pngs"].index(first)]
    assert f"{first}:\n" + "".join(f"  {name}: {p:f}\n" for name, p in expected[:3]) in printed
    saved = json.loads((tmp_path / "classifications.json").read_text())
    assert [r["source"] for r in saved] == [str(p) for p in sorted(tiny["pngs"])]
    assert all(len(r["classes"]) == 3 and r["classes"][0]["probability"] >= r["classes"][1]["probability"] for r in saved)
    (tmp_path / "classifications.json").write_text("[]")  # a file already there is replaced only with --exist-ok
    assert cli.main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'classifications.json'} exists; pass --exist-ok to overwrite it"
    assert (tmp_path / "classifications.json").read_text() == "[]"
    assert cli.main([*args, "--exist-ok"]) == 0
    assert json.loads((tmp_path / "classifications.json").read_text()) == saved


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_classify_keeps_the_images_done(tiny: dict, tmp_path: Path, signum: int) -> None:
    """Ctrl-C (or SIGTERM) after the second image: classifications.json holds the two done (it was written only at
    the end, so a stop lost every record), exit 130 / 143, and the stop is said."""
    out = tmp_path / "out"
    folder = tiny["pngs"][0].parent
    command = [sys.executable, "-m", "darknet_py.cli", "classify", str(folder), "--cfg", str(tiny["cfg"]), "--weights",
               str(tiny["weights"]), "--save-json", "--output", str(out)]
    with EventPipe() as events:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env("images-done 2")},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            events.wait_for("images-done 2", process)
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=300)
        finally:
            process.kill()
    assert process.returncode == 128 + signum, stderr
    saved = json.loads((out / "classifications.json").read_text())
    assert [r["source"] for r in saved] == [str(p) for p in sorted(tiny["pngs"])[:2]]
    assert stdout.count(":\n") == 2
    assert stderr.splitlines()[-1] == f"2 image(s), interrupted — the images done are saved → {out / 'classifications.json'}"


def test_an_onnx_export_classifies_like_the_torch_model(tiny: dict, tmp_path: Path) -> None:
    onnx_file = tmp_path / "tiny.onnx"
    assert cli.main(["export", "--cfg", str(tiny["cfg"]), "--weights", str(tiny["weights"]), "--names",
                     str(tiny["names"]), "-o", str(onnx_file)]) == 0
    exported = darknet_py.load(onnx_file)
    assert type(exported).__name__ == "GraphClassifier" and exported.num_classes == CLASSES
    assert exported.meta["task"] == "classify" and exported.meta["output_format"] == "classes"
    model = darknet_py.load(tiny["cfg"], tiny["weights"])
    images = tiny["pngs"][:3]
    for a, b in zip(exported.classify(images, top=TOP), model.classify(images, top=TOP, names=exported.names)):
        assert a.labels == b.labels and np.abs(a.probabilities - b.probabilities).max() <= 1e-5
    with pytest.raises(darknet_py.InputError, match="classifier: use classify"):
        exported.detect(images[0])
    # the command on each runtime (cfg + weights exported in memory), as `detect --backend` runs them
    answers = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        out = tmp_path / backend
        assert cli.main(["classify", str(images[0].parent), "--cfg", str(tiny["cfg"]), "--weights", str(tiny["weights"]),
                         "--names", str(tiny["names"]), "--backend", backend, "--save-json", "--output", str(out)]) == 0
        answers[backend] = json.loads((out / "classifications.json").read_text())
    for backend in ("onnxruntime", "openvino"):
        for mine, theirs in zip(answers[backend], answers["torch"], strict=True):
            assert [c["name"] for c in mine["classes"]] == [c["name"] for c in theirs["classes"]], backend
            assert np.allclose([c["probability"] for c in mine["classes"]],
                               [c["probability"] for c in theirs["classes"]], atol=1e-5), backend


@pytest.mark.parametrize("size", [(224, 224), (1000, 900), (1, 7), (17, 9)])
def test_darknets_resize_image(darknet_ref, tmp_path: Path, size: tuple[int, int]) -> None:
    png = tmp_path / "giraffe.png"
    cv2.imwrite(str(png), cv2.imread(str(shared_path(photos()[2]))))
    theirs, _ = darknet_ref.resize(png, *size, letterbox=False, work=tmp_path)
    ours = resize_image(to_float_rgb(cv2.imread(str(png))), *size)
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1e-6


def test_misuse_is_one_clear_error(tiny: dict, tmp_path: Path, capsys, monkeypatch) -> None:
    model = darknet_py.load(tiny["cfg"], tiny["weights"])
    by_path, by_bytes = model.classify([tiny["pngs"][0], tiny["pngs"][0].read_bytes()])  # an upload's bytes, as the file
    assert by_bytes.labels == by_path.labels and np.array_equal(by_bytes.probabilities, by_path.probabilities)
    with pytest.raises(darknet_py.InputError, match="cannot read a int as an image"):
        model.classify(3)
    with pytest.raises(darknet_py.InputError, match="is a classifier.*use classify"):
        model.detect(tiny["pngs"][0])
    with pytest.raises(darknet_py.InputError, match="top must be a positive integer"):
        model.classify(tiny["pngs"][0], top=0)
    with pytest.raises(darknet_py.InputError, match="only 2 names"):
        model.classify(tiny["pngs"][0], names=["a", "b"])
    with warnings.catch_warnings():
        detector = darknet_py.load(shared_path(ZOO_CFG / "yolov4-tiny.cfg"))
    with pytest.raises(darknet_py.InputError, match="detector .*use detect"):
        detector.classify(tiny["pngs"][0])
    video = tmp_path / "clip.avi"
    video.write_bytes(b"")
    for args, message in ((["classify", str(video), "--cfg", str(tiny["cfg"]), "--weights", str(tiny["weights"])],
                           "classify takes images"),
                          (["classify", str(tiny["pngs"][0]), "--cfg", str(tiny["cfg"]), "--weights",
                            str(tiny["weights"]), "--top", "0"], "--top must be at least 1")):
        assert cli.main(args) == 2
        assert capsys.readouterr().err.strip().startswith(f"error: {message}")
    mixed = tmp_path / "mixed"  # an unreadable image among others is skipped and named, as detect does
    mixed.mkdir()
    (mixed / "broken.png").write_text("not an image")
    shutil.copy(tiny["pngs"][0], mixed / "good.png")
    args = ["classify", str(mixed), "--cfg", str(tiny["cfg"]), "--weights", str(tiny["weights"]), "--batch", "2"]
    read, reads = preprocess.read_image, []
    for module in (preprocess, detect):  # where the images' reader is called from
        monkeypatch.setattr(module, "read_image", lambda path, *rest: reads.append(Path(path).name) or read(path, *rest))
    assert cli.main(args) == 0
    assert sorted(reads) == ["broken.png", "good.png"]  # each file read once (the good one was read again after a bad)
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{mixed / 'good.png'}:\n") and str(mixed / "broken.png") not in captured.out
    progress = [line for line in captured.err.splitlines() if line.startswith("classify: ")]
    assert progress[-1].startswith("classify: 2/2 images ")  # stdout is no terminal: a progress line on stderr
    assert captured.err.splitlines()[len(progress):] == [
        f"warning: cannot decode image: {mixed / 'broken.png'} (not an image, or a format OpenCV cannot read); skipped"]
    (mixed / "good.png").unlink()
    assert cli.main(args) == 2
    assert capsys.readouterr().err == f"error: cannot decode image: {mixed / 'broken.png'} (not an image, or a " \
                                      "format OpenCV cannot read)\n"


@pytest.mark.parametrize("case", ["softmax tree", "connected with batch norm", "shortcut across sizes",
                                  "softmax groups and temperature", "efficientnet_b0"])
def test_classifier_exports_equal_the_torch_model_in_onnxruntime(case: str, tmp_path: Path, darknet_ref) -> None:
    """The layers classifiers add, exported (`classes` format) and run by onnxruntime, batch of 2."""
    from benchmarks.oracle.cfg_parity import sized_copy
    from darknet_py.backends.onnxruntime import OnnxDetector
    from darknet_py.export.onnx import build_onnx, checked_bytes
    from tests.test_new_layers import _cfg

    if case in CASES_ON_DISK:
        cfg = sized_copy(darknet_ref.folder / "cfg" / f"{case}.cfg", tmp_path, 64)
    else:
        cfg = _cfg(tmp_path, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        synthesize(cfg, seed=2).save_weights(tmp_path / "w.weights")
        model = darknet_py.load(cfg, tmp_path / "w.weights")
    session = OnnxDetector(checked_bytes(build_onnx(model, [f"c{i}" for i in range(model.num_classes)])))
    x = np.random.default_rng(0).random((2, 3, model.height, model.width), dtype=np.float32)
    (theirs,) = session.run(x)
    with torch.inference_mode():
        (ours,) = model(torch.from_numpy(x))
    ours = ours.reshape(2, -1).numpy()
    assert theirs.shape == ours.shape and np.abs(theirs - ours).max() <= 1e-5 * np.abs(ours).max()


CASES_ON_DISK = ("efficientnet_b0",)
