"""SORT (Bewley et al., 2016) from the `trackers` library: the default tracker."""
from __future__ import annotations

from ..base import LibraryTracker, register


@register("sort")
class Sort(LibraryTracker):
    """SORT: a Kalman filter per track and IoU matching (Hungarian), nothing else.

    Ours differ from the library's in the Kalman filter's state: the box's centre, area and aspect ratio, as in
    the SORT paper (the library keeps the corners), which follows people through occlusions far better; and in
    starting tracks from scores of 0.5, after 2 frames, keeping a lost one for 60 (30 fps) frames. A search on
    darknet's detections of the generated sequences found them; on held-out sequences they track best of all
    (benchmarks/tracking.py, docs/tracking.md).
    """

    library_class = "SORTTracker"
    tuned = {"track_activation_threshold": 0.5, "minimum_consecutive_frames": 2, "lost_track_buffer": 60,
             "minimum_iou_threshold": 0.3, "iou": "iou", "state": "xcycsr"}
