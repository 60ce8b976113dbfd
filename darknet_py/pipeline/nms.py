"""Per-class greedy NMS exactly as darknet does it, fast at any candidate count.

Overlap kinds (darknet src/box.c): "iou" (do_nms_sort, no nms_kind), "diou" with β:
IoU − (d²/c²)^β — greedynms uses β=0.6 (box_diou), diounms uses the cfg's beta_nms.
darknet's rule: boxes in score order; a box still standing removes every later box of its group it
overlaps by more than the threshold.

A trained network's few hundred boxes take one overlap matrix and a scan; on the CPU, up to DENSE_MAX
float32 boxes, darknet's own loop in C instead (_greedy_nms.c: the thirty-odd tensor calls of the matrix
cost more than its arithmetic). Dense candidates (darknet
map's 0.005 threshold, untrained or crowded images: tens of thousands) would make that matrix the
cost, while a box can only remove boxes near it and of similar size:
IoU > t needs the widths (and heights) within a factor t of each other and the centres closer than
(1 − t)·the larger side. So candidate pairs come from a grid per size level (`_grid_pairs`), their
overlap is computed exactly, and darknet's box-by-box rule is then resolved on those pairs all at
once (`_resolve`): a box is kept when every box that would remove it is itself removed, removed when
one of them is kept — repeated until every box is decided, which is the greedy result exactly.
Below SPARSE_MIN_THRESH (pairs barely constrained) the all-pairs path runs, in tiles of BLOCK boxes
with bounded memory.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

GREEDY_DIOU_BETA = 0.6  # darknet box_diou's exponent
BLOCK = 2048  # boxes per overlap tile of the all-pairs path: 16 MiB of float32, whatever the candidate count
DENSE_MAX = 256  # up to this many boxes one overlap matrix and a scan are cheapest
SPARSE_MIN_THRESH = 0.05  # below it nearly every intersecting pair counts: the all-pairs path
PAIR_CHUNK = 1 << 22  # candidate pairs examined at a time (memory bound of the grid path)
MAX_PAIRS = 1 << 25  # suppressing pairs held at most; beyond (near-identical boxes by the thousand): all-pairs path
_MARGIN = 1e-3  # the geometric bounds are loosened by this fraction of t: float rounding never drops a pair

try:  # built by setup.py where a compiler is; the tensor path decides the same without it
    from . import _greedy_nms as _kernel
except ImportError:  # pragma: no cover - depends on the install
    _kernel = None

use_kernel = True  # tests turn it off to compare with the tensor path


def pairwise_overlap(boxes: Tensor, kind: str = "iou", beta: float = GREEDY_DIOU_BETA, other: Tensor | None = None) -> Tensor:
    """boxes (K, 4) xyxy against other (L, 4), default boxes itself → (K, L) IoU, or DIoU when kind == "diou"."""
    other = boxes if other is None else other
    return overlap(boxes[:, None], other[None], kind, beta)


def overlap(a: Tensor, b: Tensor, kind: str = "iou", beta: float = GREEDY_DIOU_BETA) -> Tensor:
    """Elementwise (broadcasting) overlap of xyxy boxes a[..., 4] and b[..., 4], as darknet's box_iou / box_diou:
    0 when the boxes do not intersect or the union is empty."""
    x1, y1, x2, y2 = a.unbind(-1)
    u1, v1, u2, v2 = b.unbind(-1)
    area_a = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_b = (u2 - u1).clamp(min=0) * (v2 - v1).clamp(min=0)
    iw = (torch.min(x2, u2) - torch.max(x1, u1)).clamp(min=0)
    ih = (torch.min(y2, v2) - torch.max(y1, v1)).clamp(min=0)
    inter = iw * ih
    union = area_a + area_b - inter
    iou = torch.where((inter > 0) & (union > 0), inter / union.clamp(min=1e-12), torch.zeros_like(inter))
    if kind != "diou":
        return iou
    cw = torch.max(x2, u2) - torch.min(x1, u1)
    ch = torch.max(y2, v2) - torch.min(y1, v1)
    c = cw * cw + ch * ch
    d = ((x1 + x2) / 2 - (u1 + u2) / 2) ** 2 + ((y1 + y2) / 2 - (v1 + v2) / 2) ** 2
    penalty = torch.where(c > 0, (d / c.clamp(min=1e-12)).pow(beta), torch.zeros_like(c))
    return iou - penalty


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str = "iou",
                beta: float = GREEDY_DIOU_BETA) -> Tensor:
    """Indices of kept boxes, highest score first (ties: input order). Boxes only remove boxes of their group.

    boxes (N, 4) xyxy, scores (N,), groups (N,) integer: one group per (image, class).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if _on_host(boxes, scores, threshold):
        return _host_keep(boxes, scores, groups, threshold, kind, beta)
    order = scores.argsort(descending=True, stable=True)
    if threshold >= 1:  # IoU and DIoU never exceed 1: nothing is removed
        return order
    boxes, groups = boxes[order], groups[order]
    if len(order) <= DENSE_MAX:  # one matrix and one scan: the fewest operations for a trained network's boxes
        suppresses = (pairwise_overlap(boxes, kind, beta) > threshold) & (groups[:, None] == groups[None])
        return order[_scan(suppresses.triu(1), torch.ones(len(order), dtype=torch.bool))]
    pairs = _grid_pairs(boxes, groups, threshold, kind, beta) if threshold >= SPARSE_MIN_THRESH else None
    if pairs is None:
        return order[_tiled_scan(boxes, groups, threshold, kind, beta)]
    return order[_resolve(len(order), *pairs)]


# -- a few boxes on the CPU: the C kernel --------------------------------------------------------------------
def _on_host(boxes: Tensor, scores: Tensor, threshold: float) -> bool:
    """Whether the dense case runs in _greedy_nms.c: the kernel built, float32 CPU boxes, few enough for one
    matrix, scores without NaN (the kernel's sort assumes none). A trained network's boxes after the thresholds
    are a few dozen, and each of the thirty-odd tensor calls of the matrix path costs microseconds of dispatch
    (yolov4-tiny, dog.jpg, 2 cores: 0.3 ms of detect() after the network)."""
    return (use_kernel and _kernel is not None and boxes.device.type == "cpu" and boxes.dtype == torch.float32
            and scores.dtype == torch.float32 and len(boxes) <= DENSE_MAX and threshold < 1
            and not boxes.requires_grad and not np.isnan(scores.numpy()).any())


def _host_keep(boxes: Tensor, scores: Tensor, groups: Tensor, threshold: float, kind: str, beta: float) -> Tensor:
    kept = np.empty(len(boxes), np.int64)
    count = _kernel.keep(np.ascontiguousarray(boxes.numpy()), np.ascontiguousarray(scores.numpy()),
                         np.ascontiguousarray(groups.numpy(), np.int64), threshold, kind == "diou", beta, kept)
    return torch.from_numpy(kept[:count])


# -- suppressing pairs (src before dst in score order, same group, overlap above the threshold) ----------
def _grid_pairs(boxes: Tensor, groups: Tensor, threshold: float, kind: str, beta: float
                ) -> tuple[Tensor, Tensor] | None:
    """Suppressing pairs found through grids per size level; None when they would exceed MAX_PAIRS.

    A box of width w and height h sits at level (floor(log2 w), floor(log2 h)) on a grid of cells
    (1 − t)·2^(level+1) per axis. Overlap above t needs both sides within a factor t (levels at most
    ceil(log2(1/t)) apart) and centres closer than (1 − t)·the larger side, per axis: less than a cell
    of the larger box's level. So each box looks up, at its own level and the levels near it, the few
    cells around its centre; a pair of levels is looked up from one side only. Boxes that cannot
    overlap anything (empty, non-finite) take part in no pair, as in darknet.
    """
    device = boxes.device
    t = threshold * (1 - _MARGIN)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    members = (torch.isfinite(boxes).all(1) & (width > 0) & (height > 0)).nonzero().squeeze(1)
    if len(members) < 2:
        return _empty_pairs(device)
    w, h = width[members].double(), height[members].double()
    level_x = torch.frexp(w)[1].long() - 1  # width in [2^level, 2^(level+1))
    level_y = torch.frexp(h)[1].long() - 1
    cx = ((boxes[members, 0] + boxes[members, 2]) / 2).double()
    cy = ((boxes[members, 1] + boxes[members, 3]) / 2).double()
    group = groups[members].long()

    def level_key(lx: Tensor, ly: Tensor) -> Tensor:  # float exponents lie in -149..128
        return (group * 512 + (lx + 256)) * 512 + (ly + 256)

    own = level_key(level_x, level_y)
    known = torch.unique(own)
    gx, gy = _cells(cx, level_x, t), _cells(cy, level_y, t)
    table_keys = _key(torch.searchsorted(known, own), gx, gy)
    table_ids = table_keys.argsort()
    table_keys = table_keys[table_ids]
    reach = math.ceil(math.log2(1 / t))
    src_parts, dst_parts, held = [], [], 0
    for ux in range(reach + 1):
        for uy in range(-reach if ux else 0, reach + 1):
            wanted = level_key(level_x + ux, level_y + uy)
            slot = torch.searchsorted(known, wanted).clamp(max=len(known) - 1)
            present = known[slot] == wanted
            if ux or uy:  # the other level's sides must still be within a factor t of the asker's
                present &= w > t * torch.pow(2.0, level_x + ux)
                present &= (h > t * torch.pow(2.0, level_y + uy)) if uy >= 0 else (h * t < torch.pow(2.0, level_y + uy + 1))
            askers = present.nonzero().squeeze(1)
            if len(askers) == 0:
                continue
            # the asker's cell on the other level's grid; the larger side sets the reach in cells
            ax = _cells(cx[askers], level_x[askers] + ux, t)
            ay = _cells(cy[askers], level_y[askers] + uy, t)
            ry = 1 << max(0, -uy)  # ux >= 0: the other level is at least as wide
            columns = torch.arange(-1, 2, device=device)
            low = _key(slot[askers, None], ax[:, None] + columns, ay[:, None] - ry).reshape(-1)
            high = _key(slot[askers, None], ax[:, None] + columns, ay[:, None] + ry).reshape(-1)
            start = torch.searchsorted(table_keys, low, side="left")
            count = torch.searchsorted(table_keys, high, side="right") - start
            askers = askers.repeat_interleave(len(columns))
            hit = count > 0
            for a, b in _expand(askers[hit], start[hit], count[hit], table_ids):
                if ux == 0 and uy == 0:  # one level: every pair is found from both sides
                    a, b = a[a < b], b[a < b]
                a, b = members[a], members[b]
                src, dst = torch.min(a, b), torch.max(a, b)
                over = overlap(boxes[src], boxes[dst], kind, beta) > threshold
                src_parts.append(src[over])
                dst_parts.append(dst[over])
                held += len(src_parts[-1])
                if held > MAX_PAIRS:
                    return None
    if not src_parts:
        return _empty_pairs(device)
    return torch.cat(src_parts), torch.cat(dst_parts)


_CELL_LIMIT = 1 << 20  # cell indices clamp to ±2^20: clamping is monotone, so neighbours stay neighbours
_SPAN = 2 * _CELL_LIMIT + 16


def _cells(centre: Tensor, level: Tensor, t: float) -> Tensor:
    """Grid cell of each centre (float64) on its level's grid of cells (1 − t)·2^(level+1)."""
    cell = (1 - t) * torch.pow(2.0, (level + 1).double())
    return torch.floor(centre / cell).clamp(-_CELL_LIMIT, _CELL_LIMIT).long()


def _key(slot: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """int64 key ordering entries by (group-level slot, cell x, cell y); y may reach past the clamp by a few."""
    return (slot * _SPAN + gx + _CELL_LIMIT + 4) * _SPAN + gy + _CELL_LIMIT + 8


def _expand(askers: Tensor, start: Tensor, count: Tensor, table_ids: Tensor):
    """(asker, table entry) for every entry of every looked-up range, about PAIR_CHUNK pairs at a time."""
    ends = torch.cumsum(count, 0)
    first = 0
    while first < len(count):
        done = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(torch.searchsorted(ends, torch.tensor(done + PAIR_CHUNK, device=ends.device),
                                                     side="right")))
        c = count[first:last]
        offset = torch.arange(int(ends[last - 1]) - done, device=c.device) - (torch.cumsum(c, 0) - c).repeat_interleave(c)
        yield askers[first:last].repeat_interleave(c), table_ids[start[first:last].repeat_interleave(c) + offset]
        first = last


def _empty_pairs(device: torch.device) -> tuple[Tensor, Tensor]:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return empty, empty


# -- darknet's rule over the pairs ------------------------------------------------------------------------
_UNKNOWN, _KEPT, _REMOVED = 0, 1, 2


def _resolve(n: int, src: Tensor, dst: Tensor) -> Tensor:
    """Greedy NMS over suppressing pairs (src before dst in score order): indices of kept boxes, ascending.

    Each round decides every box whose removers are all decided: kept when all of them are removed,
    removed when one is kept. The first undecided box always qualifies, so rounds end; in practice
    a handful of rounds settle tens of thousands of boxes.
    """
    state = torch.zeros(n, dtype=torch.uint8, device=src.device)
    while True:
        remover = state[src]
        state[dst[remover == _KEPT]] = _REMOVED
        blocked = torch.zeros(n, dtype=torch.bool, device=src.device)
        blocked[dst[remover == _UNKNOWN]] = True
        state[(state == _UNKNOWN) & ~blocked] = _KEPT
        live = (state[dst] == _UNKNOWN) & (state[src] != _REMOVED)
        if not bool(live.any()):  # every box still undecided has lost all its removers
            return (state != _REMOVED).nonzero().squeeze(1)
        src, dst = src[live], dst[live]


def _tiled_scan(boxes: Tensor, groups: Tensor, threshold: float, kind: str, beta: float) -> Tensor:
    """The all-pairs path with bounded memory (boxes already in score order): tiles of BLOCK boxes, each
    checked against the boxes kept from earlier tiles, then resolved within itself by one scan."""
    kept: list[Tensor] = []
    for start in range(0, len(boxes), BLOCK):
        tile, tile_groups = boxes[start:start + BLOCK], groups[start:start + BLOCK]
        alive = torch.ones(len(tile), dtype=torch.bool, device=boxes.device)
        for done in kept:
            hits = pairwise_overlap(boxes[done], kind, beta, other=tile) > threshold
            alive &= ~(hits & (groups[done][:, None] == tile_groups[None])).any(0)
        suppresses = (pairwise_overlap(tile, kind, beta) > threshold) & (tile_groups[:, None] == tile_groups[None])
        kept.append(start + _scan(suppresses.triu(1), alive))
    return torch.cat(kept)


def _scan(suppresses: Tensor, alive: Tensor) -> Tensor:
    """Walk the boxes in score order; each one still standing removes the later ones it overlaps."""
    rows = suppresses.cpu().numpy()
    removed = ~alive.cpu().numpy()
    for i in range(len(removed)):
        if not removed[i]:
            removed |= rows[i]
    return torch.from_numpy(np.flatnonzero(~removed)).to(suppresses.device)
