"""fetch_gated (darknet_py.pipeline.fetch_gated): the rows above the objectness threshold picked with fixed-size device
work (topk) and one copy, against `gate`, which it stands in for on CUDA. Run here on the CPU (the same tensor ops;
pinned memory and the wait are CUDA's alone; tests/test_cuda.py runs detect() both ways on a GPU).

The same rows in the same order with the same floats as `gate`, bit for bit: on yolov4-tiny's candidates for real
photos and a video frame in one batch (counts differ per image) at detect's 0.25 and map's 0.005, on ties at and
around the threshold, on images with no row above it; None where `cap` is too small, the count reported so the next
cap holds it; None past the byte limit; None for NaN objectness, which topk ranks first.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py.pipeline import fetch_gated as fetch_gated_module
from darknet_py.pipeline.backend import Gated, gate
from darknet_py.pipeline.fetch_gated import MAX_CAP, MIN_CAP, fetch_gated, next_cap
from darknet_py.pipeline.preprocess import prepare
from tests.conftest import IMAGES, VIDEO, official, shared_path

pytestmark = pytest.mark.timeout(300)


def _same(expected: Gated, got: Gated) -> None:
    for name, want, have in zip(Gated._fields, expected, got):
        assert have.dtype == want.dtype and have.shape == want.shape, name
        assert torch.equal(have, want), name


@pytest.fixture(scope="module")
def street_candidates():
    """yolov4-tiny's decoded candidates for three photos and a frame of pedestrians.avi, one batch."""
    model = darknet_py.load(*official("yolov4-tiny"))
    capture = cv2.VideoCapture(str(shared_path(VIDEO / "pedestrians.avi")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    images = [cv2.imread(str(shared_path(IMAGES / name))) for name in ("dog.jpg", "horses.jpg", "person.jpg")] + [frame]
    pixels = np.stack([prepare(image, model.width, model.height, False)[0] for image in images])
    with torch.inference_mode():
        return model.candidates(pixels)


@pytest.mark.parametrize("threshold", [0.25, 0.005])
def test_real_candidates_give_gates_rows(street_candidates, threshold: float) -> None:
    expected = gate(street_candidates, threshold)
    counts = np.bincount(expected.image_idx.numpy(), minlength=4)
    assert counts.min() >= 1 and len(set(counts.tolist())) > 1  # images with different numbers of rows
    fetched = fetch_gated(street_candidates, threshold, MAX_CAP)
    assert fetched.most_above == counts.max()
    _same(expected, fetched.gated)


def test_too_small_a_cap_falls_back_and_the_next_cap_holds_the_count(street_candidates) -> None:
    expected = gate(street_candidates, 0.005)
    most = int(np.bincount(expected.image_idx.numpy()).max())
    small = 64
    assert most > small  # map's threshold keeps more rows than that
    fetched = fetch_gated(street_candidates, 0.005, small)
    assert fetched.gated is None and fetched.most_above == most
    cap = next_cap(small, fetched.most_above)
    assert cap >= 2 * most and cap & (cap - 1) == 0
    _same(expected, fetch_gated(street_candidates, 0.005, cap).gated)


def test_ties_at_and_above_the_threshold() -> None:
    generator = torch.Generator().manual_seed(29)
    n, m, classes = 3, 500, 7
    objectness = torch.full((n, m), 0.25)  # at the threshold: not above it
    objectness[0, ::7] = 0.5  # many equal values above it
    objectness[1, 100:110] = torch.nextafter(torch.tensor(0.25), torch.tensor(1.0))  # the least float above it
    objectness[2, 3] = 0.9  # image 2: one row; the rest tie at the threshold
    boxes = torch.rand((n, m, 4), generator=generator) * 416
    scores = torch.rand((n, m, classes), generator=generator)
    candidates = (boxes, objectness, scores)
    fetched = fetch_gated(candidates, 0.25, MIN_CAP)
    assert fetched.most_above == len(range(0, m, 7))
    _same(gate(candidates, 0.25), fetched.gated)


def test_nothing_above_the_threshold() -> None:
    candidates = (torch.zeros((2, 40, 4)), torch.full((2, 40), 0.1), torch.zeros((2, 40, 80)))
    fetched = fetch_gated(candidates, 0.25, MIN_CAP)
    assert fetched.most_above == 0
    _same(gate(candidates, 0.25), fetched.gated)
    assert fetched.gated.scores.shape == (0, 80)


def test_more_bytes_than_the_limit_go_back_to_the_device_gate(street_candidates, monkeypatch) -> None:
    n, m, classes = street_candidates[2].shape
    expected = gate(street_candidates, 0.25)
    most = int(np.bincount(expected.image_idx.numpy()).max())
    monkeypatch.setattr(fetch_gated_module, "MAX_FETCH_BYTES", n * MIN_CAP * (4 + 1 + classes + 1) * 4 - 1)
    assert fetch_gated(street_candidates, 0.25, MIN_CAP) == (None, most)  # the count still reported
    monkeypatch.setattr(fetch_gated_module, "MAX_FETCH_BYTES", n * MIN_CAP * (4 + 1 + classes + 1) * 4)
    _same(expected, fetch_gated(street_candidates, 0.25, MIN_CAP).gated)


def test_nan_objectness_goes_back_to_the_device_gate() -> None:
    objectness = torch.tensor([[0.9, float("nan"), 0.1, 0.6]])
    candidates = (torch.zeros((1, 4, 4)), objectness, torch.ones((1, 4, 2)))
    assert fetch_gated(candidates, 0.25, MIN_CAP).gated is None  # topk ranks NaN first; gate drops it
    assert gate(candidates, 0.25).box_idx.tolist() == [0, 3]


def test_next_cap_grows_in_powers_of_two_within_its_bounds() -> None:
    assert next_cap(MIN_CAP, 0) == MIN_CAP
    assert next_cap(MIN_CAP, 129) == 512
    assert next_cap(4096, 3) == 4096  # never shrinks
    assert next_cap(MIN_CAP, 10 ** 9) == MAX_CAP
