"""`darknet-py anchors`: darknet's `detector calc_anchors`, against the real darknet (built from ../shared/reference,
its time() hooked so that its srand takes the test's seed: benchmarks/oracle/calc_anchors_hooks.c) on the shared
COCO subset's boxes as a darknet set — the lines it prints (boxes per class, average IoU, anchors) identical text,
and its k-means centres identical float32 bits, at several sizes, cluster counts and seeds; glibc's rand() against
glibc itself (ctypes); the cfg written with the anchors; the picture; bad input refused in one line.
"""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.oracle.darknet_commands import calc_anchors as darknet_calc_anchors
from darknet_py import cli
from darknet_py.core.c_random import CRandom
from darknet_py.core.errors import DarknetWarning
from darknet_py.format.cfg import parse_text
from darknet_py.media.anchor_plot import OUTLINE, SIDE, anchor_colour, plot_frame
from darknet_py.model import anchors as anchors_module
from darknet_py.model.anchors import calc_anchors, closest_anchor, darknet_kmeans, read_label_boxes
from darknet_py.model.network import build
from tests.conftest import COCO, REPO, darknet_warnings, official, shared_path

pytestmark = pytest.mark.timeout(600)


def _write_set(folder: Path) -> Path:
    """The COCO subset's boxes (crowds left out) as a darknet set: a label file per image (the images themselves are
    never opened by calc_anchors, so they are not copied), a train list, obj.data; plus what darknet lets pass: an
    image whose label file is missing, and a box whose centre is outside the image ("Wrong label")."""
    data = json.loads(shared_path(COCO / "instances_val2017_subset.json").read_text())
    index = {category: i for i, category in enumerate(sorted(c["id"] for c in data["categories"]))}
    images = {image["id"]: image for image in data["images"]}
    labels: dict[int, list[str]] = {}
    for box in data["annotations"]:
        if not box.get("iscrowd", 0):
            image = images[box["image_id"]]
            (x, y, w, h), width, height = box["bbox"], image["width"], image["height"]
            labels.setdefault(box["image_id"], []).append(
                f"{index[box['category_id']]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} "
                f"{h / height:.6f}")
    (folder / "images").mkdir(parents=True)
    paths = []
    for number, image_id in enumerate(sorted(images)):
        path = folder / "images" / images[image_id]["file_name"]
        lines = labels.get(image_id, []) + (["0 1.200000 0.500000 0.100000 0.200000"] if number == 3 else [])
        if number != 5:  # the sixth image's label file is missing
            path.with_suffix(".txt").write_text("".join(line + "\n" for line in lines))
        paths.append(str(path))
    (folder / "train.txt").write_text("".join(path + "\n" for path in paths))
    (folder / "obj.data").write_text(f"classes = 80\ntrain = {folder / 'train.txt'}\nnames = coco.names\n")
    return folder / "obj.data"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _write_set(tmp_path_factory.mktemp("anchors-set"))


@pytest.mark.parametrize("seed", [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 1796671389])
def test_rand_equals_glibcs(seed: int) -> None:
    """CRandom(seed) draws what glibc's rand() draws after srand(seed) (this machine's libc, through ctypes)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.srand.argtypes, libc.rand.restype = [ctypes.c_uint], ctypes.c_int
    libc.srand(seed)
    expected = [libc.rand() for _ in range(2000)]
    ours = CRandom(seed)
    assert [ours.rand() for _ in range(2000)] == expected


@pytest.mark.parametrize("clusters, width, height, seed", [
    (9, 416, 416, 1),             # yolov4's count, the usual size
    (6, 608, 320, 1796671389),    # yolov4-tiny's count, a wide network, a time() as darknet would take it
    (5, 13, 13, 2**31 + 5),       # darknet's default count at a [region] grid size: printed with 4 decimals
    (1, 416, 416, 7),             # one cluster: darknet's update-first path
])
def test_anchors_equal_darknets_calc_anchors(darknet_ref, dataset: Path, tmp_path: Path, capsys, monkeypatch,
                                             clusters: int, width: int, height: int, seed: int) -> None:
    theirs = darknet_calc_anchors(darknet_ref, dataset, clusters, width, height, seed, tmp_path / "darknet")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DarknetWarning)
        assert cli.main(["anchors", str(dataset), "--clusters", str(clusters), "--width", str(width), "--height",
                         str(height), "--seed", str(seed)]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines() == theirs.lines and len(theirs.lines) == 3
    assert f"after {theirs.iterations} k-means rounds (seed {seed})" in printed.err
    fourth = Path((dataset.parent / "train.txt").read_text().splitlines()[3]).with_suffix(".txt")
    boxes = len(fourth.read_text().splitlines())  # the wrong box is its last
    messages = sorted(darknet_warnings(said))  # one wrong box, one missing label file
    assert len(messages) == 2 and messages[0].startswith("1 label box(es) with a centre or size outside (0, 1]")
    assert messages[0].endswith(f"(first: {fourth}, box {boxes})") and messages[1].startswith("1 label file(s) not found")
    # to the last bit: the centres as k-means left them, before the sort by area, by the C kernel and by numpy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)  # counted above
        sizes = read_label_boxes(dataset, width, height).sizes
    expected = [(float.fromhex(w).hex(), float.fromhex(h).hex()) for w, h in theirs.centers]
    for use_kernel in (True, False):
        monkeypatch.setattr(anchors_module, "use_kernel", use_kernel)
        centers, rounds = darknet_kmeans(sizes, clusters, seed)
        assert [(float(w).hex(), float(h).hex()) for w, h in centers] == expected, use_kernel
        assert rounds == theirs.iterations, use_kernel


def test_the_kmeans_kernel_is_built() -> None:
    assert anchors_module._kernel is not None


def test_the_command_loads_neither_torch_nor_opencv(dataset: Path) -> None:
    """anchors reads text files and does float32 arithmetic: it answers without torch's 1.7 s of imports (OpenCV only
    for --plot)."""
    code = ("import sys, warnings; from darknet_py import cli; warnings.simplefilter('ignore')\n"
            f"code = cli.main(['anchors', {str(dataset)!r}, '--clusters', '3', '--size', '416'])\n"
            "print(code, 'torch' in sys.modules, 'cv2' in sys.modules, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stderr.splitlines()[-1] == "0 False False", result.stderr
    assert result.stdout.splitlines()[-1].startswith("anchors = ")


def test_the_same_seed_gives_the_same_anchors_and_another_seed_others(dataset: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        first, again, other = (calc_anchors(dataset, 9, 416, 416, seed) for seed in (3, 3, 4))
    assert np.array_equal(first.centers, again.centers) and not np.array_equal(first.centers, other.centers)
    areas = first.centers[:, 0] * first.centers[:, 1]
    assert np.all(np.diff(areas) >= 0)  # smallest first, as darknet sorts them
    assert 50 < first.average_iou < 70


def test_a_cfg_written_with_the_anchors_changes_only_its_anchor_lines(dataset: Path, tmp_path: Path, capsys) -> None:
    """--cfg yolov4-tiny.cfg -o: its size (416) and anchor count (6) taken from it; every [yolo] layer's anchors=
    line is the printed anchors, every other line as it was; the new cfg builds and takes the official weights."""
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "custom.cfg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        assert cli.main(["anchors", str(dataset), "--cfg", str(cfg), "--seed", "9", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    anchors_line = printed.out.splitlines()[-1]
    assert "at 416x416: 6 anchors" in printed.err and f"wrote {out}" in printed.err
    before, after = cfg.read_text().splitlines(), out.read_text().splitlines()
    changed = [number for number, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(before) == len(after) and len(changed) == 2
    assert all(after[number] == anchors_line for number in changed)
    assert all(before[number].startswith("anchors") for number in changed)
    model = build(str(out), init_weights=False)
    written = [float(v) for v in anchors_line.split("=", 1)[1].split(",")]
    yolo = [s for s in parse_text(out.read_text(), str(out)) if s.type == "yolo"]
    assert all(section.get_floats("anchors") == written for section in yolo) and len(written) == 12
    model.load_weights(str(weights))  # the anchors change no weight's shape


def test_more_clusters_than_the_cfg_has_sets_its_num(dataset: Path, tmp_path: Path, capsys) -> None:
    cfg, _ = official("yolov4-tiny")
    out = tmp_path / "nine.cfg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        assert cli.main(["anchors", str(dataset), "--cfg", str(cfg), "--clusters", "9", "-o", str(out)]) == 0
    yolo = [s for s in parse_text(out.read_text(), str(out)) if s.type == "yolo"]
    assert [section.get_int("num") for section in yolo] == [9, 9]
    assert all(len(section.get_floats("anchors")) == 18 for section in yolo)
    build(str(out), init_weights=False)
    capsys.readouterr()


def test_the_plot_draws_each_anchor_and_its_boxes(dataset: Path, tmp_path: Path, capsys) -> None:
    """--plot: each anchor's rectangle has its far corner at its size in the plot's frame, in the outline colour; each
    anchor's boxes are dots in its colour (darknet's cloud.png colours); the plot spans the boxes, both axes alike."""
    plot = tmp_path / "cloud.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        assert cli.main(["anchors", str(dataset), "--clusters", "6", "--size", "416", "--plot", str(plot)]) == 0
        anchors = calc_anchors(dataset, 6, 416, 416, 0)
    capsys.readouterr()
    picture = cv2.imread(str(plot))
    frame = plot_frame(anchors)
    assert frame.width == frame.height <= 416 and max(picture.shape[:2]) >= SIDE
    owners = closest_anchor(anchors.boxes.sizes, anchors.centers)
    for k, (w, h) in enumerate(anchors.centers):
        x, y = frame.point(float(w), float(h))
        assert tuple(picture[y, x]) == OUTLINE
        shown = anchors.boxes.sizes[(owners == k) & (anchors.boxes.sizes <= frame.width).all(axis=1)]
        dots = [tuple(picture[y, x]) for x, y in (frame.point(float(w), float(h)) for w, h in shown)]
        assert len(dots) > 0 and dots.count(anchor_colour(k)) >= 0.9 * len(dots)  # the rest: under later dots, lines


@pytest.mark.parametrize("flags, line", [
    ([], "error: give --clusters K (darknet's -num_of_clusters"),
    (["--clusters", "9", "--width", "0", "--height", "416"], "error: network size 0x416: give the width and height"),
    (["--clusters", "9"], "error: give the network's size: --size S, or --width and --height"),
    (["--clusters", "9", "--size", "416", "--width", "320"], "error: --size S is --width S --height S"),
    (["--clusters", "9", "--size", "416", "-o", "x.cfg"], "error: -o writes a copy of a cfg with the new anchors"),
    (["--clusters", "0", "--size", "416"], "error: 0 clusters: give how many anchors to compute, 1 or more"),
    (["--clusters", "5000", "--size", "416"], "error: "),
    (["--clusters", "9", "--size", "416", "--seed", "-1"], "error: seed -1: srand takes 0 to 4294967295"),
])
def test_bad_requests_are_one_line(dataset: Path, tmp_path: Path, capsys, flags: list[str], line: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        assert cli.main(["anchors", str(dataset), *flags]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(line) and err.count("error:") == 1, err
    if flags[:2] == ["--clusters", "5000"]:
        assert "fewer than the 5000 clusters asked for" in err


def test_a_plot_opencv_cannot_write_is_refused_before_the_cfg_is_written(dataset: Path, tmp_path: Path,
                                                                          capsys) -> None:
    cfg, _ = official("yolov4-tiny")
    out, plot = tmp_path / "new.cfg", tmp_path / "plot.jpgx"
    assert cli.main(["anchors", str(dataset), "--cfg", str(cfg), "-o", str(out), "--plot", str(plot)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (f"error: --plot {plot}: OpenCV writes no image of that kind; "
                                                        "give a .png or .jpg file")
    assert not out.exists() and not plot.exists()


def test_a_cfg_whose_masks_name_more_anchors_is_refused_and_nothing_written(dataset: Path, tmp_path: Path,
                                                                           capsys) -> None:
    cfg, _ = official("yolov4-tiny")
    out = tmp_path / "three.cfg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DarknetWarning)
        assert cli.main(["anchors", str(dataset), "--cfg", str(cfg), "--clusters", "3", "-o", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("error: yolov4-tiny.cfg:") and "[yolo] (layer 30): mask=3,4,5 names anchor 5, beyond the 3 " \
        "computed: give --clusters 6 or more" in err, err
    assert not out.exists()
    assert cli.main(["anchors", str(tmp_path / "nowhere.data"), "--cfg", str(cfg), "--clusters", "3", "-o",
                     str(out)]) == 2  # refused before the set is read: the mask's error, not the missing file's
    assert "mask=3,4,5 names anchor 5" in capsys.readouterr().err
    out.write_text("mine")
    assert cli.main(["anchors", str(dataset), "--cfg", str(cfg), "-o", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {out} exists; pass --exist-ok")
    assert out.read_text() == "mine"


def test_a_malformed_label_line_names_its_file_and_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2\n")
    (tmp_path / "train.txt").write_text(f"{tmp_path / 'a.jpg'}\n")
    (tmp_path / "obj.data").write_text(f"classes=4\ntrain={tmp_path / 'train.txt'}\n")
    assert cli.main(["anchors", str(tmp_path / "obj.data"), "--clusters", "1", "--size", "416"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"error: {tmp_path / 'a.txt'}:2: expected 'class x_center y_center width height', "
                                    "found '3 0.5 0.5 0.2'")
