"""Ctrl-C and SIGTERM: a stop is never lost, ends the process in bounded time, and keeps finished work.

The signal handling (darknet_py/interrupt.py) is checked in this process with real signals sent to
itself, and through the CLI in child processes interrupted at exact moments (darknet_py/events.py:
the child is held at the named event until the signal arrives), never after a sleep.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from darknet_py.core import interrupt
from tests.conftest import CLIP_FRAMES, COCO, REPO, frame_count, official, shared_path
from tests.event_pipe import EventPipe

STOP_LIMIT_S = 120  # a hang guard for the child processes, not a speed requirement


def test_a_swallowed_ctrl_c_is_still_a_stop() -> None:
    before = signal.getsignal(signal.SIGINT)
    with interrupt.stop_on_signals():
        try:
            signal.raise_signal(signal.SIGINT)
        except BaseException:  # noqa: BLE001 - what Ray's check_signals or a finaliser does with it
            pass
        with pytest.raises(interrupt.Interrupted) as stop:
            interrupt.check()
        assert stop.value.exit_code == 130 and interrupt.exit_code() == 130
    assert signal.getsignal(signal.SIGINT) is before
    interrupt.check()  # the stop ended with the command: nothing pending for the next one


def test_sigterm_stops_with_143_even_after_ray_init_replaced_the_handler() -> None:
    with interrupt.stop_on_signals():
        with interrupt.handlers_kept():
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))  # what ray.init installs
        with pytest.raises(interrupt.Interrupted) as stop:
            signal.raise_signal(signal.SIGTERM)
    assert stop.value.exit_code == 143


def test_a_stop_inside_deferred_lets_the_block_finish() -> None:
    written = []
    with interrupt.stop_on_signals():
        with pytest.raises(interrupt.Interrupted):
            with interrupt.deferred():
                signal.raise_signal(signal.SIGINT)
                written.append("the shard")
    assert written == ["the shard"]


def _child(code: str, *extra_env: dict) -> subprocess.Popen:
    env = {**os.environ, **{k: v for e in extra_env for k, v in e.items()}}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


SWALLOWS_EVERY_STOP = """
import time
from darknet_py.core import interrupt
with interrupt.stop_on_signals(), interrupt.deadline({deadline}, "finished work is kept"):
    said = False
    while True:  # a way out that never comes: a C call that never returns, a teardown that hangs
        try:
            if not said:  # inside the try: the test's signal, sent once "ready" is read, cannot land outside it
                said = True
                print("ready", flush=True)
            time.sleep(3600)
        except BaseException:
            print("swallowed", flush=True)
"""


def test_the_deadline_ends_a_process_whose_way_out_hangs() -> None:
    child = _child(SWALLOWS_EVERY_STOP.format(deadline=0.5))
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=STOP_LIMIT_S)
    finally:
        child.kill()
    assert child.returncode == 143 and out == "swallowed\n"
    assert err.strip() == "finished work is kept"


def test_a_second_signal_ends_the_process_at_once() -> None:
    child = _child(SWALLOWS_EVERY_STOP.format(deadline=3600))
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGINT)
        assert child.stdout.readline() == "swallowed\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=STOP_LIMIT_S)
    finally:
        child.kill()
    assert child.returncode == 130 and "finished work is kept" in err


# -- the CLI without --ray: a video, a folder ---------------------------------------------------
def _detect(source: Path, out: Path, events: EventPipe, pause_at: str, *extra: str) -> subprocess.Popen:
    cfg, weights = official("yolov4-tiny")
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(source), "--cfg", str(cfg), "--weights",
               str(weights), "--output", str(out), *extra]
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env(pause_at)}, stderr=subprocess.PIPE,
                            text=True)


def _interrupt_at(process: subprocess.Popen, events: EventPipe, event: str, signum: int) -> str:
    try:
        events.wait_for(event, process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=STOP_LIMIT_S)
    finally:
        process.kill()
    return err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_video_is_playable_and_holds_the_frames_done(clip: Path, tmp_path: Path, signum: int,
                                                                     code: int) -> None:
    out = tmp_path / "out"
    with EventPipe() as events:
        process = _detect(clip, out, events, "frames-detected 3", "--save-json")
        err = _interrupt_at(process, events, "frames-detected 3", signum)
    assert process.returncode == code, err
    assert "interrupted — the outputs hold the frames done" in err
    (video,) = out.glob("clip.*")  # H.264 .mp4 by default (darknet_py.media.video_writer)
    frames = frame_count(video)  # opens and decodes: a playable file
    assert 0 < frames < CLIP_FRAMES and f"{frames} frames (320x180, 25 fps)" in err
    records = json.loads((out / "detections.json").read_text())
    assert frames <= len(records) <= frames + 1  # + the frame being written when the stop came
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_interrupted_folder_keeps_the_images_done(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(shared_path(COCO / "images").iterdir())[:6]:
        (folder / path.name).symlink_to(path)
    out = tmp_path / "out"
    with EventPipe() as events:
        process = _detect(folder, out, events, "images-done 2", "--save-json", "--save-txt")
        err = _interrupt_at(process, events, "images-done 2", signal.SIGINT)
    assert process.returncode == 130, err
    assert "2 image(s), interrupted" in err
    saved = sorted(p.name for p in out.glob("*.jpg"))
    assert saved == sorted(p.name for p in folder.iterdir())[:2]
    assert all(cv2.imread(str(out / name)) is not None for name in saved)
    assert len(json.loads((out / "detections.json").read_text())) == 2
    assert len(list((out / "labels").glob("*.txt"))) == 2
    assert not [p.name for p in out.rglob(".*")]  # no temporary file left


def test_importing_the_program_loads_no_heavy_library() -> None:
    """The CLI takes charge of stop signals before torch, OpenCV or onnx are imported (they take a second)."""
    code = "import sys, darknet_py, darknet_py.cli; print(sorted({'torch', 'cv2', 'onnx', 'numpy'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=STOP_LIMIT_S)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("held, signum", [(True, signal.SIGINT), (True, signal.SIGTERM), (False, signal.SIGINT)])
def test_a_stop_during_start_up_is_one_line(tmp_path: Path, held: bool, signum: int) -> None:
    """Held at the program's first event, or signalled the moment it reports it (the signal then lands while
    the libraries are imported): one line, 130 / 143, no traceback, nothing written."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(shared_path(COCO / "images")), "--output", str(out),
               "--cfg", str(official("yolov4-tiny")[0]), "--weights", str(official("yolov4-tiny")[1])]
    with EventPipe() as events:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env("cli-starting" if held else None)},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            events.wait_for("cli-starting", process)
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=STOP_LIMIT_S)
        finally:
            process.kill()
    assert process.returncode == 128 + signum, stderr
    assert stderr == "interrupted\n" and stdout == ""
    assert not out.exists()
