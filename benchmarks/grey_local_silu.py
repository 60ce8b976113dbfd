"""Issue 31's new inputs against the real darknet, with the figures the tests only bound:

- [local] (YOLOv1): every layer of a yolov1.cfg-shaped network and of a stack of [local] variants against darknet's
  forward pass (synthetic weights; benchmarks/oracle/small_cfgs.py). darknet's own yolov1 cfgs at their 448 px:
  `python -m benchmarks.darknet_cfgs yolov1/yolo.cfg yolov1/yolo-coco.cfg yolov1/yolo2.cfg
  --out benchmarks/results/darknet_cfgs_yolov1.json`.
- activation=silu: a yolov7-shaped and a yolor-shaped network, their heads against darknet reading the cfg with
  `swish`, and as written (darknet computes ReLU for silu).
- channels=1: the grey yolov4-tiny (benchmarks/oracle/grey_model.py) on the 9 shared photos against darknet built
  with OpenCV (`detector valid`, thresh 0.001, NMS 0.6), and its score for dog.jpg's dog.

Needs the reference darknet (.darknet-ref) and its OpenCV build (.darknet-ref-cv). About a minute on 2 quiet cores.

    python -m benchmarks.grey_local_silu [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import darknet_py
from benchmarks.oracle.darknet_reference import build_darknet, build_darknet_opencv
from benchmarks.oracle.grey_model import coco_category_ids, compare_with_opencv_darknet, grey_files
from benchmarks.oracle.small_cfgs import LOCAL_CFGS, SILU_CFGS, local_comparison, silu_comparison
from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    darknet, darknet_cv = build_darknet(), build_darknet_opencv()
    results: dict = {"cpu": cpu_model(), "local": {}, "silu": {}}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in LOCAL_CFGS:
            errors = local_comparison(name, darknet, work / name)
            results["local"][name] = {"layers": len(errors), "max_relative_error": max(errors)}
        for name in SILU_CFGS:
            compared = silu_comparison(name, darknet, work / name)
            results["silu"][name] = {"heads": len(compared.vs_swish), "vs_swish": compared.vs_swish,
                                     "vs_as_written": compared.vs_as_written, "warning": compared.warnings}
        cfg, weights = SHARED / "zoo" / "cfg" / "yolov4-tiny.cfg", SHARED / "zoo" / "weights" / "yolov4-tiny.weights"
        grey = grey_files(cfg, weights, work / "grey")
        model = darknet_py.load(*grey)
        photos = sorted((SHARED / "data" / "images").glob("*.jpg"))
        ids = coco_category_ids(SHARED / "data" / "coco-val2017-subset" / "instances_val2017_subset.json")
        compared = compare_with_opencv_darknet(darknet_cv, *grey, model, photos, work / "valid", ids)
        dog = model.detect(str(SHARED / "data" / "images" / "dog.jpg"))[0]
        results["grey"] = {"photos": len(photos), "dog_score": float(dog.scores[dog.labels.index("dog")]),
                           **vars(compared)}
    write_json(args.out, "grey_local_silu.json", results, indent=1)


if __name__ == "__main__":
    main()
