"""Candidates on a GPU → the rows above the objectness threshold in host memory, with one wait for the GPU.

After the network (a replayed CUDA graph), `gate` on the device is a comparison, a `nonzero` (the host waits for the
GPU to know how many rows there are) and two gathers; `choose` then thresholds the classes (another `nonzero`, another
wait) and brings its few hundred rows back one tensor at a time (a wait each) for NMS on the CPU. At batch 1 such
waits and tiny kernels, not the GPU, set the pace: yolov4-tiny 416 fp16 with graphs on an H100 ran its network in
0.433 ms and detect() at 188.9 images/s, 5.3 ms (benchmarks/results/gpu.md; `python -m benchmarks.gpu` now times
this module's path against the device gate).

`fetch_gated` asks the device for fixed-size results only, so nothing waits until the end: each image's `cap`
candidates of highest objectness (topk, sorted), packed with their boxes, class scores and candidate indices into one
tensor, and each image's count of rows above the threshold. Both are copied into pinned host memory, then the host
waits once. The rows above the threshold are exactly the first `count` of each image's sorted topk (every objectness
above the threshold is greater than every one not above it); the host puts them back in candidate order, as `gate`
gives them, so everything after it (choose, NMS on the CPU) sees the same rows and floats.

An image with more than `cap` rows above the threshold (very low thresholds) gives None, and so do objectness values
that are not numbers: the caller gates on the device as before. `next_cap` sizes the next call's `cap` from the counts
seen, so a run at a low threshold falls back once, not at every call.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from .backend import Candidates, Gated

MIN_CAP = 256  # rows per image fetched at least (yolov4-tiny keeps a few dozen above 0.25 in a crowded street)
MAX_CAP = 1 << 16  # at most: 65,536 rows of 85 floats are 22 MB per image
MAX_INDEX = 1 << 24  # candidate indices travel as float32, exact below 2**24
MAX_FETCH_BYTES = 64 << 20  # per call: past this (large batches at very low thresholds) the device gate is cheaper


class Fetched(NamedTuple):
    """What `fetch_gated` found."""

    gated: Gated | None
    """The rows above the threshold in host memory (float32 boxes and scores), or None: gate on the device."""
    most_above: int
    """The largest count of rows above the threshold in one image of the batch (see `next_cap`)."""


def fetch_gated(candidates: Candidates, objectness_thresh: float, cap: int) -> Fetched:
    """`gate(candidates, objectness_thresh)` brought to host memory with one synchronisation.

    Args:
        candidates (Candidates): boxes (N, M, 4), objectness (N, M), class scores (N, M, K) on one device (a CUDA
            device in use; the CPU works the same way without pinned memory, for tests).
        objectness_thresh (float): darknet's detection threshold.
        cap (int): rows per image looked at (the highest objectness first); more above the threshold → None.

    Returns:
        Fetched: the gated rows on the host in (image, candidate) order, float32, or None where `gate` must run on
        the device (more than `cap` rows above the threshold in an image, objectness that is not a number, more
        candidates than float32 indexes exactly, or more than MAX_FETCH_BYTES to copy).
    """
    boxes, objectness, scores = candidates
    n, m = objectness.shape
    if n == 0 or m == 0:
        return Fetched(None, 0)
    device = objectness.device
    above = (objectness > objectness_thresh).sum(1)  # (N,) on the device, compared as `gate` compares
    if m >= MAX_INDEX:
        return Fetched(None, int(above.max()))
    k = min(m, cap)
    coords, classes = boxes.shape[-1], scores.shape[-1]
    width = coords + 1 + classes + 1  # a packed row: box, objectness, class scores, candidate index
    if n * k * width * 4 > MAX_FETCH_BYTES:  # pinned memory and a copy that size cost more than the waits they save
        return Fetched(None, int(above.max()))
    top, index = objectness.topk(k, dim=1, sorted=True)  # (N, k): a fixed size, so no wait
    packed = torch.cat([boxes.gather(1, index[..., None].expand(n, k, coords)).float(), top[..., None].float(),
                        scores.gather(1, index[..., None].expand(n, k, classes)).float(), index[..., None].float()], dim=-1)
    pinned = device.type == "cuda"
    host = torch.empty((n, k, width), dtype=torch.float32, pin_memory=pinned)
    counts = torch.empty(n, dtype=torch.int64, pin_memory=pinned)
    host.copy_(packed, non_blocking=pinned)
    counts.copy_(above, non_blocking=pinned)
    if pinned:
        torch.cuda.current_stream(device).synchronize()  # the one wait
    count = counts.numpy()
    most = int(count.max())
    if most > k:
        return Fetched(None, most)
    rows_np = host.numpy()
    image_idx, slot = np.nonzero(np.arange(k) < count[:, None])
    rows = rows_np[image_idx, slot]  # (B, width)
    if not (rows[:, coords] > np.float32(objectness_thresh)).all():  # NaN objectness sorts first in topk
        return Fetched(None, most)
    box_idx = rows[:, -1].astype(np.int64)
    order = np.lexsort((box_idx, image_idx))  # candidate order within each image, as gate's nonzero gives it
    rows = rows[order]
    gated = Gated(torch.from_numpy(image_idx[order].astype(np.int64)), torch.from_numpy(box_idx[order]),
                  torch.from_numpy(np.ascontiguousarray(rows[:, :coords])),
                  torch.from_numpy(np.ascontiguousarray(rows[:, coords + 1:coords + 1 + classes])))
    return Fetched(gated, most)


def next_cap(cap: int, most_above: int) -> int:
    """The `cap` for the next call: room for twice the most rows one image had above the threshold, as a power of
    two between MIN_CAP and MAX_CAP, never smaller than `cap` (a run's thresholds rarely change)."""
    wanted = MIN_CAP
    while wanted < 2 * most_above and wanted < MAX_CAP:
        wanted *= 2
    return max(cap, wanted)
