"""A camera's counts go on across restarts: the generated crossing served by the real RTSP server (GStreamer's,
tests/rtsp_server.py), counted at its line and zone, stopped with Ctrl-C and run again into the same folder — counts.json
then holds the crossings, entries and exits of both runs, exactly what events.jsonl (which keeps every run's lines)
adds up to, and the files that hold one run whole (the MOT sequence, detections.json) are kept, the second run's beside
them; a counts.json that holds no counts is one error line before the run writes over it.

Every wait is on an event of the run (darknet_py.core.events).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from darknet_py import cli
from darknet_py.core.errors import InputError
from darknet_py.media.tracking_sinks import TrackingStage
from darknet_py.pipeline.tracking import parse_line
from darknet_py.pipeline.tracking.counting import check_counts
from tests.conftest import official
from tests.event_pipe import interrupt_at
from tests.rtsp_camera import RtspCamera
from tests.test_tracking import crossing, expected  # noqa: F401 - the generated crossing, shared fixtures

WAIT = 300.0  # a hang guard for each wait; reached only when something is broken
TALLIED = {"line": ("in", "out"), "zone": ("entered", "exited")}
CUT = '{"lines": {"door": {"in": {"person": 1}'  # a counts.json cut short


@pytest.fixture
def camera(crossing: Path):  # noqa: F811
    with RtspCamera(crossing.parent / "crossing.avi", size="640x360") as started:
        yield started


def _run(camera: RtspCamera, out: Path, shapes: list[str], frames: int) -> None:
    """`detect --track` on the camera, every frame, counting; Ctrl-C once *frames* are done (exit 130)."""
    cfg, weights = official("yolov4-tiny")
    command = [sys.executable, "-m", "darknet_py.cli", "detect", camera.url, "--cfg", str(cfg), "--weights",
               str(weights), "--classes", "0", "--track", *shapes, "--keep-all-frames", "--no-save", "--save-mot",
               "--save-json", "--exist-ok", "--output", str(out)]
    interrupt_at(command, f"frames-detected {frames}")


def _tally(events: list[dict]) -> dict:
    """Crossings, entries and exits per line or zone, direction and class, added up from events.jsonl lines."""
    tally: dict = {"lines": {}, "zones": {}}
    for event in events:
        kind = "line" if "line" in event else "zone"
        if event["direction"] not in TALLIED[kind]:
            continue
        per_class = tally[f"{kind}s"].setdefault(event[kind], {}).setdefault(event["direction"], {})
        per_class[event["name"]] = per_class.get(event["name"], 0) + 1
    return tally


def _tallied(counts: dict) -> dict:
    """counts.json's crossings, entries and exits (without max_inside, which events do not add up to; and without
    the directions no event had)."""
    return {f"{kind}s": {name: {key: n for key, n in table.items() if key in TALLIED[kind] and n}
                         for name, table in counts[f"{kind}s"].items()} for kind in TALLIED}


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


@pytest.mark.timeout(int(WAIT))
def test_a_cameras_counts_go_on_from_its_last_run(camera: RtspCamera, expected: dict, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out"
    shapes = ["--line", expected["shapes"]["lines"][0], "--zone", expected["shapes"]["zones"][0]]
    _run(camera, out, shapes, 100)
    first_events = _events(out)
    first = json.loads((out / "counts.json").read_text())
    assert first_events, "the first run counted nothing: the test would show nothing"
    assert _tallied(first) == _tally(first_events)
    whole = {path.name: path.read_text() for path in out.iterdir() if path.name.endswith((".mot.txt", ".json"))}
    assert {name for name in whole if name.endswith(".mot.txt")} and "detections.json" in whole
    _run(camera, out, shapes, 100)
    # the files that hold one run whole (the MOT sequence, detections.json) are the first run's still, the second's
    # beside them, each a run of its own (MOT frames from 1)
    for name, text in whole.items():
        if name != "counts.json":
            assert (out / name).read_text() == text, name
            again = out / name.replace(".", "-2.", 1)
            assert again.is_file() and again.read_text() != text, again
    mots = sorted(out.glob("*.mot.txt"))
    firsts = [min(int(line.split(",")[0]) for line in path.read_text().splitlines()) for path in mots]
    assert len(mots) == 2 and max(firsts) < 50, (mots, firsts)  # each run's frames from 1 (a run is 100 frames)
    events = _events(out)
    assert events[:len(first_events)] == first_events and len(events) > len(first_events)
    counts = json.loads((out / "counts.json").read_text())
    assert _tallied(counts) == _tally(events)  # both runs' crossings, entries and exits
    for zone, table in counts["zones"].items():
        for name, n in first["zones"][zone]["max_inside"].items():
            assert table["max_inside"][name] >= n


def _json_error(text: str) -> str:
    """What Python's json says of *text*."""
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"{text} is JSON")


def test_a_counts_file_that_holds_no_counts_is_refused_naming_it(tmp_path: Path) -> None:
    stage = TrackingStage(lines=[parse_line("door=0.5,0,0.5,1")])
    path = tmp_path / "counts.json"
    for text, message in [
        (CUT, f"{path}: not JSON ({_json_error(CUT)}): the counts a camera's run goes on from; move the file away "
              "to count from 0"),
        ('[1, 2]', f"{path}: expected {{\"lines\": {{…}}, \"zones\": {{…}}}}, found [1, 2]"),
        ('{"lines": {"door": {"in": {"person": -1}}}}', f"{path}: line 'door' in: expected counts per class (whole "
                                                        "numbers, 0 or more), found {'person': -1}"),
        ('{"lines": {"door": 3}}', f"{path}: line 'door': expected an object of counts, found 3"),
    ]:
        path.write_text(text)
        with pytest.raises(InputError) as raised:
            stage.resume_from(path)
        assert str(raised.value) == message
    assert check_counts({"lines": {}, "zones": {"pen": {"max_inside": {"person": 2}}}}) is not None


def test_a_cameras_bad_counts_file_is_one_error_line_and_left_as_it_was(camera: RtspCamera, tmp_path: Path,
                                                                         capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "counts.json").write_text("not counts")
    cfg, weights = official("yolov4-tiny")
    code = cli.main(["detect", camera.url, "--cfg", str(cfg), "--weights", str(weights), "--track", "--line",
                     "door=0.5,0,0.5,1", "--no-save", "--exist-ok", "--output", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'counts.json'}: not JSON (") and err.count("\n") == 1, err
    assert (out / "counts.json").read_text() == "not counts"
