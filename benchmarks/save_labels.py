"""`darknet-py detect --save-labels` against darknet's `detector test … -dont_show -save_labels` on everything:
PNG copies of the 9 shared photos (beside the images) and of all 158 COCO subset images (in images/val2017/, whose
labels darknet writes to labels/val2017/), official yolov4-tiny. Counts the byte-identical files and lists every
difference rounding explains (benchmarks/oracle/label_files.py); anything else fails. Also the seconds each takes
(darknet's program, darknet_py's CLI in this process, model load included), on this machine's CPU.

Needs the reference darknet (.darknet-ref). About 3 minutes on 2 quiet cores.

    python -m benchmarks.save_labels [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2

import darknet_py
from benchmarks.oracle.darknet_reference import build_darknet
from benchmarks.oracle.label_files import compare_label_files
from darknet_py import cli
from darknet_py.core.fileio import atomic_write
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CFG, WEIGHTS = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"



def png_copies(sources: list[Path], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = [folder / f"{source.stem}.png" for source in sources]
    for source, copy in zip(sources, copies):
        cv2.imwrite(str(copy), cv2.imread(str(source)))
    return copies


def one_set(name: str, sources: list[Path], work: Path, subfolder: str, darknet, model) -> dict:
    theirs = png_copies(sources, work / "darknet" / subfolder)
    ours = png_copies(sources, work / "ours" / subfolder)
    if "val2017" in subfolder:
        (work / "darknet" / subfolder.replace("images", "labels")).mkdir(parents=True)  # darknet crashes without it
    started = time.perf_counter()
    darknet.run("detector", "test", "cfg/coco.data", CFG, WEIGHTS, "-dont_show", "-save_labels",
                stdin="".join(f"{p}\n" for p in theirs), timeout=3600)
    darknet_s = time.perf_counter() - started
    listing = work / f"{name}.txt"
    listing.write_text("".join(f"{p}\n" for p in ours))
    started = time.perf_counter()
    assert cli.main(["detect", str(listing), "--cfg", str(CFG), "--weights", str(WEIGHTS), "--save-labels",
                     "--no-save", "--output", str(work / f"out-{name}")]) == 0
    ours_s = time.perf_counter() - started
    compared = compare_label_files(model, theirs, ours)
    lines = sum(len(Path(p).read_text().splitlines()) for p in (work / "darknet").rglob("*.txt"))
    return {"images": len(sources), "identical": compared.identical, "rounding_flips": compared.flips,
            "label_lines": lines, "darknet_s": round(darknet_s, 1), "darknet_py_s": round(ours_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    darknet = build_darknet()
    model = darknet_py.load(CFG, WEIGHTS)
    # the seconds are what this run took, not a speed benchmark: a shared machine's load shows in them
    results = {"cpu": cpu_model(), "load_average_at_start": round(os.getloadavg()[0], 1),
               "model": "yolov4-tiny (official)", "sets": {}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photos = sorted((SHARED / "data" / "images").glob("*.jpg"))
        coco = sorted((SHARED / "data" / "coco-val2017-subset" / "images").glob("*.jpg"))
        results["sets"]["photos"] = one_set("photos", photos, work, "photos", darknet, model)
        results["sets"]["coco"] = one_set("coco", coco, work, "coco/images/val2017", darknet, model)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out / "save_labels.json", "w") as handle:
        json.dump(results, handle, indent=1)
    rows = ["| set | images | label lines | byte-identical files | rounding flips | darknet s | darknet_py s |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results["sets"].items():
        rows.append(f"| {name} | {r['images']} | {r['label_lines']} | {r['identical']} | {len(r['rounding_flips'])} | "
                    f"{r['darknet_s']} | {r['darknet_py_s']} |")
    flips = [f"- {f['file']}: darknet `{f['darknet']}`, darknet_py `{f['darknet_py']}` (unrounded {f['unrounded']})"
             for r in results["sets"].values() for f in r["rounding_flips"]]
    text = "\n".join([f"# --save-labels against darknet's -save_labels ({results['cpu']})", "", *rows, "",
                      "Rounding flips (a value within 1e-6 of a 4th-decimal midpoint):", "", *(flips or ["- none"])])
    with atomic_write(args.out / "save_labels.md", "w") as handle:
        handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
