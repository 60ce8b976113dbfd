"""detect --ray on a real local Ray cluster (127.0.0.1: a head and two worker nodes), against single-process detect.

Every run here goes through the CLI in its own process, as a user's would, and joins the
cluster the test started. The COCO subset's detections must equal single-process `detect`
exactly (records compared as JSON text, order-independent), also when a model actor is
killed mid-run and when the driver is interrupted and the command run again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.shards import RESULT_FILE, Plan, RunFolder
from tests.conftest import COCO, IMAGES, REPO, official, shared_path

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's switch for "this machine only": nodes and drivers use 127.0.0.1
SHARD = 16
RUN_LIMIT_S = 300
COCO_IMAGES = COCO / "images"


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in LOOPBACK_ONLY}
    os.environ.update(LOOPBACK_ONLY)
    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                           "node_ip_address": "127.0.0.1"})
    try:
        for _ in range(2):
            local.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        local.wait_for_nodes()
        yield local.address
    finally:
        local.shutdown()
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def reference() -> list[str]:
    """Single-process detections of the COCO subset, one JSON record per image, sorted."""
    model = darknet_py.load(*official("yolov4-tiny"))
    paths = sorted(str(p) for p in shared_path(COCO_IMAGES).iterdir())
    return sorted(model.detect(path)[0].to_json() for path in paths)


def _command(address: str, output: Path, *extra: str) -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return [sys.executable, "-m", "darknet_py.cli", "detect", str(COCO_IMAGES), "--cfg", str(cfg), "--weights", str(weights),
            "--ray", address, "--workers", "2", "--no-save", "--shard-size", str(SHARD), "--output", str(output), *extra]


def _env() -> dict:
    return {**os.environ, **LOOPBACK_ONLY}


def _run(address: str, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(address, output, *extra), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=RUN_LIMIT_S)


def _records(output: Path) -> list[str]:
    return sorted((output / RESULT_FILE).read_text().splitlines())


def _wait_for_shards(output: Path, process: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + RUN_LIMIT_S
    while len(RunFolder(output).done()) < count:
        assert process.poll() is None, f"the run ended before {count} shard(s) were written"
        assert time.monotonic() < deadline, "no shard written in time"
        time.sleep(0.2)


def _actor_pids() -> list[int]:
    """Processes of the model actors (Ray names them after the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"DetectorActor" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_two_workers_give_exactly_the_single_process_detections(cluster: str, reference: list[str], tmp_path: Path) -> None:
    result = _run(cluster, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert _records(tmp_path / "out") == reference
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["resize"] == "darknet"  # recorded
    assert len(RunFolder(tmp_path / "out").done()) == -(-len(reference) // SHARD)
    assert f"{len(reference)} image(s): {-(-len(reference) // SHARD)} shard(s) run" in result.stderr


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster: str, reference: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(_command(cluster, out), cwd=REPO, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_shards(out, process, 1)
        pids = _actor_pids()
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        killed_at = len(RunFolder(out).done())
        _, err = process.communicate(timeout=RUN_LIMIT_S)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert killed_at < -(-len(reference) // SHARD)  # the kill happened with shards still to do
    assert _records(out) == reference


def test_an_interrupted_run_resumes_to_the_same_result(cluster: str, reference: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen(_command(cluster, out), cwd=REPO, env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_shards(out, process, 2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "rerun the same command to resume" in err, err
    assert not (out / RESULT_FILE).exists()  # no half result: only whole shards
    kept = {key: RunFolder(out).shard_path(key).stat().st_mtime_ns for key in RunFolder(out).done()}
    assert kept
    result = _run(cluster, out)
    assert result.returncode == 0, result.stderr
    assert f"{len(kept)} shard(s) were already done" in result.stderr
    assert {key: RunFolder(out).shard_path(key).stat().st_mtime_ns for key in kept} == kept  # not redone
    assert _records(out) == reference
    again = _run(cluster, out)
    assert again.returncode == 0 and "all" in again.stderr and _records(out) == reference


def test_video_chunks_and_an_unreadable_image(cluster: str, clip: Path, tmp_path: Path) -> None:
    """A video is split into frame chunks (decoded in order); a broken image becomes an error record, not a crash."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.jpg").write_bytes(b"not an image")
    (photos / "dog.jpg").write_bytes(shared_path(IMAGES / "dog.jpg").read_bytes())
    cfg, weights = official("yolov4-tiny")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(photos), str(clip), "--cfg", str(cfg),
               "--weights", str(weights), "--ray", cluster, "--shard-size", "8", "--output", str(out)]
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert result.returncode == 0, result.stderr
    assert "1 source(s) could not be read" in result.stderr
    records = [json.loads(line) for line in (out / RESULT_FILE).read_text().splitlines()]
    assert "cannot decode image" in records[0]["error"] and records[1]["source"].endswith("dog.jpg")
    assert cv2.imread(str(out / "images" / "dog.jpg")) is not None  # annotated (no --no-save)
    model = darknet_py.load(cfg, weights)
    capture, frames = cv2.VideoCapture(str(clip)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    expected = [json.loads(d.to_json())["detections"] for d in model.detect(frames)]
    assert [r["frame"] for r in records[2:]] == list(range(len(frames)))
    assert [r["detections"] for r in records[2:]] == expected
    # a lost middle chunk is redone alone, and the result is the same
    chunk = out / "shards" / "video-0000-chunk-000001.jsonl"
    before = (out / RESULT_FILE).read_text()
    chunk.unlink()
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert result.returncode == 0 and "1 shard(s) run" in result.stderr, result.stderr
    assert (out / RESULT_FILE).read_text() == before


def test_without_ray_the_flag_says_how_to_install(monkeypatch, tmp_path: Path, capsys) -> None:
    for name in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if Ray were not installed
    assert cli.main(["detect", str(COCO_IMAGES), "--ray", "--output", str(tmp_path / "o")]) == 2
    assert "pip install 'darknet_py[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_folder_holding_another_run_is_refused(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.start(Plan(["a.jpg", "b.jpg"], [], 1, {"conf_thresh": 0.25})) is False
    assert folder.start(Plan(["a.jpg", "b.jpg"], [], 1, {"conf_thresh": 0.25})) is True  # same plan: resume
    with pytest.raises(darknet_py.InputError, match=r"different plan \(conf_thresh differ\)"):
        folder.start(Plan(["a.jpg", "b.jpg"], [], 1, {"conf_thresh": 0.5}))
    folder.write_shard("images-000000", {0: '{"source": "a.jpg"}'})
    assert folder.missing(Plan(["a.jpg", "b.jpg"], [], 1)) == ["images-000001"]
    with pytest.raises(darknet_py.InputError, match="1 shard.s. unfinished"):
        folder.merge(Plan(["a.jpg", "b.jpg"], [], 1))
    folder.shard_path("images-000000").write_text('{"shard": "images-000000", "rows": 2, "last": false}\n{}\n')
    with pytest.raises(darknet_py.InputError, match="header says 2 records, the file holds 1"):
        folder.read_shard("images-000000")
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.txt").write_text("x")
    with pytest.raises(darknet_py.InputError, match="already holds 1 file"):
        RunFolder(other).start(Plan(["a.jpg"], [], 1))


def test_a_pool_the_cluster_cannot_hold_is_refused_not_left_waiting() -> None:
    from darknet_py.ray_detect import RayOptions, _check_resources

    class TwoCpuCluster:
        @staticmethod
        def cluster_resources() -> dict:
            return {"CPU": 2.0}

    _check_resources(TwoCpuCluster, RayOptions(workers=1), gpus=0)
    with pytest.raises(darknet_py.InputError, match=r"has 2 CPU\(s\); --workers 2 needs 2.5"):
        _check_resources(TwoCpuCluster, RayOptions(workers=2), gpus=0)
    with pytest.raises(darknet_py.InputError, match=r"has 0 GPU\(s\); --device cuda with --workers 1 needs 1"):
        _check_resources(TwoCpuCluster, RayOptions(workers=1), gpus=1)
