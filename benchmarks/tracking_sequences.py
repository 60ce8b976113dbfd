"""Test sequences for tracking with *known* trajectories, made from real photos.

People are real COCO persons (the shared val2017 subset), cut out of their photos by their segmentation
polygons, that walk known piecewise-straight paths over a real background photo: crossing each other (the
nearer one hides the farther), entering and leaving the frame, turning back; one sequence pans the camera over
a large photo while they walk. Every frame's ground truth is known exactly, and so are the counts a line and a
zone must give; nothing here runs a detector or a tracker.

Each sequence is written in MOTChallenge's layout, which TrackEval and py-motmetrics read as it is:

    OUT/NAME/img1/000001.jpg …       the frames
    OUT/NAME/gt/gt.txt               frame,id,x,y,w,h,consider,class,visibility (frames and ids from 1; class 1
                                     pedestrian; consider 0 where less than MIN_VISIBLE of the person shows)
    OUT/NAME/seqinfo.ini             name, frameRate, seqLength, imWidth, imHeight
    OUT/NAME/expected_counts.json    counts.json as `detect --track` writes it, for the lines and zones in
                                     `shapes` (their --line / --zone values)
    OUT/NAME.avi                     the frames as a video (MJPG), with --video

Ground truth: a person's box is the full extent of its cut-out (also where another person hides part of it),
clipped to the frame; its visibility is the share of its pixels that show. The expected counts follow the
rules of darknet_py.pipeline.tracking.counting, computed here from the true paths on their own: a line counts
each time the centre of a person's box (while at least MIN_VISIBLE of it shows) passes from one side to the
other through the segment; a zone counts entries and exits of that centre, a person first seen inside having
entered nothing.

    python -m benchmarks.tracking_sequences --out runs/tracking-sequences --seed 1 [--video] [NAME ...]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"
COCO = SHARED / "data" / "coco-val2017-subset"
COCO_ANNOTATIONS = COCO / "instances_val2017_subset.json"
BACKGROUND = "000000261712.jpg"  # a park with a dirt path and two giraffes, no people: somewhere to walk
PAN_BACKGROUND = "000000519611.jpg"  # rocks by a pool (a polar bear), shown at 2.5x and panned over
SIZE = (640, 360)
FPS = 25.0
MIN_VISIBLE = 0.25  # a person less visible than this is not expected to be detected (gt consider=0)
PERSON = 1  # COCO's category id; also MOTChallenge's pedestrian class


# -- people cut out of COCO photos ---------------------------------------------------------------------
@dataclass(frozen=True)
class Sprite:
    """A person cut out of a COCO photo: BGR pixels and an alpha mask in [0, 1], tight around the polygon."""

    pixels: np.ndarray
    alpha: np.ndarray
    annotation_id: int


def person_sprites(annotations: Path = COCO_ANNOTATIONS, min_height: int = 120) -> list[Sprite]:
    """Whole, unoccluded, upright persons of the COCO subset, cut out by their polygons; in annotation-id order.

    Kept: not a crowd, polygons (not RLE), at least *min_height* px tall and 0.25-0.75 as wide as tall, at least
    30% of the box covered by the mask, clear of the photo's edges by 2 px, and no other person's box covering
    more than 5% of its box (a cut-out must not carry a piece of someone else).
    """
    data = json.loads(annotations.read_text())
    images = {image["id"]: image for image in data["images"]}
    people = [a for a in data["annotations"] if a["category_id"] == PERSON]
    by_image: dict[int, list[dict]] = {}
    for person in people:
        by_image.setdefault(person["image_id"], []).append(person)
    sprites = []
    for person in sorted(people, key=lambda a: a["id"]):
        x, y, w, h = person["bbox"]
        image = images[person["image_id"]]
        if person["iscrowd"] or not isinstance(person["segmentation"], list) or h < min_height or not 0.25 <= w / h <= 0.75:
            continue
        if x < 2 or y < 2 or x + w > image["width"] - 2 or y + h > image["height"] - 2 or person["area"] < 0.3 * w * h:
            continue
        if any(_overlap(person["bbox"], other["bbox"]) > 0.05 * w * h
               for other in by_image[person["image_id"]] if other["id"] != person["id"]):
            continue
        sprites.append(_cut_out(COCO / "images" / image["file_name"], person))
    return sprites


def _overlap(a: list[float], b: list[float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


def _cut_out(path: Path, person: dict) -> Sprite:
    photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    mask = np.zeros(photo.shape[:2], np.uint8)
    for polygon in person["segmentation"]:
        points = (np.array(polygon, np.float64).reshape(-1, 2) * 8).round().astype(np.int32)
        cv2.fillPoly(mask, [points], 255, cv2.LINE_AA, shift=3)  # sub-pixel polygon edges
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Sprite(photo[top:bottom, left:right].copy(), mask[top:bottom, left:right].astype(np.float32) / 255,
                  int(person["id"]))


# -- sequences ----------------------------------------------------------------------------------------
@dataclass
class Walker:
    """A person and its path: waypoints (frame, x, y) of its feet (bottom centre) in world pixels; linear between
    them, off stage before the first and after the last.

    Args:
        sprite (int): index into the sprite list.
        path (list of (float, float, float)): (frame, x, y) waypoints, frames increasing.
        height (float): the person's height in pixels where its feet are at the bottom of the frame.
    """

    sprite: int
    path: list[tuple[float, float, float]]
    height: float

    def at(self, frame: int) -> tuple[float, float] | None:
        times = [p[0] for p in self.path]
        if frame < times[0] or frame > times[-1]:
            return None
        x = float(np.interp(frame, times, [p[1] for p in self.path]))
        y = float(np.interp(frame, times, [p[2] for p in self.path]))
        return x, y

    def heading_left(self, frame: int) -> bool:
        here, ahead = self.at(frame), self.at(min(frame + 1, int(self.path[-1][0])))
        if here is None or ahead is None or ahead == here:
            here, ahead = self.at(max(frame - 1, int(self.path[0][0]))), here
        return bool(here and ahead and ahead[0] < here[0])


@dataclass
class Sequence:
    """A sequence to render: background, camera, people, and the lines and zones whose counts are expected."""

    name: str
    frames: int
    walkers: list[Walker]
    background: str = BACKGROUND
    zoom: float = 1.0  # the background photo is scaled by this into the world
    camera: list[tuple[float, float, float]] = field(default_factory=lambda: [(0, 0, 0)])  # (frame, x, y) of the view
    lines: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)  # pixels of the frame
    zones: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    size: tuple[int, int] = SIZE
    fps: float = FPS

    def view(self, frame: int) -> tuple[float, float]:
        times = [c[0] for c in self.camera]
        return (float(np.interp(frame, times, [c[1] for c in self.camera])),
                float(np.interp(frame, times, [c[2] for c in self.camera])))


def _walk(rng: np.random.Generator, sprite: int, start: tuple[float, float], end: tuple[float, float], first: int,
          last: int, height: float, turn: tuple[float, float] | None = None) -> Walker:
    """A walker from *start* to *end* (through *turn* half way, if given) between frames *first* and *last*."""
    path = [(first, *start)]
    if turn is not None:
        path.append(((first + last) / 2, *turn))
    path.append((last, *end))
    return Walker(sprite, path, height * float(rng.uniform(0.92, 1.08)))


def crossing(rng: np.random.Generator, frames: int = 125) -> Sequence:
    """Four people in their own lanes (depths), two walking right and two left, who pass each other (the nearer
    one hiding the farther) on both sides of the line in the middle of the frame; two of them come into the
    frame after the start. Each crosses the line once, and goes into and out of the zone around it."""
    width, height = SIZE
    picks = rng.permutation(SPRITE_POOL)[:4]
    f = frames - 1
    walkers = [
        _walk(rng, picks[0], (30, 290), (610, 292), 0, f, 150),
        _walk(rng, picks[1], (610, 332), (30, 330), 0, f, 160),
        _walk(rng, picks[2], (-60, 348), (470, 346), int(0.3 * f), f, 165),
        _walk(rng, picks[3], (width + 60, 306), (170, 308), int(0.25 * f), f, 155),
    ]
    return Sequence("crossing", frames, walkers, lines={"door": (width / 2, 20, width / 2, height - 10)},
                    zones={"middle": [(240, 150), (400, 150), (400, 355), (240, 355)]})


def enter_leave(rng: np.random.Generator, frames: int = 175) -> Sequence:
    """Six people entering from the sides at staggered times, some turning back, all leaving; a zone on the
    left half of the path and a line across the right half."""
    width, _ = SIZE
    picks = rng.permutation(SPRITE_POOL)[:6]
    f = frames - 1
    walkers = [
        _walk(rng, picks[0], (-60, 310), (width + 60, 300), 0, int(0.7 * f), 150),
        _walk(rng, picks[1], (width + 60, 330), (-60, 335), int(0.15 * f), f, 160),
        _walk(rng, picks[2], (-60, 290), (-60, 292), int(0.25 * f), f, 140, turn=(330, 296)),
        _walk(rng, picks[3], (width + 60, 305), (width + 60, 300), 0, int(0.8 * f), 150, turn=(250, 312)),
        _walk(rng, picks[4], (-60, 340), (width + 60, 345), int(0.35 * f), f, 165),
        _walk(rng, picks[5], (width + 60, 285), (-60, 288), int(0.3 * f), f, 135),
    ]
    return Sequence("enter_leave", frames, walkers, lines={"gate": (440, 60, 440, 350)},
                    zones={"pen": [(120, 120), (300, 120), (300, 350), (120, 350)]})


def pan(rng: np.random.Generator, frames: int = 175) -> Sequence:
    """The camera pans right over a large photo while five people walk in the world, two of them standing
    still for a while: everything moves in the image, the background too. A line fixed in the image."""
    picks = rng.permutation(SPRITE_POOL)[:5]
    f = frames - 1
    walkers = [
        _walk(rng, picks[0], (150, 760), (1250, 770), 0, f, 150),
        _walk(rng, picks[1], (900, 790), (300, 780), 0, f, 160),
        Walker(int(picks[2]), [(0, 560, 775), (0.5 * f, 560, 775), (f, 900, 790)], 150),
        _walk(rng, picks[3], (1300, 800), (700, 805), int(0.2 * f), f, 165),
        Walker(int(picks[4]), [(0, 420, 765), (f, 420, 765)], 145),  # stands still: moves only with the camera
    ]
    camera = [(0, 0, 470), (f, 620, 470)]
    return Sequence("pan", frames, walkers, background=PAN_BACKGROUND, zoom=2.5, camera=camera,
                    lines={"post": (320, 30, 320, 350)})


def crowd(rng: np.random.Generator, frames: int = 175) -> Sequence:
    """Eight people on random straight paths across the frame at random times, a line and a zone."""
    width, height = SIZE
    picks = rng.permutation(SPRITE_POOL)[:8]
    walkers = []
    f = frames - 1
    for i, sprite in enumerate(picks):
        leftwards = bool(i % 2)
        y0, y1 = rng.uniform(280, 350, 2)
        start, end = (width + 60, y0) if leftwards else (-60, y0), (-60, y1) if leftwards else (width + 60, y1)
        first = int(rng.uniform(0, 0.45) * f)
        walkers.append(_walk(rng, sprite, start, end, first, min(f, first + int(rng.uniform(0.5, 0.8) * f)), 150))
    return Sequence("crowd", frames, walkers, lines={"middle": (width / 2, 20, width / 2, height - 10)},
                    zones={"left": [(60, 200), (220, 200), (220, 355), (60, 355)]})


SEQUENCES = {"crossing": crossing, "enter_leave": enter_leave, "pan": pan, "crowd": crowd}
# The COCO annotations of the people who walk: of person_sprites(), those standing or walking upright (looked at;
# left out: sitting, riding, jumping, cut by the photo's edge, a baby, a half body).
WALKER_ANNOTATIONS = (200887, 201384, 203048, 204595, 230831, 425370, 430057, 453741, 460884, 472373, 497982,
                      1710500, 1756617, 2156535)
SPRITE_POOL = len(WALKER_ANNOTATIONS)


def walker_sprites() -> list[Sprite]:
    """The cut-outs of WALKER_ANNOTATIONS, in that order (a Walker's `sprite` indexes this list)."""
    by_id = {sprite.annotation_id: sprite for sprite in person_sprites()}
    return [by_id[annotation] for annotation in WALKER_ANNOTATIONS]


# -- rendering ----------------------------------------------------------------------------------------
def render(sequence: Sequence, sprites: list[Sprite]):
    """The frames of *sequence* with their ground truth: yields (frame BGR, [(id, x, y, w, h, visibility)])."""
    photo = cv2.imread(str(COCO / "images" / sequence.background), cv2.IMREAD_COLOR)
    world = cv2.resize(photo, None, fx=sequence.zoom, fy=sequence.zoom, interpolation=cv2.INTER_CUBIC)
    width, height = sequence.size
    if world.shape[0] < height or world.shape[1] < width:
        world = cv2.resize(world, (max(width, world.shape[1]), max(height, world.shape[0])), interpolation=cv2.INTER_CUBIC)
    for frame in range(sequence.frames):
        cx, cy = sequence.view(frame)
        left, top = int(round(cx)), int(round(min(cy, world.shape[0] - height)))
        canvas = world[top:top + height, left:left + width].astype(np.float32)
        owner = np.full((height, width), -1, np.int32)
        placed = []
        for index, walker in enumerate(sequence.walkers):
            feet = walker.at(frame)
            if feet is not None:
                placed.append((feet[1], index, feet[0] - left, feet[1] - top))
        truth = {}
        for _, index, x, y in sorted(placed):  # farther (feet higher up) first: the nearer one hides it
            walker = sequence.walkers[index]
            sprite = sprites[walker.sprite]
            scale = walker.height * (0.7 + 0.3 * y / height) / sprite.pixels.shape[0]  # a little perspective
            pixels = cv2.resize(sprite.pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(sprite.alpha, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if walker.heading_left(frame):
                pixels, alpha = pixels[:, ::-1], alpha[:, ::-1]
            h, w = alpha.shape
            x0, y0 = int(round(x - w / 2)), int(round(y - h))
            truth[index] = (x0, y0, w, h, float((alpha > 0.5).sum()))
            _paste(canvas, owner, pixels, alpha, x0, y0, index)
        boxes = []
        for index, (x0, y0, w, h, total) in truth.items():
            visible = float((owner == index).sum()) / total if total else 0.0
            x1, y1, x2, y2 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if x2 > x1 and y2 > y1 and visible > 0:
                boxes.append((index + 1, x1, y1, x2 - x1, y2 - y1, visible))
        yield np.clip(canvas, 0, 255).astype(np.uint8), boxes


def _paste(canvas: np.ndarray, owner: np.ndarray, pixels: np.ndarray, alpha: np.ndarray, x0: int, y0: int,
           index: int) -> None:
    height, width = owner.shape
    h, w = alpha.shape
    sx, sy = max(0, -x0), max(0, -y0)
    ex, ey = min(w, width - x0), min(h, height - y0)
    if ex <= sx or ey <= sy:
        return
    region = (slice(y0 + sy, y0 + ey), slice(x0 + sx, x0 + ex))
    a = alpha[sy:ey, sx:ex, None]
    canvas[region] = canvas[region] * (1 - a) + pixels[sy:ey, sx:ex].astype(np.float32) * a
    owner[region][alpha[sy:ey, sx:ex] > 0.5] = index


# -- expected counts, from the true paths -----------------------------------------------------------------
def expected_counts(sequence: Sequence, truth: list[list[tuple]]) -> dict:
    """counts.json for the sequence's lines and zones, from the true box centres of the frames where a person
    shows at least MIN_VISIBLE (see the module's docstring)."""
    centres: dict[int, list[tuple[int, float, float]]] = {}
    for frame, boxes in enumerate(truth):
        for track, x, y, w, h, visible in boxes:
            if visible >= MIN_VISIBLE:
                centres.setdefault(track, []).append((frame, x + w / 2, y + h / 2))
    counts: dict = {"lines": {}, "zones": {}}
    for name, (x1, y1, x2, y2) in sequence.lines.items():
        crossed = {"in": 0, "out": 0}
        for path in centres.values():
            last = None
            for _, x, y in path:
                # the side of P1→P2: >0 right of it, in image coordinates (y down)
                side = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
                side = 0 if side == 0 else (1 if side > 0 else -1)
                if side == 0:
                    continue
                if last is not None and side != last[0] and _meets_segment(last[1], (x, y), (x1, y1), (x2, y2)):
                    crossed["in" if side > 0 else "out"] += 1
                last = (side, (x, y))
        counts["lines"][name] = {key: ({"person": n} if n else {}) for key, n in crossed.items()}
    for name, corners in sequence.zones.items():
        polygon = np.array(corners, np.float32)
        moved = {"entered": 0, "exited": 0}
        inside_per_frame: dict[int, int] = {}
        for path in centres.values():
            was = None
            for frame, x, y in path:
                now = cv2.pointPolygonTest(polygon, (float(x), float(y)), False) > 0  # OpenCV's test, not ours
                inside_per_frame[frame] = inside_per_frame.get(frame, 0) + int(now)
                if was is not None and now != was:
                    moved["entered" if now else "exited"] += 1
                was = now
        most = max(inside_per_frame.values(), default=0)
        counts["zones"][name] = {**{key: ({"person": n} if n else {}) for key, n in moved.items()},
                                 "max_inside": {"person": most} if most else {}}
    return counts


def _meets_segment(p: tuple[float, float], q: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> bool:
    """The path p→q, which changes side of the line through a and b, meets the segment ab."""
    def cross(o, u, v):
        return (u[0] - o[0]) * (v[1] - o[1]) - (u[1] - o[1]) * (v[0] - o[0])
    return cross(p, q, a) * cross(p, q, b) <= 0  # a and b on either side of the path (or on it)


def shape_flags(sequence: Sequence) -> dict:
    """The sequence's lines and zones as `--line` / `--zone` values."""
    def text(values) -> str:
        return ",".join(f"{v:g}" for v in values)
    return {"lines": [f"{name}={text(points)}" for name, points in sequence.lines.items()],
            "zones": [f"{name}={text(v for point in corners for v in point)}" for name, corners in sequence.zones.items()]}


# -- writing --------------------------------------------------------------------------------------------
def make(name: str, out: Path, seed: int = 1, frames: int | None = None, video: bool = False,
         sprites: list[Sprite] | None = None) -> Path:
    """Render sequence *name* with random choices from *seed* into OUT/NAME (MOTChallenge layout); its folder.

    Args:
        name (str): one of SEQUENCES.
        out (Path): the folder to write it in.
        seed (int): picks the people, their sizes and (crowd) their paths.
        frames (int, optional): its length (the paths are scaled to it); None: the sequence's own.
        video (bool): also write OUT/NAME.avi (MJPG, the same frames).
        sprites (list of Sprite, optional): the cut-outs (walker_sprites()), to share between calls.
    """
    rng = np.random.default_rng([seed, list(SEQUENCES).index(name)])  # each sequence its own draw
    sequence = SEQUENCES[name](rng, frames) if frames else SEQUENCES[name](rng)
    sprites = sprites if sprites is not None else walker_sprites()
    folder = out / name
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    width, height = sequence.size
    writer = cv2.VideoWriter(str(out / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), sequence.fps,
                             (width, height)) if video else None
    truth, rows = [], []
    for frame, (image, boxes) in enumerate(render(sequence, sprites)):
        cv2.imwrite(str(folder / "img1" / f"{frame + 1:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if writer is not None:
            writer.write(image)
        truth.append(boxes)
        rows += [f"{frame + 1},{track},{x},{y},{w},{h},{int(visible >= MIN_VISIBLE)},{PERSON},{visible:.3f}"
                 for track, x, y, w, h, visible in boxes]
    if writer is not None:
        writer.release()
    (folder / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate={sequence.fps:g}\n"
                                        f"seqLength={sequence.frames}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n")
    expected = {**expected_counts(sequence, truth), "shapes": shape_flags(sequence), "seed": seed,
                "people": len(sequence.walkers), "sprites": [sprites[w.sprite].annotation_id for w in sequence.walkers]}
    (folder / "expected_counts.json").write_text(json.dumps(expected, indent=1))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(SEQUENCES), help=f"sequences ({', '.join(SEQUENCES)})")
    parser.add_argument("--out", default="runs/tracking-sequences")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--frames", type=int, help="length of each (default: each sequence's own)")
    parser.add_argument("--video", action="store_true", help="also write NAME.avi")
    args = parser.parse_args()
    sprites = walker_sprites()
    for name in args.names:
        folder = make(name, Path(args.out), args.seed, args.frames, args.video, sprites)
        print(f"{folder}: {json.loads((folder / 'expected_counts.json').read_text())}")


if __name__ == "__main__":
    main()
