"""NMS: darknet's box-by-box rule (do_nms_sort / diounms_sort) against a literal port of it, on every path
the fast implementation takes — the CPU's C loop for a few boxes, one overlap matrix and a scan, the
size-level grids with the round-based resolve, the bounded-memory tiles — including boxes darknet can never
match (empty, NaN, infinite)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from darknet_py.pipeline import nms
from darknet_py.pipeline.nms import batched_nms


def _darknet_overlap(a: np.ndarray, b: np.ndarray, kind: str, beta: float) -> np.ndarray:
    """src/box.c box_iou / box_diou(nms) of box a (xyxy) against boxes b (k, 4), in darknet's centre form, float32."""
    f = np.float32
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        ax, ay, aw, ah = f((a[0] + a[2]) / 2), f((a[1] + a[3]) / 2), f(a[2] - a[0]), f(a[3] - a[1])
        bx, by, bw, bh = ((b[:, 0] + b[:, 2]) / 2).astype(f), ((b[:, 1] + b[:, 3]) / 2).astype(f), b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        w = np.minimum(ax + aw / 2, bx + bw / 2) - np.maximum(ax - aw / 2, bx - bw / 2)
        h = np.minimum(ay + ah / 2, by + bh / 2) - np.maximum(ay - ah / 2, by - bh / 2)
        inter = np.where((w < 0) | (h < 0), f(0), w * h)
        union = aw * ah + bw * bh - inter
        iou = np.where((inter == 0) | (union == 0), f(0), inter / union)
        if kind != "diou":
            return iou
        cw = np.maximum(ax + aw / 2, bx + bw / 2) - np.minimum(ax - aw / 2, bx - bw / 2)
        ch = np.maximum(ay + ah / 2, by + bh / 2) - np.minimum(ay - ah / 2, by - bh / 2)
        c = cw * cw + ch * ch
        d = (ax - bx) * (ax - bx) + (ay - by) * (ay - by)
        return np.where(c == 0, iou, iou - np.power(d / c, beta).astype(f))


def _darknet_nms(boxes, scores, groups, thresh, kind, beta) -> list[int]:
    """do_nms_sort: boxes by score; each one not removed removes the later ones of its group above thresh."""
    order = np.argsort(-scores, kind="stable")
    removed = np.zeros(len(boxes), bool)
    kept = []
    for a, i in enumerate(order):
        if removed[i]:
            continue
        kept.append(int(i))
        later = order[a + 1:]
        removed[later[(groups[later] == groups[i]) & (_darknet_overlap(boxes[i], boxes[later], kind, beta) > thresh)]] = True
    return kept


def _random_case(rng, n: int, same_size: bool, groups: int):
    xy = rng.uniform(0, 1, (n, 2))
    wh = rng.uniform(0.005, 0.3, (n, 2)) ** rng.uniform(0.5, 2)
    if same_size:  # a grid-like crowd: one anchor's boxes
        wh[:] = wh[0]
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return boxes, rng.uniform(0, 1, n).astype(np.float32), rng.integers(0, groups, n)


@pytest.mark.parametrize("path", ["default", "torch-matrix", "grid", "tiles"])
def test_every_path_equals_darknets_loop(path: str, monkeypatch) -> None:
    # default: the C loop up to DENSE_MAX CPU boxes, the grid beyond; torch-matrix: the matrix as a GPU runs it
    if path == "torch-matrix":
        monkeypatch.setattr(nms, "use_kernel", False)
    if path in ("grid", "tiles"):
        monkeypatch.setattr(nms, "DENSE_MAX", 0)
    if path == "tiles":
        monkeypatch.setattr(nms, "MAX_PAIRS", 0)  # the grid gives up: the bounded-memory all-pairs path
        monkeypatch.setattr(nms, "BLOCK", 64)
    rng = np.random.default_rng(11)
    for trial in range(18):
        boxes, scores, groups = _random_case(rng, int(rng.integers(50, 600)), trial % 4 == 0, [1, 3, 20][trial % 3])
        if trial % 5 == 1:  # boxes darknet can never match: empty, inverted, NaN, infinite
            boxes[:4] = [[0.2, 0.2, 0.2, 0.5], [0.5, 0.5, 0.4, 0.6], [np.nan, 0, 1, 1], [-np.inf, 0, np.inf, 1]]
        thresh = float(rng.choice([0.3, 0.45, 0.6, 0.9]))
        kind, beta = [("iou", 0.6), ("diou", 0.6), ("diou", 0.9)][trial % 3]
        ours = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), thresh, kind, beta)
        assert ours.tolist() == _darknet_nms(boxes, scores, groups, thresh, kind, beta), (trial, thresh, kind)


def test_the_kernel_is_built() -> None:
    assert nms._kernel is not None


@pytest.mark.parametrize("kind, beta", [("iou", 0.6), ("diou", 0.6), ("diou", 0.9)])
def test_the_cpu_kernel_decides_as_the_tensor_matrix(kind: str, beta: float, monkeypatch) -> None:
    """The C loop the CPU runs for a few boxes against the overlap matrix a GPU runs: the same boxes kept, in the
    same order, on crowds of one box size, nested, empty and non-finite boxes, ties of score."""
    rng = np.random.default_rng(3)
    cases = []
    for trial in range(60):
        n = int(rng.integers(1, nms.DENSE_MAX + 1))
        boxes, scores, groups = _random_case(rng, n, trial % 3 == 0, [1, 2, 7][trial % 3])
        if n >= 6:
            boxes[:5] = [[0.2, 0.2, 0.2, 0.5], [0.5, 0.5, 0.4, 0.6], [np.nan, 0, 1, 1], [-np.inf, 0, np.inf, 1], [0, 0, 1e-30, 1e-30]]
            scores[1::7] = scores[0]  # ties: input order decides
        cases.append((boxes, scores, groups, float(rng.choice([0.3, 0.45, 0.7]))))
    for use in (True, False):
        monkeypatch.setattr(nms, "use_kernel", use)
        assert nms._on_host(torch.from_numpy(cases[0][0]), torch.from_numpy(cases[0][1]), 0.45) == use
        results = [batched_nms(*map(torch.from_numpy, (b, s, g)), t, kind, beta).tolist() for b, s, g, t in cases]
        if use:
            kernel = results
    assert kernel == results


def test_long_chains_resolve_exactly() -> None:
    """Boxes in a row, each overlapping the next, scores falling along the row: kept and removed alternate,
    and every round of the resolve can settle only the front of the chain."""
    n = 300
    x = np.arange(n, dtype=np.float32) * 0.2
    boxes = np.stack([x, np.zeros(n), x + 1, np.ones(n)], 1).astype(np.float32)  # IoU of neighbours 0.8/1.2 = 0.67
    scores = np.linspace(1, 0.5, n).astype(np.float32)
    groups = np.zeros(n, np.int64)
    for dense_max in (0, 1000):
        nms.DENSE_MAX, saved = dense_max, nms.DENSE_MAX
        try:
            ours = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.45)
        finally:
            nms.DENSE_MAX = saved
        assert ours.tolist() == _darknet_nms(boxes, scores, groups, 0.45, "iou", 0.6)


def test_thresholds_at_the_ends() -> None:
    boxes = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [0.01, 0, 1, 1]], dtype=torch.float32)
    scores, groups = torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3, dtype=torch.long)
    assert batched_nms(boxes, scores, groups, 1.0).tolist() == [0, 1, 2]  # IoU never exceeds 1
    assert batched_nms(boxes, scores, groups, 0.0).tolist() == [0]
    assert batched_nms(boxes[:0], scores[:0], groups[:0], 0.45).tolist() == []
    # below SPARSE_MIN_THRESH the grid would have to look everywhere: the tiles do it, still exactly
    rng = np.random.default_rng(5)
    many, s, g = _random_case(rng, 700, False, 2)
    got = batched_nms(torch.from_numpy(many), torch.from_numpy(s), torch.from_numpy(g), 0.02)
    assert got.tolist() == _darknet_nms(many, s, g, 0.02, "iou", 0.6)
