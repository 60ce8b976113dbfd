"""Video sources other than a file (stream URL, webcam), interruption, and --show."""
from __future__ import annotations

import http.server
import json
import struct
import subprocess
import sys
import threading
import zlib
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.media import sinks, video
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.image_header import header_size
from darknet_py.pipeline.image_url import IMAGE_EXTENSIONS
from darknet_py.pipeline.preprocess import decode_image, read_image
from tests.conftest import CLIP_FRAMES, IMAGES, REPO, VIDEO, frame_count, official, same_detections, shared_path


@pytest.fixture
def zoo_env(monkeypatch) -> None:
    cfg, _ = official("yolov4-tiny")
    monkeypatch.setenv("DARKNET_PY_ZOO", str(cfg.parents[1]))


def test_stream_url(clip: Path, tmp_path: Path, zoo_env) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{clip.name}"
        assert cli.main(["detect", url, "--output", str(tmp_path)]) == 0
    finally:
        server.shutdown()
    assert frame_count(tmp_path / "clip.mp4") == CLIP_FRAMES  # H.264 MP4 by default, whatever the source's container


def test_an_image_url_detects_as_its_file_to_the_bit(tmp_path: Path, zoo_env) -> None:
    """An http(s) URL of an image is fetched whole and decoded as the file is read (it went to FFmpeg as a one-frame
    video, whose JPEG decoder rounds otherwise: dog 83% where darknet says 84%): the command's records and labels equal
    the file's, the API's detections too; credentials in the URL are shown nowhere; a missing one is one line."""
    authorizations = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            authorizations.append(self.headers.get("Authorization"))
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(shared_path(IMAGES))))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        url = f"http://user:secret@127.0.0.1:{server.server_port}/dog.jpg?size=big"
        for source, out in ((url, "u"), (str(shared_path(IMAGES / "dog.jpg")), "f")):
            assert cli.main(["detect", source, "--output", str(tmp_path / out), "--save-json", "--save-txt"]) == 0
        assert authorizations == ["Basic dXNlcjpzZWNyZXQ="]  # the URL's user:secret, as HTTP basic authentication
        from_url, from_file = (json.loads((tmp_path / out / "detections.json").read_text()) for out in "uf")
        assert from_url[0]["source"] == f"http://***@127.0.0.1:{server.server_port}/dog.jpg?size=big"
        assert from_url[0]["detections"] == from_file[0]["detections"] and len(from_file[0]["detections"]) == 4
        assert (tmp_path / "u" / "labels" / "dog.txt").read_text() == (tmp_path / "f" / "labels" / "dog.txt").read_text()
        assert cv2.imread(str(tmp_path / "u" / "dog.jpg")) is not None
        model = darknet_py.load(*official("yolov4-tiny"))
        from_api = model.detect(url)
        same_detections(model.detect(str(shared_path(IMAGES / "dog.jpg"))), from_api, score_tol=0, box_tol=0)
        assert "secret" not in repr(from_api[0]) and "secret" not in from_api[0].source
        with pytest.raises(darknet_py.InputError, match=rf"^cannot fetch image {base}/nope.jpg: HTTP Error 404"):
            model.detect(f"{base}/nope.jpg")
        listed = tmp_path / "list.txt"  # a darknet image list may hold URLs too
        listed.write_text(f"{base}/horses.jpg\n{shared_path(IMAGES / 'dog.jpg')}\n")
        assert cli.main(["detect", str(listed), "--no-save", "--save-json", "--output", str(tmp_path / "l")]) == 0
        records = json.loads((tmp_path / "l" / "detections.json").read_text())
        assert [r["source"] for r in records] == [f"{base}/horses.jpg", str(shared_path(IMAGES / "dog.jpg"))]
    finally:
        server.shutdown()


def test_webcam_index(clip: Path, tmp_path: Path, zoo_env, monkeypatch, capsys) -> None:
    real = cv2.VideoCapture
    opened = []
    # No camera on CI: index 0 plays the clip, through the same code path a camera takes. A camera is live: the
    # clip's end is a drop, and --reconnect 0 ends the run there (exit 1); every frame is detected (--keep-all-frames).
    monkeypatch.setattr(cv2, "VideoCapture", lambda source: opened.append(source) or real(str(clip) if source == 0 else source))
    assert cli.main(["detect", "0", "--output", str(tmp_path), "--save-json", "--reconnect", "0", "--keep-all-frames"]) == 1
    assert opened == [0]
    assert frame_count(tmp_path / "camera0.mp4") == CLIP_FRAMES
    err = capsys.readouterr().err
    assert f"{CLIP_FRAMES} frames (320x180, 25 fps)" in err
    assert "error: camera 0: the stream dropped after 12 frames; not reconnecting (--reconnect 0)" in err


def test_missing_camera_is_one_clear_line(tmp_path: Path, zoo_env, monkeypatch, capsys) -> None:
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda source: real(str(tmp_path / "no-such-device")))
    assert cli.main(["detect", "7", "--output", str(tmp_path)]) == 2
    assert "error: cannot open camera 7: no camera answers at that index, or it is in use" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.mp4"))


def test_a_damaged_video_or_a_missing_camera_is_one_line_with_ffmpeg_s_reason(tmp_path: Path, clip: Path,
                                                                               zoo_env) -> None:
    """As the program runs them (OpenCV's and FFmpeg's own logs quiet): a video cut short before its first picture
    was "0 frames" and exit 0 after FFmpeg's complaints; a file that is no video, and a camera index nobody
    answers, printed OpenCV's backends' tries (a dozen lines) before the error. Each is now one line with the
    reason, exit 2, and no output folder left (no detections.json of no frame beside the error either)."""
    whole = shared_path(VIDEO / "pedestrians.avi")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:30000])  # the header and part of the first picture
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    cases = [(cut, f"error: no frame of {cut} could be decoded: "),
             (text, f"error: cannot read video {text}: Invalid data found when processing input (not a video FFmpeg "
                    "reads, or a damaged one)"),
             ("57", "error: cannot open camera 57: no camera answers at that index, or it is in use")]
    for source, message in cases:
        out = tmp_path / "out"
        result = subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(source), "--output", str(out),
                                 "--save-json"], cwd=REPO, capture_output=True, text=True, timeout=300)
        lines = [line for line in result.stderr.splitlines() if not line.startswith(f"{Path(str(source)).name}: ")]
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(message), result.stderr
        assert not out.exists()
    # with another source, that one is done; the cut file's error is the last line (not "cut: 0 frames"), and its
    # folder holds no detections.json of nothing, so it is not left
    out = tmp_path / "together"
    together = subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", str(cut), str(clip), "--no-save",
                               "--save-json", "--output", str(out)], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
    assert together.returncode == 1 and f"clip: {CLIP_FRAMES} frames" in together.stderr, together.stderr
    assert together.stderr.splitlines()[-1].startswith(cases[0][1]) and "h264 @" not in together.stderr
    assert "cut: 0 frames" not in together.stderr
    assert [path.name for path in out.iterdir()] == ["clip"]
    assert len(json.loads((out / "clip" / "detections.json").read_text())) == CLIP_FRAMES


def _stop_at(frame: int, exc: BaseException):
    seen = []

    def detect_batch(frames):
        if len(seen) >= frame:
            raise exc
        seen.extend(frames)
        none = np.zeros((0, 4), np.float32)
        return [Detections(none, np.zeros(0, np.float32), np.zeros(0, np.int64), ["x"], (f.shape[1], f.shape[0])) for f in frames]
    return detect_batch


def test_ctrl_c_leaves_a_playable_video_of_the_frames_done(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.avi"
    report = video.run_video(str(clip), _stop_at(5, KeyboardInterrupt()), str(out))
    assert report.interrupted and report.frames == 5
    assert frame_count(out) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_error_mid_stream_keeps_the_frames_done_and_says_so(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(darknet_py.InputError, match=r"stopped after 4 frames: out of memory; .*out.mp4 holds the 4 frames"):
        video.run_video(str(clip), _stop_at(4, RuntimeError("out of memory")), str(out), batch=2)
    assert frame_count(out) == 4


def test_show_draws_each_image_in_a_window(tmp_path: Path, zoo_env, monkeypatch) -> None:
    shown = []
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(sinks.cv2, "imshow", lambda title, image: shown.append(image))
    monkeypatch.setattr(sinks.cv2, "waitKey", lambda delay: -1)
    image = shared_path(IMAGES / "dog.jpg")
    assert cli.main(["detect", str(image), "--show", "--no-save", "--output", str(tmp_path)]) == 0
    assert len(shown) == 1 and shown[0].shape == cv2.imread(str(image)).shape
    assert not np.array_equal(shown[0], cv2.imread(str(image)))  # boxes were drawn


def test_show_without_a_display_fails_before_any_work(tmp_path: Path, zoo_env, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli.main(["detect", str(IMAGES / "dog.jpg"), "--show", "--output", str(tmp_path / "o")]) == 2
    assert "--show needs a display" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_corrupt_frame_mid_stream_is_skipped_counted_and_reported(tmp_path: Path, clip: Path, capsys) -> None:
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # JPEG frames (MJPG)
    assert len(starts) == CLIP_FRAMES
    data[starts[5] + 2 : (starts[5] + starts[6]) // 2] = bytes((starts[6] - starts[5]) // 2 - 2)  # frame 5: no image
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", str(broken), "--cfg", str(cfg), "--weights", str(weights), "--output", str(tmp_path / "o")]) == 0
    assert "11 frames (320x180, 25 fps), 1 unreadable frame(s) skipped" in capsys.readouterr().err
    assert frame_count(tmp_path / "o" / "broken.mp4") == CLIP_FRAMES - 1


class _KeepFrames:
    """A stage that keeps each frame's number, time and mean grey level."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, float]] = []

    def process(self, result):
        self.seen.append((result.frame, result.time, float(result.image.mean())))
        return result

    def finish(self) -> None:
        pass


def _nothing_found(frames):
    return [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)) for _ in frames]


def _grey_frames_run(source, tmp_path: Path, name: str, stride: int = 1, sequence=None):
    from darknet_py.media.detect_run import detect_into_folder
    from darknet_py.media.outputs import Outputs

    kept = _KeepFrames()
    outcome = detect_into_folder("video", sequence or str(source), _nothing_found, Outputs(annotated=False),
                                 output=str(tmp_path / name), stages=[kept], vid_stride=stride)
    return kept.seen, outcome


def test_frames_after_a_corrupt_one_keep_their_numbers_and_times(tmp_path: Path) -> None:
    """An MJPG file of 20 frames, frame i all grey 10·i + 5, at 10 fps, frame 10 made undecodable: every frame after it
    keeps its own number and time (its grey level says which it is), at every stride; the skip is counted (a frame the
    stride passes over is decoded too: it counts as well)."""
    path = tmp_path / "grey.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), 10 * i + 5, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == 20
    data[starts[10]:starts[11] - 8] = bytes(starts[11] - 8 - starts[10])  # frame 10's JPEG, up to the next chunk's header
    path.write_bytes(bytes(data))
    for stride in (1, 2, 3):
        seen, outcome = _grey_frames_run(path, tmp_path, f"s{stride}", stride)
        expected = [i for i in range(0, 20, stride) if i != 10]
        assert [frame for frame, _, _ in seen] == expected, stride
        assert all(abs(time - frame / 10) < 1e-6 for frame, time, _ in seen)
        assert all(abs(grey - (10 * frame + 5)) <= 3 for frame, _, grey in seen), seen
        assert outcome.lines[0].startswith(f"{len(expected)} frames (64x48, 10 fps)"), outcome.lines
        assert "1 unreadable frame(s) skipped" in outcome.lines[0], outcome.lines  # passed over or not, it is in the file


def test_a_sequence_s_unreadable_or_odd_sized_images_are_named_and_the_rest_keep_their_numbers(tmp_path: Path) -> None:
    from darknet_py.core.errors import DarknetWarning
    from darknet_py.media.sequence import ImageSequence

    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(7):
        size = (40, 30) if i in (4, 6) else (64, 48)  # odd sizes in the middle and at the end
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((size[1], size[0], 3), 10 * i + 5, np.uint8))
    (folder / "000002.png").write_bytes(b"not a picture")
    with pytest.warns(DarknetWarning) as recorded:
        seen, _ = _grey_frames_run(folder, tmp_path, "out", sequence=ImageSequence.open(str(folder)))
    assert [frame for frame, _, _ in seen] == [0, 1, 3, 5]
    assert all(grey == 10 * frame + 5 for frame, _, grey in seen)
    messages = [str(w.message) for w in recorded if issubclass(w.category, DarknetWarning)]
    assert [m for m in messages if "skipped" in m] == [
        f"{folder / '000002.png'}: cannot read the image; frame 2 of the sequence skipped",
        f"{folder / '000004.png'}: 40x30, not the sequence's 64x48; frame 4 of the sequence skipped",
        f"{folder / '000006.png'}: 40x30, not the sequence's 64x48; frame 6 of the sequence skipped"]


@pytest.mark.parametrize("kind", ["gray", "bgra", "uint16", "gray16"])
def test_every_image_kind_gives_the_photos_detections(tmp_path: Path, kind: str) -> None:
    dog = cv2.imread(str(shared_path(IMAGES / "dog.jpg")))
    variants = {
        "gray": lambda: cv2.cvtColor(dog, cv2.COLOR_BGR2GRAY),
        "bgra": lambda: cv2.cvtColor(dog, cv2.COLOR_BGR2BGRA),
        "uint16": lambda: dog.astype(np.uint16) * 257,
        "gray16": lambda: cv2.cvtColor(dog, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
    }
    path = tmp_path / f"dog-{kind}.png"
    assert cv2.imwrite(str(path), variants[kind]())
    model = darknet_py.load(*official("yolov4-tiny"))
    found = model.detect(str(path))[0]
    expected = {"dog", "bicycle"} if kind.startswith("gray") else {"dog", "truck", "bicycle"}  # gray: the truck reads as a car
    assert expected <= set(found.labels)


@pytest.mark.parametrize("content", [b"", b"not an image at all"])
def test_unreadable_images_are_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(darknet_py.InputError, match="cannot decode image"):
        darknet_py.load(*official("yolov4-tiny")).detect(str(path))


class _DisconnectingCamera:
    """A camera that delivers `good` frames of the clip, then nothing: unplugged."""

    def __init__(self, capture: cv2.VideoCapture, good: int) -> None:
        self.real, self.left = capture, good

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return True

    def get(self, prop):
        return self.real.get(prop)

    def read(self):
        self.left -= 1
        return self.real.read() if self.left >= 0 else (False, None)

    def release(self) -> None:
        self.real.release()


def test_a_camera_that_disconnects_leaves_the_frames_done(clip: Path, tmp_path: Path, zoo_env, monkeypatch, capsys) -> None:
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda source: _DisconnectingCamera(real(str(clip)), 5))
    # a camera is reconnected after a drop (tests/test_cameras.py, tests/test_rtsp.py); --reconnect 0 ends the run
    # at the first one (exit 1), with the frames done in a playable file
    assert cli.main(["detect", "0", "--reconnect", "0", "--keep-all-frames", "--output", str(tmp_path / "o")]) == 1
    monkeypatch.undo()
    assert frame_count(tmp_path / "o" / "camera0.mp4") == 5
    err = capsys.readouterr().err
    assert "5 frames (320x180, 25 fps)" in err and "not reconnecting (--reconnect 0)" in err


def test_a_huge_photo_gives_the_same_detections_scaled(tmp_path: Path) -> None:
    dog = cv2.imread(str(shared_path(IMAGES / "dog.jpg")))
    big = cv2.resize(dog, (dog.shape[1] * 10, dog.shape[0] * 10), interpolation=cv2.INTER_NEAREST)  # 7680x5760
    path = tmp_path / "dog-huge.jpg"
    assert cv2.imwrite(str(path), big)
    model = darknet_py.load(*official("yolov4-tiny"))
    small, huge = model.detect(dog)[0], model.detect(str(path))[0]
    assert huge.image_size == (big.shape[1], big.shape[0]) and sorted(huge.labels) == sorted(small.labels)
    for label, box in zip(small.labels, small.boxes):
        scaled = huge.boxes[huge.labels.index(label)] / 10
        inter = np.prod(np.clip(np.minimum(scaled[2:], box[2:]) - np.maximum(scaled[:2], box[:2]), 0, None))
        union = np.prod(scaled[2:] - scaled[:2]) + np.prod(box[2:] - box[:2]) - inter
        # resampling a 7680-wide photo to 416 is not bit-identical to a 768-wide one: darknet's resize reads two
        # source pixels per output pixel (no area averaging), so a 10x larger source aliases differently
        assert inter / union > 0.85


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


OVERSIZED = {  # 40000x40000 = 1.6e9 pixels, over OpenCV's default 2^30; headers only, a few bytes each
    "png": _png_header(40000, 40000),
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 40000, 40000) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9",
    "bmp": b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 40000, -40000, 1, 24, 0, 0, 0, 0, 0, 0),
}


@pytest.mark.parametrize("kind", sorted(OVERSIZED))
def test_an_image_over_opencvs_pixel_limit_is_called_too_large(tmp_path: Path, kind: str, capsys) -> None:
    path = tmp_path / f"giant.{kind}"
    path.write_bytes(OVERSIZED[kind])
    with pytest.raises(darknet_py.InputError, match=r"image too large: .* 40000x40000 = 1,600,000,000 pixels.*OPENCV_IO_MAX_IMAGE_PIXELS"):
        read_image(path)
    with pytest.raises(darknet_py.InputError, match=r"image too large: image bytes \(\d+ bytes\) is 40000x40000 = "):
        decode_image(OVERSIZED[kind])  # the same file's bytes, as detect(bytes) gets them
    # the CLI: one line, exit 2 (bad input), no traceback, nothing written
    cfg, weights = official("yolov4-tiny")
    assert cli.main(["detect", str(path), "--cfg", str(cfg), "--weights", str(weights), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "image too large" in err and "Traceback" not in err and "cv2.error" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_header_sizes_agree_with_the_decoded_photos() -> None:
    photos = sorted(p for p in shared_path(IMAGES).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    assert photos
    for photo in photos:
        image = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
        assert header_size(str(photo)) == (image.shape[1], image.shape[0]), photo.name
