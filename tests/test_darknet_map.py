"""`darknet-py map --data obj.data`: darknet's `detector map` on darknet-format datasets.

Against the real darknet on the shared COCO subset written out as a darknet dataset (PNG copies,
labels beside them): every line darknet prints (each class's AP, P/R/F1, TP/FP/FN and IoU, mAP) identical
text, on the whole subset at -points 0 and the first 24 images at -points 11 and 101 (what fits the
suite's time; benchmarks/darknet_parity.py runs the whole subset at every setting), a difficult= list;
the COCO JSON path against `darknet detector valid`'s results scored by pycocotools (first 40 images).
Then darknet's file rules and the metric on hand-made cases with known answers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from benchmarks.oracle.darknet_commands import detector_map, detector_valid, parse_map
from benchmarks.oracle.darknet_dataset import write_darknet_dataset
from darknet_py import cli
from darknet_py.core.errors import InputError
from darknet_py.evaluate.coco import evaluate as coco_evaluate
from darknet_py.evaluate.coco import load_ground_truth, run_map
from darknet_py.evaluate.darknet_map import MapAccumulator, darknet_text, evaluate
from darknet_py.evaluate.detection_pass import detect_paths
from darknet_py.format.darknet_data import label_path, load_dataset, read_data_file
from darknet_py.pipeline.detections import Detections
from tests.conftest import COCO, official, shared_path

ANNOTATIONS = COCO / "instances_val2017_subset.json"


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    return write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), tmp_path_factory.mktemp("dataset"))


def _assert_close_to_darknet(ours, theirs) -> None:
    """Both as darknet prints them (benchmarks.oracle.darknet_commands.parse_map): every class line, the
    P/R/F1 and TP/FP/FN/IoU lines and the mAP line, identical text."""
    assert ours.lines == theirs.lines
    assert len(theirs.lines) == len(theirs.classes) + 4


def test_map_on_the_whole_subset_equals_darknet_detector_map(darknet_ref, subset: Path, tmp_path: Path, capsys) -> None:
    cfg, weights = official("yolov4-tiny")
    theirs = detector_map(darknet_ref, subset, cfg, weights, points=0)
    assert cli.main(["map", "--data", str(subset), "--cfg", str(cfg), "--weights", str(weights),
                     "--json-out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    ours = parse_map(printed)
    _assert_close_to_darknet(ours, theirs)
    assert printed.splitlines()[0].startswith("class_id = 0, name = person, ap = ")  # darknet's lines, its order
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"mAP@0.50", "precision", "recall", "f1", "tp", "fp", "fn", "average_iou", "classes"} <= metrics.keys()
    assert metrics["mAP@0.50"] == pytest.approx(ours.mean_ap, abs=1e-6) and 0.3 < metrics["mAP@0.50"] < 0.6
    assert metrics["classes"][0] == {"id": 0, "name": "person", "ap": pytest.approx(ours.classes[0][2] / 100, abs=1e-4),
                                     "tp": ours.classes[0][3], "fp": ours.classes[0][4]}


@pytest.mark.parametrize("points", [11, 101])
def test_recall_points_equal_darknets(darknet_ref, tmp_path: Path, points: int) -> None:
    data = write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), tmp_path, count=24)
    cfg, weights = official("yolov4-tiny")
    theirs = detector_map(darknet_ref, data, cfg, weights, points=points)
    model = darknet_py.load(cfg, weights)
    dataset = load_dataset(data, 80)
    found = list(detect_paths(model, dataset.images, progress=False, class_scores=True))
    ours = parse_map(darknet_text(evaluate(found, dataset.truths, dataset.names, points=points)))
    _assert_close_to_darknet(ours, theirs)
    assert f"used {points} Recall-points" in "\n".join(ours.lines)


def test_difficult_boxes_and_pascal_voc_folders_as_darknet(darknet_ref, tmp_path: Path) -> None:
    """difficult= lists images whose labels (JPEGImages → labels) mark boxes a detection may hit unpunished."""
    data = write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), tmp_path, count=12,
                                 difficult_every=2)
    cfg, weights = official("yolov4-tiny")
    theirs = detector_map(darknet_ref, data, cfg, weights, points=0)
    model = darknet_py.load(cfg, weights)
    dataset = load_dataset(data, 80)
    assert dataset.difficult is not None and sum(map(len, dataset.difficult)) > 10
    found = list(detect_paths(model, dataset.images, progress=False, class_scores=True))
    ours = evaluate(found, dataset.truths, dataset.names, dataset.difficult)
    _assert_close_to_darknet(parse_map(darknet_text(ours)), theirs)
    plain = evaluate(found, dataset.truths, dataset.names)
    assert ours.detections < plain.detections  # detections of difficult boxes were dropped


def test_an_unreadable_image_counts_as_darknet_counts_it(darknet_ref, tmp_path: Path, capsys) -> None:
    """darknet's map goes on past "Cannot load image" with a blank 10x10 image, whose objects then count as missed;
    `map` stopped at it. Now the figures are darknet's, line for line, and a warning names the file."""
    data = write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), tmp_path, count=8)
    broken = sorted((tmp_path / "images").glob("*.png"))[2]
    broken.write_bytes(b"not an image")
    cfg, weights = official("yolov4-tiny")
    theirs = detector_map(darknet_ref, data, cfg, weights, points=0)
    named = re.escape(f"cannot decode image: {broken} (not an image, or a format OpenCV cannot read): evaluated as "
                      "darknet does an image it cannot load, a blank 10x10 one (its objects count as missed)")
    with pytest.warns(darknet_py.DarknetWarning, match=f"^{named}$"):
        assert cli.main(["map", "--data", str(data), "--cfg", str(cfg), "--weights", str(weights)]) == 0
    _assert_close_to_darknet(parse_map(capsys.readouterr().out), theirs)


def test_coco_path_with_darknet_valid_settings_equals_darknet_valid(darknet_ref, tmp_path: Path) -> None:
    """thresh 0.001, NMS 0.6: our COCO results and darknet's `detector valid` results, both scored by pycocotools."""
    data = write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), tmp_path, count=40)
    cfg, weights = official("yolov4-tiny")
    theirs = detector_valid(darknet_ref, data, cfg, weights, "valid")
    annotations = json.loads(shared_path(ANNOTATIONS).read_text())
    kept = sorted(i["id"] for i in annotations["images"])[:40]
    annotations["images"] = [dict(i, file_name=Path(i["file_name"]).stem + ".png") for i in annotations["images"]
                             if i["id"] in kept]
    annotations["annotations"] = [a for a in annotations["annotations"] if a["image_id"] in kept]
    (tmp_path / "gt.json").write_text(json.dumps(annotations))
    coco = load_ground_truth(tmp_path / "gt.json")
    ours = run_map(darknet_py.load(cfg, weights), tmp_path / "images", tmp_path / "gt.json", 0.001, 0.6, progress=False)
    reference = coco_evaluate(coco, theirs)
    assert abs(ours.metrics["AP"] - reference["AP"]) <= 0.001 and abs(ours.metrics["AP50"] - reference["AP50"]) <= 0.001
    assert abs(ours.detections - len(theirs)) <= 0.005 * len(theirs)


# -- darknet's file rules ---------------------------------------------------------------------------------
def test_label_paths_follow_darknets_rules() -> None:
    assert label_path("data/obj/img1.jpg") == "data/obj/img1.txt"  # beside the image
    assert label_path("/coco/images/train2017/0001.jpg") == "/coco/labels/train2017/0001.txt"
    assert label_path("/coco/images/val2014/0001.JPEG") == "/coco/labels/val2014/0001.txt"
    assert label_path("VOC2007/JPEGImages/000005.png") == "VOC2007/labels/000005.txt"
    assert label_path("/data/images/a.jpg") == "/data/images/a.txt"  # only the COCO folder names move
    assert label_path("a.jpg.png") == "a.jpg.txt" and label_path("x.tiff") == "x.txt"
    with pytest.raises(darknet_py.InputError, match="cannot name the label file of photo.webp"):
        label_path("photo.webp")


def test_data_files_are_read_as_darknet_reads_them(tmp_path: Path) -> None:
    data = tmp_path / "obj.data"
    data.write_text("# comment\nclasses= 2\n  valid = my list.txt\nvalid=second.txt\n;x\n\nnames =obj.names\r\n")
    assert read_data_file(data) == {"classes": "2", "valid": "mylist.txt", "names": "obj.names"}  # first wins
    data.write_text("classes\n")
    with pytest.raises(darknet_py.InputError, match=r"obj.data:1: expected key=value"):
        read_data_file(data)


def _tiny_dataset(tmp_path: Path, label_text: str | None, classes: int = 80) -> Path:
    image = tmp_path / "img.png"
    image.write_bytes(b"")
    if label_text is not None:
        (tmp_path / "img.txt").write_text(label_text)
    (tmp_path / "valid.txt").write_text(f"{image}\n\n")
    (tmp_path / "names").write_text("".join(f"n{i}\n" for i in range(classes)))
    (tmp_path / "obj.data").write_text(f"classes={classes}\nvalid={tmp_path / 'valid.txt'}\nnames={tmp_path / 'names'}\n")
    return tmp_path / "obj.data"


def test_label_problems_are_one_clear_error_or_a_counted_warning(tmp_path: Path) -> None:
    with pytest.raises(darknet_py.InputError, match=r"img.txt:2: class id 80 is outside the 80 classes"):
        load_dataset(_tiny_dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n80 0.5 0.5 0.1 0.1\n"), 80)
    with pytest.raises(darknet_py.InputError, match=r"img.txt:1: expected 'class x_center y_center width height'"):
        load_dataset(_tiny_dataset(tmp_path, "0 0.5 0.5 0.1\n"), 80)
    with pytest.raises(darknet_py.InputError, match=r"classes=80, but the model predicts 3 classes"):
        load_dataset(_tiny_dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n"), 3)
    with pytest.warns(darknet_py.DarknetWarning, match=r"1 label box\(es\) with coordinates outside 0..1"):
        dataset = load_dataset(_tiny_dataset(tmp_path, "0 0.5 0.5 0.1 0.1\n1 1.2 0.5 0.1 0.1\n"), 80)
    assert dataset.truths[0].shape == (2, 5) and dataset.images == [str(tmp_path / "img.png")]
    (tmp_path / "img.txt").unlink()
    with pytest.warns(darknet_py.DarknetWarning, match=r"1 label file\(s\) not found, read as images without objects"):
        dataset = load_dataset(_tiny_dataset(tmp_path, None), 80)
    assert dataset.truths[0].shape == (0, 5)
    assert cli.main(["map", "--cfg", "x.cfg", "--weights", "x.weights"]) == 2  # neither --data nor COCO files


# -- the metric on hand-made cases --------------------------------------------------------------------------
def _dets(boxes_xywh: list, scores: list, classes: list, size=(100, 100), box_ids=None) -> Detections:
    xyxy = np.array([[x - w / 2, y - h / 2, x + w / 2, y + h / 2] for x, y, w, h in boxes_xywh], np.float32).reshape(-1, 4)
    xyxy *= np.array(size * 2, np.float32)
    return Detections(xyxy, np.array(scores, np.float32), np.array(classes, np.int64), ["a", "b"], size, "",
                      unclipped=xyxy, box_ids=None if box_ids is None else np.array(box_ids))


def test_known_answers() -> None:
    truth = np.array([[0, 0.3, 0.3, 0.2, 0.2], [0, 0.7, 0.7, 0.2, 0.2], [1, 0.5, 0.5, 0.4, 0.4]])
    perfect = _dets([t[1:] for t in truth], [0.9, 0.8, 0.7], [0, 0, 1])
    result = evaluate([perfect], [truth], ["a", "b"])
    assert result.mean_ap == 1 and (result.tp, result.fp, result.fn) == (3, 0, 0)
    assert result.average_iou == pytest.approx(1, abs=1e-6)  # float32 box maths, as darknet
    # class b missed; a second detection of a's first truth. Ranks by score: a1 0.9 TP, the duplicate 0.85 FP,
    # a2 0.8 TP → area: recall 0.5 at precision 1, then recall 1 at precision 2/3
    dup = _dets([truth[0, 1:], truth[0, 1:], truth[1, 1:]], [0.9, 0.85, 0.8], [0, 0, 0])
    result = evaluate([dup], [truth], ["a", "b"])
    assert result.classes[0].ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3) and result.classes[1].ap == 0
    assert result.mean_ap == pytest.approx((0.5 + 1 / 3) / 2) and (result.tp, result.fp, result.fn) == (2, 1, 1)
    eleven = evaluate([dup], [truth], ["a", "b"], points=11)
    assert eleven.classes[0].ap == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)  # recall 0..0.5 at 1, 0.6..1 at 2/3
    # darknet's levels are point·(1/10), so 0.6 lies a hair above 6/10: a recall of exactly 6/10 misses it
    ten = [[0, 0.05 + 0.09 * i, 0.5, 0.04, 0.2] for i in range(10)]
    six = _dets([t[1:] for t in ten[:6]], [0.9 - 0.01 * i for i in range(6)], [0] * 6)
    assert evaluate([six], [np.array(ten)], ["a", "b"], points=11).classes[0].ap == pytest.approx(6 / 11)
    # below conf_thresh a detection still counts for AP but not for TP/FP; a shifted box (IoU < 0.5) is an FP
    low = _dets([truth[0, 1:], (0.45, 0.3, 0.2, 0.2)], [0.1, 0.9], [0, 0])
    result = evaluate([low], [truth[:2]], ["a", "b"])
    assert (result.tp, result.fp) == (0, 1) and result.classes[0].ap == pytest.approx(0.5 * 0.5)
    text = darknet_text(result)
    assert "class_id = 0, name = a, ap = 25.00%   \t (TP = 0, FP = 1) " in text
    assert " mean average precision (mAP@0.50) = 0.125000, or 12.50 % " in text and "precision = 0.00" in text
    with pytest.raises(InputError, match=r"points 5: darknet's mAP takes \(0, 11, 101\)"):  # not a bare ValueError
        evaluate([low], [truth[:2]], ["a", "b"], points=5)


def test_darknets_per_image_rule_counts_a_truth_once_in_box_order() -> None:
    """At conf_thresh a detection is a TP only if no earlier detection of the image (in darknet's box order:
    by the last class's score first) matched its truth — even one below the threshold."""
    truth = np.array([[0, 0.5, 0.5, 0.4, 0.4]])
    # box 0: a 0.9 only; box 1: a 0.2 and b 0.3 — darknet's order puts box 1 (b > 0) first, so box 0 is an FP
    dets = _dets([truth[0, 1:], truth[0, 1:], truth[0, 1:]], [0.9, 0.3, 0.2], [0, 1, 0], box_ids=[0, 1, 1])
    accumulator = MapAccumulator(["a", "b"])
    accumulator.add(dets, truth)
    result = accumulator.result()
    assert (result.tp, result.fp) == (0, 2) and result.classes[0].ap == 1.0  # AP ranks by score: 0.9 first, a TP
