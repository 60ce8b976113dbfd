"""`darknet-py slice`: a darknet set cut into tiles. Each tile's labels are checked against SAHI's own slicing of the
same COCO annotations in the same window (`sahi.slicing.process_coco_annotations`: the boxes clipped to the tile,
those keeping at least min_area_ratio of their area), each tile's pixels against the image's, the tiles against
`--tiles`' grid, and the lists and obj.data against what darknet reads (our darknet_data, which reads them as
darknet does)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sahi.slicing import process_coco_annotations
from sahi.utils.coco import CocoAnnotation

from benchmarks.oracle.darknet_dataset import write_darknet_dataset
from darknet_py import cli
from darknet_py.format.darknet_data import label_path, read_data_file, read_image_list
from darknet_py.pipeline.tiles import tile_grid
from tests.conftest import COCO, REPO, shared_path

ANNOTATIONS = COCO / "instances_val2017_subset.json"
TILE, OVERLAP, MIN_VISIBLE = 256, 0.2, 0.1
IMAGES = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The first 12 images of the COCO subset as a darknet set (PNG copies, labels beside), train= and valid= both."""
    folder = tmp_path_factory.mktemp("set")
    data = write_darknet_dataset(shared_path(ANNOTATIONS), shared_path(COCO / "images"), folder, count=IMAGES)
    data.write_text(data.read_text().replace("valid = ", "train = " + str(folder / "valid.txt") + "\nvalid = ", 1))
    return data


@pytest.fixture(scope="module")
def sliced(dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sliced") / "tiles-set"
    assert cli.main(["slice", str(dataset), "--tile", str(TILE), "--overlap", str(OVERLAP), "--min-visible",
                     str(MIN_VISIBLE), "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sliced_coco(tmp_path_factory) -> Path:
    """The whole COCO subset (its JPEGs and instances JSON) cut straight into a darknet set of tiles."""
    out = tmp_path_factory.mktemp("sliced-coco") / "tiles-set"
    assert cli.main(["slice", "--images", str(shared_path(COCO / "images")), "--annotations",
                     str(shared_path(ANNOTATIONS)), "--tile", str(TILE), "--overlap", str(OVERLAP), "--min-visible",
                     str(MIN_VISIBLE), "-o", str(out)]) == 0
    return out


def _coco() -> tuple[dict, dict, dict]:
    data = json.loads(shared_path(ANNOTATIONS).read_text())
    index = {c: i for i, c in enumerate(sorted(c["id"] for c in data["categories"]))}
    images = {Path(image["file_name"]).stem: image for image in data["images"]}
    boxes: dict[int, list] = {}
    for ann in data["annotations"]:
        if not ann.get("iscrowd", 0):  # as the darknet set was written
            boxes.setdefault(ann["image_id"], []).append(ann)
    return index, images, boxes


@pytest.mark.parametrize("which", ["darknet set", "coco"])
def test_each_tiles_labels_are_sahis_slicing_of_the_same_boxes(which: str, request) -> None:
    """Both ways in — a darknet .data set, a COCO folder — give each tile SAHI's slicing of the image's boxes."""
    sliced = request.getfixturevalue("sliced" if which == "darknet set" else "sliced_coco")
    index, images, boxes = _coco()
    tiles = read_image_list(sliced / ("valid.txt" if which == "darknet set" else "train.txt"))
    compared = kept = 0
    for tile in tiles:
        stem, x1, y1 = Path(tile).stem.rsplit("_", 2)
        height, width = cv2.imread(tile).shape[:2]
        window = [int(x1), int(y1), int(x1) + width, int(y1) + height]
        image = images[stem]
        theirs = sorted((index[a.category_id], *np.round(a.bbox, 2)) for a in process_coco_annotations(
            [CocoAnnotation(category_id=b["category_id"], bbox=b["bbox"]) for b in boxes.get(image["id"], [])],
            window, MIN_VISIBLE))
        rows = np.array([line.split() for line in Path(label_path(tile)).read_text().splitlines()], float).reshape(-1, 5)
        ours = sorted((int(c), *np.round([(x - w / 2) * width, (y - h / 2) * height, w * width, h * height], 2))
                      for c, x, y, w, h in rows)
        assert [row[0] for row in ours] == [row[0] for row in theirs], tile
        assert not ours or np.allclose([row[1:] for row in ours], [row[1:] for row in theirs], atol=0.02), tile
        compared += 1
        kept += len(ours)
    assert compared == len(tiles) and kept >= 100  # every tile, and enough boxes to mean something


def test_the_tiles_are_the_images_pixels_on_detects_grid(sliced: Path, dataset: Path) -> None:
    images = read_image_list(dataset.parent / "valid.txt")
    tiles = read_image_list(sliced / "valid.txt")
    expected = []
    for path in images:
        image = cv2.imread(path)
        for x1, y1, x2, y2 in tile_grid(image.shape[1], image.shape[0], TILE, TILE, OVERLAP).tolist():
            tile = sliced / "tiles" / f"{Path(path).stem}_{x1}_{y1}.png"
            assert np.array_equal(cv2.imread(str(tile)), image[y1:y2, x1:x2])
            expected.append(str(tile))
    assert tiles == expected  # in the list's order, every tile (empty ones too by default)


def test_a_coco_folder_is_cut_as_its_darknet_set_is(sliced: Path, sliced_coco: Path) -> None:
    """The COCO subset cut straight from its JSON gives the tiles (and labels, to the darknet labels' six decimals)
    that its darknet set gives, with the categories as the classes, in map's order, named."""
    darknet_tiles = read_image_list(sliced / "valid.txt")
    coco_tiles = {Path(tile).stem: tile for tile in read_image_list(sliced_coco / "train.txt")}
    assert len(coco_tiles) > len(darknet_tiles)  # the 12 images' tiles among the whole subset's
    for tile in darknet_tiles:
        theirs = coco_tiles[Path(tile).stem]
        # the PNG copy's tile holds the image's pixels exactly; the JPEG's tile is the same pixels encoded as JPEG
        region = cv2.imread(tile)
        assert np.array_equal(cv2.imread(theirs), cv2.imdecode(cv2.imencode(".jpg", region)[1], cv2.IMREAD_COLOR))
        ours = np.array([line.split() for line in Path(label_path(tile)).read_text().splitlines()], float)
        straight = np.array([line.split() for line in Path(label_path(theirs)).read_text().splitlines()], float)
        assert ours.shape == straight.shape and np.allclose(ours, straight, atol=2e-5), tile
    data = read_data_file(sliced_coco / "obj.data")
    assert data["train"] == data["valid"] and Path(data["names"]).read_text() == (
        "".join(c["name"] + "\n" for c in sorted(json.loads(shared_path(ANNOTATIONS).read_text())["categories"],
                                                 key=lambda c: c["id"])))


def test_obj_data_lists_both_lists_and_the_names(sliced: Path, dataset: Path) -> None:
    data = read_data_file(sliced / "obj.data")
    assert data["classes"] == "80" and (sliced / "backup").is_dir()
    assert read_image_list(data["train"]) == read_image_list(data["valid"])  # train= and valid= were one list
    assert Path(data["names"]).read_text() == (dataset.parent / "coco.names").read_text()


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_empty_keeps_that_fraction_of_the_tiles_without_a_box(fraction: float, dataset: Path, sliced: Path,
                                                              tmp_path: Path, capsys) -> None:
    """--empty 0 leaves out every tile without a box; --empty 0.5 keeps every second of them (the 2nd, 4th, …);
    the tiles with boxes are all there, in order."""
    out = tmp_path / "kept"
    assert cli.main(["slice", str(dataset), "--tile", str(TILE), "--empty", str(fraction), "-o", str(out)]) == 0
    every = read_image_list(sliced / "valid.txt")
    empty = [tile for tile in every if not Path(label_path(tile)).read_text()]
    chosen = set(empty[1::2]) if fraction else set()
    kept = read_image_list(out / "valid.txt")
    assert len(empty) >= 4 and [Path(tile).name for tile in kept] == [
        Path(t).name for t in every if t not in empty or t in chosen]
    err = capsys.readouterr().err
    assert f"{len(empty) - len(chosen)} empty tile(s) left out" in err
    # train= and valid= are one list: its tiles are cut once and counted once, listed in both
    assert f"{IMAGES} image(s) → {len(kept)} tile(s) ({len(kept)} in train.txt, {len(kept)} in valid.txt)" in err


def test_one_set_to_slice_is_one_line(tmp_path: Path, capsys) -> None:
    for given in ([], ["x.data", "--images", "i"], ["--annotations", "a.json"]):
        assert cli.main(["slice", *given, "--tile", "256", "-o", str(tmp_path / "o")]) == 2
        assert capsys.readouterr().err == ("error: give the set to slice: its darknet .data file, or --images and "
                                           "--annotations (COCO)\n")


@pytest.mark.parametrize("flags, line", [
    (["--tile", "16"], "error: --tile 16: give the tiles' side in pixels, 32 or more"),
    (["--tile", "256", "--overlap", "0.95"], "error: --overlap 0.95: give a fraction of the tile from 0 to 0.9"),
    (["--tile", "256", "--min-visible", "0"], "error: --min-visible 0: give the fraction of a box's area"),
    (["--tile", "256", "--empty", "1.5"], "error: --empty 1.5: give the fraction of the tiles without a box to keep"),
])
def test_flags_that_mean_nothing_are_one_line(dataset: Path, flags: list[str], line: str, tmp_path: Path,
                                              capsys) -> None:
    assert cli.main(["slice", str(dataset), *flags, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_set_with_a_missing_list_is_one_line(tmp_path: Path, capsys) -> None:
    data = tmp_path / "obj.data"
    data.write_text("classes = 1\ntrain = nowhere/train.txt\nnames = obj.names\n")
    (tmp_path / "obj.names").write_text("thing\n")
    assert cli.main(["slice", str(data), "--tile", "256", "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {data}: train=nowhere/train.txt not found")
    assert not (tmp_path / "o").exists()  # nothing made before the set is found whole


def test_slicing_loads_no_torch(dataset: Path, tmp_path: Path) -> None:
    """No network runs: the command starts and works without torch's 1.7 s of imports."""
    code = ("import sys; from darknet_py import cli\n"
            f"code = cli.main(['slice', {str(dataset)!r}, '--tile', '512', '-o', {str(tmp_path / 'o')!r}])\n"
            "print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["0", "False"], result.stderr


def test_a_slice_stopped_by_a_bad_label_file_leaves_a_set_of_the_tiles_done(dataset: Path, tmp_path: Path,
                                                                              capsys) -> None:
    """The third image's label file is malformed: one error line naming its line, and the set so far — obj.data
    and a list of the first two images' tiles, each with its labels — is one darknet reads."""
    images = read_image_list(dataset.parent / "valid.txt")
    broken = tmp_path / "set"
    broken.mkdir()
    for image in images[:3]:
        (broken / Path(image).name).write_bytes(Path(image).read_bytes())
        (broken / Path(label_path(image)).name).write_bytes(Path(label_path(image)).read_bytes())
    bad = broken / Path(label_path(images[2])).name
    bad.write_text("0 0.5 0.5 0.2\n")
    (broken / "list.txt").write_text("".join(f"{broken / Path(image).name}\n" for image in images[:3]))
    (broken / "names.txt").write_text((dataset.parent / "coco.names").read_text())
    (broken / "obj.data").write_text(f"classes = 80\ntrain = {broken / 'list.txt'}\nnames = {broken / 'names.txt'}\n")
    out = tmp_path / "out"
    assert cli.main(["slice", str(broken / "obj.data"), "--tile", str(TILE), "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"error: {bad}:1: expected 'class x_center y_center")
    tiles = read_image_list(read_data_file(out / "obj.data")["train"])
    assert tiles and {Path(tile).name.rsplit("_", 2)[0] for tile in tiles} == {Path(i).stem for i in images[:2]}
    assert all(Path(tile).is_file() and Path(label_path(tile)).is_file() for tile in tiles)
