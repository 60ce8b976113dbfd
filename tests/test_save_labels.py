"""`detect --save-labels` against the real darknet's `detector test … -dont_show -save_labels < list.txt`: the same
label files in the same places (beside each image, or images/val2017/ → labels/val2017/), byte for byte, on PNG
copies of the 9 shared photos (darknet here decodes JPEG with stb_image) and on a sample of the COCO subset (all
158 images: `python -m benchmarks.save_labels`). A `.txt` list of images and `-` (the list on standard input) are
SOURCEs; darknet's line order after its NMS, bad inputs."""
from __future__ import annotations

import dataclasses
import io
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from benchmarks.oracle.darknet_commands import detector_map, parse_map
from benchmarks.oracle.label_files import compare_label_files
from darknet_py import cli
from darknet_py.media.darknet_labels import darknet_label_lines
from darknet_py.pipeline.detections import Detections
from tests.conftest import COCO, official, photos, shared_path

pytestmark = pytest.mark.timeout(600)  # the reference darknet may be built first (minutes, once per machine)

COCO_SAMPLE_EVERY = 27  # 6 of the 158 COCO images here; benchmarks/save_labels.py runs all of them


def _png_copies(sources: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for source in sources:
        copy = folder / f"{source.stem}.png"
        cv2.imwrite(str(copy), cv2.imread(str(source)))
        copies.append(copy)
    return copies


def _darknet_save_labels(darknet, images: list[Path]) -> None:
    cfg, weights = official("yolov4-tiny")
    darknet.run("detector", "test", "cfg/coco.data", cfg, weights, "-dont_show", "-save_labels",
                stdin="".join(f"{p}\n" for p in images))


def _our_save_labels(source: str, out: Path, stdin: str | None = None, monkeypatch=None) -> None:
    cfg, weights = official("yolov4-tiny")
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert cli.main(["detect", source, "--cfg", str(cfg), "--weights", str(weights), "--save-labels", "--no-save",
                     "--output", str(out)]) == 0


def _compare(theirs: list[Path], ours: list[Path]) -> tuple[int, int]:
    """(files byte-identical, files differing only by rounding flips: benchmarks/oracle/label_files.py)."""
    result = compare_label_files(darknet_py.load(*official("yolov4-tiny")), theirs, ours)
    return result.identical, len(result.flipped)


def test_photos_labels_equal_darknets_byte_for_byte(darknet_ref, tmp_path: Path, capsys) -> None:
    theirs = _png_copies(photos(), tmp_path / "darknet")
    ours = _png_copies(photos(), tmp_path / "ours")
    _darknet_save_labels(darknet_ref, theirs)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in ours))
    _our_save_labels(str(listing), tmp_path / "out")  # a .txt list SOURCE, as darknet reads its standard input
    # the files are not in --output: the run's last lines say where they went
    assert f"labels: 9 file(s) where darknet puts them (first: {ours[0].with_suffix('.txt')})" in capsys.readouterr().err
    identical, flips = _compare(theirs, ours)
    assert identical + flips == 9 and identical >= 8  # 9 of 9 identical where this was written
    dog = (tmp_path / "ours" / "dog.txt").read_text().splitlines()
    # dog, truck, car, bicycle: the car's box lost its truck class to NMS, and its truck score before NMS puts it
    # after the truck and before the bicycle (darknet's order: the last class's scores sort first)
    assert [line.split()[0] for line in dog] == ["16", "7", "2", "1"]
    assert not (tmp_path / "out" / "labels").exists()  # --save-txt's folder: not asked for


def test_coco_labels_go_to_labels_val2017_as_darknets(darknet_ref, tmp_path: Path, monkeypatch) -> None:
    """COCO's layout: darknet writes images/val2017/X.png's labels to labels/val2017/X.txt (that folder must
    exist for darknet, which crashes without it; darknet_py makes it). The list comes on standard input."""
    sample = sorted(shared_path(COCO / "images").glob("*.jpg"))[::COCO_SAMPLE_EVERY]
    theirs = _png_copies(sample, tmp_path / "darknet" / "images" / "val2017")
    (tmp_path / "darknet" / "labels" / "val2017").mkdir(parents=True)
    ours = _png_copies(sample, tmp_path / "ours" / "images" / "val2017")
    _darknet_save_labels(darknet_ref, theirs)
    _our_save_labels("-", tmp_path / "out", stdin="".join(f"{p}\n" for p in ours), monkeypatch=monkeypatch)
    assert sorted(p.name for p in (tmp_path / "ours" / "labels" / "val2017").iterdir()) == \
        sorted(p.with_suffix(".txt").name for p in ours)
    assert not list((tmp_path / "ours" / "images" / "val2017").glob("*.txt"))
    identical, flips = _compare(theirs, ours)
    assert identical + flips == len(sample) and identical >= len(sample) - 2


def test_a_videos_frames_keep_the_labels_darknet_writes_for_them(darknet_ref, clip: Path, tmp_path: Path,
                                                                  capsys) -> None:
    """--save-frames 4 on a 12-frame clip: frames 0, 4 and 8 as JPEGs (the decoded frame, as cv2.imwrite writes it),
    each with the label file darknet's -save_labels writes for that frame (given to darknet as a PNG: the same
    pixels), and frames.txt listing the images in order."""
    out = tmp_path / "out"
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--save-frames", "4",
                     "--no-save", "--output", str(out)]) == 0
    assert f"frames: 3 image(s) with darknet label files in {out / 'frames'}" in capsys.readouterr().err
    capture, frames = cv2.VideoCapture(str(clip)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    kept = [0, 4, 8]
    ours = [out / "frames" / f"clip_{index}.jpg" for index in kept]
    assert (out / "frames.txt").read_text().splitlines() == [str(path.resolve()) for path in ours]
    theirs = []
    for index, jpeg in zip(kept, ours):
        theirs.append(tmp_path / "darknet" / f"clip_{index}.png")
        theirs[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(theirs[-1]), frames[index])
        expected = cv2.imdecode(cv2.imencode(".jpg", frames[index])[1], cv2.IMREAD_COLOR)
        assert np.array_equal(cv2.imread(str(jpeg)), expected)  # the frame itself: no boxes drawn on it
    _darknet_save_labels(darknet_ref, theirs)
    assert sum(len(path.with_suffix(".txt").read_text().splitlines()) for path in theirs) >= 10  # people found
    result = compare_label_files(darknet_py.load(cfg, weights), theirs, ours, detected=theirs)
    assert result.identical + len(result.flipped) == 3 and result.identical >= 2


def test_a_videos_frames_are_a_set_darknet_reads_as_it_stands(darknet_ref, clip: Path, tmp_path: Path,
                                                              capsys) -> None:
    """--save-frames writes obj.data and obj.names beside frames.txt: the real darknet's `detector map` reads the set
    through them (each label line is a truth it counts, TP + FN; the model finds most of its own labels again), and
    `darknet-py map --data` on the same file prints darknet's lines."""
    out = tmp_path / "out"
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--save-frames", "4",
                     "--no-save", "--output", str(out)]) == 0
    assert f"listed in {out / 'frames.txt'} (darknet's {out / 'obj.data'})" in capsys.readouterr().err
    assert (out / "obj.names").read_text() == (darknet_ref.folder / "data" / "coco.names").read_text()  # 80 classes
    assert (out / "backup").is_dir()  # darknet's training saves its weights there: it must exist
    theirs = detector_map(darknet_ref, out / "obj.data", cfg, weights)
    truths = sum(len(path.read_text().splitlines()) for path in (out / "frames").glob("*.txt"))
    assert theirs.tp + theirs.fn == truths and truths >= 10
    assert theirs.classes[0][:2] == (0, "person") and theirs.classes[0][2] > 50  # mAP averages all 80 classes
    assert cli.main(["map", "--data", str(out / "obj.data"), "--cfg", str(cfg), "--weights", str(weights)]) == 0
    assert parse_map(capsys.readouterr().out).lines == theirs.lines


def test_save_frames_is_for_videos_and_every_n_at_least_1(tmp_path: Path, clip: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    model = ["--cfg", str(cfg), "--weights", str(weights)]
    for source, flags, message in [
        (str(photos()[0]), ["--save-frames"], "error: --save-frames keeps frames of a video, a stream or a camera; "
                                              "an image's darknet labels are written by --save-labels"),
        (str(clip), ["--save-frames", "0"], "error: --save-frames 0: give how often a frame is kept, 1 (every frame) "
                                            "or more"),
        (str(clip), ["--save-labels"], "error: --save-labels writes darknet's label file beside each image; a video "
                                       "has none (--save-frames keeps its frames with their labels, --save-txt labels "
                                       "each frame)"),
    ]:
        assert cli.main(["detect", source, *model, *flags, "--output", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == message
        assert not (tmp_path / "o").exists()


def _dets(rows: list[tuple[int, int, float]], class_scores: np.ndarray) -> Detections:
    """(box id, class, score) rows, best first, on a 100x50 image; every box 10..30 x 10..20."""
    boxes = np.tile(np.array([[10, 10, 30, 20]], np.float32), (len(rows), 1))
    return Detections(boxes=boxes, scores=np.array([r[2] for r in rows], np.float32),
                      class_ids=np.array([r[1] for r in rows]), names=[str(i) for i in range(8)], image_size=(100, 50),
                      box_ids=np.array([r[0] for r in rows]), class_scores=class_scores)


def test_line_order_is_darknets_after_its_nms() -> None:
    """do_nms_sort sorts the boxes by each class in turn (0 … last), stably: the last class's score before NMS
    decides first. Box 1 kept class 2 (0.4) but had 0.3 of class 7 before NMS removed it; box 0 (class 5, 0.9)
    had nothing in class 7: box 1's line comes first. Box 0 also keeps class 6 at 0.9: its line names the first
    of its equal best classes (5)."""
    scores = np.zeros((3, 8), np.float32)
    scores[[0, 1], 5] = scores[[0, 1], 6] = 0.9
    scores[2, [2, 7]] = 0.4, 0.3
    dets = _dets([(0, 5, 0.9), (0, 6, 0.9), (1, 2, 0.4)], scores)
    assert darknet_label_lines(dets) == "2 0.2000 0.3000 0.2000 0.2000\n5 0.2000 0.3000 0.2000 0.2000\n"
    plain = dataclasses.replace(dets, class_scores=None)  # without the scores before NMS: the kept ones order them
    assert darknet_label_lines(plain).splitlines()[0].startswith("5 ")
    assert darknet_label_lines(_dets([], np.zeros((0, 8), np.float32))) == ""


def test_list_sources_and_bad_inputs_are_one_line_errors(tmp_path: Path, capsys, monkeypatch, clip: Path) -> None:
    image = tmp_path / "a.png"
    shutil.copy(sorted(photos())[0], tmp_path / "b.jpg")
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{image}\r\n\n{tmp_path / 'b.jpg'}\n")  # a CR and a blank line are not paths
    from darknet_py.media.sources import source_items

    assert source_items(str(listing)) == ("images", [str(image), str(tmp_path / "b.jpg")])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{image}\n"))
    assert source_items("-") == ("images", [str(image)])
    cases = [
        (f"{image}\n{tmp_path / 'gone.jpg'}\n", r"lists 1 image\(s\) that do not exist \(first: .*gone.jpg\)"),
        ("\n\n", "lists no images"),
    ]
    for text, message in cases:
        listing.write_text(text)
        with pytest.raises(darknet_py.InputError, match=message):
            source_items(str(listing))
    webp = tmp_path / "c.webp"
    cv2.imwrite(str(webp), np.zeros((8, 8, 3), np.uint8))
    cfg, weights = official("yolov4-tiny")
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a label file someone corrected by hand
    for source, extra, message in [(str(webp), [], "cannot name the label file of .*c.webp"),
                                   (str(image), [], r"--save-labels would replace 1 label file\(s\) already there "
                                                    r"\(first: .*a.txt\); pass --exist-ok"),
                                   (str(clip), [], "--save-labels writes darknet's label file beside each image; a "
                                                   "video has none"),
                                   (str(image), ["--ray"], "--save-labels is not available with --ray")]:
        code = cli.main(["detect", source, "--cfg", str(cfg), "--weights", str(weights), "--save-labels",
                         "--output", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
        assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written
    assert (tmp_path / "a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"
