"""The real darknet as the oracle: built once per machine from ../shared/reference/darknet into an
ignored folder (`.darknet-ref` at the repo root, or $DARKNET_PY_DARKNET_REF), then run as a program.
Used by the tests (the `darknet_ref` fixture in tests/conftest.py) and by benchmarks.

- `Darknet.layers(cfg, weights, pixels)`: every layer's output of darknet's own forward pass
  (dump_layers) for a given network input; `detector=True` runs it as `darknet detector test` does
  (batch norm fused, binary weights packed, gpu_index −1: benchmarks/oracle/dump_layers_cpu.c), the only way
  darknet's CPU build runs xnor layers (unfused, binarize_weights overruns its buffer and crashes);
- `Darknet.resize(image, w, h, letterbox)`: darknet's own image loading and resize (resize_dump);
- `Darknet.run(*args)`: the `darknet` program itself (detector test/valid/map, classifier predict),
  run from the build folder, where it finds data/labels.

The suite fails, never skips, when darknet cannot be built.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DARKNET_PY_SHARED", REPO.parent / "shared"))  # as tests/conftest.py finds it
BUILD_SCRIPT = SHARED / "reference" / "darknet" / "build.sh"
BUILD_DIR = Path(os.environ.get("DARKNET_PY_DARKNET_REF", REPO / ".darknet-ref"))
# darknet built as most of its users build it, with OpenCV: images decoded by OpenCV (cv::imread), grey ones too
OPENCV_BUILD_DIR = Path(os.environ.get("DARKNET_PY_DARKNET_REF_CV", REPO / ".darknet-ref-cv"))
BUILD_TIMEOUT = 1800  # about 3 minutes on 2 idle cores; generous for a loaded machine
CPU_MAIN = Path(__file__).resolve().parent / "dump_layers_cpu.c"


@dataclass(frozen=True)
class LayerDump:
    index: int
    type: str
    c: int
    h: int
    w: int
    output: np.ndarray  # as darknet holds it: l.outputs floats (C·H·W planar for image layers)


class DarknetProgram:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.darknet = folder / "darknet"

    def layers(self, cfg: Path, weights: Path | None, pixels: np.ndarray, work: Path, fuse: bool = False,
               detector: bool = False) -> list[LayerDump]:
        """darknet's forward pass on `pixels` (C, H, W float32 RGB in [0, 1] at the cfg's size); with
        `detector`, as `darknet detector test` runs it (implies fuse)."""
        work.mkdir(parents=True, exist_ok=True)
        source = work / "input.f32"
        np.ascontiguousarray(pixels, np.float32).tofile(source)
        program = "dump_layers_cpu" if detector else "dump_layers"
        self._call(program, cfg, weights or "-", source, work, "1" if fuse or detector else "0")
        dumps = []
        for line in (work / "index.txt").read_text().splitlines():
            index, kind, c, h, w, outputs = line.split()
            path = work / f"{int(index):03d}.f32"
            data = np.fromfile(path, np.float32)
            path.unlink()  # a big cfg's dump is gigabytes; the test keeps it in memory only
            assert data.size == int(outputs), f"layer {index}: {data.size} floats written, {outputs} expected"
            dumps.append(LayerDump(int(index), kind, int(c), int(h), int(w), data))
        return dumps

    def resize(self, image: Path, width: int, height: int, letterbox: bool, work: Path) -> tuple[np.ndarray, tuple[int, int]]:
        """darknet's load_image_color + resize_image / letterbox_image: (3, H, W) float32, and the source (w, h)."""
        work.mkdir(parents=True, exist_ok=True)
        out = work / f"resized-{width}x{height}-{int(letterbox)}.f32"
        printed = self._call("resize_dump", image, str(width), str(height), "1" if letterbox else "0", out)
        size = tuple(int(v) for v in re.findall(r"\d+", printed)[:2])
        return np.fromfile(out, np.float32).reshape(3, height, width), size  # type: ignore[return-value]

    def run(self, *args: str | Path, stdin: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
        """The darknet program, from its build folder (it reads data/labels there); output captured."""
        return subprocess.run([str(self.darknet), *map(str, args)], cwd=self.folder, input=stdin, capture_output=True,
                              text=True, timeout=timeout, check=True)

    def _call(self, program: str, *args: str | Path) -> str:
        done = subprocess.run([str(self.folder / program), *map(str, args)], capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(map(str, args))} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold the lock of a build (a folder or a file): pytest's workers (tests/run.sh runs two) each ask for darknet
    at their start; one builds it while the other waits, then finds it built.

    Args:
        path (Path): what is built; the lock is the file beside it named `<name>.lock`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        yield


def build_darknet() -> DarknetProgram:
    """Build (or find) the reference darknet; pytest.fail when it cannot be built."""
    if not BUILD_SCRIPT.exists():
        pytest.fail(f"required shared data is missing: {BUILD_SCRIPT} (the reference darknet; see README)")
    with build_lock(BUILD_DIR):
        try:
            subprocess.run(["bash", str(BUILD_SCRIPT), str(BUILD_DIR)], check=True, capture_output=True, text=True,
                           timeout=BUILD_TIMEOUT)
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"the reference darknet did not build ({BUILD_SCRIPT}): {exc.stderr[-2000:]}")
        _build_cpu_dump(BUILD_DIR)
    return DarknetProgram(BUILD_DIR)


def build_darknet_opencv() -> DarknetProgram:
    """Build (or find) the reference darknet with OpenCV (`OPENCV=1 build.sh`, into .darknet-ref-cv); pytest.fail
    when it cannot be built (it needs OpenCV's headers: apt's libopencv-dev and pkg-config, which tests/run.sh
    installs)."""
    if not BUILD_SCRIPT.exists():
        pytest.fail(f"required shared data is missing: {BUILD_SCRIPT} (the reference darknet; see README)")
    found = subprocess.run(["pkg-config", "--exists", "opencv4"], capture_output=True)
    if found.returncode != 0:
        pytest.fail("the OpenCV build of the reference darknet needs OpenCV's development files: "
                    "apt-get install libopencv-dev pkg-config (tests/run.sh installs them)")
    with build_lock(OPENCV_BUILD_DIR):
        try:
            subprocess.run(["bash", str(BUILD_SCRIPT), str(OPENCV_BUILD_DIR)], check=True, capture_output=True,
                           text=True, timeout=BUILD_TIMEOUT, env={**os.environ, "OPENCV": "1"})
        except subprocess.CalledProcessError as exc:
            pytest.fail(f"the reference darknet (OPENCV=1) did not build ({BUILD_SCRIPT}): {exc.stderr[-2000:]}")
    return DarknetProgram(OPENCV_BUILD_DIR)


def _build_cpu_dump(folder: Path) -> None:
    """dump_layers_cpu: dump_layers.c (main renamed) + benchmarks/oracle/dump_layers_cpu.c, linked like build.sh links dump_layers."""
    target = folder / "dump_layers_cpu"
    if target.exists() and target.stat().st_mtime >= CPU_MAIN.stat().st_mtime:
        return
    objects = sorted(str(o) for o in (folder / "obj").glob("*.o") if o.name != "darknet.o")
    steps = [
        ["gcc", "-O2", "-fopenmp", f"-I{folder / 'include'}", "-Dmain=dump_layers_main", "-c",
         str(BUILD_SCRIPT.parent / "dump_layers.c"), "-o", str(folder / "dump_layers_lib.o")],
        ["gcc", "-O2", "-c", str(CPU_MAIN), "-o", str(folder / "dump_layers_cpu.o")],
        ["g++", "-fopenmp", str(folder / "dump_layers_lib.o"), str(folder / "dump_layers_cpu.o"), *objects,
         "-o", str(folder / "dump_layers_cpu.tmp"), "-lm", "-pthread", "-lgomp"],
    ]
    run_build_steps(steps, folder / "dump_layers_cpu.tmp", target)


def run_build_steps(steps: list[list[str]], built: Path, target: Path) -> None:
    """Compile and link a helper program; `built` (the last step's output) becomes `target` only when all
    steps succeeded. A failure fails the test run (never a skip) with the compiler's message."""
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"{target.name} did not build ({' '.join(exc.cmd[:3])} ...): {exc.stderr[-2000:]}")
    os.replace(built, target)
