"""`darknet-py map`: COCOeval on hand-made cases with known answers, class-id mapping, the CLI
end to end on real subset images, and every backend agreeing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.evaluate.coco import category_ids, evaluate, load_ground_truth, run_map
from darknet_py.export.onnx import export_onnx
from darknet_py.format.names import COCO_NAMES
from darknet_py.pipeline.detections import Detections
from tests.conftest import COCO, official, shared_path

ANNOTATIONS = COCO / "instances_val2017_subset.json"


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def _hand_made(tmp_path: Path, with_optional_keys: bool = True) -> Path:
    """Two images, categories 1 and 3 (a gap, as in COCO), medium-sized boxes."""
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 100, 80], "area": 8000, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [300, 200, 60, 90], "area": 5400, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 60, 120, 70], "area": 8400, "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "three"}, {"id": 1, "name": "one"}],
    }
    if with_optional_keys:
        data.update(info={"description": "hand made"}, licenses=[])
    return _write(tmp_path / "gt.json", data)


def _perfect(gt_path: Path, skip_category: int | None = None) -> list[dict]:
    gt = json.loads(gt_path.read_text())
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"] if a["category_id"] != skip_category]


def test_perfect_detections_score_one_and_a_missed_class_halves_it(tmp_path: Path) -> None:
    coco = load_ground_truth(_hand_made(tmp_path))
    perfect = evaluate(coco, _perfect(tmp_path / "gt.json"))
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AP50"] == pytest.approx(1.0)
    assert perfect["APs"] == -1  # no small objects annotated: COCOeval's "not applicable"
    # category 3 never detected: its AP is 0, the mean over the two categories 0.5
    missed = evaluate(coco, _perfect(tmp_path / "gt.json", skip_category=3))
    assert missed["AP"] == pytest.approx(0.5) and missed["AP50"] == pytest.approx(0.5)
    # one of category 1's two boxes shifted to IoU 0.6 (and scored lower): a hit at IoU 0.5, a miss
    # at 0.75, where category 1 reaches recall 0.5 at precision 1 — 51 of COCO's 101 recall points
    shifted = _perfect(tmp_path / "gt.json")
    shifted[0].update(bbox=[10 + 25, 10, 100, 80], score=0.5)  # IoU = 75·80 / (125·80) = 0.6
    result = evaluate(coco, shifted)
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == pytest.approx((51 / 101 + 1) / 2)
    assert evaluate(coco, [])["AP"] == 0.0


def test_annotation_files_without_info_or_licenses_and_broken_ones(tmp_path: Path) -> None:
    coco = load_ground_truth(_hand_made(tmp_path, with_optional_keys=False))
    assert evaluate(coco, _perfect(tmp_path / "gt.json"))["AP"] == pytest.approx(1.0)
    for content, message in (("{not json", "is not valid JSON"), ("[]", "expected a COCO instances object"),
                             ('{"images": []}', "no annotations, categories"),
                             ('{"images": [], "annotations": {}, "categories": []}', "must each be a JSON list"),
                             ('{"images": [], "annotations": [7], "categories": []}', "annotation 0 lacks image_id"),
                             ('{"images": [], "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2]}], '
                              '"categories": []}', r"annotation 0: bbox must be \[x, y, width, height\]")):
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(darknet_py.InputError, match=message):
            load_ground_truth(bad)


def test_class_index_maps_to_sorted_category_ids() -> None:
    coco = load_ground_truth(shared_path(ANNOTATIONS))
    ids = category_ids(coco)
    assert len(ids) == 80 and ids[:12] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13] and ids[-1] == 90
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    # darknet's coco.names order is COCO's sorted-id order
    assert [names[i] for i in ids] == [n.replace("motorbike", "motorcycle").replace("aeroplane", "airplane")
                                       .replace("sofa", "couch").replace("pottedplant", "potted plant")
                                       .replace("diningtable", "dining table").replace("tvmonitor", "tv")
                                       for n in COCO_NAMES]
    dets = Detections(np.array([[0, 0, 10, 20]], np.float32), np.array([0.5], np.float32), np.array([11]), COCO_NAMES)
    assert dets.to_coco(7, ids) == [{"image_id": 7, "category_id": 13, "score": 0.5, "bbox": [0.0, 0.0, 10.0, 20.0]}]


def _subset(tmp_path: Path, count: int) -> Path:
    data = json.loads(shared_path(ANNOTATIONS).read_text())
    data["images"] = sorted(data["images"], key=lambda i: i["id"])[:count]
    kept = {i["id"] for i in data["images"]}
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in kept]
    return _write(tmp_path / "subset.json", data)


def test_cli_map_end_to_end_and_an_independent_pycocotools_run_agrees(tmp_path: Path, capsys) -> None:
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    cfg, weights = official("yolov4-tiny")
    annotations = _subset(tmp_path, 12)
    args = ["map", "--cfg", str(cfg), "--weights", str(weights), "--images", str(shared_path(COCO / "images")),
            "--annotations", str(annotations), "--batch", "4", "--json-out", str(tmp_path / "metrics.json"),
            "--save-results", str(tmp_path / "results.json")]
    assert cli.main(args) == 0
    table = capsys.readouterr().out
    assert "AP50" in table
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"AP", "AP50", "AP75", "APs", "APm", "APl"} and 0.1 < metrics["AP50"] <= 1
    # pycocotools on its own, straight from the files
    gt = PyCOCO(str(annotations))
    evaluator = COCOeval(gt, gt.loadRes(str(tmp_path / "results.json")), "bbox")
    evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(metrics["AP"]) and evaluator.stats[1] == pytest.approx(metrics["AP50"])
    assert f"{metrics['AP50'] * 100:6.2f}" in table
    # a second run does not replace the files without --exist-ok, and says so before any work
    (tmp_path / "metrics.json").write_text("{}")
    assert cli.main(args) == 2
    assert "metrics.json exists; pass --exist-ok" in capsys.readouterr().err
    assert (tmp_path / "metrics.json").read_text() == "{}"


def test_every_backend_gives_the_same_map(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    onnx_file = tmp_path / "tiny.onnx"
    export_onnx(model, onnx_file, COCO_NAMES)
    annotations = _subset(tmp_path, 20)
    images = shared_path(COCO / "images")
    torch_report = run_map(model, images, annotations, batch=4, progress=False)
    assert torch_report.detections > 500
    for backend in ("onnxruntime", "openvino"):
        report = run_map(darknet_py.load(onnx_file, backend=backend), images, annotations, batch=4, progress=False)
        for key, value in torch_report.metrics.items():
            assert abs(report.metrics[key] - value) <= 0.001, (backend, key)


def test_missing_images_and_wrong_class_count_are_clear(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(darknet_py.InputError, match=r"12 of the 12 annotated images are missing from .*empty: 0000"):
        run_map(model, empty, _subset(tmp_path, 12), progress=False)
    with pytest.raises(darknet_py.InputError, match="predicts 80 classes but .* lists 2 categories"):
        run_map(model, empty, _hand_made(tmp_path), progress=False)
