"""Annotated videos: H.264 MP4 that a browser plays (headless Chromium), the codec choice, the fallbacks, and
encoding in a thread of its own (every frame, in order; a failure raised once, the file still finished)."""
from __future__ import annotations

import http.server
import threading
import warnings
from functools import partial
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from darknet_py import DarknetWarning, InputError, cli
from darknet_py.media import video, video_writer
from darknet_py.media.background_writer import BackgroundWriter
from darknet_py.pipeline.detections import Detections
from tests.chromium import Chromium, wait_for
from tests.conftest import CLIP_FRAMES, VIDEO, frame_count, official, shared_path

THUMB = (32, 18)


def _one_box(frames: list[np.ndarray]) -> list[Detections]:
    """A stand-in detector (the writer is under test, not the network): one labelled box per frame."""
    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        out.append(Detections(np.array([[w * 0.3, h * 0.3, w * 0.6, h * 0.7]], np.float32), np.array([0.9], np.float32),
                              np.array([0]), ["person"], (w, h)))
    return out


def _codec_of(path: Path) -> tuple[str, str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, stream.codec_context.pix_fmt


def _frames_at(path: Path, indexes: list[int]) -> dict[int, np.ndarray]:
    capture, found, i = cv2.VideoCapture(str(path)), {}, 0
    while len(found) < len(indexes):
        ok, frame = capture.read()
        assert ok
        if i in indexes:
            found[i] = frame
        i += 1
    return found


def _thumbnail_rgb(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB).astype(int)


def test_annotated_pedestrians_mp4_plays_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "pedestrians.mp4"
    report = video.run_video(str(shared_path(VIDEO / "pedestrians.avi")), _one_box, str(out))
    assert report.frames == 341
    assert _codec_of(out) == ("h264", "yuv420p")
    capture = cv2.VideoCapture(str(out))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1280, 720)
    assert capture.get(cv2.CAP_PROP_FPS) == 25  # the source's pictures are 40 ms apart (test_cli.py)
    assert frame_count(out) == 341  # OpenCV reads back every frame

    (tmp_path / "play.html").write_text('<video id="v" src="pedestrians.mp4" muted preload="auto"></video>')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium(tmp_path / "chromium") as browser:
            browser.goto(f"http://127.0.0.1:{server.server_port}/play.html")
            draw = f"""const full = document.createElement('canvas');  // the decoded frame, at its own size
                full.width = v.videoWidth; full.height = v.videoHeight;
                full.getContext('2d').drawImage(v, 0, 0);
                const small = document.createElement('canvas');  // and a {THUMB[0]}x{THUMB[1]} thumbnail of it
                small.width = {THUMB[0]}; small.height = {THUMB[1]};
                const ctx = small.getContext('2d');
                ctx.imageSmoothingQuality = 'high';
                ctx.drawImage(full, 0, 0, {THUMB[0]}, {THUMB[1]});
                const shown = {{duration: v.duration, size: [full.width, full.height], error: v.error && v.error.code,
                    rgba: Array.from(ctx.getImageData(0, 0, {THUMB[0]}, {THUMB[1]}).data)}};"""
            first = browser.evaluate(wait_for("document.getElementById('v').readyState >= 2 || document.getElementById('v').error",
                                              f"(() => {{ const v = document.getElementById('v'); {draw} return shown; }})()"))
            # play it: the frame presented once the clock passes 5 s, and the end
            later = browser.evaluate(f"""new Promise((resolve, reject) => {{
                const v = document.getElementById('v');
                setTimeout(() => reject(new Error('no frame past 5 s, or no end, within 120 s')), 120000);
                const onFrame = (now, meta) => {{
                    if (meta.mediaTime < 5.0) return v.requestVideoFrameCallback(onFrame);
                    {draw}
                    shown.frame = Math.round(meta.mediaTime * 25);
                    v.addEventListener('ended', () => resolve(shown), {{once: true}});
                    if (v.ended) resolve(shown);
                }};
                v.requestVideoFrameCallback(onFrame);
                v.play().catch(reject);
            }})""")
    finally:
        server.shutdown()
    assert first["error"] is None, f"Chromium refused the video (MediaError {first['error']})"
    assert first["duration"] == pytest.approx(341 / 25, abs=0.05)
    assert first["size"] == later["size"] == [1280, 720]
    assert 125 <= later["frame"] < 341
    expected = _frames_at(out, [0, later["frame"]])
    for shown, index in ((first, 0), (later, later["frame"])):
        rgb = np.array(shown["rgba"]).reshape(THUMB[1], THUMB[0], 4)[..., :3]
        assert np.abs(rgb - _thumbnail_rgb(expected[index])).mean() < 8, f"Chromium shows another picture at frame {index}"


def test_a_live_h264_recording_times_each_frame_by_its_stream_time(tmp_path: Path) -> None:
    """A camera's H.264 recording (live): each frame shows at its stream time since the first, to the millisecond, as
    FFmpeg (through OpenCV) reads them back — frames a newest-frame run skipped and a reconnect's gap take their real
    time (the frame before the gap stays on screen); a frame without a time comes 1 / fps after the one before; a
    file's recording stays one frame every 1 / fps whatever times it is given."""
    times = [10.0, 10.04, 10.2, 10.24, 13.5, 13.54, None]
    shown = {}
    for live in (True, False):
        path = tmp_path / f"{live}.mp4"
        writer = video_writer.H264Writer(str(path), 25, (320, 180), live=live)
        for k, time in enumerate(times):
            writer.write(np.full((180, 320, 3), 20 * k, np.uint8), time)
        writer.release()
        capture, shown[live] = cv2.VideoCapture(str(path)), []
        while capture.read()[0]:
            shown[live].append(round(capture.get(cv2.CAP_PROP_POS_MSEC)))
    assert shown[True] == [0, 40, 200, 240, 3500, 3540, 3580]
    assert shown[False] == [40 * k for k in range(len(times))]


def test_h264_comes_back_as_written(tmp_path: Path) -> None:
    """What FFmpeg's decoder (through OpenCV) reads back from the H.264 writer: flat colours within 3 levels (a wrong
    matrix or range, BT.709 or full swing, is off by more in the mid-tones) and pedestrians.avi at the picture quality
    docs/cli.md states, 37.5 dB PSNR or better (benchmarks/results/video_codecs.md: 38.02 over 100 frames)."""
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (128, 128, 128), (255, 255, 255), (0, 0, 0),
               (40, 90, 200), (200, 60, 30), (70, 160, 120)]
    flat = tmp_path / "flat.mp4"
    writer = video_writer.H264Writer(str(flat), 25, (320, 180))
    for colour in colours:
        for _ in range(3):
            writer.write(np.full((180, 320, 3), colour, np.uint8))
    writer.release()
    capture, shown = cv2.VideoCapture(str(flat)), []
    while (read := capture.read())[0]:
        shown.append(read[1][40:140, 80:240].reshape(-1, 3).mean(0))
    assert len(shown) == 3 * len(colours)
    for i, colour in enumerate(colours):
        assert np.abs(shown[3 * i + 2] - colour).max() <= 3, f"BGR {colour} came back as {shown[3 * i + 2].round(1)}"

    capture, frames = cv2.VideoCapture(str(shared_path(VIDEO / "pedestrians.avi"))), []
    while len(frames) < 30:
        frames.append(capture.read()[1])
    out = tmp_path / "pedestrians.mp4"
    writer = video_writer.H264Writer(str(out), 50, (1280, 720))
    for frame in frames:
        writer.write(frame)
    writer.release()
    capture, squared, count = cv2.VideoCapture(str(out)), 0.0, 0
    while (read := capture.read())[0]:
        squared += float(np.square(read[1].astype(np.float64) - frames[count]).sum())
        count += 1
    assert count == len(frames)
    assert 10 * np.log10(255.0 ** 2 * count * frames[0].size / squared) >= 37.5


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


def test_ctrl_c_leaves_a_playable_h264_mp4(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"

    def stop_after_five(frames):
        if stop_after_five.seen >= 5:
            raise KeyboardInterrupt
        stop_after_five.seen += len(frames)
        return _one_box(frames)
    stop_after_five.seen = 0
    report = video.run_video(str(clip), stop_after_five, str(out))
    assert report.interrupted and report.frames == 5
    assert _codec_of(out) == ("h264", "yuv420p") and frame_count(out) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


@pytest.fixture
def zoo_env(monkeypatch) -> None:
    cfg, _ = official("yolov4-tiny")
    monkeypatch.setenv("DARKNET_PY_ZOO", str(cfg.parents[1]))


def test_codec_flag_chooses_the_container(clip: Path, tmp_path: Path, zoo_env) -> None:
    assert cli.main(["detect", str(clip), "--codec", "mjpg", "--output", str(tmp_path / "mjpg")]) == 0
    written = tmp_path / "mjpg" / "clip.avi"
    fourcc = int(cv2.VideoCapture(str(written)).get(cv2.CAP_PROP_FOURCC))
    assert fourcc.to_bytes(4, "little") == b"MJPG" and frame_count(written) == CLIP_FRAMES


def test_without_pyav_todays_opencv_writers_with_one_warning(clip: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(video_writer, "pyav_available", lambda: False)
    assert video_writer.output_suffix(None, "walk.avi") == ".avi"  # what OpenCV wrote before
    assert video_writer.output_suffix(None, "rtsp://camera/stream") == ".mp4"
    with pytest.raises(InputError, match=r"--codec h264 needs PyAV: PyAV is not installed \(pip install av\)"):
        video_writer.output_suffix("h264", "walk.avi")
    out = tmp_path / "out.mp4"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        video.run_video(str(clip), _one_box, str(out))
    assert [str(w.message) for w in caught if w.category is DarknetWarning] == [
        "writing MPEG-4 Part 2 (mp4v), which browsers do not play: PyAV is not installed (pip install av)"]
    assert _codec_of(out)[0] == "mpeg4" and frame_count(out) == CLIP_FRAMES


def test_odd_sizes_and_mismatched_containers(tmp_path: Path) -> None:
    with pytest.warns(DarknetWarning, match=r"H.264 \(4:2:0\) needs even sides and the video is 321x180"):
        assert video_writer.default_codec(".mp4", (321, 180)) == "mp4v"
    with pytest.raises(InputError, match="needs an even width and height; the video is 321x180"):
        video_writer.open_video_writer(str(tmp_path / "a.mp4"), 25, (321, 180), "h264")
    with pytest.raises(InputError, match="h264 writes .mp4 files, not .avi"):
        video_writer.open_video_writer(str(tmp_path / "a.avi"), 25, (320, 180), "h264")
    assert video_writer.default_codec(".avi", (320, 180)) == "mjpg"


# -- encoding in its own thread (media/background_writer.py) --------------------------------------------------
class _Recorder:
    """A VideoWriter that keeps what it is given, failing at one frame if told to."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[int] = []
        self.released = threading.Event()
        self.fail_at = fail_at

    def write(self, frame: np.ndarray, time: float | None = None) -> None:
        if int(frame[0, 0, 0]) == self.fail_at:
            raise OSError("No space left on device")
        self.frames.append(int(frame[0, 0, 0]))

    def release(self) -> None:
        self.released.set()


def _numbered(i: int) -> np.ndarray:
    return np.full((2, 2, 3), i, np.uint8)


def test_background_encoding_keeps_every_frame_in_order() -> None:
    inner = _Recorder()
    writer = BackgroundWriter(inner, queue_frames=2)
    for i in range(50):
        writer.write(_numbered(i))
    writer.release()  # waits for every frame handed over, then finishes the file
    assert inner.frames == list(range(50)) and writer.written == 50 and inner.released.is_set()


def test_an_encoding_failure_is_raised_once_and_the_file_still_finished() -> None:
    inner = _Recorder(fail_at=3)
    writer = BackgroundWriter(inner, queue_frames=2)
    raised = 0
    for i in range(10):
        try:
            writer.write(_numbered(i))
        except OSError:
            raised += 1
    try:
        writer.release()
    except OSError:
        raised += 1
    assert raised == 1  # in whichever call came first after it, never again
    assert inner.frames == [0, 1, 2] and writer.written == 3  # nothing after the failing frame
    assert inner.released.is_set()  # a playable file of the frames before it
