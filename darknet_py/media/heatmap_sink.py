"""`--heatmap`: where the objects of a video, a camera or a folder of snapshots spent their time, as a picture over
the scene (`OUTPUT/heatmap.png`) and as numbers (`OUTPUT/heatmap.npy`); the map itself is pipeline.heatmap's.

A video's frame stands for the time from it to the next frame detected (its stride, a camera's frames skipped while
the model was busy): the map is in seconds and sums to the video's length where a place is always occupied. A
camera's frame stands for at most `MAX_LIVE_FRAME_S` (a stream that dropped adds no heat while it was gone). An image
counts 1: a folder's map is in images. The scene under the colours is the per-pixel median of frames kept across the
run (up to `BACKGROUND_FRAMES`, evenly spread), in which people who walk through are gone.

A camera's or a watched folder's run (sinks.continues) saves both files every `SAVE_EVERY_S` seconds and goes on from
the map an earlier run left in the folder (a service restarted), in that map's frame (a first image of another size
is scaled into it, as any image of a folder is); a file's run writes them when it ends, replacing what was there. Either way they are written whole (an interrupted run's files are the run so far).
"""
from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core import interrupt
from ..core.errors import DarknetWarning, InputError
from ..core.fileio import atomic_write, write_image
from ..pipeline.heatmap import ANCHORS, DEFAULT_ANCHOR, Heatmap, render_heatmap
from ..pipeline.jpeg import encode_png
from .sinks import DEFAULT_FPS, Result, continues

HEATMAP_PNG = "heatmap.png"
HEATMAP_NPY = "heatmap.npy"
SAVE_EVERY_S = 60.0  # a camera's map on disk is at most this old: a crash loses a minute, not the week
MAX_LIVE_FRAME_S = 2.0  # a camera's frame stands for at most this long (a gap in the stream is not occupation)
BACKGROUND_FRAMES = 9  # the scene under the colours: the median of up to this many frames spread over the run


@dataclass(frozen=True)
class HeatmapOptions:
    """What `--heatmap`, `--heatmap-at` and `--heatmap-radius` ask for.

    Attributes:
        anchor (str): where each box marks the map: "bottom" (its bottom edge's middle), "center", or "box".
        radius (int or None): the disc around the anchor, in pixels; None: 3% of the frame's shorter side.
    """

    anchor: str = DEFAULT_ANCHOR
    radius: int | None = None

    def __post_init__(self) -> None:
        if self.anchor not in ANCHORS:
            raise InputError(f"heat map anchor {self.anchor!r}: expected one of {', '.join(ANCHORS)}")
        if self.radius is not None and (isinstance(self.radius, bool) or not isinstance(self.radius, int)
                                        or self.radius < 1):
            raise InputError(f"heat map radius {self.radius!r}: expected a whole number of pixels, 1 or more")


class HeatmapSink:
    """Accumulates a run's heat map and writes `heatmap.png` and `heatmap.npy` into its folder.

    Args:
        out (Path): the run's folder.
        options (HeatmapOptions): the anchor and radius.
        clock (callable): monotonic seconds, for a live run's saves (tests give their own).
        save_every_s (float): how often a live run saves its files.
    """

    def __init__(self, out: Path, options: HeatmapOptions = HeatmapOptions(), clock: Callable[[], float] = time.monotonic,
                 save_every_s: float = SAVE_EVERY_S) -> None:
        self.png, self.npy = Path(out) / HEATMAP_PNG, Path(out) / HEATMAP_NPY
        self.options, self._clock, self._save_every_s = options, clock, save_every_s
        self.map: Heatmap | None = None
        self.unit = "s"
        self.resumed = False  # whether an earlier run's map was added
        self._live = False
        self._held: tuple[np.ndarray, float | None] | None = None  # a frame waiting for the next one's time
        self._last_duration: float | None = None
        self._nominal = 1.0 / DEFAULT_FPS  # a frame's time when no two frames tell it (the video's rate, once read)
        self._backgrounds: list[np.ndarray] = []
        self._seen = 0  # frames offered as background
        self._step = 1  # every _step-th frame is kept as background
        self._saved_at: float | None = None
        # the detection loop adds; a viewer's thread (`--serve`'s /heatmap) takes pictures of the map so far
        self._lock = threading.Lock()

    def write(self, result: Result) -> None:
        with self._lock:
            self._write(result)
        if self._live and self._clock() - (self._saved_at or 0.0) >= self._save_every_s:
            self._save()

    def _write(self, result: Result) -> None:
        image = result.image
        if self.map is None:
            self._start(result)
        assert self.map is not None
        boxes = np.asarray(result.detections.boxes, np.float64).reshape(-1, 4)
        if image.shape[:2] != self.map.heat.shape:  # an image of another size in a folder: into the map's frame
            sx, sy = self.map.width / image.shape[1], self.map.height / image.shape[0]
            boxes = boxes * np.array([sx, sy, sx, sy])
            image = cv2.resize(image, (self.map.width, self.map.height), interpolation=cv2.INTER_AREA)
        self._keep_background(image)
        if result.frame is None:
            self.map.add(boxes, 1.0)
        else:
            self._add_frame(boxes, self._frame_time(result))

    def finish(self) -> None:
        with self._lock:
            if self.map is None:
                return
            if self._held is not None:  # the last frame stands for as long as the one before it
                boxes, _ = self._held
                self.map.add(boxes, self._last_duration if self._last_duration is not None else self._nominal)
                self._held = None
        self._save()

    def picture_png(self) -> bytes | None:
        """The picture of the map so far as PNG bytes (`--serve`'s /heatmap; called from a viewer's thread), or None
        before the first frame."""
        snapshot = self._snapshot()
        if snapshot is None:
            return None
        heat, background, unit = snapshot
        return encode_png(render_heatmap(heat, background, unit))

    def discard(self) -> None:
        """The run read nothing: no files."""

    def summary(self) -> str:
        """The run's last line about the map: where it is and its most occupied place."""
        if self.map is None:
            return "heat map: none (no image or frame was read)"
        most = float(self.map.heat.max())
        amount = f"{most:.1f} s" if self.unit == "s" else f"{most:.0f} images"
        earlier = " (with the earlier run's)" if self.resumed else ""
        return f"heat map{earlier}: {self.png} (most occupied place: {amount})"

    def _start(self, result: Result) -> None:
        height, width = result.image.shape[:2]
        self.unit = "s" if result.frame is not None else "images"
        self._live = continues(result)
        self._nominal = 1.0 / (result.fps or DEFAULT_FPS)
        self._saved_at = self._clock()
        earlier = self._earlier_map() if self._live else None
        if earlier is not None:  # the earlier run's frame stays the map's: this run's images are scaled into it
            height, width = earlier.shape
        self.map = Heatmap(width, height, self.options.radius, self.options.anchor)
        self.resumed = earlier is not None and self.map.merge(earlier)

    def _earlier_map(self) -> np.ndarray | None:
        """The map an earlier run left in the folder (a camera's or watched folder's service restarted), or None."""
        if not self.npy.exists():
            return None
        try:
            earlier = np.load(self.npy, allow_pickle=False)
        except (OSError, ValueError) as error:
            warnings.warn(f"{self.npy}: not an earlier heat map ({error}); starting a new one", DarknetWarning,
                          stacklevel=3)
            return None
        if earlier.ndim != 2 or min(earlier.shape) < 1 or earlier.dtype.kind not in "fiu":
            warnings.warn(f"{self.npy}: not an earlier heat map (an array of shape {earlier.shape}, {earlier.dtype}); "
                          "starting a new one", DarknetWarning, stacklevel=3)
            return None
        return earlier

    def _frame_time(self, result: Result) -> float:
        return result.time if result.time is not None else result.frame / DEFAULT_FPS

    def _add_frame(self, boxes: np.ndarray, at: float) -> None:
        """Add the frame held before this one, for the time from it to this one; hold this one."""
        assert self.map is not None
        if self._held is not None:
            held_boxes, held_at = self._held
            duration = at - held_at
            if self._live:
                duration = min(duration, MAX_LIVE_FRAME_S)
            if duration > 0:
                self._last_duration = duration
                self.map.add(held_boxes, duration)
        self._held = (boxes, at)

    def _keep_background(self, image: np.ndarray) -> None:
        """Keep every `_step`-th frame; when twice the frames wanted are kept, every other one goes and the step
        doubles: between BACKGROUND_FRAMES/2 and BACKGROUND_FRAMES frames, spread evenly over the run so far."""
        if self._seen % self._step == 0:
            self._backgrounds.append(image.copy())
            if len(self._backgrounds) > BACKGROUND_FRAMES:
                self._backgrounds = self._backgrounds[::2]
                self._step *= 2
        self._seen += 1

    @staticmethod
    def _background(kept: list[np.ndarray]) -> np.ndarray:
        """The scene: the per-pixel median of the *kept* frames (an odd number of them: each pixel one of theirs)."""
        frames = kept[:len(kept) - (len(kept) % 2 == 0)] or kept
        if len(frames) == 1:
            return frames[0]
        return np.median(np.stack(frames), axis=0).astype(np.uint8)

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """The map so far (the frame held for the next one's time counted as long as the frames before it), the scene
        under it and the unit; None before the first frame."""
        with self._lock:  # copies only: the median and the picture are made outside, the detection loop not held
            if self.map is None:
                return None
            heat, kept, unit = self.map.heat.copy(), list(self._backgrounds), self.unit
            held = (self._held[0], self._last_duration) if self._held is not None else None
            size = (self.map.width, self.map.height, self.map.radius, self.map.anchor)
        if held is not None and held[1] is not None:
            extra = Heatmap(*size)
            extra.add(held[0], held[1])
            heat += extra.heat
        return heat, self._background(kept), unit

    def _save(self) -> None:
        snapshot = self._snapshot()
        assert snapshot is not None
        heat, background, unit = snapshot
        picture = render_heatmap(heat, background, unit)
        with interrupt.deferred():
            with atomic_write(self.npy, "wb") as handle:
                np.save(handle, heat, allow_pickle=False)
            write_image(self.png, picture)
        self._saved_at = self._clock()
