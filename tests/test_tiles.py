"""Tiles and regions (darknet_py.pipeline.tiles): the grid, the merge across tile edges on constructed
cases, ROI offsets, small objects found on a real mosaic (COCO's own annotations as the reference),
torch = onnxruntime with tiles, `detect`/`map --tiles`, and bad values as one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.pipeline import tiles
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.nms import pairwise_overlap
from darknet_py.pipeline.tiles import WindowOptions, auto_tile_side, merge, tile_grid, windows_for
from tests.conftest import COCO, IMAGES, VIDEO, official, shared_path

pytestmark = pytest.mark.timeout(300)

NAMES = ["person", "car"]
TINY = [arg for pair in zip(("--cfg", "--weights"), map(str, official("yolov4-tiny"))) for arg in pair]


@pytest.fixture(scope="module")
def model():
    return darknet_py.load(*official("yolov4-tiny"))


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    """The second 3x3 mosaic of the COCO subset (images 10-18 at native resolution, 1920x1566) as a PNG,
    with its annotations moved onto it: (folder, png path, COCO dict)."""
    from benchmarks.tiles import mosaics

    pictures, coco, _, _ = mosaics(shared_path(COCO / "instances_val2017_subset.json"), COCO / "images", limit=2)
    folder = tmp_path_factory.mktemp("mosaic")
    path = folder / coco["images"][1]["file_name"]
    cv2.imwrite(str(path), pictures[1])
    one = {"images": [coco["images"][1]], "categories": coco["categories"],
           "annotations": [a for a in coco["annotations"] if a["image_id"] == coco["images"][1]["id"]]}
    (folder / "mosaic.json").write_text(json.dumps(one))
    return folder, path, one


@pytest.fixture(scope="module")
def mosaic_tiled(model, mosaic) -> Detections:
    """The mosaic detected with tiles="auto" (31 windows, one batch), shared by the tests that need it."""
    return model.detect(cv2.imread(str(mosaic[1])), tiles="auto")[0]


def _dets(boxes, scores, classes) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(classes, np.int64), NAMES)


# -- the grid -----------------------------------------------------------------------------------------
def test_tile_grid_spreads_tiles_evenly_from_edge_to_edge() -> None:
    # 1000 wide: stride round(416 * 0.8) = 333 needs 3 tiles, spread as 0, 292, 584 (the last ends at 1000)
    assert tile_grid(1000, 500, 416, 416, 0.2).tolist() == [
        [0, 0, 416, 416], [292, 0, 708, 416], [584, 0, 1000, 416],
        [0, 84, 416, 500], [292, 84, 708, 500], [584, 84, 1000, 500]]
    assert tile_grid(300, 200, 416, 416).tolist() == [[0, 0, 300, 200]]  # smaller than a tile: one, the image
    assert tile_grid(1000, 300, 500, 500, 0.0).tolist() == [[0, 0, 500, 300], [500, 0, 1000, 300]]


def test_auto_tiles_are_the_fewest_at_most_a_quarter_larger_than_the_network() -> None:
    # 1920 px: 5 tiles of 458 (5 - 4 x 0.2 = 4.2 tile sides cover it; 4 would need 565 > 1.25 x 416)
    assert [auto_tile_side(side, 416, 0.2) for side in (520, 521, 768, 1440, 1920)] == [520, 290, 427, 424, 458]
    windows = windows_for(1920, 1440, WindowOptions("auto"), 416, 416)
    assert len(windows) == 5 * 4 + 1 and windows[-1].tolist() == [0, 0, 1920, 1440]
    assert windows[:5, 0].tolist() == [0, 366, 731, 1096, 1462] and windows[0].tolist() == [0, 0, 458, 424]


def test_windows_are_the_region_tiles_then_the_whole_region() -> None:
    windows = windows_for(2000, 1000, WindowOptions(tiles=400, overlap=0.5, roi=(100, 200, 700, 600)), 416, 416)
    # the region is 600 x 400: tiles of 400 at stride 200 start at x 100 and 300, one row; then the region itself
    assert windows.tolist() == [[100, 200, 500, 600], [300, 200, 700, 600], [100, 200, 700, 600]]
    assert windows_for(800, 600, WindowOptions(tiles="auto"), 800, 608).tolist() == [[0, 0, 800, 600]]
    assert windows_for(800, 600, WindowOptions(roi=(0, 0, 10, 20)), 416, 416).tolist() == [[0, 0, 10, 20]]


# -- the merge, on constructed detections ------------------------------------------------------------------
WINDOWS = np.array([[0, 0, 416, 416], [333, 0, 749, 416], [0, 0, 749, 416]])  # two tiles, then the whole region


def test_a_box_split_by_a_tile_edge_is_merged_into_one() -> None:
    # a car from x 300 to 450: the left tile sees 300..416 (cut by its right edge), the right tile 333..450
    left = _dets([[300, 100, 416, 200]], [0.8], [1])
    right = _dets([[0, 100, 117, 200]], [0.7], [1])  # in the right tile's own pixels (it starts at x 333)
    merged = merge([left, right, _dets([], [], [])], WINDOWS, WINDOWS[-1], (749, 416), 0.45)
    assert merged.boxes.tolist() == [[300, 100, 450, 200]] and merged.scores.tolist() == pytest.approx([0.8])
    assert merged.labels == ["car"] and merged.image_size == (749, 416)


def test_whole_views_of_one_object_in_two_tiles_keep_the_uncut_box() -> None:
    # inside the overlap both tiles see the whole person; the left tile's box ends 6 px before its right
    # edge (within EDGE_MARGIN: it may have been cut there), the right tile's is whole: that box stands,
    # with the better score
    left = _dets([[350, 50, 410, 150]], [0.9], [0])
    right = _dets([[20, 52, 81, 151]], [0.6], [0])  # x 353..414 in the image
    merged = merge([left, right, _dets([], [], [])], WINDOWS, WINDOWS[-1], (749, 416), 0.45)
    assert merged.boxes.tolist() == [[353, 52, 414, 151]] and merged.scores.tolist() == pytest.approx([0.9])


def test_the_whole_image_pass_keeps_a_large_object_and_absorbs_its_pieces() -> None:
    big = [30, 40, 700, 400]
    pieces = [_dets([[30, 40, 416, 400]], [0.6], [1]), _dets([[0, 40, 367, 400]], [0.55], [1])]
    merged = merge(pieces + [_dets([big], [0.9], [1])], WINDOWS, WINDOWS[-1], (749, 416), 0.45)
    assert merged.boxes.tolist() == [big] and merged.scores.tolist() == pytest.approx([0.9])
    # a cut piece that scores best lends the whole box its score; the box stays the one that saw it all
    pieces = [_dets([[30, 40, 416, 400]], [0.95], [1]), _dets([[0, 40, 367, 400]], [0.55], [1])]
    merged = merge(pieces + [_dets([big], [0.9], [1])], WINDOWS, WINDOWS[-1], (749, 416), 0.45)
    assert merged.boxes.tolist() == [big] and merged.scores.tolist() == pytest.approx([0.95])


def test_a_large_box_never_swallows_a_small_object_or_another_class() -> None:
    whole = _dets([[10, 10, 740, 410]], [0.3], [0])  # a low-score person box over most of the image
    small = _dets([[100, 100, 130, 160], [100, 100, 130, 160]], [0.9, 0.8], [0, 1])
    merged = merge([small, _dets([], [], []), whole], WINDOWS, WINDOWS[-1], (749, 416), 0.45)
    assert merged.boxes.tolist() == [[100, 100, 130, 160], [100, 100, 130, 160], [10, 10, 740, 410]]
    assert merged.labels == ["person", "car", "person"]


# -- real images --------------------------------------------------------------------------------------------
def test_an_image_within_one_tile_gives_the_plain_result_bit_for_bit(model) -> None:
    dog = str(IMAGES / "dog.jpg")  # 768 x 576
    plain, tiled = model.detect(dog)[0], model.detect(dog, tiles=800)[0]
    for field in ("boxes", "scores", "class_ids", "unclipped", "box_ids"):
        assert np.array_equal(getattr(plain, field), getattr(tiled, field)), field
    assert tiled.source == plain.source and len(plain) >= 3


def test_roi_detects_in_the_region_with_boxes_in_image_pixels(model) -> None:
    image = cv2.imread(str(IMAGES / "dog.jpg"))
    x1, y1, x2, y2 = 90, 150, 400, 560
    crop = model.detect(np.ascontiguousarray(image[y1:y2, x1:x2]))[0]
    found = model.detect(image, roi=(x1, y1, x2, y2))[0]
    assert found.labels == crop.labels and "dog" in found.labels
    assert np.array_equal(found.boxes, crop.boxes + np.float32([x1, y1, x1, y1]))
    assert np.array_equal(found.scores, crop.scores) and found.image_size == (768, 576)
    with pytest.raises(darknet_py.InputError, match=r"region 0,0,800,100 reaches outside the 768x576 image"):
        model.detect(image, roi=(0, 0, 800, 100))


def _found(dets: Detections, annotations: list[dict], categories: list[int]) -> np.ndarray:
    """Which annotated objects a detection of their class covers at IoU 0.5 or more."""
    truth = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in annotations], dtype=torch.float32)
    iou = pairwise_overlap(truth, other=torch.from_numpy(dets.boxes)).numpy()
    same = np.array([categories.index(a["category_id"]) for a in annotations])[:, None] == dets.class_ids[None]
    return ((iou >= 0.5) & same).any(1)


def test_tiles_find_the_small_objects_of_a_mosaic_that_the_plain_pass_misses(model, mosaic, mosaic_tiled) -> None:
    _, path, coco = mosaic
    annotations = [a for a in coco["annotations"] if not a["iscrowd"]]
    categories = sorted(c["id"] for c in coco["categories"])
    small = np.array([a["area"] < 32 ** 2 for a in annotations])
    plain = _found(model.detect(str(path))[0], annotations, categories)
    tiled = _found(mosaic_tiled, annotations, categories)
    # COCO's annotators' boxes are the reference: 129 objects, 64 of them small
    assert len(annotations) == 129 and small.sum() == 64
    assert plain.sum() <= 20 and (plain & small).sum() <= 2
    assert tiled.sum() >= 40 and (tiled & small).sum() >= 10
    assert (plain & ~tiled).sum() <= 2  # what the plain pass found, tiles keep


def test_windows_four_at_a_time_or_all_at_once_give_the_same_detections(model, monkeypatch) -> None:
    image = cv2.imread(str(IMAGES / "kite.jpg"))  # 1352 x 900: 5 x 3 tiles of 352 and the whole image
    by_four = model.detect(image, tiles=352)[0]
    monkeypatch.setattr(tiles, "CPU_WINDOWS_PER_FORWARD", 64)
    at_once = model.detect(image, tiles=352)[0]
    assert at_once.labels == by_four.labels and len(at_once) >= 10
    assert np.abs(at_once.scores - by_four.scores).max() <= 1e-4
    assert np.abs(at_once.boxes - by_four.boxes).max() <= 0.05


def test_torch_and_onnxruntime_give_the_same_tiled_detections(model) -> None:
    images = [str(IMAGES / "dog.jpg")]
    options = {"tiles": 320, "tile_overlap": 0.25}  # 3 x 2 tiles + the whole image, one batch
    expected = model.detect(images, **options)
    got = darknet_py.load(*official("yolov4-tiny"), backend="onnxruntime").detect(images, **options)
    assert sum(len(d) for d in expected) >= 6
    for want, have in zip(expected, got, strict=True):
        assert have.labels == want.labels
        assert np.abs(have.scores - want.scores).max(initial=0) <= 1e-3
        assert np.abs(have.boxes - want.boxes).max(initial=0) <= 0.5


# -- the command line -------------------------------------------------------------------------------------
def test_detect_tiles_and_roi_write_what_the_api_finds(model, mosaic, mosaic_tiled, tmp_path: Path) -> None:
    _, path, _ = mosaic
    roi = model.detect(cv2.imread(str(path)), roi=(0, 0, 640, 480))[0]
    for flags, expected in ((["--tiles", "auto", "--tile-overlap", "0.2"], mosaic_tiled),
                            (["--roi", "0,0,640,480"], roi)):
        out = tmp_path / flags[0].strip("-")
        assert cli.main(["detect", str(path), "--output", str(out), "--save-json", "--no-save"]
                        + flags + TINY) == 0
        records = json.loads((out / "detections.json").read_text())[0]["detections"]
        assert records == expected.to_list() and len(records) >= 5


def test_map_with_tiles_on_coco_and_darknet_datasets(mosaic, tmp_path: Path, capsys) -> None:
    folder, path, coco = mosaic
    ap = {}
    for flags in ([], ["--tiles", "auto"]):
        out = tmp_path / f"coco{len(flags)}.json"
        assert cli.main(["map", "--images", str(folder), "--annotations", str(folder / "mosaic.json"),
                         "--json-out", str(out)] + flags + TINY) == 0
        ap[len(flags)] = json.loads(out.read_text())
    assert ap[2]["AP"] > 2 * ap[0]["AP"] and ap[2]["APs"] > ap[0]["APs"] + 0.05
    # the same mosaic as a darknet dataset: labels beside the image, names, valid list, obj.data
    categories = sorted(c["id"] for c in coco["categories"])
    width, height = coco["images"][0]["width"], coco["images"][0]["height"]
    lines = [f"{categories.index(a['category_id'])} {(a['bbox'][0] + a['bbox'][2] / 2) / width:.6f} "
             f"{(a['bbox'][1] + a['bbox'][3] / 2) / height:.6f} {a['bbox'][2] / width:.6f} {a['bbox'][3] / height:.6f}"
             for a in coco["annotations"] if not a["iscrowd"]]
    path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "valid.txt").write_text(f"{path}\n")
    (tmp_path / "obj.data").write_text(f"classes = 80\nvalid = {tmp_path / 'valid.txt'}\n"
                                       f"names = {shared_path(official('yolov4-tiny')[0].parent / 'coco.names')}\n")
    found = {}
    for flags in ([], ["--tiles", "auto"]):
        out = tmp_path / f"darknet{len(flags)}.json"
        assert cli.main(["map", "--data", str(tmp_path / "obj.data"), "--json-out", str(out)] + flags + TINY) == 0
        found[len(flags)] = json.loads(out.read_text())
    assert found[2]["mAP@0.50"] > 1.5 * found[0]["mAP@0.50"] and found[2]["tp"] > 2 * found[0]["tp"]


@pytest.mark.parametrize("flags, message", [
    (["--tiles", "16"], "error: --tiles 16: give 'auto' (tiles about the network's input size) or a tile side of at "
                        "least 32 pixels"),
    (["--tiles", "big"], "error: --tiles big: give 'auto' or a tile side in pixels, e.g. --tiles 640"),
    (["--tile-overlap", "0.3"], "error: --tile-overlap needs --tiles"),
    (["--tiles", "auto", "--tile-overlap", "0.95"], "error: --tile-overlap 0.95: give a fraction of the tile side "
                                                    "from 0 to 0.9, e.g. 0.2"),
    (["--roi", "1,2,3"], "error: --roi 1,2,3: give the region as X1,Y1,X2,Y2 in whole pixels, e.g. --roi 0,100,1280,720"),
    (["--roi", "10,10,5,20"], "error: --roi: region 10,10,5,20 is empty: x2 must exceed x1 and y2 must exceed y1"),
    (["--roi", "0,0,800,100"], "error: {dog}: region 0,0,800,100 reaches outside the 768x576 image (x2 at most 768, "
                               "y2 at most 576)"),
    (["--tiles", "auto", "--ray", "--save-json", "jsonl"], "error: --tiles and --roi are not available with --ray (its workers detect whole "
                                   "images)"),
])
def test_bad_values_are_one_line_errors(flags: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert cli.main(["detect", str(IMAGES / "dog.jpg"), "--output", str(tmp_path / "o"), "--save-json"] + flags + TINY) == 2
    assert capsys.readouterr().err.strip() == message.replace("{dog}", str(IMAGES / "dog.jpg"))
    assert not (tmp_path / "o").exists()  # refused before any work, or failed at its first image: no file of nothing


def test_a_region_beyond_a_video_s_frames_leaves_no_file_of_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert cli.main(["detect", str(shared_path(VIDEO / "vtest_480x360_h264.avi")), "--vid-stride", "100", "--roi",
                     "0,0,640,360", "--save-json", "darknet", "--save-txt", "--output", str(out)] + TINY) == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("error: region 0,0,640,360 reaches outside the 480x360 image "
                                                        "(x2 at most 480, y2 at most 360)")
    assert not out.exists()


@pytest.mark.parametrize("options, message", [
    ({"tiles": 0}, "tiles 0: give 'auto'"),
    ({"tiles": True}, "tiles True: give 'auto'"),
    ({"tiles": "auto", "tile_overlap": -0.1}, r"tile overlap -0.1: give a fraction of the tile side from 0 to 0.9"),
    ({"roi": (0, 0, 10)}, r"region \(0, 0, 10\): give four whole pixel coordinates"),
    ({"roi": (5, 5, 5, 9)}, "region 5,5,5,9 is empty"),
])
def test_bad_api_values_raise_input_errors(model, options: dict, message: str) -> None:
    with pytest.raises(darknet_py.InputError, match=message):
        model.detect(str(IMAGES / "dog.jpg"), **options)


def test_ray_refuses_tiles_in_one_line_before_starting_ray(model, tmp_path: Path) -> None:
    from darknet_py.distributed.ray_detect import detect_on_ray

    with pytest.raises(darknet_py.InputError, match=r"^tiles, tile_overlap not available on Ray \(its workers detect "
                                                    r"whole images\)"):
        detect_on_ray(str(IMAGES / "dog.jpg"), tmp_path / "out", model, tiles="auto", tile_overlap=0.2)
    assert not (tmp_path / "out").exists()
