"""OpenCV 5 (which has no Darknet importer) runs our ONNX exports like onnxruntime does.

Two halves, because the dev environment pins opencv-python<5 for the Darknet oracle:
  python tests/opencv5_check.py export DIR    # our venv: write models, inputs, onnxruntime outputs
  python tests/opencv5_check.py compare DIR   # a venv with opencv-python 5 and numpy only
`tests/test_onnx.py::test_opencv5_runs_raw_and_boxes_exports` builds that venv and runs both.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4  # max |difference| / max |onnxruntime output|, per output


def export(folder: Path) -> None:
    import warnings

    import cv2

    import darknet_py
    from darknet_py.backends.onnxruntime import OnnxDetector
    from darknet_py.export.onnx import ExportOptions, export_onnx
    from darknet_py.format.names import COCO_NAMES
    from tests.conftest import IMAGES, official, shared_path
    from weights_tools.synth import synthesize

    folder.mkdir(parents=True, exist_ok=True)
    tiny_cfg, tiny_weights = official("yolov4-tiny")
    csp_cfg = shared_path(tiny_cfg.parent / "yolov4-csp.cfg")
    csp_weights = folder / "yolov4-csp-synthetic.weights"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesize(csp_cfg, seed=0).save_weights(csp_weights)
    photo = cv2.imread(str(shared_path(IMAGES / "dog.jpg")))
    cases = []
    for name, cfg, weights in (("yolov4-tiny", tiny_cfg, tiny_weights), ("yolov4-csp", csp_cfg, csp_weights)):
        model = darknet_py.load(cfg, weights)
        blob = cv2.dnn.blobFromImage(photo, 1 / 255, (model.width, model.height), swapRB=True)
        for fmt in ("raw", "boxes"):
            path = folder / f"{name}-{fmt}.onnx"
            export_onnx(model, path, COCO_NAMES, ExportOptions(output_format=fmt))
            outputs = OnnxDetector(path).run(blob)
            np.savez(folder / f"{name}-{fmt}.npz", input=blob, *outputs)
            cases.append(f"{name}-{fmt}")
    (folder / "cases.json").write_text(json.dumps(cases))


def compare(folder: Path) -> int:
    import cv2

    assert cv2.__version__.startswith("5"), f"needs OpenCV 5, found {cv2.__version__}"
    failures = 0
    for case in json.loads((folder / "cases.json").read_text()):
        data = np.load(folder / f"{case}.npz")
        expected = [data[f"arr_{i}"] for i in range(len(data.files) - 1)]
        net = cv2.dnn.readNetFromONNX(str(folder / f"{case}.onnx"))
        net.setInput(data["input"])
        got = net.forward(net.getUnconnectedOutLayersNames())
        errors = [float(np.abs(g - e).max() / max(np.abs(e).max(), 1e-12)) if g.shape == e.shape else float("inf")
                  for g, e in zip(got, expected)]
        ok = len(got) == len(expected) and max(errors) <= TOLERANCE
        failures += not ok
        print(f"{case}: OpenCV {cv2.__version__} vs onnxruntime, max relative error {max(errors):.2e} "
              f"over {len(got)} outputs {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    command, target = sys.argv[1], Path(sys.argv[2])
    if command == "export":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        export(target)
        sys.exit(0)
    sys.exit(compare(target))
