"""Tracking and counting (`detect --track`, darknet_py.track, LineCounter/ZoneCounter): on a short sequence
generated with known trajectories (benchmarks/tracking_sequences.py: real COCO persons cut out by their
masks, walking over a real photo and crossing each other), the default tracker's counts are exactly the ones
the true paths give; every output follows its schema, and the MOT file is read by py-motmetrics as it is and
scored against the generated ground truth; the Python API, the Ray driver's tracking and supervision agree
with the command; bad input is one line.

The heavy measurement (every tracker, tuning, HOTA, cost) is benchmarks/tracking.py's.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import urllib.request
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import darknet_py
from benchmarks import tracking_sequences as generator
from darknet_py import cli
from darknet_py.core.errors import InputError
from darknet_py.distributed.ray_track import track_records
from darknet_py.distributed.shards import RESULT_FILE
from darknet_py.live import LiveOptions, LiveView
from darknet_py.media.sequence import ImageSequence
from darknet_py.media.sinks import Result
from darknet_py.media.tracking_sinks import COUNTS_JSON, EVENTS_JSONL, CountsJsonSink, EventsJsonlSink, MotSink, TrackingStage
from darknet_py.pipeline.detections import Detections
from darknet_py.pipeline.tracking import LineCounter, ZoneCounter, counts_of, counts_text, parse_line, parse_zone
from darknet_py.pipeline.tracking.drawing import LINE_COLOR
from tests.conftest import IMAGES, VIDEO, official, shared_path
from tests.event_pipe import kill_at

pytestmark = pytest.mark.timeout(600)  # a hang guard: detection of 48 frames is seconds on a quiet machine

SEED = 14  # one of the short crossings the default counts exactly; benchmarks/tracking.py gives the rate over many
FRAMES = 48

TRACK_ID = {"type": ["integer", "null"], "minimum": 1}
RECORD = {
    "type": "object",
    "required": ["source", "frame", "time", "width", "height", "detections"],
    "additionalProperties": False,
    "properties": {
        "source": {"type": "string"}, "frame": {"type": "integer", "minimum": 0}, "time": {"type": "number", "minimum": 0},
        "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
        "detections": {"type": "array", "items": {
            "type": "object", "required": ["class_id", "name", "score", "box", "track_id"], "additionalProperties": False,
            "properties": {"class_id": {"type": "integer", "minimum": 0}, "name": {"type": "string"},
                           "score": {"type": "number", "minimum": 0, "maximum": 1},
                           "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                           "track_id": TRACK_ID}}},
    },
}
PER_CLASS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}
COUNTS = {
    "type": "object", "required": ["lines", "zones"], "additionalProperties": False,
    "properties": {
        "lines": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["in", "out"], "additionalProperties": False,
            "properties": {"in": PER_CLASS, "out": PER_CLASS}}},
        "zones": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["entered", "exited", "max_inside"], "additionalProperties": False,
            "properties": {"entered": PER_CLASS, "exited": PER_CLASS, "max_inside": PER_CLASS,
                           "dwelling": PER_CLASS}}},  # dwelling: with --dwell
    },
}
EVENT = {
    "type": "object", "required": ["frame", "time", "track_id", "class_id", "name", "direction"],
    "additionalProperties": False,
    "properties": {"frame": {"type": "integer", "minimum": 0}, "time": {"type": "number", "minimum": 0},
                   "track_id": {"type": "integer", "minimum": 1}, "class_id": {"type": "integer", "minimum": 0},
                   "name": {"type": "string"}, "line": {"type": "string"}, "zone": {"type": "string"},
                   "direction": {"enum": ["in", "out", "entered", "exited", "dwelling"]},
                   "seconds_inside": {"type": ["number", "null"], "minimum": 0}},
    "oneOf": [{"required": ["line"], "properties": {"direction": {"enum": ["in", "out"]}},
               "not": {"required": ["seconds_inside"]}},
              {"required": ["zone", "seconds_inside"], "properties": {"direction": {"enum": ["exited", "dwelling"]}}},
              {"required": ["zone"], "properties": {"direction": {"const": "entered"}},
               "not": {"required": ["seconds_inside"]}}],
}


def _detect(*args: str) -> tuple[int, str]:
    """`darknet-py detect ARGS` in this process: (exit code, what it printed on stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(["detect", *args])
        except SystemExit as exited:  # a refusal of argparse's
            code = exited.code
    return code, stderr.getvalue()


def _model_args() -> list[str]:
    cfg, weights = official("yolov4-tiny")
    return ["--cfg", str(cfg), "--weights", str(weights)]


@pytest.fixture(scope="module")
def crossing(tmp_path_factory) -> Path:
    """A short generated sequence: four people crossing a line and a zone (MOTChallenge folder + crossing.avi)."""
    return generator.make("crossing", tmp_path_factory.mktemp("sequences"), seed=SEED, frames=FRAMES, video=True)


@pytest.fixture(scope="module")
def expected(crossing: Path) -> dict:
    return json.loads((crossing / "expected_counts.json").read_text())


@pytest.fixture(scope="module")
def tracked(crossing: Path, expected: dict, tmp_path_factory) -> tuple[Path, str]:
    """`detect crossing.avi --track` with every tracking output: (output folder, stderr)."""
    out = tmp_path_factory.mktemp("tracked")
    shapes = [arg for line in expected["shapes"]["lines"] for arg in ("--line", line)]
    shapes += [arg for zone in expected["shapes"]["zones"] for arg in ("--zone", zone)]
    code, err = _detect(str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0", "--track",
                        "--save-json", "--save-mot", "--exist-ok", "--output", str(out), *shapes)
    assert code == 0, err
    return out, err


@pytest.fixture(scope="module")
def model():
    return darknet_py.load(*official("yolov4-tiny"))


def test_the_default_tracker_counts_the_generated_crossings_exactly(tracked, expected: dict) -> None:
    out, err = tracked
    counts = json.loads((out / COUNTS_JSON).read_text())
    assert counts["lines"] == expected["lines"]  # door: 2 in, 2 out, from the true paths
    assert sum(expected["lines"]["door"]["in"].values()) == 2 and sum(expected["lines"]["door"]["out"].values()) == 2
    for name, zone in expected["zones"].items():
        assert {k: counts["zones"][name][k] for k in ("entered", "exited")} == {k: zone[k] for k in ("entered", "exited")}
        # the most inside at once needs every person detected in one frame, even the one half hidden: at most that
        assert 1 <= counts["zones"][name]["max_inside"]["person"] <= zone["max_inside"]["person"]
    assert err.strip().splitlines()[-1] == counts_text(counts)  # the last line printed gives the counts
    assert err.strip().splitlines()[-1].startswith("counts: door in 2 person, out 2 person; middle entered 4 person")


@pytest.mark.timeout(600)
def test_each_source_of_several_counts_its_own_lines_and_zones(tracked, crossing: Path, expected: dict,
                                                              tmp_path: Path) -> None:
    """Two cameras through one model, each with its own line or zone (`SOURCE:NAME=…`): the first source counts only
    the line and the second only the zone, each exactly as the run with both on one source counted it (the same
    video; one frame a detection, as there), and the last lines say which source each count is of."""
    second = tmp_path / "second.avi"
    second.write_bytes((crossing.parent / "crossing.avi").read_bytes())
    (line,), (zone,) = expected["shapes"]["lines"], expected["shapes"]["zones"]
    out = tmp_path / "out"
    code, err = _detect(str(crossing.parent / "crossing.avi"), str(second), *_model_args(), "--classes", "0", "--track",
                        "--batch", "1", "--line", f"crossing:{line}", "--zone", f"second:{zone}", "--no-save",
                        "--output", str(out))
    assert code == 0, err
    both = json.loads((tracked[0] / COUNTS_JSON).read_text())
    assert json.loads((out / "crossing" / COUNTS_JSON).read_text()) == {"lines": both["lines"], "zones": {}}
    assert json.loads((out / "second" / COUNTS_JSON).read_text()) == {"lines": {}, "zones": both["zones"]}
    events = [json.loads(text) for text in (tracked[0] / EVENTS_JSONL).read_text().splitlines()]
    for folder, key in (("crossing", "line"), ("second", "zone")):
        assert [json.loads(text) for text in (out / folder / EVENTS_JSONL).read_text().splitlines()] == \
            [event for event in events if key in event]
    last = err.strip().splitlines()[-2:]
    assert last == [f"crossing: {counts_text({'lines': both['lines'], 'zones': {}})}",
                    f"second: {counts_text({'lines': {}, 'zones': both['zones']})}"]


def test_a_line_for_a_source_that_is_not_there_is_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    assert cli.main(["detect", "rtsp://127.0.0.1:9/gate", "0", "--track", "--line", "door=0.5,0,0.5,1", "--zone",
                     "cam9:hall=0,0,1,0,1,1", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --zone cam9:hall=0,0,1,0,1,1: no source is named 'cam9' (the sources here: gate, camera0; "
                   "NAME=… without SOURCE: counts on every one)\n")
    assert not (tmp_path / "o").exists()


def test_each_exit_says_how_long_the_person_was_in_the_zone(tracked, crossing: Path, expected: dict) -> None:
    """An exit's seconds_inside: from the frame the track entered in (or was first seen inside) to the frame it left
    in. The true time each person spent inside, from the ground truth's box centres and OpenCV's polygon test (not
    our counter), matches each exit within three frames: the detected box's centre is not the true one, and a person
    crossing behind another is seen leaving a little late (here one exit 2 frames late, one 1 frame early)."""
    out, _ = tracked
    events = [json.loads(line) for line in (out / EVENTS_JSONL).read_text().splitlines()]
    exits = [e for e in events if e.get("zone") and e["direction"] == "exited"]
    entries = {e["track_id"]: e["time"] for e in events if e.get("zone") and e["direction"] == "entered"}
    assert exits and all(e["seconds_inside"] == pytest.approx(e["time"] - entries[e["track_id"]], abs=1e-6)
                         for e in exits if e["track_id"] in entries)  # the times of the events themselves
    shape = parse_zone(expected["shapes"]["zones"][0])
    name, polygon = shape.name, np.array(shape.in_pixels(*generator.SIZE), np.float32).reshape(-1, 2)
    paths: dict[int, list[tuple[int, bool]]] = {}
    for row in (crossing / "gt" / "gt.txt").read_text().split():
        frame, person, x, y, w, h, _, _, visible = (float(v) for v in row.split(","))
        if visible >= generator.MIN_VISIBLE:
            centre = (x + w / 2, y + h / 2)
            paths.setdefault(int(person), []).append((int(frame) - 1, cv2.pointPolygonTest(polygon, centre, False) > 0))
    truth = []
    for path in paths.values():
        since = None
        for frame, inside in path:
            if inside and since is None:
                since = frame
            elif not inside and since is not None:
                truth.append((frame - since) / generator.FPS)
                since = None
    assert name == exits[0]["zone"] and len(truth) == len(exits) == sum(expected["zones"][name]["exited"].values())
    ours = sorted(e["seconds_inside"] for e in exits)
    assert all(abs(a - b) <= 3.5 / generator.FPS for a, b in zip(ours, sorted(truth))), (ours, sorted(truth))


def test_seconds_inside_counts_from_the_entry_or_the_first_sight_and_needs_times() -> None:
    """A box walking right 10 px a frame at 25 fps through a zone spanning x 100 to 200: inside from frame 5 (centre
    105) to frame 14 (195), out at frame 15: 0.4 s. One first seen inside counts from then; without times, None."""
    zone = ZoneCounter("bay", [(100, 0), (200, 0), (200, 100), (100, 100)])

    def at(x: float, track: int = 1) -> Detections:
        return Detections(np.array([[x - 5, 40, x + 5, 60]], np.float32), np.array([0.9], np.float32),
                          np.array([0]), ["car"], (400, 100), track_ids=np.array([track]))

    events = [event for frame in range(30) for event in zone.update(at(55 + 10 * frame), frame, frame / 25)]
    assert [(e.direction, e.frame, e.seconds_inside and round(e.seconds_inside, 6)) for e in events] == [
        ("entered", 5, None), ("exited", 15, 0.4)]
    assert events[1].to_dict()["seconds_inside"] == 0.4 and "seconds_inside" not in events[0].to_dict()
    late = ZoneCounter("bay", [(100, 0), (200, 0), (200, 100), (100, 100)])
    events = [event for frame in range(10) for event in late.update(at(155 + 10 * frame, 2), frame + 7, (frame + 7) / 25)]
    assert [(e.direction, e.frame, round(e.seconds_inside, 6)) for e in events] == [("exited", 12, 0.2)]
    untimed = ZoneCounter("bay", [(100, 0), (200, 0), (200, 100), (100, 100)])
    events = [event for frame in range(30) for event in untimed.update(at(55 + 10 * frame), frame)]
    assert [(e.direction, e.seconds_inside) for e in events] == [("entered", None), ("exited", None)]


def test_a_stay_of_the_dwell_time_is_one_event_a_visit_while_still_inside() -> None:
    """The same walk (inside from frame 5, time 0.2, to frame 14): --dwell 0.2 is one `dwelling` event at frame 10
    (0.4 s, 0.2 s inside), not repeated; coming back in is a new visit with its own; a stay shorter than the dwell
    time, none; one first seen inside counts from then."""
    square = [(100, 0), (200, 0), (200, 100), (100, 100)]

    def at(x: float, track: int = 1) -> Detections:
        return Detections(np.array([[x - 5, 40, x + 5, 60]], np.float32), np.array([0.9], np.float32),
                          np.array([0]), ["car"], (400, 100), track_ids=np.array([track]))

    zone = ZoneCounter("bay", square, dwell_s=0.2)
    xs = [55 + 10 * frame for frame in range(20)] + [245 - 10 * frame for frame in range(15)]  # through, then back
    events = [event for frame, x in enumerate(xs) for event in zone.update(at(x), frame, frame / 25)]
    assert [(e.direction, e.frame, e.seconds_inside and round(e.seconds_inside, 6)) for e in events] == [
        ("entered", 5, None), ("dwelling", 10, 0.2), ("exited", 15, 0.4),
        ("entered", 25, None), ("dwelling", 30, 0.2)]
    assert zone.counts["dwelling"] == {"car": 2} and events[1].to_dict()["seconds_inside"] == 0.2
    assert counts_text(counts_of([zone])).endswith("dwelling 2 car")
    brief = ZoneCounter("bay", square, dwell_s=0.5)
    assert not [e for frame in range(30) for e in brief.update(at(55 + 10 * frame), frame, frame / 25)
                if e.direction == "dwelling"]
    late = ZoneCounter("bay", square, dwell_s=0.2)
    events = [e for frame in range(10) for e in late.update(at(125 + 5 * frame, 2), frame + 7, (frame + 7) / 25)]
    assert [(e.direction, e.frame) for e in events] == [("dwelling", 12)]
    assert "dwelling" not in ZoneCounter("bay", square).counts  # without a dwell time, the counts are as before


@pytest.mark.timeout(300)
def test_dwelling_events_are_the_true_stays_of_the_dwell_time(crossing: Path, expected: dict, tmp_path: Path) -> None:
    """--dwell 0.2 on the generated crossing (its people stay 0.36 to 0.44 s in the zone): one `dwelling` event for
    each true visit of the zone that lasted 0.2 s or more (from the ground truth's centres and OpenCV's polygon test),
    each within three frames of the frame the true visit reached 0.2 s, and saying how long the track has been inside;
    counts.json counts them."""
    out = tmp_path / "out"
    code, err = _detect(str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0", "--track", "--zone",
                        expected["shapes"]["zones"][0], "--dwell", "0.2", "--no-save", "--output", str(out))
    assert code == 0, err
    events = [json.loads(line) for line in (out / EVENTS_JSONL).read_text().splitlines()]
    dwelling = [e for e in events if e["direction"] == "dwelling"]
    shape = parse_zone(expected["shapes"]["zones"][0])
    polygon = np.array(shape.in_pixels(*generator.SIZE), np.float32).reshape(-1, 2)
    paths: dict[int, list[tuple[int, bool]]] = {}
    for row in (crossing / "gt" / "gt.txt").read_text().split():
        frame, person, x, y, w, h, _, _, visible = (float(v) for v in row.split(","))
        if visible >= generator.MIN_VISIBLE:
            paths.setdefault(int(person), []).append((int(frame) - 1,
                                                      cv2.pointPolygonTest(polygon, (x + w / 2, y + h / 2), False) > 0))
    truth = []  # the frame each true visit reached 0.2 s inside
    for path in paths.values():
        since = None
        for frame, inside in path:
            since = (frame if since is None else since) if inside else None
            if since is not None and frame - since == round(0.2 * generator.FPS):  # 0.2 s after the visit began
                truth.append(frame)
    assert truth and len(dwelling) == len(truth), (dwelling, truth)
    assert all(abs(a - b) <= 3 for a, b in zip(sorted(e["frame"] for e in dwelling), sorted(truth)))
    entries = {e["track_id"]: e["time"] for e in events if e["direction"] == "entered"}
    # the stay so far, at the first frame the track is seen with 0.2 s or more inside (one hidden behind another
    # for a frame or two is seen there later)
    assert all(e["seconds_inside"] >= 0.2 - 1e-9 and e["seconds_inside"] == pytest.approx(e["time"] - entries[e["track_id"]])
               for e in dwelling)
    counts = json.loads((out / COUNTS_JSON).read_text())
    assert counts["zones"][shape.name]["dwelling"] == {"person": len(truth)}
    jsonschema.validate(counts, COUNTS)
    for event in events:
        jsonschema.validate(event, EVENT)


def test_the_tracks_score_against_the_ground_truth_with_py_motmetrics(tracked, crossing: Path) -> None:
    """The MOT file, read by py-motmetrics as MOTChallenge's format: one id per person, no switch (an
    independent scorer on the generated truth, not our numbers)."""
    import motmetrics as mm

    out, _ = tracked
    hypotheses = mm.io.loadtxt(str(out / "crossing.mot.txt"), fmt="mot15-2D")
    truth = mm.io.loadtxt(str(crossing / "gt" / "gt.txt"), fmt="mot16")
    shown = truth[(truth["ClassId"] == 1) & (truth["Visibility"] >= generator.MIN_VISIBLE)]
    accumulator = mm.MOTAccumulator(auto_id=False)
    for frame in range(1, FRAMES + 1):
        people = shown.loc[frame] if frame in shown.index.get_level_values(0) else shown.iloc[:0]
        found = hypotheses.loc[frame] if frame in hypotheses.index.get_level_values(0) else hypotheses.iloc[:0]
        overlap = _iou(people[["X", "Y", "Width", "Height"]].to_numpy(), found[["X", "Y", "Width", "Height"]].to_numpy())
        # motmetrics' iou_matrix calls np.asfarray, gone in NumPy 2: its distance (1 - IoU, none below 0.5) here
        accumulator.update(people.index.tolist(), found.index.tolist(), np.where(overlap >= 0.5, 1 - overlap, np.nan),
                           frameid=frame)
    summary = mm.metrics.create().compute(accumulator, metrics=["num_switches", "idf1", "mota", "num_unique_objects"])
    assert int(summary["num_unique_objects"].iloc[0]) == 4
    assert int(summary["num_switches"].iloc[0]) == 0
    assert float(summary["idf1"].iloc[0]) > 0.8 and float(summary["mota"].iloc[0]) > 0.6


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) box of *a* with every one of *b*."""
    a, b = a.reshape(-1, 4).astype(float), b.reshape(-1, 4).astype(float)
    width = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    return inter / (a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter)


def test_every_output_follows_its_schema(tracked, crossing: Path) -> None:
    out, _ = tracked
    records = json.loads((out / "detections.json").read_text())
    assert len(records) == FRAMES
    for index, record in enumerate(records):
        jsonschema.validate(record, RECORD)
        assert record["source"] == str(crossing.parent / "crossing.avi") and record["frame"] == index
        assert record["time"] == pytest.approx(index / generator.FPS) and (record["width"], record["height"]) == generator.SIZE
    ids = [d["track_id"] for r in records for d in r["detections"] if d["track_id"] is not None]
    assert len(set(ids)) >= 4 and all(len({d["track_id"] for d in r["detections"]} - {None})
                                      == sum(d["track_id"] is not None for d in r["detections"]) for r in records)
    rows = [line.split(",") for line in (out / "crossing.mot.txt").read_text().splitlines()]
    tracked_boxes = [(r["frame"] + 1, d["track_id"], d["box"]) for r in records for d in r["detections"] if d["track_id"]]
    assert len(rows) == len(tracked_boxes) and all(len(row) == 10 and row[7:] == ["-1"] * 3 for row in rows)
    for row, (frame, track, (x1, y1, x2, y2)) in zip(rows, tracked_boxes):
        assert (int(row[0]), int(row[1])) == (frame, track)
        assert [float(v) for v in row[2:6]] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.011)
    counts = json.loads((out / COUNTS_JSON).read_text())
    jsonschema.validate(counts, COUNTS)
    events = [json.loads(line) for line in (out / EVENTS_JSONL).read_text().splitlines()]
    for event in events:
        jsonschema.validate(event, EVENT)
    # the events add up to the counts, and each happened to a track the records hold in that frame
    for kind, keys in (("line", ("in", "out")), ("zone", ("entered", "exited"))):
        for name, table in counts[kind + "s"].items():
            for key in keys:
                assert sum(e[kind] == name and e["direction"] == key for e in events if kind in e) == sum(table[key].values())
    for event in events:
        assert event["track_id"] in {d["track_id"] for d in records[event["frame"]]["detections"]}


def test_the_annotated_video_shows_the_line_and_the_ids(tracked, crossing: Path) -> None:
    out, _ = tracked
    capture = cv2.VideoCapture(str(out / "crossing.mp4"))
    ok, frame = capture.read()
    assert ok
    top = frame[22:32, 318:323].reshape(-1, 3).astype(int)  # on the door line, above everyone's head
    assert np.abs(top - LINE_COLOR).max(axis=1).min() < 40
    plain = cv2.VideoCapture(str(crossing.parent / "crossing.avi")).read()[1]
    assert np.abs(frame.astype(int) - plain.astype(int)).mean() > 1  # drawn on


def test_the_python_api_gives_the_ids_and_counts_of_the_command(tracked, crossing: Path, expected: dict, model) -> None:
    out, _ = tracked
    records = json.loads((out / "detections.json").read_text())
    door = LineCounter("door", *parse_line(expected["shapes"]["lines"][0]).in_pixels(*generator.SIZE))
    middle = ZoneCounter("middle", parse_zone(expected["shapes"]["zones"][0]).in_pixels(*generator.SIZE))
    frames = list(darknet_py.track(model, crossing.parent / "crossing.avi", classes=(0,)))
    assert len(frames) == FRAMES
    for index, (dets, record) in enumerate(zip(frames, records)):
        assert [None if t < 0 else t for t in dets.track_ids.tolist()] == [d["track_id"] for d in record["detections"]]
        door.update(dets, index)
        middle.update(dets, index)
    assert counts_of([door, middle]) == json.loads((out / COUNTS_JSON).read_text())
    reader = cv2.VideoCapture(str(crossing.parent / "crossing.avi"))
    for (image, dets), alone in zip(darknet_py.track(model, crossing.parent / "crossing.avi", classes=(0,),
                                                     with_frames=True), frames):  # the pixels each frame came from
        assert np.array_equal(image, reader.read()[1]) and np.array_equal(dets.track_ids, alone.track_ids)


def test_tracking_a_ray_runs_records_on_the_driver_gives_the_same_ids(tracked, crossing: Path, expected: dict,
                                                                    tmp_path: Path) -> None:
    """What `detect --ray --track` does once the shards are merged: the untracked records (as the actors write
    them) tracked on the driver give the ids, counts and events of the run without --ray."""
    out, _ = tracked
    video = str(crossing.parent / "crossing.avi")
    records = json.loads((out / "detections.json").read_text())
    untracked = [{"source": r["source"], "width": r["width"], "height": r["height"],
                  "detections": [{k: v for k, v in d.items() if k != "track_id"} for d in r["detections"]],
                  "frame": r["frame"]} for r in records]
    (tmp_path / RESULT_FILE).write_text("".join(json.dumps(r) + "\n" for r in reversed(untracked)))  # any order
    stage = TrackingStage(lines=[parse_line(expected["shapes"]["lines"][0])], zones=[parse_zone(expected["shapes"]["zones"][0])])
    sinks = [MotSink(tmp_path / "crossing.mot.txt"), CountsJsonSink(tmp_path / COUNTS_JSON, stage),
             EventsJsonlSink(tmp_path / EVENTS_JSONL)]
    assert track_records(tmp_path, video, stage, sinks, generator.FPS, model_names()) == FRAMES
    again = [json.loads(line) for line in (tmp_path / RESULT_FILE).read_text().splitlines()]
    assert again == records
    for name in ("crossing.mot.txt", COUNTS_JSON, EVENTS_JSONL):
        assert (tmp_path / name).read_text().strip() == (out / name).read_text().strip(), name


def model_names() -> list[str]:
    from darknet_py.format.names import default_names

    return default_names(80)


def test_the_live_stream_carries_track_ids_and_counts() -> None:
    stage = TrackingStage(lines=[parse_line("door=0.5,0,0.5,1")])
    image = np.zeros((100, 200, 3), np.uint8)
    with LiveView(LiveOptions(json_port=0)) as live:
        for frame, x in enumerate(np.arange(50.0, 130.0, 10.0)):  # one box walking right over the line
            dets = Detections(np.array([[x, 30, x + 20, 70]], np.float32), np.array([0.9], np.float32),
                              np.array([0], np.int64), ["person"], (200, 100))
            live.write(stage.process(Result("walk.mp4", frame, image, dets, fps=25.0)))
        shown = json.loads(live.feed.next_frame(0).json())
    assert shown["frame_id"] == 8 and shown["objects"][0]["track_id"] == 1
    assert shown["counts"] == {"lines": {"door": {"in": {}, "out": {"person": 1}}}, "zones": {}}


def test_tracking_keeps_a_live_frames_stream_time_and_capture_moment() -> None:
    """A camera's frame keeps its own clock through the tracking stage: its records' `time` and the lag /health
    reports come from it (frame / fps would be wrong for a stream that dropped frames or reconnected)."""
    stage = TrackingStage(lines=[parse_line("door=0.5,0,0.5,1")])
    dets = Detections(np.array([[50, 30, 70, 70]], np.float32), np.array([0.9], np.float32), np.array([0], np.int64),
                      ["person"], (200, 100))
    tracked = stage.process(Result("rtsp://cam/1", 3, np.zeros((100, 200, 3), np.uint8), dets, fps=25.0,
                                   stream_time=7.25, captured=1234.5))
    assert tracked.time == 7.25 and tracked.captured == 1234.5 and tracked.detections.track_ids is not None


def test_the_page_shows_the_counts(crossing: Path, expected: dict, tmp_path: Path) -> None:
    """--serve with --track: headless Chromium shows each line's and zone's counts beside the stream (with --dwell,
    the zones' dwelling too), and once the source has ended they are counts.json's, as /health and /metrics say."""
    from tests.chromium import Chromium, wait_for
    from tests.test_live import LiveRun

    out = tmp_path / "out"
    shapes = ["--line", expected["shapes"]["lines"][0], "--zone", expected["shapes"]["zones"][0]]
    run = LiveRun(str(crossing.parent / "crossing.avi"), *_model_args(), "--classes", "0", "--track", *shapes,
                  "--dwell", "0.2", "--serve", "0", "--keep-serving", "--no-save", "--output", str(out))
    try:
        base = run.url("live view")
        with Chromium(tmp_path / "chromium") as browser:
            browser.goto(base)
            rows = browser.evaluate(wait_for(
                "document.getElementById('state').className === 'finished' && !document.getElementById('counts').hidden",
                "[...document.querySelectorAll('#counts tbody tr')].map(tr => [...tr.children].map(td => td.textContent))"))
        # the source has ended (the page says so): /health and /metrics hold the final counts
        with urllib.request.urlopen(base + "health", timeout=60) as reply:
            health = json.loads(reply.read())
        with urllib.request.urlopen(base + "metrics", timeout=60) as reply:
            scraped = reply.read().decode()
    finally:
        code = run.finish(interrupt=True)
    assert code in (0, 130), run.stderr()
    counts = json.loads((out / COUNTS_JSON).read_text())
    (source,) = health["sources"]
    assert source["counts"] == counts and source["inside"]["middle"] == {}
    samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
               for family in text_string_to_metric_families(scraped) for sample in family.samples}
    name = source["source"]
    expected_samples = {("darknet_py_line_crossings_total", (("class", label), ("direction", direction),
                                                             ("line", "door"), ("source", name))): n
                        for direction in ("in", "out") for label, n in counts["lines"]["door"][direction].items()}
    expected_samples |= {("darknet_py_zone_transitions_total", (("class", label), ("direction", direction),
                                                                ("source", name), ("zone", "middle"))): n
                         for direction in ("entered", "exited", "dwelling")
                         for label, n in counts["zones"]["middle"][direction].items()}
    expected_samples[("darknet_py_zone_inside", (("class", "person"), ("source", name), ("zone", "middle")))] = 0
    counted = {key: value for key, value in samples.items() if key[0].startswith(("darknet_py_line_",
                                                                                   "darknet_py_zone_"))}
    assert counted == expected_samples and expected_samples
    door, middle = counts["lines"]["door"], counts["zones"]["middle"]
    assert rows == [["door", str(sum(door["in"].values())), str(sum(door["out"].values())), "", ""],
                    ["middle", str(sum(middle["entered"].values())), str(sum(middle["exited"].values())), "0",
                     str(sum(middle["dwelling"].values()))]]
    assert sum(middle["dwelling"].values()) == 4  # the ground truth: four people each stay 0.36 s or more
    assert rows[0][1:3] == ["2", "2"]  # everyone has left the zone by the last frame


@pytest.mark.timeout(300)
def test_a_killed_run_leaves_counts_json_with_every_event_of_events_jsonl(crossing: Path, expected: dict, tracked,
                                                                          tmp_path: Path) -> None:
    """SIGKILL (no handler runs) at frame 30 of 48: counts.json holds the counts of the events written by then, which
    are the finished run's events of those frames, and the MOT file the finished run's lines of those frames."""
    out = tmp_path / "killed"
    shapes = ["--line", expected["shapes"]["lines"][0], "--zone", expected["shapes"]["zones"][0]]
    command = [sys.executable, "-m", "darknet_py.cli", "detect", str(crossing.parent / "crossing.avi"), *_model_args(),
               "--classes", "0", "--track", *shapes, "--save-mot", "--no-save", "--output", str(out)]
    kill_at(command, "frames-detected 30")  # held there: frames 0..29 are written
    mot = (out / "crossing.mot.txt").read_text().splitlines()
    finished_mot = (tracked[0] / "crossing.mot.txt").read_text().splitlines()
    assert mot == [line for line in finished_mot if int(line.split(",")[0]) <= 30] and mot  # MOT frames count from 1
    written = [json.loads(line) for line in (out / EVENTS_JSONL).read_text().splitlines()]
    finished = [json.loads(line) for line in (tracked[0] / EVENTS_JSONL).read_text().splitlines()]
    assert written == [event for event in finished if event["frame"] < 30] and written
    folded = {"lines": {"door": {"in": {}, "out": {}}}, "zones": {"middle": {"entered": {}, "exited": {}}}}
    for event in written:
        kind, name = ("lines", event["line"]) if "line" in event else ("zones", event["zone"])
        table = folded[kind][name][event["direction"]]
        table[event["name"]] = table.get(event["name"], 0) + 1
    counts = json.loads((out / COUNTS_JSON).read_text())
    assert counts["lines"] == folded["lines"]
    assert {name: {k: v for k, v in zone.items() if k != "max_inside"} for name, zone in counts["zones"].items()} \
        == folded["zones"]


def test_line_directions_ends_and_wobble() -> None:
    """`in` is from the left of P1→P2 to its right with y down: for a line drawn left to right, downwards.
    Walking round an end is no crossing; a centre wobbling on the line is counted once."""
    line = LineCounter("l", (100, 100), (300, 100))
    paths = {1: [(200, 50), (200, 90), (200, 110), (200, 150)],  # down through the middle: in
             2: [(250, 150), (250, 120), (250, 60)],  # up: out
             3: [(350, 50), (350, 150), (50, 150)],  # round the end: nothing
             4: [(150, 80), (150, 100.5), (150, 99.5), (150, 100.5), (150, 130)]}  # on the line, then down: one in
    for frame in range(5):
        tracks = [(t, p[frame]) for t, p in paths.items() if frame < len(p)]
        boxes = np.array([[x - 5, y - 5, x + 5, y + 5] for _, (x, y) in tracks], np.float32)
        line.update(Detections(boxes, np.full(len(tracks), 0.9, np.float32), np.zeros(len(tracks), np.int64), ["person"],
                               (400, 200), track_ids=np.array([t for t, _ in tracks], np.int64)), frame)
    assert line.counts == {"in": {"person": 2}, "out": {"person": 1}}
    assert repr(line) == "LineCounter(l in 2 person, out 1 person)"  # as the command line's counts line says it


def _frame(tracks: list[tuple[int, tuple[float, float, float, float], list[tuple[int, float]]]],
           names=("person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck")) -> Detections:
    """A tracked frame: (track id, box xyxy, [(class id, score), …]) per track, a row per label as darknet lists a box
    it gives several classes."""
    rows = [(track, box, class_id, score) for track, box, labels in tracks for class_id, score in labels]
    return Detections(np.array([r[1] for r in rows], np.float32).reshape(-1, 4), np.array([r[3] for r in rows], np.float32),
                      np.array([r[2] for r in rows], np.int64), list(names), (640, 360),
                      track_ids=np.array([r[0] for r in rows], np.int64))


def test_a_car_wobbling_on_the_line_in_stop_and_go_traffic_is_not_counted() -> None:
    """car_traffic_small.mp4's van at the line (an exploratory run's find): its centre 217.9, 215.8, 214.9, 217.2,
    229, 214.9, 225.6 px about a line at y = 216, its box 125-163 px high as it is hidden and seen; the 1-pixel margin
    counted it out, in, out, in. A car first detected just above the line, then driving over it, counts once."""
    wobble = [(217.9, 125), (215.8, 129), (214.9, 139), (217.2, 148), (229.0, 163), (214.9, 144), (225.6, 162)]
    over = [(211.0, 88), (217.0, 90), (225.0, 94), (240.0, 97)]  # first seen 5 px above the line
    through = [(150.0 + 10 * i, 80) for i in range(14)]  # from 66 px above to 64 px below
    line = LineCounter("road", (192, 216), (640, 216))
    events = []
    for frame in range(len(through)):
        tracks = [(track, (x - 60, y - h / 2, x + 60, y + h / 2), [(2, 0.9)])
                  for track, x, path in ((21, 560, wobble), (33, 450, over), (5, 300, through)) if frame < len(path)
                  for y, h in [path[frame]]]
        events += line.update(_frame(tracks), frame)
    assert [(e.track_id, e.direction) for e in events] == [(33, "in"), (5, "in")]
    assert line.counts == {"in": {"car": 2}, "out": {}}


def test_a_track_is_counted_under_its_own_class_not_its_box_of_the_moment() -> None:
    """darknet lists a box under each class above the threshold (car 0.62 and truck 0.31); the detector calls the car a
    truck in the frame it crosses. Counted once, as a car, in the line's and the zone's counts alike."""
    line = LineCounter("road", (0, 200), (640, 200))
    zone = ZoneCounter("lot", [(0, 150), (640, 150), (640, 360), (0, 360)])
    events = []
    for frame, y in enumerate(range(100, 300, 20)):
        labels = [(7, 0.55)] if y == 220 else [(2, 0.62), (7, 0.31)]  # the crossing frame: truck alone
        dets = _frame([(1, (280, y - 30, 360, y + 30), labels)])
        events += line.update(dets, frame) + zone.update(dets, frame)
    assert [(e.kind, e.direction, e.name, e.class_id) for e in events] == [("zone", "entered", "car", 2),
                                                                         ("line", "in", "car", 2)]
    assert line.counts == {"in": {"car": 1}, "out": {}}
    assert zone.counts["max_inside"] == {"car": 1} and zone.inside == {"car": 1}


def test_a_track_counted_once_keeps_that_class_for_its_later_counts() -> None:
    """The vote went on after a count: a track counted in as a truck, then seen as a car for longer, was counted out
    as a car (and in the zone, entered a truck and exited a car)."""
    line = LineCounter("road", (0, 200), (640, 200))
    zone = ZoneCounter("lot", [(0, 150), (640, 150), (640, 360), (0, 360)])
    path = [(100, 7), (140, 7), (180, 7), (220, 7)] + [(260, 2)] * 6 + [(220, 2), (180, 2), (140, 2), (100, 2)]
    events = []
    for frame, (y, class_id) in enumerate(path):
        dets = _frame([(1, (280, y - 30, 360, y + 30), [(class_id, 0.9)])])
        events += line.update(dets, frame) + zone.update(dets, frame)
    assert [(e.direction, e.name) for e in events] == [("entered", "truck"), ("in", "truck"), ("out", "truck"),
                                                       ("exited", "truck")]
    assert zone.counts["max_inside"] == {"truck": 1}


def test_a_line_with_an_end_that_is_no_number_is_refused() -> None:
    for start, end, margin in [((float("nan"), 0), (0.5, 1), 1.0), ((0, 0), (float("inf"), 1), 1.0),
                               ((0, 0), (10, 10), -1.0)]:
        with pytest.raises(InputError, match=r"^line 'd': "):
            LineCounter("d", start, end, margin=margin)


def test_a_source_after_track_is_said_to_be_one(crossing: Path, tmp_path: Path) -> None:
    """`detect --track VIDEO` gave VIDEO to --track as its tracker, then argparse said 'the following arguments are
    required: source'."""
    video = str(crossing.parent / "crossing.avi")
    code, err = _detect("--track", video, "--output", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "out").exists()
    assert err.startswith(f"error: argument --track: unknown tracker {video!r}; use one of bytetrack, ocsort, sort "
                          f"({video!r} looks like a SOURCE: a word after --track is its TRACKER; put SOURCE first"), err


@pytest.mark.timeout(300)
def test_a_pixel_line_that_one_source_of_several_cannot_hold_stops_the_run_before_any_output(crossing: Path,
                                                                                           tmp_path: Path) -> None:
    """Among several sources, the line was checked at each source's first frame: the run stopped after another
    source's first frame, leaving its outputs half-written (and counts.json holding the refused line)."""
    small = tmp_path / "small.avi"
    reader = cv2.VideoCapture(str(crossing.parent / "crossing.avi"))
    writer = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"MJPG"), generator.FPS, (320, 180))
    for _ in range(5):
        writer.write(cv2.resize(reader.read()[1], (320, 180), interpolation=cv2.INTER_AREA))
    writer.release()
    code, err = _detect(str(crossing.parent / "crossing.avi"), str(small), *_model_args(), "--track", "--line",
                        "l=0,0,600,300", "--save-json", "--output", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {small}: --line l=0,0,600,300: the point (600, 300) is outside the 320x180 frame"), err
    assert not (tmp_path / "out").exists()


def test_sequence_folders_read_as_one_video(crossing: Path) -> None:
    sequence = ImageSequence.open(str(crossing))  # a MOTChallenge folder: img1/ and seqinfo.ini
    assert (sequence.stem, sequence.fps, len(sequence.paths)) == ("crossing", generator.FPS, FRAMES)
    capture = sequence.capture()
    assert (capture.size, capture.get(cv2.CAP_PROP_FRAME_COUNT)) == (generator.SIZE, FRAMES)
    ok, first = capture.read()
    assert ok and np.array_equal(first, cv2.imread(str(crossing / "img1" / "000001.jpg")))


def test_supervision_round_trip() -> None:
    dets = Detections(np.array([[1, 2, 30, 40], [5, 6, 50, 60]], np.float32), np.array([0.9, 0.5], np.float32),
                      np.array([0, 2], np.int64), ["person", "bicycle", "car"], (64, 64), track_ids=np.array([3, -1]))
    theirs = dets.to_supervision()
    assert theirs.tracker_id.tolist() == [3, -1] and list(theirs.data["class_name"]) == ["person", "car"]
    back = Detections.from_supervision(theirs[::-1], names=dets.names, image_size=(64, 64))  # sorted by score again
    assert np.array_equal(back.boxes, dets.boxes) and back.track_ids.tolist() == [3, -1] and back.labels == dets.labels


def test_supervision_missing_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "supervision", None)  # `import supervision` now fails as if not installed
    dets = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    with pytest.raises(InputError, match=r"pip install supervision"):
        dets.to_supervision()


@pytest.mark.parametrize("flags, message", [
    (["--line", "door=10,10,10,10"], "error: --line door=10,10,10,10: the line has zero length"),
    (["--line", "door=1,2,3"], "error: --line door=1,2,3: the coordinates must be finite x,y pairs"),
    (["--zone", "pen=0,0,100,100"], "error: --zone pen=0,0,100,100: a zone needs at least 3 points"),
    (["--zone", "pen=0,0,100,100,100,0,0,100"], "error: --zone pen=0,0,100,100,100,0,0,100: the zone's sides cross"),
    (["--zone", "pen=0,0,50,50,100,100"], "error: --zone pen=0,0,50,50,100,100: the zone has no area"),
    (["--line", "door=700,0,700,100"], "error: --line door=700,0,700,100: the point (700, 0) is outside the 640x360 frame"),
    (["--line", "a=0.5,0,0.5,1", "--line", "a=0,0.5,1,0.5"], "error: --line a=0,0.5,1,0.5: another --line is named 'a'"),
    (["--line", "a=0.5,0,0.5,1", "--zone", "a=0,0,1,0,1,1"], "error: --zone a=0,0,1,0,1,1: a --line is named 'a'"),
    (["--track", "kalman"], "error: argument --track: unknown tracker 'kalman'; use one of bytetrack, ocsort, sort ("),
    (["--save-mot"], "error: --save-mot needs --track"),
    (["--dwell", "2"], "error: --dwell 2 counts long stays in zones: give a --zone"),
    (["--dwell", "0", "--zone", "pen=0,0,0,1,1,1"], "error: --dwell 0: give the seconds a stay in a zone takes"),
    (["--sequence"], "error: --sequence reads a folder (or glob) of images as a video's frames"),
])
def test_bad_input_is_one_line_and_writes_nothing(crossing: Path, tmp_path: Path, flags: list[str], message: str) -> None:
    track = [] if flags[0] in ("--track", "--save-mot") else ["--track"]
    code, err = _detect(str(crossing.parent / "crossing.avi"), *_model_args(), "--output", str(tmp_path / "out"),
                        *track, *flags)
    assert code == 2 and err.strip().splitlines() == [err.strip()] and err.startswith(message), err
    assert not (tmp_path / "out").exists()


def test_track_on_separate_photos_needs_a_video_or_a_sequence(tmp_path: Path) -> None:
    code, err = _detect(str(IMAGES), "--track", "--output", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"error: --track follows objects from frame to frame: it needs a video, a stream, or a "
                           f"folder of frames given with --sequence (the source is {len(list(IMAGES.glob('*.jpg')))} "
                           "separate image(s))")


def test_track_on_a_video_that_gives_no_frame_says_why(tmp_path: Path, model) -> None:
    """darknet_py.track() on a video cut short before its first picture yielded nothing, silently; it now raises what
    the command line says."""
    cut = tmp_path / "cut.avi"
    cut.write_bytes(shared_path(VIDEO / "pedestrians.avi").read_bytes()[:30000])  # its header, part of a picture
    with pytest.raises(darknet_py.InputError, match=rf"^no frame of {re.escape(str(cut))} could be decoded: "):
        list(darknet_py.track(model, cut))


def test_track_without_the_extra_says_how_to_install(monkeypatch, crossing: Path, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "trackers", None)  # `import trackers` now fails as if not installed
    code, err = _detect(str(crossing.parent / "crossing.avi"), "--track", "--output", str(tmp_path / "out"))
    assert code == 2
    assert err.strip() == "error: --track needs the `trackers` library, which is not installed: pip install 'darknet-engine[track]'"
    assert not (tmp_path / "out").exists()


def test_counting_needs_tracked_detections() -> None:
    dets = Detections(np.zeros((1, 4), np.float32), np.ones(1, np.float32), np.zeros(1, np.int64))
    with pytest.raises(InputError, match="counting needs tracked detections"):
        LineCounter("l", (0, 0), (1, 1)).update(dets, 0)
