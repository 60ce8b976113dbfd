"""darknet run frame after frame: benchmarks/oracle/dump_steps.c, built beside the reference darknet (.darknet-ref).

`dump_steps` calls network_predict once per input, as darknet's video demo does, so recurrent layers
carry their state from step to step, and writes every layer's output after every step.

It links darknet's own objects, except that src/parser.c is compiled with -DNDEBUG, as darknet's
release builds (CMake Release, Visual Studio) compile it. The reference Makefile build keeps assert()
on, and parse_shortcut asserts that a [shortcut]'s `from` layer has the previous layer's width and
height: it aborts on resnet50/101/152 and resnext152-32x4d, whose downsampling blocks add a 2× larger
map. With the assert compiled out darknet builds them and adds the two outputs element by element in
memory order (shortcut_multilayer_cpu); that is darknet's arithmetic for those cfgs, and the oracle
for them. Nothing else in parser.c changes with NDEBUG.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.oracle.darknet_reference import DarknetProgram, LayerDump, build_lock, run_build_steps

STEPS_MAIN = Path(__file__).resolve().parent / "dump_steps.c"


class StepsProgram:
    def __init__(self, darknet: DarknetProgram) -> None:
        self.folder = darknet.folder
        self.program = darknet.folder / "dump_steps"

    def steps(self, cfg: Path, weights: Path | None, inputs: np.ndarray, work: Path) -> list[list[LayerDump]]:
        """Every layer's output after each step; `inputs` is (steps, C, H, W) float32 in [0, 1]."""
        work.mkdir(parents=True, exist_ok=True)
        source = work / "inputs.f32"
        np.ascontiguousarray(inputs, np.float32).tofile(source)
        args = [str(self.program), str(cfg), str(weights or "-"), str(len(inputs)), str(source), str(work)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        index = [line.split() for line in (work / "index.txt").read_text().splitlines()]
        found = []
        for step in range(len(inputs)):
            dumps = []
            for i, kind, c, h, w, outputs in index:
                data = np.fromfile(work / f"{step:03d}_{int(i):03d}.f32", np.float32)
                assert data.size == int(outputs), f"step {step} layer {i}: {data.size} floats, {outputs} expected"
                dumps.append(LayerDump(int(i), kind, int(c), int(h), int(w), data))
            found.append(dumps)
        return found


    def printout(self, cfg: Path) -> str:
        """What darknet prints while it builds `cfg` (its layer table and "Total BFLOPS"), running one
        step on a zero input with darknet's own random weights."""
        with tempfile.TemporaryDirectory() as work:
            c, h, w = (_net_option(cfg, key, default) for key, default in (("channels", 3), ("height", 0), ("width", 0)))
            zeros = Path(work) / "zeros.f32"
            np.zeros(c * h * w, np.float32).tofile(zeros)
            args = [str(self.program), str(cfg), "-", "1", str(zeros), work]
            done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout + done.stderr


def _net_option(cfg: Path, key: str, default: int) -> int:
    found = re.search(rf"^\s*{key}\s*=\s*(\d+)", cfg.read_text(errors="replace"), re.M)
    return int(found[1]) if found else default


def build_steps(darknet: DarknetProgram) -> StepsProgram:
    """Compile dump_steps (once per machine; again when dump_steps.c changes); pytest.fail if it cannot."""
    with build_lock(darknet.folder):
        _build_steps(darknet.folder)
    return StepsProgram(darknet)


def _build_steps(folder: Path) -> None:
    """dump_steps in `folder` (the darknet build), unless it is there and newer than its source."""
    target = folder / "dump_steps"
    if target.exists() and target.stat().st_mtime >= STEPS_MAIN.stat().st_mtime:
        return
    include = [f"-I{folder / 'include'}", f"-I{folder / '3rdparty' / 'stb' / 'include'}"]
    objects = sorted(str(o) for o in (folder / "obj").glob("*.o") if o.name not in ("darknet.o", "parser.o"))
    steps = [
        # the Makefile's flags for parser.c (see .darknet-ref/build.log), plus -DNDEBUG
        ["gcc", *include, "-fPIC", "-Ofast", "-fopenmp", "-DNDEBUG", "-c", str(folder / "src" / "parser.c"),
         "-o", str(folder / "parser_ndebug.o")],
        ["gcc", "-O2", "-fopenmp", *include, "-c", str(STEPS_MAIN), "-o", str(folder / "dump_steps.o")],
        ["g++", "-fopenmp", str(folder / "dump_steps.o"), str(folder / "parser_ndebug.o"), *objects,
         "-o", str(folder / "dump_steps.tmp"), "-lm", "-pthread", "-lgomp"],
    ]
    run_build_steps(steps, folder / "dump_steps.tmp", target)

