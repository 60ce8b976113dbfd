"""detect FOLDER --watch: the images there, then each one that arrives — copied in, moved in, written slowly, written
again — detected once it is whole, as a run over the finished files detects them; a run again into the same folder goes
on where the last one stopped; --notify posts the images something is found in (to a real HTTP server).

Every wait is on an event of the run (darknet_py.core.events: watch-idle N once the N images it took are done and it
waits for more, watch-not-whole NAME once it has seen a file without its end), never on time.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from darknet_py import cli
from darknet_py.core.events import EVENTS
from darknet_py.media import watched_folder
from darknet_py.media.watched_folder import WATCHED_JSONL, WatchedFolder, looks_whole
from tests.conftest import IMAGES, REPO, free_port, official, shared_path
from tests.event_pipe import HANG_GUARD_S, EventPipe
from tests.test_notify import receiver

TINY = official("yolov4-tiny")


def _photo(name: str) -> bytes:
    return shared_path(IMAGES / name).read_bytes()


def _command(folder: Path, out: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "darknet_py.cli", "detect", str(folder), "--watch", "--watch-poll", "0.2", "--cfg",
            str(TINY[0]), "--weights", str(TINY[1]), "--save-json", "jsonl", "--output", str(out), *flags]


class WatchRun:
    """`detect --watch` in a process of its own, reporting its events; stop() is Ctrl-C."""

    def __init__(self, command: list[str]) -> None:
        self.events = EventPipe()
        self.process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **self.events.env()},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True)

    def wait_for(self, event: str) -> None:
        self.events.wait_for(event, self.process)

    def stop(self) -> str:
        """Ctrl-C; the run ends with 130 and its last lines. Returns its stderr."""
        self.process.send_signal(signal.SIGINT)
        err = self.process.communicate(timeout=HANG_GUARD_S)[1]
        assert self.process.returncode == 130, err
        return err

    def __enter__(self) -> WatchRun:
        return self

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait(HANG_GUARD_S)
        self.events.close()


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def _plain_run(files: dict[str, bytes], folder: Path) -> dict[str, dict]:
    """The records of a plain (not watched) run over *files*, by name: what the watched run must find in each."""
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = folder.parent / f"{folder.name}-out"
    assert cli.main(["detect", str(folder), "--cfg", str(TINY[0]), "--weights", str(TINY[1]), "--save-json", "jsonl",
                     "--no-save", "--in-flight", "1", "--output", str(out)]) == 0
    return {Path(record["source"]).name: record for record in _records(out)}


def _without_place(record: dict) -> dict:
    """A record without what names where and when the file was (its folder and date), for comparing two runs' finds."""
    return {key: value for key, value in record.items() if key not in ("source", "utc")}


@contextlib.contextmanager
def _in_a_thread(watched: WatchedFolder, monkeypatch) -> Iterator[tuple[EventPipe, list[tuple[str, int]]]]:
    """*watched* iterated in a thread as a run does (each image done, then the next), its events reported to the pipe
    it yields with the list of (name, bytes) of each image taken; closed at the end, the thread with it."""
    taken: list[tuple[str, int]] = []

    def detect_each() -> None:
        for path in watched:
            name = watched.name_of(path)
            taken.append((name, len(Path(path).read_bytes())))
            watched.done[name] = watched.taken.pop(name)

    with EventPipe() as pipe:
        monkeypatch.setenv(EVENTS, str(pipe.path))
        consumer = threading.Thread(target=detect_each, daemon=True)
        consumer.start()
        try:
            yield pipe, taken
        finally:
            watched.close()
            consumer.join(60)
    assert not consumer.is_alive()


@pytest.mark.timeout(600)
def test_every_way_an_image_arrives_is_detected_once_whole(tmp_path: Path) -> None:
    """Two photos there at the start, then one copied in, one written elsewhere and moved in, one written half, held
    open while the run has looked at it, then finished, and the first photo written again as another: each is detected
    once, whole (its record equals a plain run's over the finished files: a half-read JPEG decodes with a grey rest
    and finds other things), in the order it arrived, each record dated by its file's modification time, each listed
    in watched.jsonl with its size and time, each annotated image written."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
    (folder / "b.jpg").write_bytes(_photo("horses.jpg"))
    states = {}
    with WatchRun(_command(folder, out)) as run:
        run.wait_for("watch-idle 2")
        shutil.copy(IMAGES / "eagle.jpg", folder / "c.jpg")
        run.wait_for("watch-idle 3")
        staged = tmp_path / "d.jpg"
        staged.write_bytes(_photo("person.jpg"))
        os.replace(staged, folder / "d.jpg")
        run.wait_for("watch-idle 4")
        kite = _photo("kite.jpg")
        with open(folder / "e.jpg", "wb") as slow:
            slow.write(kite[:len(kite) // 2])
            slow.flush()
            run.wait_for("watch-not-whole e.jpg")  # looked at, twice unchanged, and not taken
            slow.write(kite[len(kite) // 2:])
        run.wait_for("watch-idle 5")
        states["a-first"] = os.stat(folder / "a.jpg")
        (folder / "a.jpg").write_bytes(_photo("giraffe.jpg"))
        run.wait_for("watch-idle 6")
        err = run.stop()
    assert "6 image(s), watched until stopped" in err, err
    records = _records(out)
    assert [Path(record["source"]).name for record in records] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "a.jpg"]
    plain = _plain_run({"a.jpg": _photo("dog.jpg"), "b.jpg": _photo("horses.jpg"), "c.jpg": _photo("eagle.jpg"),
                        "d.jpg": _photo("person.jpg"), "e.jpg": _photo("kite.jpg"), "f.jpg": _photo("giraffe.jpg")},
                       tmp_path / "plain")
    expected = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
    assert [_without_place(record) for record in records] == [_without_place(plain[name]) for name in expected]
    assert all(record["detections"] for record in records)
    listed = [json.loads(line) for line in (out / WATCHED_JSONL).read_text().splitlines()]
    final = {name: os.stat(folder / name) for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")}
    stats = [states["a-first"], final["b.jpg"], final["c.jpg"], final["d.jpg"], final["e.jpg"], final["a.jpg"]]
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "a.jpg"]
    assert [(entry["file"], entry["size"], entry["mtime_ns"]) for entry in listed] == [
        (name, stat.st_size, stat.st_mtime_ns) for name, stat in zip(names, stats)]
    for record, entry in zip(records, listed):
        assert record["utc"] == entry["utc"]
        assert abs(np.datetime64(record["utc"].rstrip("Z")).astype("datetime64[ns]").astype(np.int64)
                   - entry["mtime_ns"]) <= 1_000_000  # the file's time, to the ms
    assert sorted(path.name for path in out.glob("*.jpg")) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]


@pytest.mark.timeout(600)
def test_a_run_again_into_its_folder_goes_on_where_the_last_stopped(tmp_path: Path) -> None:
    """Stopped after two photos; meanwhile a third arrives and the second is written again: the next run into the same
    folder detects those two and not the first, appending to the first run's records and list."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
    (folder / "b.jpg").write_bytes(_photo("horses.jpg"))
    with WatchRun(_command(folder, out)) as run:
        run.wait_for("watch-idle 2")
        run.stop()
    (folder / "c.jpg").write_bytes(_photo("eagle.jpg"))
    (folder / "b.jpg").write_bytes(_photo("kite.jpg"))
    with WatchRun(_command(folder, out, "--exist-ok")) as run:
        run.wait_for("watch-idle 2")
        err = run.stop()
    assert "2 image(s), watched until stopped" in err, err
    records = _records(out)
    assert [Path(record["source"]).name for record in records] == ["a.jpg", "b.jpg", "b.jpg", "c.jpg"]
    assert records[1]["width"] == cv2.imdecode(np.frombuffer(_photo("horses.jpg"), np.uint8), cv2.IMREAD_COLOR).shape[1]
    assert records[2]["width"] == cv2.imdecode(np.frombuffer(_photo("kite.jpg"), np.uint8), cv2.IMREAD_COLOR).shape[1]
    listed = [json.loads(line)["file"] for line in (out / WATCHED_JSONL).read_text().splitlines()]
    assert listed == ["a.jpg", "b.jpg", "b.jpg", "c.jpg"]


@pytest.mark.timeout(600)
def test_notify_posts_each_image_something_is_found_in(tmp_path: Path) -> None:
    """--notify with --watch: a photo with objects is POSTed as its detections.jsonl record, with type, the folder's name
    as source and the image as file (its path below the folder: one in a subfolder too) and path; an empty grey
    picture, in which nothing is found, is not."""
    folder, out = tmp_path / "yard", tmp_path / "out"
    folder.mkdir()
    cv2.imwrite(str(folder / "empty.png"), np.full((240, 320, 3), 128, np.uint8))
    with receiver() as hook:
        with WatchRun(_command(folder, out, "--notify", hook.url, "--watch-subfolders")) as run:
            run.wait_for("watch-idle 1")
            shutil.copy(IMAGES / "dog.jpg", folder / "dog.jpg")
            run.wait_for("watch-idle 2")
            (folder / "cam2").mkdir()
            shutil.copy(IMAGES / "horses.jpg", folder / "cam2" / "horses.jpg")
            run.wait_for("watch-idle 3")
            run.wait_for("notify-delivered 2")
            err = run.stop()
        assert "notify: 2 delivered" in err, err
        records = _records(out)
        assert [Path(record["source"]).name for record in records] == ["empty.png", "dog.jpg", "horses.jpg"]
        assert records[0]["detections"] == [] and records[1]["detections"] and records[2]["detections"]
        assert hook.taken() == [
            {"type": "detections", "source": "yard", "file": name, "path": str((folder / name).resolve()),
             **{key: value for key, value in record.items() if key != "source"}}
            for name, record in (("dog.jpg", records[1]), ("cam2/horses.jpg", records[2]))]


@pytest.mark.timeout(600)
def test_a_file_that_is_no_image_is_skipped_listed_and_not_tried_again(tmp_path: Path) -> None:
    """A .jpg that is not an image: one warning naming it, the watch goes on to the next, and watched.jsonl lists it
    with its error, so a run again into the folder does not try it again (nor warn)."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image at all\n")
    (folder / "b.jpg").write_bytes(_photo("dog.jpg"))
    with WatchRun(_command(folder, out)) as run:
        run.wait_for("watch-idle 2")
        err = run.stop()
    warned = [line for line in err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "a.jpg" in warned[0] and warned[0].endswith("; skipped"), err
    assert [Path(record["source"]).name for record in _records(out)] == ["b.jpg"]
    listed = [json.loads(line) for line in (out / WATCHED_JSONL).read_text().splitlines()]
    assert [(entry["file"], "error" in entry) for entry in listed] == [("a.jpg", True), ("b.jpg", False)]
    with WatchRun(_command(folder, out, "--exist-ok")) as run:
        run.wait_for("watch-idle 0")
        err = run.stop()
    assert "warning" not in err and "0 image(s), watched until stopped" in err, err


@pytest.mark.timeout(600)
def test_a_folder_that_disappears_ends_the_run_with_one_line(tmp_path: Path) -> None:
    """The watched folder removed under the run: one `error:` line naming it, exit 2, the image done before written."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
    with WatchRun(_command(folder, out)) as run:
        run.wait_for("watch-idle 1")
        shutil.rmtree(folder)
        err = run.process.communicate(timeout=HANG_GUARD_S)[1]
    assert run.process.returncode == 2, err
    assert err.splitlines()[-1] == f"error: --watch: cannot read the folder {folder} any more (No such file or directory)"
    assert "Traceback" not in err
    assert [Path(record["source"]).name for record in _records(out)] == ["a.jpg"]
    assert [json.loads(line)["file"] for line in (out / WATCHED_JSONL).read_text().splitlines()] == ["a.jpg"]


@pytest.mark.timeout(600)
def test_health_tells_how_the_watched_folder_is_doing(tmp_path: Path) -> None:
    """--serve with --watch: /health lists the folder with the images done, their detections per class (as the records
    count them) and how long after its file was written the last image's results were (at least 0, at most the time
    from the file's writing to the request)."""
    folder, out, port = tmp_path / "incoming", tmp_path / "out", free_port()
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
    with WatchRun(_command(folder, out, "--serve", str(port))) as run:
        run.wait_for("watch-idle 1")
        shutil.copy(IMAGES / "horses.jpg", folder / "b.jpg")
        run.wait_for("watch-idle 2")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=60) as answer:
            health = json.loads(answer.read())
        asked = time.time()
        run.stop()
    (source,) = health["sources"]
    records = _records(out)
    counted: dict[str, int] = {}
    for detection in (detection for record in records for detection in record["detections"]):
        counted[detection["name"]] = counted.get(detection["name"], 0) + 1
    assert (source["source"], source["frames"], source["detections"]) == (str(folder), 2, counted)
    assert 0 <= source["lag_s"] <= asked - os.stat(folder / "b.jpg").st_mtime_ns / 1e9


@pytest.mark.timeout(300)
def test_looks_alone_find_what_no_writer_announces(tmp_path: Path, monkeypatch) -> None:
    """Without inotify (a network share, where writes on another machine announce nothing): a photo written is found
    by looking, one written half and held open is not taken until it is finished, and one written again in place —
    which changes no folder time — is found by the folder's whole reading every FULL_LOOK_S (made short here)."""
    monkeypatch.setattr(watched_folder, "FULL_LOOK_S", 0.3)
    monkeypatch.setattr(watched_folder, "CHANGED_S", 0.0)  # read whole only when the folder's time changes, or then
    folder = tmp_path / "share"
    folder.mkdir()
    watched = WatchedFolder(folder, poll_s=0.05, inotify=False)
    with _in_a_thread(watched, monkeypatch) as (pipe, taken):
        pipe.wait_for("watch-idle 0", None)
        (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
        pipe.wait_for("watch-idle 1", None)
        kite = _photo("kite.jpg")
        with open(folder / "b.jpg", "wb") as slow:
            slow.write(kite[:1000])
            slow.flush()
            pipe.wait_for("watch-not-whole b.jpg", None)
            slow.write(kite[1000:])
        pipe.wait_for("watch-idle 2", None)
        with open(folder / "a.jpg", "r+b") as in_place:  # the same name, no folder change
            in_place.write(_photo("horses.jpg"))
            in_place.truncate()
        pipe.wait_for("watch-idle 3", None)
    assert taken == [("a.jpg", len(_photo("dog.jpg"))), ("b.jpg", len(kite)), ("a.jpg", len(_photo("horses.jpg")))]


@pytest.mark.timeout(600)
def test_subfolders_are_watched_as_they_appear(tmp_path: Path) -> None:
    """--watch-subfolders: a photo in the folder and one in a day's folder at the start, then a new day's folder made
    and a photo written into it, then a folder with a photo moved in whole: each is detected once (as a plain run over
    the files detects it), listed by its path below the folder, its outputs named by that path with _ for / (the days'
    photos share their file name)."""
    folder, out = tmp_path / "ftp", tmp_path / "out"
    (folder / "day1").mkdir(parents=True)
    (folder / "x.jpg").write_bytes(_photo("dog.jpg"))
    (folder / "day1" / "001.jpg").write_bytes(_photo("horses.jpg"))
    with WatchRun(_command(folder, out, "--watch-subfolders", "--save-txt")) as run:
        run.wait_for("watch-idle 2")
        (folder / "day2").mkdir()
        shutil.copy(IMAGES / "eagle.jpg", folder / "day2" / "001.jpg")
        run.wait_for("watch-idle 3")
        staged = tmp_path / "day3"
        staged.mkdir()
        (staged / "001.jpg").write_bytes(_photo("person.jpg"))
        os.replace(staged, folder / "day3")
        run.wait_for("watch-idle 4")
        run.stop()
    names = ["day1/001.jpg", "x.jpg", "day2/001.jpg", "day3/001.jpg"]
    records = _records(out)
    assert [str(Path(record["source"]).relative_to(folder).as_posix()) for record in records] == names
    plain = _plain_run({"a.jpg": _photo("horses.jpg"), "b.jpg": _photo("dog.jpg"), "c.jpg": _photo("eagle.jpg"),
                        "d.jpg": _photo("person.jpg")}, tmp_path / "plain")
    assert [_without_place(record) for record in records] == [_without_place(plain[f"{n}.jpg"]) for n in "abcd"]
    assert [json.loads(line)["file"] for line in (out / WATCHED_JSONL).read_text().splitlines()] == names
    flat = [name.replace("/", "_") for name in names]
    assert sorted(path.name for path in out.glob("*.jpg")) == sorted(flat)
    assert sorted(path.name for path in (out / "labels").iterdir()) == sorted(Path(name).stem + ".txt" for name in flat)


@pytest.mark.timeout(600)
def test_images_whose_outputs_would_share_a_name_get_names_of_their_own(tmp_path: Path) -> None:
    """A folder run refuses images whose outputs would take one name; a watch runs for weeks, so each such image gets
    STEM-2, STEM-3, … instead: a.jpg and a.png (one label name), day1/a.jpg and a later day1_a.jpg (one flattened
    name); a run again into the folder keeps the names given (a.png written again keeps a-2, a new a.jpeg gets a-3):
    no image's annotated copy or label replaces another's."""
    folder, out = tmp_path / "ftp", tmp_path / "out"
    (folder / "day1").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(_photo("dog.jpg"))
    (folder / "a.png").write_bytes(cv2.imencode(".png", cv2.imread(str(IMAGES / "horses.jpg")))[1].tobytes())
    (folder / "day1" / "a.jpg").write_bytes(_photo("giraffe.jpg"))
    with WatchRun(_command(folder, out, "--watch-subfolders", "--save-txt")) as run:
        run.wait_for("watch-idle 3")
        shutil.copy(IMAGES / "person.jpg", folder / "day1_a.jpg")
        run.wait_for("watch-idle 4")
        run.stop()
    (folder / "a.png").write_bytes(cv2.imencode(".png", cv2.imread(str(IMAGES / "scream.jpg")))[1].tobytes())
    (folder / "a.jpeg").write_bytes(_photo("zidane.jpg"))
    with WatchRun(_command(folder, out, "--watch-subfolders", "--save-txt", "--exist-ok")) as run:
        run.wait_for("watch-idle 2")
        run.stop()
    sizes = {"a.jpg": (576, 768), "a-2.png": (448, 352), "day1_a.jpg": (500, 500), "day1_a-2.jpg": (424, 640),
             "a-3.jpeg": (720, 1280)}  # the picture each output name holds: its own image's
    assert {path.name: cv2.imread(str(path)).shape[:2] for path in out.iterdir() if path.suffix in (".jpg", ".png",
                                                                                                  ".jpeg")} == sizes
    assert sorted(path.name for path in (out / "labels").iterdir()) == sorted(Path(n).stem + ".txt" for n in sizes)
    listed = [json.loads(line) for line in (out / WATCHED_JSONL).read_text().splitlines()]
    assert [(entry["file"], entry.get("output")) for entry in listed] == [
        ("a.jpg", None), ("a.png", "a-2.png"), ("day1/a.jpg", None), ("day1_a.jpg", "day1_a-2.jpg"),
        ("a.jpeg", "a-3.jpeg"), ("a.png", "a-2.png")]


@pytest.mark.timeout(600)
def test_without_subfolders_only_the_folder_is_watched(tmp_path: Path) -> None:
    folder, out = tmp_path / "ftp", tmp_path / "out"
    (folder / "day1").mkdir(parents=True)
    (folder / "x.jpg").write_bytes(_photo("dog.jpg"))
    (folder / "day1" / "001.jpg").write_bytes(_photo("horses.jpg"))
    with WatchRun(_command(folder, out)) as run:
        run.wait_for("watch-idle 1")
        shutil.copy(IMAGES / "eagle.jpg", folder / "day1" / "002.jpg")
        shutil.copy(IMAGES / "kite.jpg", folder / "y.jpg")
        run.wait_for("watch-idle 2")
        run.stop()
    assert [Path(record["source"]).name for record in _records(out)] == ["x.jpg", "y.jpg"]


@pytest.mark.timeout(300)
def test_a_busy_folder_does_not_hold_up_files_nothing_announces(tmp_path: Path) -> None:
    """Files announced one after another, each before the last is done (inotify's word put in the watcher's queue here,
    so that it is always ahead), do not stop the looks: a JPEG written half, then finished without being closed (as a
    writer on another machine of a share leaves it, unseen by inotify), is taken among them — within its first 2,000,
    where it comes after the few that a look every poll_s lets through."""
    folder = tmp_path / "busy"
    folder.mkdir()
    kite = _photo("kite.jpg")
    slow = open(folder / "slow.jpg", "wb")  # noqa: SIM115 - held open across the watch
    slow.write(kite[:1000])
    slow.flush()
    watched = WatchedFolder(folder, poll_s=0.01, inotify=False)

    def announce(index: int) -> None:
        (folder / f"n{index}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
        watched._announced.put(f"n{index}.jpg")  # what inotify's thread does on its close

    announce(0)
    taken: list[str] = []
    try:
        for path in watched:
            name = watched.name_of(path)
            taken.append(name)
            watched.done[name] = watched.taken.pop(name)
            if name == "slow.jpg" or len(taken) > 2000:
                break
            if len(taken) == 1:
                slow.write(kite[1000:])  # whole now, and never closed while watched
                slow.flush()
            announce(len(taken))
    finally:
        watched.close()
        slow.close()
    assert taken[-1] == "slow.jpg", f"not taken among {len(taken)} announced files"


@pytest.mark.timeout(300)
def test_looks_alone_follow_subfolders_made_and_removed(tmp_path: Path, monkeypatch) -> None:
    """Without inotify, with subfolders: a photo two folders down, in folders made after the start, is found by
    looking; a subfolder removed (with a photo half written in it) is forgotten, and the watch goes on."""
    folder = tmp_path / "share"
    folder.mkdir()
    watched = WatchedFolder(folder, poll_s=0.05, inotify=False, subfolders=True)
    with _in_a_thread(watched, monkeypatch) as (pipe, taken):
        pipe.wait_for("watch-idle 0", None)
        (folder / "cam1" / "2026-12-07").mkdir(parents=True)
        (folder / "cam1" / "2026-12-07" / "a.jpg").write_bytes(_photo("dog.jpg"))
        pipe.wait_for("watch-idle 1", None)
        (folder / "cam2").mkdir()
        (folder / "cam2" / "half.jpg").write_bytes(_photo("kite.jpg")[:1000])
        pipe.wait_for("watch-not-whole cam2/half.jpg", None)
        shutil.rmtree(folder / "cam2")
        (folder / "b.jpg").write_bytes(_photo("horses.jpg"))
        pipe.wait_for("watch-idle 2", None)
    assert [name for name, _ in taken] == ["cam1/2026-12-07/a.jpg", "b.jpg"]


def test_looks_whole_finds_the_end_of_jpegs_and_pngs(tmp_path: Path) -> None:
    """A JPEG cut anywhere, or a PNG cut before its IEND chunk, has no end (OpenCV would decode either, greying the
    rest); whole, or padded with zeros as some cameras do, it has."""
    jpeg = _photo("dog.jpg")
    png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))[1].tobytes()
    path = tmp_path / "x"
    for data, whole in ((jpeg, True), (jpeg + b"\0" * 16, True), (png, True), (b"", False)):
        path.write_bytes(data)
        assert looks_whole(path) is whole
    for data in (jpeg, png):
        for cut in (len(data) // 3, len(data) // 2, len(data) - 1, len(data) - 13):
            path.write_bytes(data[:cut])
            assert not looks_whole(path), cut


@pytest.mark.parametrize("flags, line", [
    (["--watch-poll", "1"], "error: --watch-poll sets how often --watch looks at its folder: give --watch too"),
    (["--watch", "--watch-poll", "0"], "error: --watch-poll 0.0: give the seconds"),
    (["--watch", "--batch", "4"], "error: --batch 4: --watch detects each image as soon as it is whole"),
    (["--watch", "--in-flight", "2"], "error: --in-flight 2: --watch detects each image"),
    (["--watch", "--track"], "error: --track is not available with --watch"),
    (["--watch", "--clips", "2"], "error: --clips cuts clips out of a video"),
    (["--watch-subfolders"], "error: --watch-subfolders says whether --watch looks at its folder: give --watch too"),
])
def test_flags_that_mean_nothing_with_watch_are_refused_before_work(flags, line, tmp_path: Path, capsys) -> None:
    """One error line, exit 2, no folder made: before the model loads."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    assert cli.main(["detect", str(folder), "--cfg", str(TINY[0]), "--weights", str(TINY[1]), *flags,
                     "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err
    assert not out.exists()


def test_outputs_inside_the_watched_folder_are_refused(tmp_path: Path, capsys) -> None:
    """The run's annotated images written where it watches would be detected again, without end: --output the folder,
    or with --watch-subfolders a folder below it, is one error line before any work."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    for flags, output, where in (([], folder, "the watched folder"),
                                 (["--watch-subfolders"], folder / "out", "a folder below the watched folder")):
        assert cli.main(["detect", str(folder), "--watch", *flags, "--output", str(output)]) == 2
        err = capsys.readouterr().err
        assert err == (f"error: the run's outputs would go into {where} ({output}), whose new images --watch detects: "
                       "give --output a folder outside it\n")
        assert sorted(folder.iterdir()) == []


def test_save_labels_refuses_to_replace_labels_the_watch_would_write_over(tmp_path: Path, capsys) -> None:
    """--save-labels writes beside each image: a label already beside an image the watch will detect (in a subfolder,
    with --watch-subfolders) is refused before any work, as for a folder run; one beside an image in a hidden folder,
    which the watch never enters, is not."""
    folder, out = tmp_path / "incoming", tmp_path / "out"
    for below in ("day1", ".trash"):
        (folder / below).mkdir(parents=True)
        (folder / below / "a.jpg").write_bytes(_photo("dog.jpg"))
        (folder / below / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    assert cli.main(["detect", str(folder), "--watch", "--watch-subfolders", "--save-labels", "--cfg", str(TINY[0]),
                     "--weights", str(TINY[1]), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --save-labels would replace 1 label file(s) already there (first: {folder / 'day1' / 'a.txt'}); "
                   "pass --exist-ok to replace them, as darknet does\n")
    assert not out.exists()


def test_watch_needs_one_folder(tmp_path: Path, capsys) -> None:
    photo = shared_path(IMAGES / "dog.jpg")
    for sources, line in (([str(photo)], f"error: --watch watches a folder for images; {photo} is not a folder"),
                          ([str(tmp_path), str(tmp_path)], "error: --watch watches one folder; 2 sources given")):
        assert cli.main(["detect", *sources, "--watch", "--output", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(line) and err.count("\n") == 1, err
