"""--heatmap: where objects spent their time. The map is checked against supervision's HeatMapAnnotator (the peer:
its heat, a disc per box at the truncated anchor marked once a frame) fed the same boxes, times each frame's duration;
the whole-box map against OpenCV's filled rectangles; the picture against the scene it is drawn over; a camera's map
saved as it goes and going on after a restart; and the flags' refusals."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

import darknet_py
from darknet_py import cli
from darknet_py.core.errors import DarknetWarning
from darknet_py.media.detect_run import detect_into_folder
from darknet_py.media.heatmap_sink import (
    BACKGROUND_FRAMES,
    HEATMAP_NPY,
    HEATMAP_PNG,
    MAX_LIVE_FRAME_S,
    HeatmapOptions,
    HeatmapSink,
)
from darknet_py.media.outputs import Outputs
from darknet_py.media.sinks import Result
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.heatmap import COLORMAP, OPACITY, Heatmap, default_radius, render_heatmap
from tests.conftest import VIDEO as VIDEOS
from tests.conftest import official, refused_before_work, shared_path

pytestmark = pytest.mark.timeout(300)

VIDEO = VIDEOS / "pedestrians.avi"  # 1280x720, 25 frames/s as OpenCV reads it, 341 frames
STRIDE = 4


class _KeepBoxes:
    """A stage that keeps each frame's exact boxes (detections.json rounds them to 0.01 px)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, np.ndarray]] = []

    def process(self, result: Result) -> Result:
        self.frames.append((result.frame, result.detections.boxes.astype(np.float64)))
        return result

    def finish(self) -> None:
        pass


@pytest.fixture(scope="module")
def pedestrians_run(tmp_path_factory):
    """pedestrians.avi's people, every 4th frame, through the CLI's run with --heatmap --heatmap-radius 20."""
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    out = tmp_path_factory.mktemp("heat") / "run"
    kept = _KeepBoxes()
    video = str(shared_path(VIDEO))
    outcome = detect_into_folder("video", video, lambda frames: model.detect(frames, 0.25, 0.45, classes=(0,)),
                                 Outputs(annotated=False, heatmap=HeatmapOptions("bottom", 20)), model.names,
                                 output=str(out), stages=[kept], vid_stride=STRIDE)
    return out, kept.frames, outcome


def _supervision_heat(frames: list[tuple[int, np.ndarray]], position, radius: int, size=(720, 1280)) -> np.ndarray:
    """supervision's HeatMapAnnotator's heat after these frames: how many frames marked each pixel."""
    annotator = sv.HeatMapAnnotator(position=position, radius=radius)
    scene = np.zeros((*size, 3), np.uint8)
    for _, boxes in frames:
        annotator.annotate(scene.copy(), sv.Detections(xyxy=boxes.reshape(-1, 4)))
    return annotator.heat_mask.astype(np.float64)


def test_a_video_s_heat_is_supervision_s_in_seconds(pedestrians_run) -> None:
    out, frames, outcome = pedestrians_run
    assert [frame for frame, _ in frames] == list(range(0, 341, STRIDE)) and sum(len(b) for _, b in frames) > 500
    heat = np.load(out / HEATMAP_NPY)
    assert heat.dtype == np.float64 and heat.shape == (720, 1280)
    expected = _supervision_heat(frames, sv.Position.BOTTOM_CENTER, 20) * (STRIDE / 25)
    assert np.abs(heat - expected).max() < 1e-9, np.argwhere(np.abs(heat - expected) > 1e-9)[:5]
    # a place occupied every frame holds the video's length: no more, and the people standing there reach nearly it
    assert heat.max() <= len(frames) * STRIDE / 25 + 1e-9 and heat.max() > 10
    picture = cv2.imread(str(out / HEATMAP_PNG))
    assert picture.shape == (720, 1280, 3)
    assert f"heat map: {out / HEATMAP_PNG} (most occupied place: {heat.max():.1f} s)" in outcome.lines


def test_the_centre_and_the_whole_box(pedestrians_run) -> None:
    """The other anchors on the same boxes: the centre as supervision's CENTER, the box as OpenCV fills it."""
    _, frames, _ = pedestrians_run
    centre = Heatmap(1280, 720, radius=9, anchor="center")
    box = Heatmap(1280, 720, anchor="box")
    filled = np.zeros((720, 1280), np.float64)
    for _, boxes in frames:
        centre.add(boxes, 0.5)
        box.add(boxes, 0.5)
        mask = np.zeros((720, 1280), np.uint8)
        for x1, y1, x2, y2 in boxes:
            cv2.rectangle(mask, (int(x1), int(y1)), (int(x2), int(y2)), 1, thickness=-1)
        filled += 0.5 * mask
    assert np.array_equal(centre.heat, _supervision_heat(frames, sv.Position.CENTER, 9) * 0.5)
    assert np.array_equal(box.heat, filled) and box.frames == len(frames)
    assert default_radius(1280, 720) == 22 and default_radius(640, 360) == 11 and default_radius(20, 20) == 2


def _frames(count: int, size=(120, 160)) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """A still scene (a gradient with a grey block) and *count* frames of it with a dark square walking across,
    each frame with the square's box."""
    height, width = size
    scene = np.dstack([np.tile(np.linspace(40, 220, width, dtype=np.uint8), (height, 1))] * 3)
    scene[10:30, 10:40] = 128
    frames = []
    for i in range(count):
        x = 10 + i * (width - 40) // max(count - 1, 1)
        frame = scene.copy()
        frame[60:90, x:x + 20] = 5
        frames.append((frame, np.array([[x, 60, x + 20, 90]], np.float32)))
    return scene, frames


def _result(frame: np.ndarray, boxes: np.ndarray, index: int | None, at: float | None = None,
            camera: bool = False) -> Result:
    dets = Detections(boxes, np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64), ["thing"],
                      (frame.shape[1], frame.shape[0]))
    return Result("rtsp://cam/1" if camera else "walk.mp4", index, frame, dets, fps=None if index is None else 25.0,
                  stream_time=at if camera else None, captured=at if camera else None)


def test_the_picture_is_the_scene_without_passers_by_under_the_heat(tmp_path: Path) -> None:
    scene, frames = _frames(40)
    sink = HeatmapSink(tmp_path, HeatmapOptions("center", 6))
    for i, (frame, boxes) in enumerate(frames):
        sink.write(_result(frame, boxes, i))
    sink.finish()
    heat, picture = np.load(tmp_path / HEATMAP_NPY), cv2.imread(str(tmp_path / HEATMAP_PNG))
    # each frame 1/25 s, the last as long as the one before it: the 40 frames' discs, each pixel's count of them
    discs = np.zeros_like(heat)
    for _, boxes in frames:
        (x1, y1, x2, y2), = boxes.tolist()
        yy, xx = np.mgrid[:120, :160]
        discs += ((xx - int((x1 + x2) / 2)) ** 2 + (yy - int((y1 + y2) / 2)) ** 2 <= 6 ** 2) / 25
    assert np.array_equal(heat > 0, discs > 0) and np.isclose(heat.sum(), discs.sum(), rtol=0.05)
    cold = heat == 0
    cold[:80, 100:] = False  # the scale in its corner
    assert np.array_equal(picture[cold], scene[cold])  # the median of the kept frames: the square is gone
    hottest = np.unravel_index(np.argmax(heat), heat.shape)
    top = cv2.applyColorMap(np.full((1, 1), 255, np.uint8), COLORMAP)[0, 0].astype(np.float64)
    expected = np.rint(scene[hottest] + OPACITY * (top - scene[hottest]))
    assert np.abs(picture[hottest].astype(np.float64) - expected).max() <= 1


def test_background_frames_stay_few_and_spread(tmp_path: Path) -> None:
    _, frames = _frames(100, (24, 32))
    sink = HeatmapSink(tmp_path)
    for i, (frame, boxes) in enumerate(frames):
        sink.write(_result(frame, boxes, i))
        assert len(sink._backgrounds) <= BACKGROUND_FRAMES
    assert len(sink._backgrounds) >= BACKGROUND_FRAMES // 2
    sink.finish()
    assert (tmp_path / HEATMAP_PNG).exists()


def test_a_camera_s_map_is_saved_as_it_goes_and_goes_on_after_a_restart(tmp_path: Path) -> None:
    """A camera's frame stands for the time to the next (at most MAX_LIVE_FRAME_S: a gap adds nothing); the files are
    saved when the clock passes the interval; a second run into the folder adds to the first's map."""
    now = [0.0]
    _, frames = _frames(6)
    times = [0.0, 0.1, 0.2, 10.2, 10.3, 10.4]  # a 10 s gap after the third frame
    sink = HeatmapSink(tmp_path, HeatmapOptions("center", 4), clock=lambda: now[0], save_every_s=60)
    for i, ((frame, boxes), at) in enumerate(zip(frames, times)):
        if i == 4:
            assert not (tmp_path / HEATMAP_NPY).exists()
            now[0] = 61.0  # a minute passes: this frame's write saves
        sink.write(_result(frame, boxes, i, at, camera=True))
    saved = np.load(tmp_path / HEATMAP_NPY)
    sink.finish()
    first = np.load(tmp_path / HEATMAP_NPY)
    expected = Heatmap(160, 120, 4, "center")
    for (_, boxes), duration in zip(frames, [0.1, 0.1, MAX_LIVE_FRAME_S, 0.1, 0.1, 0.1]):
        expected.add(boxes, duration)
    assert np.allclose(first, expected.heat, rtol=0, atol=1e-12)
    assert 0 < saved.sum() < first.sum()  # the save held the frames so far
    assert (tmp_path / HEATMAP_PNG).exists()

    again = HeatmapSink(tmp_path, HeatmapOptions("center", 4))
    for i, ((frame, boxes), at) in enumerate(zip(frames[:2], [0.0, 0.1])):
        again.write(_result(frame, boxes, i, at, camera=True))
    again.finish()
    second = Heatmap(160, 120, 4, "center")
    for (_, boxes) in frames[:2]:
        second.add(boxes, 0.1)
    assert again.resumed and np.allclose(np.load(tmp_path / HEATMAP_NPY), first + second.heat, rtol=0, atol=1e-12)
    assert "(with the earlier run's)" in again.summary()

    # a run whose frames come at another size (the camera set to a higher resolution): the earlier map's frame stays,
    # this run's boxes scaled into it, as a folder's images are
    before = np.load(tmp_path / HEATMAP_NPY)
    larger = HeatmapSink(tmp_path, HeatmapOptions("center", 4))
    for i, ((frame, boxes), at) in enumerate(zip(frames[:2], [0.0, 0.1])):
        larger.write(_result(cv2.resize(frame, (320, 240)), boxes * 2, i, at, camera=True))
    larger.finish()
    assert larger.resumed and np.allclose(np.load(tmp_path / HEATMAP_NPY), before + second.heat, rtol=0, atol=1e-12)

    (tmp_path / HEATMAP_NPY).write_bytes(b"not numpy")  # a file that is no map: a warning, a new map, no traceback
    with pytest.warns(DarknetWarning, match="heatmap.npy: not an earlier heat map"):
        fresh = HeatmapSink(tmp_path, HeatmapOptions("center", 4))
        fresh.write(_result(frames[0][0], frames[0][1], 0, 0.0, camera=True))
    fresh.finish()
    assert not fresh.resumed and np.load(tmp_path / HEATMAP_NPY).shape == (120, 160)


def test_a_folder_s_images_count_once_each_in_the_first_one_s_frame(tmp_path: Path) -> None:
    _, frames = _frames(2)
    small, boxes = frames[0]
    large = cv2.resize(frames[1][0], (320, 240), interpolation=cv2.INTER_NEAREST)
    sink = HeatmapSink(tmp_path, HeatmapOptions("box"))
    sink.write(_result(small, boxes, None))
    sink.write(_result(large, frames[1][1] * 2, None))  # the same place, at twice the size
    sink.finish()
    expected = Heatmap(160, 120, anchor="box")
    expected.add(boxes, 1)
    expected.add(frames[1][1], 1)
    assert np.array_equal(np.load(tmp_path / HEATMAP_NPY), expected.heat) and sink.unit == "images"
    assert "most occupied place: 1 images" in sink.summary()


def test_the_picture_s_scale_reads_the_most(tmp_path: Path) -> None:
    heat = np.zeros((360, 640))
    heat[100:120, 100:140] = 754.0  # 12 min 34 s
    picture = render_heatmap(heat, np.full((360, 640, 3), 128, np.uint8))
    assert picture.shape == (360, 640, 3)
    assert not np.array_equal(picture[8:40, 560:], np.full((32, 80, 3), 128))  # the scale is drawn there
    from darknet_py.pipeline.heatmap import _amount
    assert [_amount(v, "s") for v in (42.46, 754.0, 12000.0)] == ["42.5 s", "12 min 34 s", "3 h 20 min"]
    tiny = render_heatmap(np.ones((4, 4)), np.zeros((4, 4, 3), np.uint8))  # no room for a scale: the colours alone
    assert tiny.shape == (4, 4, 3)


@pytest.mark.parametrize("flags, line", [
    (["--heatmap-radius", "5"], "error: --heatmap-radius shapes the heat map: give --heatmap"),
    (["--heatmap-at", "center"], "error: --heatmap-at shapes the heat map: give --heatmap"),
    (["--heatmap", "--heatmap-radius", "0"], "error: --heatmap-radius 0: expected a radius of at least 1 pixel"),
    (["--heatmap", "--heatmap-at", "box", "--heatmap-radius", "5"], "error: --heatmap-radius is the disc around"),
])
def test_bad_heatmap_flags_are_refused_before_any_work(flags, line, tmp_path: Path, capsys) -> None:
    refused_before_work(flags, line, tmp_path / "out", capsys)


def test_heatmap_is_refused_with_ray(tmp_path: Path, capsys) -> None:
    assert cli.main(["detect", str(tmp_path), "--ray", "--heatmap", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == "error: --heatmap is not available with --ray (results go to OUTPUT/detections.jsonl)\n"


def test_each_source_of_a_run_has_its_own_map(tmp_path: Path) -> None:
    """The flags through the CLI, two videos of two sizes through one model: a map each, in each source's folder; with
    --serve --keep-serving, once both have ended, /heatmap/N sends each one's, and Ctrl-C then ends the run with 0."""
    import urllib.request

    from tests.test_live import LiveRun

    cfg, weights = official("yolov4-tiny")
    videos = [shared_path(VIDEOS / "vtest_480x360_h264.avi"), shared_path(VIDEOS / "car_traffic_small.mp4")]
    out = tmp_path / "out"
    run = LiveRun(*map(str, videos), "--cfg", str(cfg), "--weights", str(weights), "--vid-stride", "40", "--heatmap",
                  "--heatmap-at", "center", "--no-save", "--serve", "0", "--keep-serving", "--output", str(out))
    try:
        base = run.url("live view")
        run.wait_line("the sources have ended; still serving their last frames")
        served = []
        for index in range(2):
            with urllib.request.urlopen(f"{base}heatmap/{index}", timeout=60) as reply:
                served.append(cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_COLOR))
    finally:
        code = run.finish(interrupt=True)
    err = run.stderr()
    assert code == 0, err
    for video, size, picture in zip(videos, [(360, 480), (360, 640)], served):
        folder = out / video.stem
        heat = np.load(folder / HEATMAP_NPY)
        assert heat.shape == size and heat.max() > 0, video
        written = cv2.imread(str(folder / HEATMAP_PNG))
        assert written.shape == (*size, 3) and np.array_equal(picture, written)
        assert f"heat map: {folder / HEATMAP_PNG} (most occupied place: {heat.max():.1f} s)" in err


def test_the_live_page_links_the_heat_map_drawn_when_asked(tmp_path: Path) -> None:
    """--serve with --heatmap: /health says a source has one, the page links it, and /heatmap (/heatmap/0) sends the
    picture of the map so far: once the video has ended, the picture the run wrote; a source with none is a 404."""
    import json
    import urllib.error
    import urllib.request

    from tests.chromium import Chromium, wait_for
    from tests.test_live import LiveRun

    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    run = LiveRun(str(shared_path(VIDEOS / "vtest_480x360_h264.avi")), "--cfg", str(cfg), "--weights", str(weights),
                  "--vid-stride", "40", "--heatmap", "--serve", "0", "--keep-serving", "--no-save", "--output", str(out))
    try:
        base = run.url("live view")
        run.wait_line("still serving its last frame")
        with Chromium(tmp_path / "chromium") as browser:
            browser.goto(base)
            href = browser.evaluate(wait_for("document.querySelector('#health a.heatmap') !== null",
                                             "document.querySelector('#health a.heatmap').getAttribute('href')"))
        with urllib.request.urlopen(base + "health", timeout=60) as reply:
            (source,) = json.loads(reply.read())["sources"]
        pictures = []
        for path in ("heatmap", "heatmap/0"):
            with urllib.request.urlopen(base + path, timeout=60) as reply:
                pictures.append((reply.headers["Content-Type"], reply.read()))
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "heatmap/1", timeout=60)
    finally:
        code = run.finish(interrupt=True)
    assert code == 0, "".join(run.seen)  # Ctrl-C while it serves the ended source's last frame: how such a run ends
    assert href == "/heatmap/0" and source["heatmap"] is True and missing.value.code == 404
    assert missing.value.reason == "no source 1 (sources are numbered from 0)"
    written = cv2.imread(str(out / HEATMAP_PNG))
    for content_type, body in pictures:
        assert content_type == "image/png"
        assert np.array_equal(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), written)


def test_boxes_beyond_the_frame_mark_only_what_is_inside() -> None:
    """The map's API takes any boxes (detect's are clipped to the image; one's own may not be): a box wholly left of or
    above the map marks nothing, one across its edge marks the part inside, as OpenCV's filled rectangle clips it."""
    heat = Heatmap(40, 30, anchor="box")
    heat.add(np.array([[-20, -20, -5, -8], [-10, 5, 6, 9], [35, 25, 60, 50]]), 1.0)
    expected = np.zeros((30, 40), np.uint8)
    for x1, y1, x2, y2 in ((-20, -20, -5, -8), (-10, 5, 6, 9), (35, 25, 60, 50)):
        cv2.rectangle(expected, (x1, y1), (x2, y2), 1, thickness=-1)
    assert np.array_equal(heat.heat, expected.astype(np.float64)) and heat.heat.sum() == 7 * 5 + 5 * 5
