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
