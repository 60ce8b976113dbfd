"""media.source_reader: one video source opened and read ahead, as run_video, run_many and video_frames read it.

The frames are checked against OpenCV's own reading of the file, the frame count against FFmpeg's (PyAV) count of
the file's pictures; cameras and streams that drop are in tests/test_cameras.py and tests/test_rtsp.py.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import av
import cv2
import pytest

from darknet_py.media.live_reader import LiveSourceOptions
from darknet_py.media.source_reader import SourceReader, close_all
from darknet_py.media.source_status import SourceStatus
from tests.conftest import VIDEO, shared_path


def _digest(image) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


@pytest.mark.timeout(180)
def test_a_files_batches_are_its_frames_and_its_header_count_is_mended() -> None:
    """pedestrians.avi's header claims 682 frames at 50 frames/s; FFmpeg finds 341 pictures 40 ms apart: the expected
    count is the pictures', and the batches hold OpenCV's reading of every one, in order, the last batch short."""
    path = str(shared_path(VIDEO / "pedestrians.avi"))
    with av.open(path) as container:
        pictures = sum(1 for _ in container.decode(video=0))
    reader = SourceReader(path, LiveSourceOptions())
    assert (reader.header_frames, reader.fps, reader.size, reader.live) == (682, 25.0, (1280, 720), False)
    assert reader.expected_frames == pictures == 341
    reader.start(SourceStatus(reader.name), batch=8)
    try:
        batches = [[_digest(item.image) for item in batch] for batch in reader.batches(8)]
    finally:
        reader.close()
    assert [len(batch) for batch in batches] == [8] * 42 + [5]
    capture, theirs = cv2.VideoCapture(path), []
    while (read := capture.read())[0]:
        theirs.append(_digest(read[1]))
    capture.release()
    assert [digest for batch in batches for digest in batch] == theirs
    assert (reader.skipped, reader.dropped, reader.gave_up, reader.no_frames(341)) == (0, 0, None, None)


@pytest.mark.timeout(60)
def test_closed_before_its_start_it_lets_go_of_the_file(clip: Path) -> None:
    reader = SourceReader(str(clip), LiveSourceOptions())
    capture = reader._capture
    reader.close()
    reader.close()  # twice: no harm
    assert reader.closed and not capture.isOpened()


@pytest.mark.timeout(60)
def test_readers_waiting_for_room_end_when_closed() -> None:
    """A file's queue holds 8 frames: its reader blocks on the 9th until the loop takes one; closed, it returns,
    ends and releases the file."""
    path = str(shared_path(VIDEO / "pedestrians.avi"))
    readers = [SourceReader(path, LiveSourceOptions()) for _ in range(2)]
    full = [threading.Event() for _ in readers]
    for reader, event in zip(readers, full):
        reader.start(SourceStatus(reader.name), batch=1,
                     on_change=lambda reader=reader, event=event: reader.buffer._queue.full() and event.set())
    for event in full:
        assert event.wait(30)  # 8 frames held: the reader now waits for room
    close_all(readers)  # waits for files' readers to the end: a reader that stayed blocked would time the test out
    assert not any(reader._thread.is_alive() or reader._capture.isOpened() for reader in readers)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stride", [3, 7])
def test_a_stride_gives_the_files_frames_0_n_2n_numbered_and_timed_as_in_the_file(stride: int) -> None:
    """--vid-stride N: OpenCV's reading of frames 0, N, 2N, … of pedestrians.avi (the frames between are grabbed, not
    converted), each with its number in the file and its time there (number / 25 fps); the expected count and the
    rate of the frames given are the file's divided by N."""
    path = str(shared_path(VIDEO / "pedestrians.avi"))
    reader = SourceReader(path, LiveSourceOptions(), stride)
    assert reader.expected_frames == -(-341 // stride) and reader.rate == 25.0 / stride
    reader.start(SourceStatus(reader.name), batch=4)
    try:
        given = [(reader.frame_number(item, count), item.time, _digest(item.image))
                 for count, item in enumerate(reader.frames())]
    finally:
        reader.close()
    capture, theirs = cv2.VideoCapture(path), []
    while (read := capture.read())[0]:
        theirs.append(_digest(read[1]))
    capture.release()
    kept = list(range(0, len(theirs), stride))
    assert len(theirs) == 341 and len(given) == len(kept) == reader.expected_frames
    assert [number for number, _, _ in given] == kept
    assert [time for _, time, _ in given] == [round(number / 25.0, 6) for number in kept]
    assert [digest for _, _, digest in given] == [theirs[number] for number in kept]


def test_a_stride_below_one_is_refused_before_the_source_opens(tmp_path: Path) -> None:
    from darknet_py.core.errors import InputError

    for stride in (0, -2):
        with pytest.raises(InputError, match=f"--vid-stride {stride}: give a number of frames, 1 or more"):
            SourceReader(str(tmp_path / "not-there.mp4"), LiveSourceOptions(), stride)
