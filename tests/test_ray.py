"""detect --ray on a real local Ray cluster (127.0.0.1: a head and two worker nodes), against single-process detect.

Every run here goes through the CLI in its own process, as a user's would, and joins the
cluster the test started (or, with plain `--ray`, starts its own). Photos of the COCO subset: their detections
must equal single-process `detect` exactly (records compared as JSON text, order-independent),
also when a model actor is killed mid-run and when the driver is interrupted (SIGINT, SIGTERM)
and the command run again. Interruptions happen at exact moments the run reports through
darknet_py.core.events (tests/event_pipe.py), never after a sleep.

Every Ray started here has its own RAY_TMPDIR, so none of them is found by (or finds) a Ray
of someone else on the machine, and each is stopped through its own processes.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import darknet_py
from darknet_py import cli
from darknet_py.distributed.shards import RESULT_FILE, Plan, RunFolder
from tests.conftest import COCO, IMAGES, REPO, free_port, official, shared_path
from tests.event_pipe import EventPipe

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's switch for "this machine only": nodes and drivers use 127.0.0.1
SHARD = 16
CLUSTER_IMAGES = 56  # of the COCO subset: 4 shards of 16, the last one short (the whole subset took 5 times longer)
RUN_LIMIT_S = 900  # a hang guard, not a speed requirement: a loaded 2-core machine is slow
COCO_IMAGES = COCO / "images"


def _private_ray_tmpdir() -> str:
    """A short RAY_TMPDIR of our own (Ray's socket paths must stay under 108 characters)."""
    return tempfile.mkdtemp(prefix="dpray-", dir="/tmp")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # RAY_TMPDIR: the address file Cluster writes (ray_current_cluster) stays ours, not /tmp/ray's
    isolation = {**LOOPBACK_ONLY, "RAY_TMPDIR": _private_ray_tmpdir()}
    saved = {k: os.environ.get(k) for k in isolation}
    os.environ.update(isolation)
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
        shutil.rmtree(isolation["RAY_TMPDIR"], ignore_errors=True)


@pytest.fixture
def running_ray():
    """`ray start --head` as a user runs it, found by Ray's usual discovery (its address file) in the
    RAY_TMPDIR that the returned environment names. Stopped by SIGTERM to its own `ray start --block`
    (which stops the processes it started), then anything left that carries our RAY_TMPDIR is killed:
    never `ray stop`, which would stop every Ray on the machine."""
    tmpdir = _private_ray_tmpdir()
    env = {**os.environ, **LOOPBACK_ONLY, "RAY_TMPDIR": tmpdir, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port", "0",
               "--node-ip-address", "127.0.0.1", "--num-cpus", "3", "--include-dashboard", "false",
               "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats"]
    head = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    started, said = threading.Event(), []

    def read_output() -> None:  # keeps the pipe drained for as long as the head runs
        for line in head.stdout:
            said.append(line)
            if "will now block forever" in line:  # `ray start --block` says it after writing its address file
                started.set()
        started.set()  # it ended: the wait below returns and the check fails with what it said

    threading.Thread(target=read_output, daemon=True).start()
    try:
        started.wait(RUN_LIMIT_S)
        assert head.poll() is None and started.is_set(), "".join(said[-20:])
        address = (Path(tmpdir) / "ray" / "ray_current_cluster").read_text().strip()
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(RUN_LIMIT_S)
        finally:
            _kill_processes_with(f"RAY_TMPDIR={tmpdir}".encode())
            shutil.rmtree(tmpdir, ignore_errors=True)


def _kill_processes_with(marker: bytes) -> None:
    """SIGKILL every process whose environment holds `marker` (ours only: a RAY_TMPDIR nobody else uses)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue


def _linked(folder: Path, count: int) -> Path:
    """A folder of links to the first *count* photos of the COCO subset."""
    for path in sorted(shared_path(COCO_IMAGES).iterdir())[:count]:
        (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The photos the runs on the module's cluster detect."""
    return _linked(tmp_path_factory.mktemp("photos"), CLUSTER_IMAGES)


@pytest.fixture(scope="module")
def reference(photos: Path) -> list[str]:
    """Single-process detections of the photos, one JSON record per image, sorted."""
    model = darknet_py.load(*official("yolov4-tiny"))
    return sorted(model.detect(str(path))[0].to_json() for path in sorted(photos.iterdir()))


def _command(address: str, photos: Path, output: Path, *extra: str) -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return [sys.executable, "-m", "darknet_py.cli", "detect", str(photos), "--cfg", str(cfg), "--weights", str(weights),
            "--ray", address, "--workers", "2", "--no-save", "--shard-size", str(SHARD), "--output", str(output), *extra]


def _env() -> dict:
    return {**os.environ, **LOOPBACK_ONLY}


FEW_SHARD = 2


@pytest.fixture(scope="module")
def few_images(tmp_path_factory) -> Path:
    """8 COCO photos: enough for 4 shards of 2, cheap for the runs that start a Ray of their own."""
    return _linked(tmp_path_factory.mktemp("few"), 8)


@pytest.fixture(scope="module")
def few_reference(few_images: Path) -> list[str]:
    model = darknet_py.load(*official("yolov4-tiny"))
    return sorted(model.detect(str(path))[0].to_json() for path in sorted(few_images.iterdir()))


def _few_command(images: Path, output: Path, *ray: str) -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return [sys.executable, "-m", "darknet_py.cli", "detect", str(images), "--cfg", str(cfg), "--weights",
            str(weights), "--ray", *ray, "--workers", "2", "--no-save", "--shard-size", str(FEW_SHARD),
            "--output", str(output)]


def _alone_env() -> dict:
    """No Ray to be found: a RAY_TMPDIR nobody has started one in (a fresh machine, as far as Ray can tell)."""
    return {**_env(), "RAY_TMPDIR": _private_ray_tmpdir()}


def _run(address: str, photos: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(address, photos, output, *extra), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=RUN_LIMIT_S)


def _records(output: Path) -> list[str]:
    return sorted((output / RESULT_FILE).read_text().splitlines())


def _actor_pids() -> list[int]:
    """Processes of the model actors (Ray names them after the class) of the cluster this module started:
    they carry its private RAY_TMPDIR, so another user's Ray job is never touched."""
    ours = f"RAY_TMPDIR={os.environ['RAY_TMPDIR']}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"DetectorActor" in (entry / "cmdline").read_bytes() \
                    and ours in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_two_workers_give_exactly_the_single_process_detections(cluster: str, photos: Path, reference: list[str], tmp_path: Path) -> None:
    result = _run(cluster, photos, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert _records(tmp_path / "out") == reference
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["resize"] == "darknet"  # recorded
    assert len(RunFolder(tmp_path / "out").done()) == -(-len(reference) // SHARD)
    assert f"{len(reference)} image(s): {-(-len(reference) // SHARD)} shard(s) run" in result.stderr
    assert f"on the Ray cluster at {cluster} (3 CPUs)" in result.stderr
    # shards done without annotated images do not pass for a run that wants them (it said "all shards were already
    # done" and wrote none)
    wanting = [arg for arg in _command(cluster, photos, tmp_path / "out") if arg != "--no-save"]
    again = subprocess.run(wanting, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert again.returncode == 2 and again.stderr.endswith(
        f"holds a run made with --no-save: its {-(-len(reference) // SHARD)} finished image shard(s) wrote no "
        "annotated images; rerun it with --no-save to resume, or choose another --output\n"), again.stderr


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster: str, photos: Path, reference: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with EventPipe() as events:
        process = subprocess.Popen(_command(cluster, photos, out), cwd=REPO, env={**_env(), **events.env()},
                                   stderr=subprocess.PIPE, text=True)
        try:
            events.wait_for("shards-written 1", process)
            pids = _actor_pids()
            assert pids, "no model actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed_at = len(RunFolder(out).done())
            _, err = process.communicate(timeout=RUN_LIMIT_S)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert killed_at < -(-len(reference) // SHARD)  # the kill happened with shards still to do
    assert _records(out) == reference


def _interrupted(command: list[str], env: dict, events: EventPipe, at: str, signum: int) -> str:
    """Run `command`, send `signum` to it when it reports `at` (held there till then); its stderr."""
    process = subprocess.Popen(command, cwd=REPO, env={**env, **events.env(at)}, stderr=subprocess.PIPE, text=True)
    try:
        events.wait_for(at, process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=RUN_LIMIT_S)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err
    assert "rerun the same command to resume" in err, err
    return err


def _shard_times(out: Path) -> dict[str, int]:
    folder = RunFolder(out)
    return {key: folder.shard_path(key).stat().st_mtime_ns for key in folder.done()}


def test_an_interrupted_run_resumes_to_the_same_result(cluster: str, photos: Path, reference: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    with EventPipe() as events:
        _interrupted(_command(cluster, photos, out), _env(), events, "shards-written 2", signal.SIGINT)
    assert not (out / RESULT_FILE).exists()  # no half result: only whole shards
    kept = _shard_times(out)
    assert len(kept) == 2  # held right after the second shard: exactly those are kept
    result = _run(cluster, photos, out)
    assert result.returncode == 0, result.stderr
    assert "2 shard(s) were already done" in result.stderr
    assert {key: time for key, time in _shard_times(out).items() if key in kept} == kept  # not redone
    assert _records(out) == reference
    again = _run(cluster, photos, out)
    assert again.returncode == 0 and "all" in again.stderr and _records(out) == reference


def test_plain_ray_stops_at_any_moment_and_resumes_on_a_private_ray(few_images: Path, few_reference: list[str],
                                                                    tmp_path: Path) -> None:
    """SIGTERM (a scheduler) while the model actors start, SIGINT in the last shard; then the rerun finishes.
    With no Ray to be found, plain --ray starts a private one each time."""
    out, env = tmp_path / "out", _alone_env()
    shards = len(few_reference) // FEW_SHARD
    try:
        # reported and held by the model actors of the private Ray (they inherit our environment): no
        # shard can be done before the signal
        with EventPipe() as events:
            _interrupted(_few_command(few_images, out), env, events, "actor-starting", signal.SIGTERM)
        assert not RunFolder(out).done() and not (out / RESULT_FILE).exists()
        with EventPipe() as events:
            _interrupted(_few_command(few_images, out), env, events, f"shards-written {shards - 1}", signal.SIGINT)
        kept = _shard_times(out)
        assert len(kept) == shards - 1 and not (out / RESULT_FILE).exists()
        result = subprocess.run(_few_command(few_images, out), cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=RUN_LIMIT_S)
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert "1 shard(s) run" in result.stderr and "on a private local Ray" in result.stderr
    assert f"{shards - 1} shard(s) were already done" in result.stderr
    assert {key: time for key, time in _shard_times(out).items() if key in kept} == kept
    assert _records(out) == few_reference


def test_plain_ray_beside_a_running_ray_and_auto_joins_it(running_ray, few_images: Path, few_reference: list[str],
                                                          tmp_path: Path) -> None:
    address, env = running_ray
    alone = subprocess.run(_few_command(few_images, tmp_path / "alone"), cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=RUN_LIMIT_S)
    assert alone.returncode == 0, alone.stderr  # was: ValueError "num_cpus ... must not be provided", exit 3
    assert "on a private local Ray" in alone.stderr
    assert _records(tmp_path / "alone") == few_reference
    joined = subprocess.run(_few_command(few_images, tmp_path / "joined", "auto"), cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert joined.returncode == 0, joined.stderr
    assert f"on the Ray cluster at {address} (3 CPUs)" in joined.stderr
    assert _records(tmp_path / "joined") == few_reference


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
    # the progress counts the video's frames in its total (it went to 41/2), and says the last count once
    shown = [line for line in result.stderr.splitlines() if line.startswith("ray detect: ")]
    total = f"ray detect: {len(records)}/~{len(records)} records"
    assert shown and shown[-1].startswith(total) and sum(line.startswith(total) for line in shown) == 1, shown
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
    assert "pip install 'darknet-engine[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(120)
def test_a_cluster_that_cannot_be_joined_is_one_line_and_leaves_no_plan(tmp_path: Path, capsys) -> None:
    """A HOST:PORT nothing answers at waited for ever (Ray's GCS client retrying); a run that failed to join left its
    run.json, which then refused the corrected command as 'a run with a different plan'."""
    dog = str(shared_path(IMAGES / "dog.jpg"))
    port = free_port()
    for address, said in [(f"127.0.0.1:{port}", f"cannot join the Ray cluster at 127.0.0.1:{port}: nothing answers "
                                                 "there (Connection refused within 10 s)"),
                          ("nowhere.invalid:6379", "cannot join the Ray cluster at nowhere.invalid:6379: no such host ("),
                          ("bogus", "cannot join the Ray cluster at bogus: ")]:
        out = tmp_path / address.replace(":", "_")
        cfg, weights = official("yolov4-tiny")
        assert cli.main(["detect", dog, "--cfg", str(cfg), "--weights", str(weights), "--ray", address, "--output",
                         str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {said}") and err.count("\n") == 1, err
        assert not (out / "run.json").exists()


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
    from darknet_py.distributed.ray_detect import RayOptions, _check_resources

    class TwoCpuCluster:
        @staticmethod
        def cluster_resources() -> dict:
            return {"CPU": 2.0}

    _check_resources(TwoCpuCluster, RayOptions(workers=1), gpus=0)
    with pytest.raises(darknet_py.InputError, match=r"has 2 CPU\(s\); --workers 2 needs 2.5"):
        _check_resources(TwoCpuCluster, RayOptions(workers=2), gpus=0)
    with pytest.raises(darknet_py.InputError, match=r"has 0 GPU\(s\); --device cuda with --workers 1 needs 1"):
        _check_resources(TwoCpuCluster, RayOptions(workers=1), gpus=1)


def test_an_openvino_model_ships_to_the_actors(cluster: str, tmp_path: Path) -> None:
    """OpenVINO IR travels as its .xml and .bin bytes; the actors' detections are the single-process ones."""
    from darknet_py.export.openvino import export_openvino
    from darknet_py.format.names import COCO_NAMES

    ir_file = tmp_path / "tiny.xml"
    export_openvino(darknet_py.load(*official("yolov4-tiny")), ir_file, COCO_NAMES)
    images = shared_path(IMAGES)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(images), "--weights", str(ir_file),
               "--ray", cluster, "--no-save", "--shard-size", "4", "--output", str(out)]
    result = subprocess.run(command, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert result.returncode == 0, result.stderr
    records = {r["source"]: r["detections"] for r in map(json.loads, (out / RESULT_FILE).read_text().splitlines())}
    detector = darknet_py.load(ir_file)
    paths = sorted(str(p) for p in images.glob("*.jpg"))
    assert sorted(records) == paths
    for path, dets in zip(paths, detector.detect(paths)):
        found = records[path]
        assert [d["name"] for d in found] == dets.labels
        assert np.abs(np.array([d["score"] for d in found]) - dets.scores).max(initial=0) <= 1e-4


def test_image_urls_are_images_and_their_credentials_stay_out_of_the_plan() -> None:
    """An image URL is an image to shard like a file (fetched where it is read); one with a user and password is
    refused, since the plan (run.json) and the records keep every source as given."""
    from darknet_py.core.errors import InputError
    from darknet_py.distributed.ray_detect import split_sources

    assert split_sources(["http://127.0.0.1:9/dog.jpg"]) == (["http://127.0.0.1:9/dog.jpg"], [])
    with pytest.raises(InputError, match=r"give the image URL http://\*\*\*@127\.0\.0\.1:9/dog\.jpg without a user"):
        split_sources(["http://user:secret@127.0.0.1:9/dog.jpg"])


def test_images_of_one_name_are_refused_when_their_annotated_copies_would_collide(tmp_path: Path) -> None:
    """OUTPUT/images/x.jpg for a/x.jpg and b/x.jpg: refused before any shard (no Ray needed to say so); --no-save
    (records only, each under its path) is not."""
    from darknet_py.core.errors import InputError
    from darknet_py.distributed.ray_detect import RayOptions, detect_on_ray

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.jpg").write_bytes(shared_path(IMAGES / "dog.jpg").read_bytes())
    model = darknet_py.load(*official("yolov4-tiny"))
    with pytest.raises(InputError, match=r"a/x\.jpg and .*b/x\.jpg would write their annotated image under one name "
                                         r"\(x\.jpg\) in images/: run them separately, or with --no-save"):
        detect_on_ray(str(tmp_path / "*" / "x.jpg"), tmp_path / "out", model, ray_options=RayOptions(save_images=True))
    assert not (tmp_path / "out").exists()
    # classes by name, as model.detect takes them: checked before Ray too (a name was a TypeError deep in it)
    with pytest.raises(InputError, match="would write their annotated image under one name"):
        detect_on_ray(str(tmp_path / "*" / "x.jpg"), tmp_path / "out", model, classes=["dog", 2],
                      ray_options=RayOptions(save_images=True))
    with pytest.raises(InputError, match="unicorn"):
        detect_on_ray(str(tmp_path / "*" / "x.jpg"), tmp_path / "out", model, classes=["unicorn"])
