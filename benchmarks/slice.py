"""`darknet-py slice` against its peer, SAHI's `slice_coco`, on the shared COCO val2017 subset (158 photos, its
instances JSON): the same tile size, overlap and min_area_ratio, each writing its tiles and their annotations to a
fresh folder; seconds for the whole set, medians over interleaved rounds (rotating which runs first), in this
process on this machine. darknet_py runs through its library call (`slice_coco`, what the command runs), SAHI through
its own. What each writes: darknet_py JPEG tiles (these photos are JPEGs) with darknet label files and lists; SAHI
JPEG tiles and one COCO JSON, cutting each annotation's segmentation polygon too (shapely) where darknet_py cuts
boxes — the work is not the same, so the tiles written are counted as well.

    python -m benchmarks.slice [--rounds 5] [--tile 416] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.media.tile_dataset import DEFAULT_MIN_VISIBLE, SliceOptions, slice_coco

REPO = Path(__file__).resolve().parents[1]
COCO = REPO.parent / "shared" / "data" / "coco-val2017-subset"
IMAGES, ANNOTATIONS = COCO / "images", COCO / "instances_val2017_subset.json"
OVERLAP = 0.2


def run_ours(out: Path, tile: int) -> tuple[float, int]:
    """darknet_py's slice of the subset into *out*: (seconds, tiles written)."""
    started = time.perf_counter()
    report = slice_coco(IMAGES, ANNOTATIONS, out, SliceOptions(tile, OVERLAP, DEFAULT_MIN_VISIBLE))
    return time.perf_counter() - started, sum(report.tiles.values())


def run_sahi(out: Path, tile: int) -> tuple[float, int]:
    """SAHI's slice_coco of the subset into *out*: (seconds, tiles written)."""
    from sahi.slicing import slice_coco as sahi_slice_coco

    logging.getLogger("sahi").setLevel(logging.ERROR)  # a warning per crowd (RLE) mask it cannot cut
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        coco, _ = sahi_slice_coco(str(ANNOTATIONS), str(IMAGES), "sliced", output_dir=str(out), slice_height=tile,
                                  slice_width=tile, overlap_height_ratio=OVERLAP, overlap_width_ratio=OVERLAP,
                                  min_area_ratio=DEFAULT_MIN_VISIBLE)
    return time.perf_counter() - started, len(coco["images"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tile", type=int, default=416)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    runners = {"darknet_py": run_ours, "sahi": run_sahi}
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    tiles: dict[str, int] = {}
    for round_index in range(args.rounds + 1):  # round 0 warms the page cache and imports; not counted
        order = list(runners) if round_index % 2 else list(reversed(runners))
        for name in order:
            folder = Path(tempfile.mkdtemp(prefix=f"slice-{name}-"))
            try:
                spent, written = runners[name](folder, args.tile)
            finally:
                shutil.rmtree(folder)
            if round_index:
                seconds[name].append(spent)
            tiles[name] = written
        print(f"round {round_index}/{args.rounds} done", file=sys.stderr, flush=True)
    ours, theirs = (statistics.median(seconds[name]) for name in runners)
    from importlib.metadata import version

    result = {"cpu": cpu_model(), "sahi": version("sahi"), "images": 158, "tile": args.tile, "overlap": OVERLAP,
              "min_area_ratio": DEFAULT_MIN_VISIBLE, "rounds": args.rounds,
              "seconds_median": {name: round(statistics.median(values), 3) for name, values in seconds.items()},
              "tiles_written": tiles, "sahi_over_darknet_py": round(theirs / ours, 2),
              "date": time.strftime("%Y-%m-%d")}
    write_json(args.out, "slice.json", result, indent=2)


if __name__ == "__main__":
    main()
