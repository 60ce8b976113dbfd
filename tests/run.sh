#!/usr/bin/env bash
# One command from a fresh checkout to a test run: makes .venv, installs CPU torch pinned
# (an unpinned torch pulls GBs of CUDA wheels), the package and its dev extra, checks the package's
# shape (import-linter: role packages import downward only, no circles), its style (ruff) and its
# docs (mkdocs build --strict), then runs pytest. Installs the system packages it needs with apt when
# they are missing (root, or sudo): see SYSTEM_PACKAGES.
set -euo pipefail
cd "$(dirname "$0")/.."
# System packages the suite needs, installed with apt only when missing (checked with dpkg -s), in one go:
#   build-essential  gcc, g++, make: the reference darknet and its dump programs are built from source
#   python3-dev      Python.h, for the package's C kernel (darknet's resize; setup.py) where python3 is Debian's
#   python3-venv     the .venv below (Debian's python3 has no venv module without it)
#   chromium         headless browser for the page and video tests (tests/test_live.py, tests/test_video_writer.py)
#   libopencv-dev, pkg-config   the reference darknet built with OpenCV (.darknet-ref-cv), as most users build it:
#                    grey models are read with cv::imread (tests/test_greyscale.py)
#   python3-gi, gir1.2-gst-rtsp-server-1.0   a real RTSP camera for tests/test_rtsp.py: GStreamer's RTSP server,
#                    driven from the system Python (tests/rtsp_server.py; the venv has no PyGObject)
#   gstreamer1.0-plugins-base, -good, -bad, -ugly, gstreamer1.0-libav   what that server's pipelines use: decodebin
#                    and videoconvert (base), the RTP payloader (good), intervideosrc/sink to loop the file (bad),
#                    x264enc (ugly), FFmpeg's decoders for the shared videos (libav)
#   mosquitto        a real MQTT broker for tests/test_notify_mqtt.py (--notify mqtt://), started by the tests
#                    (the package's own service is not used)
SYSTEM_PACKAGES=(build-essential python3-dev python3-venv chromium libopencv-dev pkg-config
                 python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                 gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav mosquitto)
missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/run.sh: installing system packages: ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
fi
python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e ".[dev]"
lint-imports --no-cache >/dev/null || lint-imports --no-cache  # quiet when kept, the report when broken
ruff check -q .
NO_MKDOCS_2_WARNING=1 mkdocs build --strict -q  # the API reference, the CLI help pages, every link
# Two processes, a test file each at a time (pytest-xdist --dist loadfile, so that a file's module fixtures, such
# as its Ray cluster, stay one): while one waits on Ray, a camera or a browser, the other computes. OpenMP threads
# that find no work sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE): the two workers' torch threads, spinning on
# two cores, made the whole run barely shorter than one process (README). DARKNET_PY_TEST_WORKERS=0 runs
# the tests in one process.
export OMP_WAIT_POLICY=PASSIVE
python -m pytest -q -n "${DARKNET_PY_TEST_WORKERS:-2}" --dist loadfile "$@"
