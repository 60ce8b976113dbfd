"""Several detections at once (core/in_flight.py, `Backend.concurrent`, `--in-flight`): results in order and
equal to one call at a time, at most N calls running, failures and stops leave nothing running, and the CLI's
videos, folders and `map` come out as with one call at a time.

Concurrency is proven with barriers (two calls must be inside `work` together for either to go on), never with
sleeps or timings."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import DarknetWarning, InputError
from darknet_py.core.in_flight import in_order
from darknet_py.export.onnx import export_onnx
from darknet_py.export.openvino import export_openvino
from darknet_py.format.names import COCO_NAMES
from darknet_py.media.run import DEFAULT_CALLS, plan_calls
from tests.conftest import CLIP_FRAMES, COCO, REPO, frame_count, official, photos, same_detections, shared_path
from tests.event_pipe import EventPipe

WAIT_S = 60  # a hang guard for barriers and events: a correct run passes them as soon as both sides arrive


@pytest.fixture(scope="module")
def tiny():
    return darknet_py.load(*official("yolov4-tiny"))


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory) -> dict[str, Path]:
    """yolov4-tiny exported as ONNX and OpenVINO IR (fp32)."""
    folder = tmp_path_factory.mktemp("exports")
    files = {"onnx": folder / "tiny.onnx", "ir": folder / "tiny.xml"}
    export_onnx(tiny, files["onnx"], COCO_NAMES)
    export_openvino(tiny, files["ir"], COCO_NAMES)
    return files


# -- in_order ----------------------------------------------------------------------------------------------
def test_in_order_runs_calls_at_once_never_more_and_keeps_the_order() -> None:
    together = threading.Barrier(2, timeout=WAIT_S)  # items 0 and 1 pass only when both are running
    lock, running, most = threading.Lock(), [0], [0]
    taken: list[int] = []

    def items():
        for i in range(12):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            if i < 2:
                together.wait()
            return i * i
        finally:
            with lock:
                running[0] -= 1

    seen = []
    with in_order(work, items(), 2) as done:
        for item, result in done:
            assert len(taken) <= item + 3  # never read further ahead than calls + 1
            seen.append((item, result))
    assert seen == [(i, i * i) for i in range(12)]
    assert most[0] == 2


def test_one_call_at_a_time_runs_in_the_callers_thread() -> None:
    caller = threading.get_ident()
    with in_order(lambda i: threading.get_ident(), range(3), 1) as done:
        assert [ident for _, ident in done] == [caller] * 3


def test_a_failure_is_raised_in_its_turn_and_the_running_calls_end_first() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    worked: list[int] = []

    def work(i: int) -> int:
        worked.append(i)
        if i == 1:
            raise ValueError("frame 1 is bad")
        if i == 2:  # still running when item 1's failure leaves the block
            started.set()
            assert release.wait(WAIT_S)
            finished.set()
        return i

    threading.Thread(target=lambda: started.wait(WAIT_S) and release.set(), daemon=True).start()
    got = []
    with pytest.raises(ValueError, match="frame 1 is bad"):
        with in_order(work, range(50), 2) as done:
            for item, _ in done:
                got.append(item)
    assert got == [0]
    assert finished.is_set()  # the block waited for item 2's call
    assert len(worked) < 50  # the items not started were dropped
    assert not [t for t in threading.enumerate() if t.name.startswith("darknet_py-detect")]


# -- plan_calls and the twins ----------------------------------------------------------------------------
def test_plan_calls(tiny, exported) -> None:
    onnx = darknet_py.load(exported["onnx"])
    many = (os.cpu_count() or 1) >= 2
    detector, calls = plan_calls(onnx, "video", "clip.mp4", None)
    assert (calls, detector is not onnx) == ((DEFAULT_CALLS, True) if many else (1, False))
    assert plan_calls(onnx, "images", ["a.jpg"], 3)[1] == 3
    for live in (0, "rtsp://camera/stream", "http://host/mjpeg"):  # each frame's latency counts: one at a time
        assert plan_calls(onnx, "video", live, None) == (onnx, 1)
    assert plan_calls(onnx, "video", "clip.mp4", 1) == (onnx, 1)
    detector, calls = plan_calls(tiny, "video", "clip.mp4", None)  # eager torch: the same network, threads split
    twin = many and torch.get_num_threads() >= DEFAULT_CALLS
    assert (calls, detector is not tiny) == ((DEFAULT_CALLS, True) if twin else (1, False))
    compiled = darknet_py.load(*official("yolov4-tiny")).accelerate(compile=True)  # compiled code: one call at a time
    ignored = "torch backend on cpu cannot run 2 detections at once here: --in-flight 2 is ignored, one runs at a time"
    with pytest.warns(DarknetWarning, match=ignored):
        assert plan_calls(compiled, "images", ["a.jpg"], 2) == (compiled, 1)
    with pytest.raises(InputError, match="--in-flight must be at least 1, got 0"):
        plan_calls(onnx, "video", "clip.mp4", 0)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "torch"])
def test_a_twin_detects_as_the_model_from_two_threads_at_once(tiny, exported, runtime: str) -> None:
    model = {"onnxruntime": lambda: darknet_py.load(exported["onnx"]), "openvino": lambda: darknet_py.load(exported["ir"]),
             "torch": lambda: tiny}[runtime]()
    if runtime == "torch" and torch.get_num_threads() < 2:
        pytest.fail("torch runs on one thread here: the twin needs two to split (set by tests/run.sh's machine)")
    twin = model.concurrent(2)
    assert twin is not None and twin is not model and twin.traits.name == runtime
    images = [str(p) for p in photos()]
    expected = [model.detect(image)[0] for image in images]
    assert sum(len(d) for d in expected) > 20
    together = threading.Barrier(2, timeout=WAIT_S)
    default, shares = torch.get_num_threads(), set()

    def work(image: str):
        if image in images[:2]:
            together.wait()  # the first two run at once
        found = twin.detect(image)[0]
        shares.add(torch.get_num_threads())  # after the call: the worker's own setting again
        return found

    with in_order(work, images, 2) as done:
        got = [found for _, found in done]
    same_detections(expected, got)
    same_detections(tiny.detect(images), got)  # and as torch, as every export (test_onnx, test_openvino)
    if runtime == "torch":  # each call ran on its share; afterwards every thread has torch's default again
        assert shares == {default} and torch.get_num_threads() == default
        during: list[int] = []
        twin.candidates_above(np.zeros((1, 3, 416, 416), np.float32), 0.25)  # from this thread: put back after
        twin._on_share(lambda: during.append(torch.get_num_threads()))
        assert during == [default // 2] and torch.get_num_threads() == default
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [default]


def test_where_torch_has_no_twin(tiny) -> None:
    import copy

    assert tiny.concurrent(1) is None
    assert tiny.concurrent(torch.get_num_threads() + 1) is None  # fewer threads than calls: nothing to split
    assert copy.deepcopy(tiny).double().concurrent(2) is None  # float32 only
    assert darknet_py.load(*official("yolov4-tiny")).accelerate(compile=True).concurrent(2) is None
    assert tiny.concurrent(2).concurrent(2) is None  # a twin's share is not split again


def test_a_twin_of_a_model_compiled_since_runs_one_call_at_a_time() -> None:
    """torch.compile's code is not made for calls from several threads: a twin whose model was compiled after the twin
    was made (a caller's order of calls, not the CLI's) serialises its calls, on the model's own thread settings."""
    model = darknet_py.load(*official("yolov4-tiny"))
    twin = model.concurrent(2)
    assert twin is not None
    seen = []
    twin._on_share(lambda: seen.append((twin._one_at_a_time.locked(), torch.get_num_threads())))
    model.accelerate(compile=True)
    twin._on_share(lambda: seen.append((twin._one_at_a_time.locked(), torch.get_num_threads())))
    assert seen == [(False, torch.get_num_threads() // 2), (True, torch.get_num_threads())]


# -- the CLI -------------------------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "darknet_py.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_a_video_and_a_folder_at_two_at_once_equal_one_at_a_time(clip: Path, exported, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in photos():
        (folder / path.name).symlink_to(path)
    for source, name in ((clip, "clip"), (folder, "photos")):
        records = {}
        for calls in ("1", "2"):
            out = tmp_path / f"{name}-{calls}"
            done = _cli("detect", str(source), "--weights", str(exported["onnx"]), "--output", str(out), "--save-json",
                        "--in-flight", calls)
            assert done.returncode == 0, done.stderr
            records[calls] = json.loads((out / "detections.json").read_text())
        one, two = records["1"], records["2"]
        assert len(one) == len(two) == (CLIP_FRAMES if name == "clip" else len(photos()))
        for a, b in zip(one, two):
            assert a["source"] == b["source"]
            assert [d["class_id"] for d in a["detections"]] == [d["class_id"] for d in b["detections"]]
            for x, y in zip(a["detections"], b["detections"]):
                assert abs(x["score"] - y["score"]) <= 1e-4
                assert np.abs(np.subtract(x["box"], y["box"])).max() <= 0.5
        if name == "clip":
            assert frame_count(next((tmp_path / "clip-2").glob("clip.*"))) == CLIP_FRAMES


class _TwoAtOnce:
    """A detector whose first two detect() calls pass only together (a barrier): a run with it finishes only if
    it had two calls running at once."""

    def __init__(self, inner) -> None:
        self.inner, self.num_classes, self.channels = inner, inner.num_classes, inner.channels
        self.together = threading.Barrier(2, timeout=WAIT_S)
        self.calls, self.lock = 0, threading.Lock()

    def detect(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
            first_two = self.calls <= 2
        if first_two:
            self.together.wait()
        return self.inner.detect(*args, **kwargs)


def test_map_at_two_at_once_equals_one_at_a_time(exported, tmp_path: Path) -> None:
    """`darknet-py map` (COCO and darknet's) with the twin: two calls proven at once, the metrics those of one at a
    time within the bound tests/test_map.py holds between backends (0.001), and --in-flight 0 refused before work."""
    from benchmarks.oracle.darknet_dataset import write_darknet_dataset
    from darknet_py.evaluate.darknet_map import run_darknet_map

    annotations = json.loads(shared_path(COCO / "instances_val2017_subset.json").read_text())
    kept = {image["id"] for image in sorted(annotations["images"], key=lambda i: i["id"])[:16]}
    annotations["images"] = [i for i in annotations["images"] if i["id"] in kept]
    annotations["annotations"] = [a for a in annotations["annotations"] if a["image_id"] in kept]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps(annotations))
    images = shared_path(COCO / "images")
    metrics = {}
    for calls in ("1", "2"):
        out = tmp_path / f"metrics-{calls}.json"
        done = _cli("map", "--weights", str(exported["onnx"]), "--images", str(images), "--annotations", str(subset),
                    "--json-out", str(out), "--in-flight", calls)
        assert done.returncode == 0, done.stderr
        metrics[calls] = json.loads(out.read_text())
    assert metrics["1"]["AP50"] > 0.1
    for key, value in metrics["1"].items():
        assert abs(metrics["2"][key] - value) <= 0.001, key
    done = _cli("map", "--weights", str(exported["onnx"]), "--images", str(images), "--annotations", str(subset),
                "--json-out", str(tmp_path / "never.json"), "--in-flight", "0")
    assert done.returncode == 2 and done.stderr.strip() == "error: --in-flight must be at least 1, got 0"
    assert not (tmp_path / "never.json").exists()

    data = write_darknet_dataset(shared_path(COCO / "instances_val2017_subset.json"), images, tmp_path / "dataset", 12)
    model = darknet_py.load(exported["onnx"])
    one = run_darknet_map(model, str(data), progress=False)
    two = run_darknet_map(_TwoAtOnce(model.concurrent(2)), str(data), progress=False, in_flight=2)
    assert two.detections == one.detections and abs(two.mean_ap - one.mean_ap) <= 0.001


def test_in_flight_refuses_what_it_cannot_do(clip: Path, tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    model = ("--cfg", str(cfg), "--weights", str(weights))
    for sources, extra, says in (([clip], ("--in-flight", "0"), "error: --in-flight must be at least 1, got 0"),
                                 ([clip, clip], ("--in-flight", "2"), "error: --in-flight is for one SOURCE"),
                                 ([clip], ("--ray", "--in-flight", "2"), "error: --in-flight is for one machine's run")):
        done = _cli("detect", *map(str, sources), *model, "--output", str(tmp_path / "out"), *extra)
        assert done.returncode == 2 and done.stderr.strip().startswith(says), done.stderr
        assert not (tmp_path / "out").exists()  # refused before any work


def test_a_stop_with_two_at_once_keeps_a_playable_video_of_the_frames_done(clip: Path, exported, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(clip), "--weights", str(exported["onnx"]),
               "--output", str(out), "--save-json", "--in-flight", "2"]
    with EventPipe() as events:
        process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **events.env("frames-detected 3")},
                                   stderr=subprocess.PIPE, text=True)
        try:
            events.wait_for("frames-detected 3", process)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT_S * 2)
        finally:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted — the outputs hold the frames done" in err
    (video,) = out.glob("clip.*")
    frames = frame_count(video)
    assert 0 < frames < CLIP_FRAMES and f"{frames} frames (320x180, 25 fps)" in err
    records = json.loads((out / "detections.json").read_text())
    assert frames <= len(records) <= frames + 1
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
