"""Following objects through video: trackers behind one interface (base.Tracker; one file per tracker in
adapters/), line and zone counting (counting), counting shapes from the command line (geometry), and the
trails, lines and zones drawn on annotated frames (drawing). All of it takes `Detections`, frame by frame,
and does no I/O; the run loop's stage and the output files are in darknet_py.media.tracking_sinks.

The trackers come from Roboflow's `trackers` library, an optional extra: `pip install 'darknet-engine[track]'`.
"""
from . import adapters  # noqa: F401 - registers the trackers
from .base import DEFAULT_TRACKER, INSTALL_HINT, LibraryTracker, Tracker, make_tracker, register, require_trackers, tracker_names
from .counting import CountEvent, LineCounter, ZoneCounter, counts_of, counts_text
from .geometry import Shape, check_names, parse_line, parse_zone

__all__ = ["DEFAULT_TRACKER", "INSTALL_HINT", "CountEvent", "LibraryTracker", "LineCounter", "Shape", "Tracker",
           "ZoneCounter", "check_names", "counts_of", "counts_text", "make_tracker", "parse_line", "parse_zone",
           "register", "require_trackers", "tracker_names"]
