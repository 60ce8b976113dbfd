"""ByteTrack (Zhang et al., 2022) from the `trackers` library."""
from __future__ import annotations

from ..base import LibraryTracker, register


@register("bytetrack")
class ByteTrack(LibraryTracker):
    """ByteTrack: high-score boxes matched first, then low-score ones to the tracks left over.

    Ours are the library's with high and low scores split at 0.3 instead of 0.6 (darknet's objectness × class
    probability runs lower than the detectors the library was set for), DIoU matching at 0.3: what a search on
    darknet's detections of the generated sequences found (benchmarks/tracking.py). On held-out sequences it
    tracks no better than the library's own settings, and less well than SORT with its paper's state, the default
    (docs/tracking.md).
    """

    library_class = "ByteTrackTracker"
    tuned = {"track_activation_threshold": 0.7, "high_conf_det_threshold": 0.3, "minimum_consecutive_frames": 2,
             "lost_track_buffer": 30, "minimum_iou_threshold": 0.3, "iou": "diou", "state": "xyxy"}
