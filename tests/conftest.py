"""Shared fixtures. ../shared (official cfgs, weights, photos) must exist: tests fail, never skip, without it."""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DARKNET_PY_SHARED", REPO.parent / "shared"))
ZOO_CFG = SHARED / "zoo" / "cfg"
ZOO_WEIGHTS = SHARED / "zoo" / "weights"
IMAGES = SHARED / "data" / "images"
COCO = SHARED / "data" / "coco-val2017-subset"
VIDEO = SHARED / "data" / "video"


def shared_path(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"required shared data is missing: {path} (tests read ../shared; see README)")
    return path


def zoo_cfgs() -> list[Path]:
    cfgs = sorted(shared_path(ZOO_CFG).glob("*.cfg"))
    if not cfgs:
        pytest.fail(f"no cfgs in {ZOO_CFG}")
    return cfgs


def official(name: str) -> tuple[Path, Path]:
    return shared_path(ZOO_CFG / f"{name}.cfg"), shared_path(ZOO_WEIGHTS / f"{name}.weights")


def same_detections(expected, got, score_tol: float = 1e-4, box_tol: float = 0.5) -> None:
    """Two runs' Detections, image by image: the same labels, scores within score_tol, boxes within box_tol px
    (what docs/parity.md and docs/performance.md claim for exported graphs and their concurrent twins)."""
    import numpy as np

    for want, have in zip(expected, got, strict=True):
        assert have.labels == want.labels
        assert np.abs(have.scores - want.scores).max(initial=0) <= score_tol
        assert np.abs(have.boxes - want.boxes).max(initial=0) <= box_tol


def as_another_user(command: list[str]) -> list[str]:
    """`command` run by a user who does not own the test's folders: `nobody` where the tests run as root (root
    may write anywhere), else the test's own user, for whom a folder's mode already holds."""
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")  # util-linux, in every Debian
    assert setpriv, "setpriv (util-linux) is needed to run as another user"
    as_nobody = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    _nobody_runs_the_package(tuple(as_nobody))
    return [*as_nobody, *command]


@functools.cache
def _nobody_runs_the_package(as_nobody: tuple[str, ...]) -> None:
    """A clear failure where `nobody` cannot reach this checkout's Python and package (a checkout or a Python under
    a private folder), rather than a test failing on a permission error of its own."""
    import subprocess
    import sys

    probe = subprocess.run([*as_nobody, sys.executable, "-c", "import darknet_py"], capture_output=True, text=True,
                           timeout=120)
    assert probe.returncode == 0, f"user nobody cannot run {sys.executable} with darknet_py: {probe.stderr.strip()[-300:]}"


def photos() -> list[Path]:
    found = sorted(shared_path(IMAGES).glob("*.jpg"))
    if not found:
        pytest.fail(f"no photos in {IMAGES}")
    return found


@pytest.fixture(scope="session")
def synthetic_weights(tmp_path_factory):
    """cfg → a .weights file of deterministic, well-conditioned synthetic weights, made once per run for each cfg
    text (darknet's cfgs that the zoo holds too, byte for byte, are synthesised once: tests/test_darknet_cfgs.py).
    The workers of one run (tests/run.sh: pytest-xdist) share them: one synthesises, another waits for it."""
    from benchmarks.oracle.darknet_reference import build_lock
    from darknet_py import DarknetWarning
    from weights_tools.synth import synthesize

    folder = run_wide_folder(tmp_path_factory, "synthetic")

    def weights_for(cfg: Path) -> Path:
        text = Path(cfg).read_bytes()
        path = folder / f"{hashlib.sha256(text).hexdigest()[:16]}-{Path(cfg).stem}.weights"
        with build_lock(path):
            if not path.exists():  # save_weights writes atomically: a worker stopped mid-write leaves none to take
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DarknetWarning)  # P7's num=16 has its own test
                    synthesize(cfg, seed=0).save_weights(path)
        return path
    return weights_for


def run_wide_folder(tmp_path_factory, name: str) -> Path:
    """A folder every worker of this pytest run shares: under pytest-xdist, in the run's own base folder (the
    workers' base folders are inside it; it is removed when the run passes), else a fresh one."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp(name)
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    """The first 12 frames of the shared video at 320x180, 25 fps: real footage, fast to run."""
    import cv2

    source = cv2.VideoCapture(str(shared_path(VIDEO / "pedestrians.avi")))
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 180))
    for _ in range(CLIP_FRAMES):
        ok, frame = source.read()
        assert ok, "the shared video has fewer frames than the clip needs"
        writer.write(cv2.resize(frame, (320, 180)))
    writer.release()
    source.release()
    return path


def refused_before_work(flags: list[str], line: str, out: Path, capsys) -> None:
    """`detect` on a camera URL nothing listens at, with *flags* that mean nothing: exit 2, one `error:` line on stderr
    beginning with *line*, and no *out* folder made: refused before the model loads or anything is written."""
    from darknet_py import cli

    assert cli.main(["detect", "rtsp://127.0.0.1:9/cam", *flags, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err
    assert not out.exists()


def darknet_warnings(recorded) -> list[str]:
    """The messages of the DarknetWarnings among *recorded* (pytest's `recwarn`, or the list of
    `warnings.catch_warnings(record=True)`), in the order they were given."""
    from darknet_py.core.errors import DarknetWarning

    return [str(w.message) for w in recorded if issubclass(w.category, DarknetWarning)]


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now, for a server a test starts (a receiver, a broker, --serve, Ray's agent)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def notifier_events(monkeypatch):
    """The events (darknet_py.core.events) of this process's --notify Notifiers, as an EventPipe: notify-failed N,
    notify-delivered N (tests/test_notify.py, tests/test_notify_mqtt.py)."""
    from darknet_py.core.events import EVENTS
    from tests.event_pipe import EventPipe

    with EventPipe() as pipe:
        monkeypatch.setenv(EVENTS, str(pipe.path))
        yield pipe


def frame_count(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def opencv_frames(path: Path) -> list:
    """Every frame OpenCV's FFmpeg decodes from *path*, in order (BGR arrays): an independent reader of our videos."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    return frames


CLIP_FRAMES = 12


@pytest.fixture(autouse=True)
def _quiet_known_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        yield


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that builds a Ray actor's model in this process (ModelRecipe.build sets the worker's thread
    count) must not leave it set: torch's results depend on the intra-op thread count, and later tests
    compare this process's detections with other processes' digit for digit."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def darknet_ref():
    """The real darknet, built once per machine (benchmarks/oracle/darknet_reference.py); fails, never skips, without it."""
    from benchmarks.oracle.darknet_reference import build_darknet

    return build_darknet()


@pytest.fixture(scope="session")
def darknet_ref_cv():
    """The real darknet built with OpenCV (OPENCV=1: it reads images with cv::imread, grey ones with
    IMREAD_GRAYSCALE), once per machine into .darknet-ref-cv; fails, never skips, without it."""
    from benchmarks.oracle.darknet_reference import build_darknet_opencv

    return build_darknet_opencv()


@pytest.fixture(scope="session")
def darknet_steps(darknet_ref):
    """darknet run frame after frame, and with its release build's asserts off (benchmarks/oracle/darknet_steps.py)."""
    from benchmarks.oracle.darknet_steps import build_steps

    return build_steps(darknet_ref)
