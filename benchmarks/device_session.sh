#!/usr/bin/env bash
# Issue 29's GPU checks as one prepared call of the device tool (a lent H100 or H200: 15 minutes of device time a
# session, nothing fetched there, ../shared not sent, at most 64 MiB carried, Python 3.12 with torch+CUDA, OpenCV,
# onnx and onnxruntime but neither PyAV nor pycocotools).
#
#   bash benchmarks/device_session.sh prepare      # here, once: fills .device/ (in .gitignore), about 57 MiB
#   bash benchmarks/device_session.sh run STEP...  # there, as the tool's command, with carry [".device"]
#
# STEPs, in the order worth running when time is short (minutes on an H100 from earlier sessions, rough):
#   tests   tests/test_cuda.py (the COCO-AP test left out: the COCO subset does not fit beside PyAV)   ~3
#   tiny    python -m benchmarks.gpu, yolov4-tiny 416: network / detect() / pre-processing / rows fetched
#           in one copy vs gated on the device / video (MJPG, H.264, --no-save --save-json)          ~5
#   p7      python -m benchmarks.gpu, cspx-p7-mish 1536 (synthetic weights), fp16 graphs, batch 1, and its
#           heads' error (CPU fp32, GPU fp32/fp16) against a float64 CPU run                             ~3
# Each step writes its log and results under $OUT/<step>/; copy them into benchmarks/results/ here.
#
# yolov4-tiny's weights travel rounded to fp16 (12 MB instead of 24; the largest is 58.9, well inside fp16) and are
# written back as a float32 .weights file there: GPU-against-CPU checks compare like with like, and speed does not
# depend on the values. Results made from them say so (weights.txt beside them).
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=.device

prepare() {
    local shared=${DARKNET_PY_SHARED:-../shared} python=${PYTHON:-.venv/bin/python}
    rm -rf "$DEVICE"
    mkdir -p "$DEVICE"/shared/zoo/cfg "$DEVICE"/shared/zoo/weights "$DEVICE"/shared/data/images \
        "$DEVICE"/shared/data/video "$DEVICE"/whl
    cp "$shared"/zoo/cfg/* "$DEVICE"/shared/zoo/cfg/
    cp "$shared"/data/images/*.jpg "$DEVICE"/shared/data/images/
    cp "$shared"/data/video/pedestrians.avi "$DEVICE"/shared/data/video/
    "$python" - "$shared/zoo/weights/yolov4-tiny.weights" "$DEVICE/yolov4-tiny.weights-fp16.npz" <<'EOF'
import dataclasses
import sys

import numpy as np

from darknet_py.format.weights import read_weights

header, floats = read_weights(sys.argv[1])
np.savez(sys.argv[2], header=np.array(dataclasses.astuple(header), np.int64), floats=floats.astype(np.float16))
EOF
    # the versions installed here, as wheels for the device's Python
    local av pycocotools
    av=$("$python" -c "import av; print(av.__version__)")
    pycocotools=$("$python" -m pip show pycocotools | awk '/^Version/{print $2}')
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DEVICE"/whl "av==$av" "pycocotools==$pycocotools"
    du -sh "$DEVICE"
}

run() {
    [ -n "${OUT:-}" ] || { echo "OUT is not set: run this through the device tool" >&2; exit 2; }
    [ $# -gt 0 ] || { echo "name the steps to run: tests, tiny, p7" >&2; exit 2; }
    for step in "$@"; do
        case "$step" in tests | tiny | p7) ;; *) echo "unknown step $step (tests, tiny, p7)" >&2; exit 2 ;; esac
    done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$DEVICE"/whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 DARKNET_PY_SHARED=$PWD/$DEVICE/shared
    python3 setup.py -q build_ext --inplace > /dev/null 2>&1 || echo "C kernels not built: the CPU side runs without them"
    python3 - "$DEVICE/yolov4-tiny.weights-fp16.npz" "$DARKNET_PY_SHARED/zoo/weights/yolov4-tiny.weights" <<'EOF'
import sys

import numpy as np

from darknet_py.format.weights import WeightsHeader, write_weights

packed = np.load(sys.argv[1])
write_weights(sys.argv[2], WeightsHeader(*(int(v) for v in packed["header"])), packed["floats"].astype(np.float32))
EOF
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    local failed=0
    for step in "$@"; do  # a failing step is reported and the next one still runs: device time is scarce
        mkdir -p "$OUT/$step"
        echo "yolov4-tiny.weights rounded to fp16 and back (benchmarks/device_session.sh)" > "$OUT/$step/weights.txt"
        case "$step" in
        tests) python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py --timeout 600 \
                   --deselect tests/test_cuda.py::test_fp16_coco_ap_within_half_a_point_of_fp32 2>&1 | tee "$OUT/$step/log" ;;
        tiny) python3 -m benchmarks.gpu --models yolov4-tiny:416 --repeats 5 --video-rounds 2 --out "$OUT/$step" 2>&1 \
                  | tee "$OUT/$step/log" ;;
        p7) python3 -m benchmarks.gpu --models cspx-p7-mish:1536 --batch 1 --dtypes fp16 --variants graphs --no-video \
                --no-side-by-side --repeats 5 --out "$OUT/$step" 2>&1 | tee "$OUT/$step/log" ;;
        esac || { echo "step $step failed" | tee -a "$OUT/$step/log"; failed=1; }
    done
    return "$failed"
}

case "${1:-}" in
prepare) prepare ;;
run) shift; run "$@" ;;
*) echo "usage: $0 prepare | run STEP..." >&2; exit 2 ;;
esac
