"""darknet_py.video_frames: a source's frames for one's own loop, read as `darknet-py detect` reads them.

The frames are checked against OpenCV's own reading of the same file (and of the PNGs of a folder), the frame rate
against FFmpeg's (PyAV); a camera that drops is in tests/test_rtsp.py.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import darknet_py
from tests.conftest import CLIP_FRAMES, IMAGES, VIDEO, official, opencv_frames, shared_path


@pytest.mark.timeout(120)
def test_a_files_frames_are_opencvs_at_ffmpegs_rate(clip: Path) -> None:
    video = darknet_py.video_frames(clip)
    assert (video.size, video.fps, video.live) == ((320, 180), 25.0, False)
    ours, times = [], []
    for image in video:
        ours.append(image)
        times.append(video.time)
    assert times == [index / 25 for index in range(CLIP_FRAMES)]  # frame / fps, as detect's records time them
    assert video.captured is None  # a file's frames have no moment of capture
    theirs = opencv_frames(clip)
    assert len(ours) == len(theirs) == CLIP_FRAMES == video.count
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    assert (video.dropped, video.skipped, video.gave_up) == (0, 0, None)
    # pedestrians.avi: OpenCV says 50 frames/s (its index repeats every picture), FFmpeg 25, as detect records it
    pedestrians = shared_path(VIDEO / "pedestrians.avi")
    with av.open(str(pedestrians)) as container:
        rate = float(container.streams.video[0].guessed_rate)
    with darknet_py.video_frames(pedestrians) as video:
        assert video.fps == rate != cv2.VideoCapture(str(pedestrians)).get(cv2.CAP_PROP_FPS)


@pytest.mark.timeout(120)
def test_a_folder_of_frames_reads_in_name_order(clip: Path, tmp_path: Path) -> None:
    frames = opencv_frames(clip)
    for index, frame in enumerate(frames):  # names whose order is not the numbers' (10 before 2 as text)
        cv2.imwrite(str(tmp_path / f"frame_{index:03d}.png"), frame)
    video = darknet_py.video_frames(tmp_path)
    assert video.size == (320, 180) and all(np.array_equal(a, b) for a, b in zip(video, frames, strict=True))


@pytest.mark.timeout(120)
def test_leaving_the_loop_stops_the_reader() -> None:
    before = threading.active_count()
    with darknet_py.video_frames(shared_path(VIDEO / "pedestrians.avi")) as video:
        for _ in video:
            assert threading.active_count() == before + 1  # the reader, decoding ahead
            if video.count == 3:
                break
        assert threading.active_count() == before and video.count == 3  # stopped as the loop was left
    with pytest.raises(darknet_py.InputError, match="are read once"):
        list(video)


@pytest.mark.timeout(120)
def test_what_is_not_a_video_is_one_clear_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    with pytest.raises(darknet_py.InputError, match=rf"^cannot read video {re.escape(str(notes))}: Invalid data"):
        darknet_py.video_frames(notes)  # at once, not when the loop starts
    cut = tmp_path / "cut.avi"
    cut.write_bytes(shared_path(VIDEO / "pedestrians.avi").read_bytes()[:30000])  # its header, part of a picture
    video = darknet_py.video_frames(cut)
    with pytest.raises(darknet_py.InputError, match=rf"^no frame of {re.escape(str(cut))} could be decoded: "):
        list(video)  # not an empty loop
    for read in (darknet_py.video_frames, lambda source: next(darknet_py.track(None, source))):  # neither named wrong
        with pytest.raises(darknet_py.InputError, match=r"^\S*dog.jpg is 1 separate image\(s\): frames come from a "
                                                        r"video, a stream, a camera or a folder of frames \(model"):
            read(IMAGES / "dog.jpg")
    with pytest.raises(darknet_py.InputError, match="give a number of tries"):
        darknet_py.video_frames(cut, reconnect=-1)
    with pytest.raises(darknet_py.InputError, match="not a list"):
        darknet_py.video_frames([str(cut)])


@pytest.mark.timeout(120)
def test_detect_given_a_video_or_a_stream_says_where_its_frames_are_read() -> None:
    """model.detect("walk.mp4") said "cannot decode image", and an rtsp:// URL "image not found"."""
    model = darknet_py.load(*official("yolov4-tiny"))
    video = shared_path(VIDEO / "pedestrians.avi")
    with pytest.raises(darknet_py.InputError, match=rf"^{re.escape(str(video))} is a video, not an image: .*"
                                                    r"darknet_py\.video_frames\(source\)"):
        model.detect(str(video))
    with pytest.raises(darknet_py.InputError, match=r"^rtsp://\*\*\*@127\.0\.0\.1:9/cam is a stream, not an image"):
        model.detect("rtsp://user:secret@127.0.0.1:9/cam")
    with pytest.raises(darknet_py.InputError, match=r"^http://127\.0\.0\.1:9/photo\?id=3 is not read as an image, its "
                                                    r"path not ending in \.jpg, .*fetch it and pass its bytes"):
        model.detect("http://127.0.0.1:9/photo?id=3")  # nothing is fetched: the name decides
