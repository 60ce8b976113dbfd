"""OC-SORT (Cao et al., 2023) from the `trackers` library."""
from __future__ import annotations

from ..base import LibraryTracker, register


@register("ocsort")
class OcSort(LibraryTracker):
    """OC-SORT: SORT with observation-centric re-update and a motion-direction term in the matching.

    Its library default ignores every box scoring under 0.6 (neither matched nor starting a track): ours takes
    every box darknet reports (0.25 and up), confirms a track at once, weighs the direction of motion more
    (0.5, over 5 frames): what a search on darknet's detections of the generated sequences found
    (benchmarks/tracking.py, docs/tracking.md).
    """

    library_class = "OCSORTTracker"
    tuned = {"high_conf_det_threshold": 0.25, "minimum_consecutive_frames": 1, "lost_track_buffer": 30,
             "minimum_iou_threshold": 0.1, "iou": "iou", "direction_consistency_weight": 0.5, "delta_t": 5,
             "state": "xcycsr"}
