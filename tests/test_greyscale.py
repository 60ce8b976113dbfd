"""Grey (`channels=1`) and N-channel networks. The test model: the official yolov4-tiny cfg with `channels=1` and
the official weights with the first convolution's kernels summed over the three colour channels (a grey image
then gives that layer nearly what its colour version gave). Its detections on the 9 shared photos equal darknet's
built with OpenCV, which reads a grey network's images with cv::imread(IMREAD_GRAYSCALE) — through `detector
valid`: that darknet's `detector test` aborts on a grey image as soon as it draws a label (get_pixel's assert: the
label's colour channels are beyond a 1-channel image). Files are read as darknet reads them, arrays and video frames converted with
cv2.cvtColor; the grey model detects, maps, exports to ONNX and OpenVINO and runs a video into a live view; other
channel counts take arrays of their own channels and refuse image files in one line."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from benchmarks.oracle.grey_model import coco_category_ids, compare_with_opencv_darknet, grey_files
from darknet_py import cli
from darknet_py.format.names import COCO_NAMES
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.run import run_source
from darknet_py.pipeline.preprocess import network_image, read_image
from tests.conftest import CLIP_FRAMES, COCO, IMAGES, official, photos, shared_path

pytestmark = pytest.mark.timeout(900)  # the OpenCV build of darknet may be made first (minutes, once per machine)

SCORE_TOL, BOX_TOL = 1e-4, 0.05  # darknet's OpenCV build against darknet_py on the colour photos (its README)
COMPARED_FROM = 0.05  # scores compared from here up (detector valid lists everything above 0.001)


@pytest.fixture(scope="module")
def grey(tmp_path_factory) -> tuple[Path, Path]:
    """The grey yolov4-tiny (benchmarks/oracle/grey_model.py): channels=1, first kernels summed over R, G, B."""
    return grey_files(*official("yolov4-tiny"), tmp_path_factory.mktemp("grey"))


@pytest.fixture(scope="module")
def grey_model(grey):
    return darknet_py.load(*grey)


def test_the_grey_model_finds_the_dog(grey_model) -> None:
    assert grey_model.channels == 1
    dets = grey_model.detect(str(shared_path(IMAGES / "dog.jpg")))[0]
    assert dets.labels[0] == "dog" and 0.92 <= dets.scores[0] <= 0.94


def test_images_are_read_as_darknet_reads_them_and_arrays_converted(grey_model) -> None:
    path = str(shared_path(IMAGES / "dog.jpg"))
    colour = cv2.imread(path)
    assert np.array_equal(read_image(path, 1), cv2.imread(path, cv2.IMREAD_GRAYSCALE))  # a JPEG's luma as decoded
    converted = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(network_image(colour, 1), converted)
    assert np.array_equal(network_image(converted[:, :, None], 1), converted)
    assert not np.array_equal(read_image(path, 1), converted)  # not the same pixels: files go by the file
    from_array, from_grey = grey_model.detect([colour, converted])
    assert from_array.labels == from_grey.labels and np.array_equal(from_array.boxes, from_grey.boxes)


def test_detections_equal_darknet_built_with_opencv(darknet_ref_cv, grey, grey_model, tmp_path: Path) -> None:
    """`detector valid` (thresh 0.001, NMS 0.6) on the 9 JPEGs; every entry above 0.05 from either side matched."""
    ids = coco_category_ids(shared_path(COCO / "instances_val2017_subset.json"))
    compared = compare_with_opencv_darknet(darknet_ref_cv, *grey, grey_model, photos(), tmp_path, ids, COMPARED_FROM)
    assert abs(compared.darknet_py_entries - compared.darknet_entries) <= 0.002 * compared.darknet_entries
    assert compared.compared > 60
    assert compared.max_score_difference <= SCORE_TOL and compared.max_box_difference <= BOX_TOL


def test_exports_run_the_grey_model(grey_model, tmp_path: Path) -> None:
    from darknet_py.export.onnx import export_onnx
    from darknet_py.export.openvino import export_openvino

    images = [str(p) for p in photos()[:4]]
    expected = grey_model.detect(images)
    export_onnx(grey_model, tmp_path / "grey.onnx", COCO_NAMES)
    export_openvino(grey_model, tmp_path / "grey.xml", COCO_NAMES)
    for path in (tmp_path / "grey.onnx", tmp_path / "grey.xml"):
        exported = darknet_py.load(path)
        assert exported.channels == 1
        for want, have in zip(expected, exported.detect(images), strict=True):
            assert have.labels == want.labels, path.name
            assert np.abs(have.scores - want.scores).max(initial=0) <= 1e-4
            assert np.abs(have.boxes - want.boxes).max(initial=0) <= 0.05


def test_cli_detects_images_and_video_and_maps_with_the_grey_model(grey, grey_model, clip: Path, tmp_path: Path) -> None:
    """Image files are read grey (and saved grey, as the network saw them), video frames converted with
    cv2.cvtColor; `map` reads its images grey."""
    cfg, weights = grey
    dog = str(shared_path(IMAGES / "dog.jpg"))
    assert cli.main(["detect", dog, "--cfg", str(cfg), "--weights", str(weights), "--save-json",
                     "--output", str(tmp_path / "image")]) == 0
    (record,) = json.loads((tmp_path / "image" / "detections.json").read_text())
    assert [d["name"] for d in record["detections"]] == grey_model.detect(dog)[0].labels
    saved = cv2.imread(str(tmp_path / "image" / "dog.jpg"))
    assert np.abs(saved[:40, :40].astype(int) - saved[:40, :40, :1]).max() <= 2  # grey: B, G, R alike (JPEG aside)
    assert cli.main(["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--save-json", "--no-save",
                     "--output", str(tmp_path / "video")]) == 0
    records = json.loads((tmp_path / "video" / "detections.json").read_text())
    capture = cv2.VideoCapture(str(clip))
    for record in records:
        ok, frame = capture.read()
        assert ok
        expected = grey_model.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))[0]
        assert [d["class_id"] for d in record["detections"]] == expected.class_ids.tolist()
    capture.release()
    assert len(records) == CLIP_FRAMES and sum(len(r["detections"]) for r in records) > 0
    annotations = shared_path(COCO / "instances_val2017_subset.json")
    data = json.loads(annotations.read_text())
    keep = {i["id"] for i in sorted(data["images"], key=lambda i: i["id"])[:6]}
    data["images"] = [i for i in data["images"] if i["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    (tmp_path / "six.json").write_text(json.dumps(data))
    assert cli.main(["map", "--cfg", str(cfg), "--weights", str(weights), "--images", str(shared_path(COCO / "images")),
                     "--annotations", str(tmp_path / "six.json")]) == 0


def test_a_live_view_shows_the_grey_models_frames(grey_model, clip: Path) -> None:
    with LiveView(LiveOptions()) as live:  # no server: the feed its streams and page read
        report = run_source("video", str(clip), lambda frames: grey_model.detect(frames), [live])
        assert report.done == CLIP_FRAMES
        last = live.feed.next_frame(CLIP_FRAMES - 1)
        assert last.image.shape[2] == 3 and cv2.imdecode(np.frombuffer(last.jpeg(80), np.uint8), cv2.IMREAD_COLOR) is not None


def test_other_channel_counts_take_arrays_and_refuse_files(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "four.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=4\n[convolutional]\nfilters=6\nsize=1\nstride=1\n"
                   "activation=linear\n[yolo]\nmask=0\nanchors=10,10\nclasses=1\nnum=1\n")
    from weights_tools.synth import synthesize

    model = synthesize(cfg)
    weights = tmp_path / "four.weights"
    model.save_weights(weights)
    four = np.random.default_rng(0).integers(0, 256, (40, 50, 4), dtype=np.uint8)
    (found,) = model.detect(four, 0.0)  # an (H, W, 4) array: its 4 planes, in order
    assert found.image_size == (50, 40)
    with pytest.raises(darknet_py.InputError, match=r"this network reads 4 channels; give an \(H, W, 4\) array"):
        model.detect(four[:, :, :3])
    with pytest.raises(darknet_py.InputError, match=r"darknet reads image files with 1 \(grey\) or 3 \(colour\) only"):
        model.detect(str(shared_path(IMAGES / "dog.jpg")))
    code = cli.main(["detect", str(shared_path(IMAGES / "dog.jpg")), "--cfg", str(cfg), "--weights", str(weights),
                     "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "reads 4 channels, but darknet reads image files with 1" in err[0], err
