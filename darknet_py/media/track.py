"""`darknet_py.track`: a model's detections on each frame of a video, with track ids, as a generator.

    model = darknet_py.load("yolov4-tiny.cfg", "yolov4-tiny.weights")
    door = darknet_py.LineCounter("door", (320, 0), (320, 360))
    for frame, dets in enumerate(darknet_py.track(model, "walk.mp4")):
        door.update(dets, frame)
        print(frame, dets.track_ids, dets.labels)
    print(door.counts)

    for image, dets in darknet_py.track(model, "walk.mp4", with_frames=True):  # the pixels too, to draw on
        cv2.imshow("walk", dets.draw(image))
"""
from __future__ import annotations

import itertools
import os
from typing import Iterable, Iterator

import numpy as np

from ..pipeline.detections import Detections
from ..pipeline.tracking import DEFAULT_TRACKER, Tracker, make_tracker
from .sinks import DEFAULT_FPS
from .source_reader import check_stride
from .video_frames import video_frames


def track(model, source: str | int | os.PathLike[str] | Iterable[np.ndarray], tracker: str | Tracker = DEFAULT_TRACKER,
          conf_thresh: float = 0.25, nms_thresh: float = 0.45, *, fps: float | None = None, with_frames: bool = False,
          reconnect: int | None = None, keep_all_frames: bool = False, vid_stride: int = 1,
          **detect_options) -> Iterator[Detections] | Iterator[tuple[np.ndarray, Detections]]:
    """Detect on every frame of *source* and follow the objects: one `Detections` per frame, with `track_ids`.

    Args:
        model: what darknet_py.load returns (anything with `.detect()`).
        source: a video file, a stream URL, a camera index, a folder of frames (read in name order, as
            `detect --sequence`), or an iterable of BGR uint8 frames. Sources are read as `darknet_py.video_frames`
            reads them: the next frame decoded while this one is detected, a camera or stream reconnected after a
            drop.
        tracker (str or Tracker): a tracker name ("sort", the default; "bytetrack"; "ocsort") or a tracker
            object (base.Tracker), which is used as it is.
        conf_thresh (float): score threshold, as `model.detect`.
        nms_thresh (float): NMS overlap threshold, as `model.detect`.
        fps (float, optional): the frame rate; None: the video's (frames given as arrays: 25).
        with_frames (bool): yield (frame, Detections): the BGR frame too, to draw on (`dets.draw(frame)`) or keep;
            off by default, so that collecting the Detections of a long video does not hold every frame.
        reconnect (int, optional): a live source's reconnect tries after a drop; None: for ever (as video_frames).
        keep_all_frames (bool): a live source's every frame, not the newest each time (as video_frames).
        vid_stride (int): detect and track every Nth frame only (as video_frames; frames given as arrays too); the
            tracker is told the rate of the frames it sees (fps / N).
        **detect_options: more of `model.detect`'s options (`classes`, `names`, `multi_label`, ...).

    Yields:
        Detections: each frame's, in order (with_frames: (frame, Detections)); `track_ids[i]` is detection i's
        track (1, 2, …) or -1 while it is in no confirmed track.

    Raises:
        InputError: an unreadable source, a single image, an unknown tracker, or no `trackers` library installed.
    """
    if isinstance(source, (str, int, os.PathLike)):
        frames: Iterable[np.ndarray] = video_frames(source, reconnect=reconnect, keep_all_frames=keep_all_frames,
                                                    vid_stride=vid_stride)
        rate: float | None = frames.fps
    else:
        check_stride(vid_stride)
        frames, rate = itertools.islice(source, 0, None, vid_stride), None
    # the tracker sees one frame in vid_stride: that much more time passes between them
    follow = make_tracker(tracker, (fps or rate or DEFAULT_FPS) / vid_stride) if isinstance(tracker, str) else tracker
    for frame in frames:
        dets = model.detect(frame, conf_thresh, nms_thresh, **detect_options)[0]
        dets.track_ids = follow.update(dets)
        yield (frame, dets) if with_frames else dets
