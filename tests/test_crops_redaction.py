"""`detect --save-crops [--crop-pad F]` and redaction (`--blur`, `--pixelate`, `--no-boxes`), with exact expected
outputs: the crop files are the JPEGs of rectangles worked out here by hand; redaction changes exactly the pixels of
the chosen classes' boxes — a pixelated box holds its cells' means (computed here cell by cell), a blurred one
OpenCV's Gaussian blur of the box alone — and nothing outside them; boxes and labels are drawn on the redacted
image unless --no-boxes, in the saved image and in the live view alike."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.crops import CropsSink
from darknet_py.media.redact import RedactStage, redact_stage
from darknet_py.media.run import run_images
from darknet_py.media.sinks import Result
from darknet_py.pipeline.box_rect import box_rect
from darknet_py.pipeline.detections import Detections
from tests.conftest import IMAGES, official, shared_path

pytestmark = pytest.mark.timeout(180)

NAMES = ["person", "bicycle", "car"]


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    """A 120x80 image of random pixels: any change to a pixel shows."""
    return np.random.default_rng(7).integers(0, 256, (80, 120, 3), dtype=np.uint8)


def _dets(boxes: list[list[float]], classes: list[int], size: tuple[int, int] = (120, 80)) -> Detections:
    count = len(boxes)
    return Detections(boxes=np.array(boxes, np.float32).reshape(-1, 4), scores=np.linspace(0.9, 0.5, count, dtype=np.float32),
                      class_ids=np.array(classes, np.int64), names=NAMES, image_size=size, source="street.png")


def test_box_rect_covers_every_pixel_a_box_touches() -> None:
    assert box_rect([10.2, 20.7, 50.1, 60.0], (120, 80)) == (10, 20, 51, 60)
    assert box_rect([10.0, 20.0, 50.0, 60.0], (120, 80), pad=0.1) == (6, 16, 54, 64)  # 4 px of 40 each side
    assert box_rect([-5.0, -3.0, 130.0, 90.0], (120, 80), pad=0.5) == (0, 0, 120, 80)  # clipped to the image
    assert box_rect([119.6, 79.9, 120.0, 80.0], (120, 80)) == (119, 79, 120, 80)
    assert box_rect([120.0, 30.0, 120.0, 30.0], (120, 80)) == (119, 30, 120, 31)  # a box squeezed to a point: 1 px


def test_crops_are_the_boxes_as_jpegs(noise: np.ndarray, tmp_path: Path) -> None:
    dets = _dets([[10.2, 20.7, 50.1, 60.0], [0.0, 0.0, 30.0, 10.0], [10.2, 20.7, 50.1, 60.0]], [0, 2, 1])
    for pad, rects in [(0.0, [(10, 20, 51, 60), (0, 0, 30, 10), (10, 20, 51, 60)]),
                       (0.25, [(0, 10, 61, 70), (0, 0, 38, 13), (0, 10, 61, 70)])]:
        sink = CropsSink(tmp_path / f"crops{pad}", pad)
        sink.write(Result("photos/street.png", None, noise, dets))
        sink.finish()
        expected = {f"{NAMES[c]}/street_{k}.jpg": rect for k, (c, rect) in enumerate(zip([0, 2, 1], rects))}
        written = sorted(str(p.relative_to(tmp_path / f"crops{pad}")) for p in (tmp_path / f"crops{pad}").rglob("*.jpg"))
        assert written == sorted(expected)
        for name, (x1, y1, x2, y2) in expected.items():
            jpeg = cv2.imencode(".jpg", noise[y1:y2, x1:x2])[1].tobytes()
            assert (tmp_path / f"crops{pad}" / name).read_bytes() == jpeg, name
    frame = CropsSink(tmp_path / "video")
    frame.write(Result("walk.mp4", 12, noise, dets))
    assert (tmp_path / "video" / "car" / "walk_12_1.jpg").is_file()


def test_detections_crops_are_what_save_crops_writes(noise: np.ndarray, tmp_path: Path) -> None:
    """`dets.crops(image, pad)` in Python cuts the rectangles --save-crops writes (the same JPEG once encoded)."""
    dets = _dets([[10.2, 20.7, 50.1, 60.0], [0.0, 0.0, 30.0, 10.0], [10.2, 20.7, 50.1, 60.0]], [0, 2, 1])
    for pad, rects in [(0.0, [(10, 20, 51, 60), (0, 0, 30, 10), (10, 20, 51, 60)]),
                       (0.25, [(0, 10, 61, 70), (0, 0, 38, 13), (0, 10, 61, 70)])]:
        crops = dets.crops(noise, pad)
        assert [crop.shape[:2] for crop in crops] == [(y2 - y1, x2 - x1) for x1, y1, x2, y2 in rects]
        assert all(np.array_equal(crop, noise[y1:y2, x1:x2]) for crop, (x1, y1, x2, y2) in zip(crops, rects))
        sink = CropsSink(tmp_path / f"crops{pad}", pad)
        sink.write(Result("photos/street.png", None, noise, dets))
        sink.finish()
        assert (tmp_path / f"crops{pad}" / "car" / "street_1.jpg").read_bytes() == cv2.imencode(".jpg", crops[1])[1].tobytes()
    with pytest.raises(darknet_py.InputError, match=r"^crops: the image is 40x30, the detections were found in a "):
        dets.crops(noise[:30, :40])
    with pytest.raises(darknet_py.InputError, match="crops: pad -1"):
        dets.crops(noise, -1)


def _pixelated(region: np.ndarray, cell: int) -> np.ndarray:
    """Each cell × cell block (from the top-left; the last ones narrower) filled with its mean, rounded half up."""
    out = region.copy()
    for top in range(0, region.shape[0], cell):
        for left in range(0, region.shape[1], cell):
            block = region[top:top + cell, left:left + cell].reshape(-1, region.shape[2]).astype(np.float64)
            out[top:top + cell, left:left + cell] = np.floor(block.mean(0) + 0.5)
    return out


def test_redaction_changes_exactly_the_chosen_boxes(noise: np.ndarray) -> None:
    dets = _dets([[10.2, 20.7, 50.1, 60.0], [60.0, 5.0, 110.0, 30.0], [0.0, 70.0, 20.0, 80.0]], [0, 2, 1])
    stage = redact_stage(blur=["car"], pixelate=["0"], names=NAMES)
    result = stage.process(Result("street.png", None, noise, dets))
    out = result.image
    assert out is not noise and not np.shares_memory(out, noise)  # the original image is left as it was
    expected = noise.copy()
    # person: (10, 20, 51, 60), 41x40 px: 8 cells along the longer side → cells of ceil(41/8) = 6 px
    expected[20:60, 10:51] = _pixelated(noise[20:60, 10:51], 6)
    # car: (60, 5, 110, 30), 50x25 px: kernel side (25 // 2) | 1 = 13, the box's own border repeated
    expected[5:30, 60:110] = cv2.GaussianBlur(noise[5:30, 60:110], (13, 13), 0, borderType=cv2.BORDER_REPLICATE)
    assert np.array_equal(out, expected)  # the bicycle (not chosen) and everything outside the boxes: untouched
    assert np.array_equal(out[70:80, 0:20], noise[70:80, 0:20])
    blurred = out[5:30, 60:110].astype(np.float64)
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.25 * np.abs(np.diff(noise[5:30, 60:110].astype(np.float64), axis=1)).mean()
    # boxes and labels are drawn on the redacted image; --no-boxes: the redacted image as it is
    assert np.array_equal(result.annotated, dets.draw(out))
    plain = RedactStage({0: "pixelate"}, boxes=False).process(Result("street.png", None, noise, dets))
    assert np.array_equal(plain.annotated, plain.image) and plain.drawn is plain.image


def test_redacted_frames_reach_the_live_view(noise: np.ndarray) -> None:
    dets = _dets([[10.0, 20.0, 50.0, 60.0]], [0])
    for boxes in (True, False):
        result = RedactStage({0: "pixelate"}, boxes).process(Result("street.png", None, noise, dets))
        with LiveView(LiveOptions()) as live:  # no server: the feed the MJPEG stream and the page read
            live.write(result)
            frame = live.feed.next_frame(0)
            assert frame.image is result.image
            shown = dets.draw(result.image) if boxes else result.image
            assert frame.jpeg(80) == cv2.imencode(".jpg", shown, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
            live.finish()


def test_cli_saves_redacted_images_and_crops(tmp_path: Path) -> None:
    """dog.png (a PNG: saved without loss) with --pixelate dog --blur bicycle: the saved image is the model's
    detections drawn on the redacted photo; with --no-boxes, the redacted photo; crops come from the redacted image."""
    photo = tmp_path / "dog.png"
    cv2.imwrite(str(photo), cv2.imread(str(shared_path(IMAGES / "dog.jpg"))))
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    dets = model.detect(str(photo))[0]
    assert {"dog", "bicycle"} <= set(dets.labels)
    original = cv2.imread(str(photo))
    redacted = RedactStage({16: "pixelate", 1: "blur"}).process(Result(str(photo), None, original, dets)).image
    for extra, expected in [([], dets.draw(redacted)), (["--no-boxes"], redacted)]:
        out = tmp_path / f"out{len(extra)}"
        assert cli.main(["detect", str(photo), "--cfg", str(cfg), "--weights", str(weights), "--pixelate", "dog",
                         "--blur", "1", "--save-crops", "--save-json", "--output", str(out), *extra]) == 0
        assert np.array_equal(cv2.imread(str(out / "dog.png")), expected)
        records = json.loads((out / "detections.json").read_text())[0]["detections"]
        crops = sorted(str(p.relative_to(out / "crops")) for p in (out / "crops").rglob("*.jpg"))
        assert crops == sorted(f"{d['name']}/dog_{k}.jpg" for k, d in enumerate(records))
    x1, y1, x2, y2 = box_rect(dets.boxes[dets.labels.index("dog")], dets.image_size)
    outside = np.ones(original.shape[:2], bool)
    for box, label in zip(dets.boxes, dets.labels):
        if label in ("dog", "bicycle"):
            bx1, by1, bx2, by2 = box_rect(box, dets.image_size)
            outside[by1:by2, bx1:bx2] = False
    assert np.array_equal(redacted[outside], original[outside]) and not np.array_equal(redacted[y1:y2, x1:x2],
                                                                                        original[y1:y2, x1:x2])


def test_a_run_hands_every_sink_the_redacted_image(tmp_path: Path) -> None:
    photo = shared_path(IMAGES / "dog.jpg")
    seen = []

    class Record:
        def write(self, result: Result) -> None:
            seen.append(result)

        def finish(self) -> None:
            pass

    dets = _dets([[100.0, 100.0, 300.0, 400.0]], [0], (768, 576))
    run_images([str(photo)], lambda images: [dets], [Record()], stages=[RedactStage({0: "blur"}, boxes=False)])
    (result,) = seen
    original = cv2.imread(str(photo))
    assert np.array_equal(result.image[:100], original[:100]) and not np.array_equal(result.image, original)
    assert result.annotated is result.image


@pytest.mark.parametrize("flags, message", [
    (["--blur", "unicorn"], r"--blur unicorn: not a class of this model \(80 classes: person, bicycle"),
    (["--pixelate", "80"], "--pixelate 80: not a class of this model"),
    (["--blur", "dog", "--pixelate", "16"], "class dog is given to both --blur and --pixelate"),
    (["--save-crops", "--crop-pad", "-0.1"], r"--crop-pad -0.1: give a fraction of the box size, 0 or more"),
    (["--crop-pad", "0.1"], "--crop-pad needs --save-crops"),
    (["--save-crops", "--ray"], "--save-crops is not available with --ray"),
    (["--save-frames", "5", "--ray"], "--save-frames is not available with --ray"),
])
def test_bad_values_are_one_line_errors(flags: list[str], message: str, tmp_path: Path, capsys) -> None:
    import re

    cfg, weights = official("yolov4-tiny")
    code = cli.main(["detect", str(shared_path(IMAGES / "dog.jpg")), "--cfg", str(cfg), "--weights", str(weights),
                     "--output", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and re.search(message, err[0]), err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
