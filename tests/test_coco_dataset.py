"""`detect --save-json coco`: what was detected as a COCO dataset, checked with COCO's own tools and annotations:
pycocotools reads it, its category ids and image sizes are those of instances_val2017 (the shared subset), and its
boxes score against COCO's annotations of the same photos as yolov4-tiny's detections do."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from darknet_py import cli
from darknet_py.format.names import COCO_NAMES
from darknet_py.media.coco_dataset import COCO_CATEGORY_IDS
from tests.conftest import COCO as COCO_SUBSET
from tests.conftest import official, shared_path

PHOTOS = 40


def _quiet(call, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
        return call(*args)


def _ap50(truth: dict, found: list[dict]) -> float:
    gt = COCO()
    gt.dataset = truth
    _quiet(gt.createIndex)
    evaluation = COCOeval(gt, _quiet(gt.loadRes, found), "bbox")
    for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
        _quiet(step)
    return float(evaluation.stats[1])


@pytest.mark.timeout(300)
def test_a_coco_dataset_of_coco_photos_is_cocos_format_ids_and_sizes(tmp_path: Path) -> None:
    truth = json.loads(shared_path(COCO_SUBSET / "instances_val2017_subset.json").read_text())
    images = sorted(truth["images"], key=lambda image: image["id"])[:PHOTOS]
    paths = {str(COCO_SUBSET / "images" / image["file_name"]): image for image in images}
    listed = tmp_path / "photos.txt"
    listed.write_text("".join(f"{path}\n" for path in paths))
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", str(listed), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "coco",
                     "--no-save", "--output", str(tmp_path / "out")]) == 0
    ours = COCO(str(tmp_path / "out" / "coco.json"))  # pycocotools reads it
    dataset = ours.dataset
    # COCO's own category ids for darknet's 80 classes, the model's names
    assert [c["id"] for c in dataset["categories"]] == sorted(c["id"] for c in truth["categories"])
    assert [c["name"] for c in dataset["categories"]] == list(COCO_NAMES)
    # each photo by its path as given, at COCO's own size for it
    assert [image["file_name"] for image in dataset["images"]] == list(paths)
    assert all((image["width"], image["height"]) == (paths[image["file_name"]]["width"], paths[image["file_name"]]["height"])
               for image in dataset["images"])
    annotations = dataset["annotations"]
    assert len(annotations) > 2 * PHOTOS and len({a["id"] for a in annotations}) == len(annotations)
    sizes = {image["id"]: (image["width"], image["height"]) for image in dataset["images"]}
    for a in annotations:
        x, y, w, h = a["bbox"]
        width, height = sizes[a["image_id"]]
        assert 0 <= x and 0 <= y and x + w <= width + 0.01 and y + h <= height + 0.01 and w > 0 and h > 0
        assert a["area"] == pytest.approx(w * h, abs=0.01) and a["iscrowd"] == 0 and 0.25 < a["score"] <= 1
    # the boxes, scored by COCO's tools against COCO's annotations of these photos: yolov4-tiny's AP50 at the 0.25
    # threshold, one class a box (0.34 on these 40); boxes written as corners, not sizes, score 0.03
    kept = {image["id"] for image in images}
    subset = dict(truth, images=images, annotations=[a for a in truth["annotations"] if a["image_id"] in kept])
    coco_id = {image["id"]: paths[image["file_name"]]["id"] for image in dataset["images"]}
    found = [dict(a, image_id=coco_id[a["image_id"]]) for a in annotations]
    ap50 = _ap50(subset, [{k: v for k, v in a.items() if k not in ("id", "area", "iscrowd")} for a in found])
    corner = [dict(a, bbox=[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]])
              for a in found]  # what a file with corners for sizes would score
    assert ap50 > 0.25 and ap50 > _ap50(subset, [{k: v for k, v in a.items() if k not in ("id", "area", "iscrowd")}
                                                for a in corner]) + 0.1


@pytest.mark.timeout(300)
def test_a_videos_dataset_is_the_frames_save_frames_keeps(clip: Path, tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "coco",
                     "--save-frames", "4", "--no-save", "--output", str(out)]) == 0
    dataset = json.loads((out / "coco.json").read_text())
    listed = (out / "frames.txt").read_text().split()
    assert [str(Path(image["file_name"]).resolve()) for image in dataset["images"]] == listed and len(listed) == 3
    for image in dataset["images"]:  # one annotation per box, its best class: the label file darknet would write
        lines = Path(image["file_name"]).with_suffix(".txt").read_text().splitlines()
        mine = [a for a in dataset["annotations"] if a["image_id"] == image["id"]]
        classes = [COCO_CATEGORY_IDS.index(a["category_id"]) for a in mine]
        assert sorted(classes) == sorted(int(line.split()[0]) for line in lines) and lines


def test_coco_for_a_video_needs_save_frames_and_is_refused_with_ray(clip: Path, tmp_path: Path, capsys) -> None:
    """--ray writes its records to detections.jsonl: darknet's result.json and coco.json were silently not written."""
    for kind, extra, message in (("coco", [], "error: --save-json coco lists image files: for a video, stream or "
                                              "camera add --save-frames"),
                                 ("coco", ["--ray"], "error: --save-json coco is not available with --ray"),
                                 ("darknet", ["--ray"], "error: --save-json darknet is not available with --ray")):
        assert cli.main(["detect", str(clip), "--save-json", kind, "--output", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1
        assert not (tmp_path / "o").exists()
