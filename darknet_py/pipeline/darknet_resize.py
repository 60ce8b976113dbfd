"""darknet's own image resize, as `detector test`, `valid` and `map` run it, as tensor ops on any device.

darknet (src/image.c) turns the 8-bit image into float pixels v/255 and resizes with `resize_image`:
bilinear with align-corners positions (out index · (in−1)/(out−1), in float32), first a horizontal
pass over the source rows, then a vertical pass. Two edge rules: the last output column copies the
last source column; the last output row takes only (1−dy)·row[iy] — darknet skips the second term
there, so where (h−1)·scale rounds just below in−1 that row is nearly black. That is what darknet
computes and feeds its network. `letterbox_image` resizes to the aspect-kept size (integer
division) and embeds it at the integer offset on 0.5 grey.

Every arithmetic step is the float32 operation darknet's C performs, in its order (products and sums
rounded on their own, never a fused multiply-add), so the result equals darknet's bit for bit on the CPU
(tests/test_darknet_resize.py). Positions, weights and edge rules come from `axis` for every path below.

- On the CPU, a C kernel (_darknet_resize.c, built by setup.py) makes each output row from the at most two
  horizontally resized source rows it reads, in one pass: the source is read once, the output written once
  (inside detect(), dog.jpg to 416x416 went from 3.90 to 1.33 ms: benchmarks/results/pipeline.json). v/255 is
  looked up in a table of the 256 quotients darknet's division gives (the same floats).
- Where the kernel was not built (no C compiler at install), the same floats come from numpy and torch
  kernels: only the pixels darknet reads are gathered (as uint8) and converted, then the two passes run as
  whole-array products and sums. A warning says so once.
- On CUDA the tensor path runs on the device; the division goes through a tensor divisor, since torch turns
  a division by a CPU scalar into a multiplication by its reciprocal there (not yet run on a GPU:
  benchmarks/gpu.py and tests/test_cuda.py check it where one is lent).
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from ..core.errors import DarknetWarning
from .buffers import ThreadBuffers

try:  # the C kernel (setup.py builds it where a compiler is; the numpy/torch path below gives the same floats)
    from . import _darknet_resize as _kernel
except ImportError:  # pragma: no cover - depends on the install
    _kernel = None

LETTERBOX_FILL = 0.5


@dataclass(frozen=True)
class Axis:
    """One axis of darknet's resize: out[i] = w0[i]·in[i0[i]] + w1[i]·in[i1[i]] (float32, in that order)."""

    i0: np.ndarray
    i1: np.ndarray
    w0: np.ndarray
    w1: np.ndarray


def axis(n_in: int, n_out: int, horizontal: bool) -> Axis:
    """darknet's positions and weights along one axis. The last output column (every column, for a
    1-wide source) copies the last source column; the last output row (every row, for a 1-high
    source) keeps only its (1−dy) term. An output side of 1 from a longer source divides 0 by 0 in
    darknet's scale (NaN pixels); here it reads the first source row, or the last column by the
    column rule."""
    scale = np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1 else np.float32(0)
    position = np.arange(n_out, dtype=np.float32) * scale  # float32, as the C `c*w_scale`
    i0 = position.astype(np.int64)  # (int) truncation; positions are never negative
    d = position - i0.astype(np.float32)
    w0, w1 = (np.float32(1) - d).astype(np.float32), d.astype(np.float32)
    i1 = np.minimum(i0 + 1, n_in - 1)
    edge = (np.arange(n_out) == n_out - 1) | (n_in == 1)
    if horizontal:
        i0[edge], i1[edge], w0[edge], w1[edge] = n_in - 1, n_in - 1, 1, 0  # 1·p + 0·p is p exactly
    else:
        i1[edge], w1[edge] = i0[edge], 0  # (1−dy)·p + 0 is (1−dy)·p exactly
    return Axis(i0, i1, w0, w1)


def letterbox_size(image_w: int, image_h: int, width: int, height: int) -> tuple[int, int]:
    """letterbox_image's inner size: darknet's float32 ratio test, then integer division (at least 1 px)."""
    if np.float32(width) / np.float32(image_w) < np.float32(height) / np.float32(image_h):
        new_w, new_h = width, (image_h * width) // image_w
    else:
        new_w, new_h = (image_w * height) // image_h, height
    return max(new_w, 1), max(new_h, 1)


@dataclass(frozen=True)
class Plan:
    """What one (source size → output size) needs: host indices for the gather, device weights."""

    rows: np.ndarray  # source rows the vertical pass reads, ascending (R)
    cols: np.ndarray  # the horizontal pass's source columns: every output column's i0, then every i1 (2·w)
    cols_on_device: Tensor
    wx0: Tensor  # (1, w) horizontal weights
    wx1: Tensor
    row0: Tensor  # per output row: index of its first / second source row within `rows`
    row1: Tensor
    wy0: Tensor  # (h, 1) vertical weights
    wy1: Tensor
    divisor: Tensor  # 255 as a tensor on the device (see the module notes)
    axes: tuple[np.ndarray, ...]  # the C kernel's: x i0, i1 (int32), w0, w1 (float32), then y's the same


@functools.lru_cache(maxsize=16)
def plan(src_w: int, src_h: int, out_w: int, out_h: int, device: torch.device) -> Plan:
    """Cached: a video's frames, or a folder of same-sized photos, share one plan."""
    x, y = axis(src_w, out_w, horizontal=True), axis(src_h, out_h, horizontal=False)
    rows = np.unique(np.concatenate([y.i0, y.i1]))

    def put(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    cols = np.concatenate([x.i0, x.i1])
    axes = tuple(np.ascontiguousarray(a, dtype=np.int32 if k < 2 else np.float32)
                 for ax in (x, y) for k, a in enumerate((ax.i0, ax.i1, ax.w0, ax.w1)))
    return Plan(rows=rows, cols=cols, cols_on_device=put(cols), wx0=put(x.w0[None]), wx1=put(x.w1[None]),
                row0=put(np.searchsorted(rows, y.i0)), row1=put(np.searchsorted(rows, y.i1)),
                wy0=put(y.w0[:, None]), wy1=put(y.w1[:, None]),
                divisor=torch.tensor(255.0, dtype=torch.float32, device=device), axes=axes)


use_kernel = True  # False: the numpy/torch path even where the C kernel is built (tests, benchmarks)


@functools.cache
def _kernel_available() -> bool:
    """Whether the C kernel is built; warns once when it is not."""
    if _kernel is None:
        warnings.warn("darknet's resize runs without its C kernel (darknet_py/pipeline/_darknet_resize.c was not "
                      "compiled when the package was installed: no C compiler?): the same pixels, more slowly; "
                      "reinstall with gcc or clang present to build it", DarknetWarning, stacklevel=4)
    return _kernel is not None


_scratch = ThreadBuffers()  # the gather's and the passes' work arrays (see buffers)


# -- gathering what darknet reads, as darknet's float pixels v/255: (2, N, 3, R, w) float32 RGB planes, ----
# -- each output column's left source column in [0], its right one in [1] (contiguous: fast row gathers) --
def _gather_on_host(image: np.ndarray, p: Plan) -> Tensor:
    """One BGR uint8 image on the CPU → (2, 3, R, w) float32 planes. Pixels travel as 32-bit RGBA
    words (one gather of whole pixels, several times faster than gathering 3-byte ones)."""
    n_rows, n_cols = len(p.rows), len(p.cols)
    rows = image if n_rows == image.shape[0] else image[p.rows]
    words = _scratch.get("words", (n_rows, image.shape[1], 4), np.uint8)
    cv2.cvtColor(rows, cv2.COLOR_BGR2RGBA, dst=words)
    picked = _scratch.get("picked", (n_rows, n_cols), np.uint32)  # reused: a fresh one is page faults
    np.take(words.view(np.uint32)[..., 0], p.cols, axis=1, out=picked, mode="clip")  # ("raise" would buffer `out`)
    split = [_scratch.get(f"plane{c}", (n_rows, n_cols), np.uint8) for c in range(4)]
    cv2.split(picked.view(np.uint8).reshape(n_rows, n_cols, 4), split)
    out_w = n_cols // 2
    planes = _scratch.get("planes", (2, 3, n_rows, out_w), np.float32)
    quotients = _byte_quotients()
    for c in range(3):  # v/255 as darknet's loader computes it, looked up per byte (a SIMD table lookup)
        for side in range(2):
            cv2.LUT(split[c][:, side * out_w:(side + 1) * out_w], quotients, dst=planes[side, c])
    return torch.from_numpy(planes)


def _gather_planes_on_host(image: np.ndarray, p: Plan) -> Tensor:
    """A grey (H, W) or (H, W, C) uint8 image kept in its channel order (a network that is not RGB) → (2, C, R, w)
    float32 planes: the same pixels and quotients as _gather_on_host, without the BGR → RGB swap."""
    planes_in = image[:, :, None] if image.ndim == 2 else image
    rows = planes_in if len(p.rows) == planes_in.shape[0] else planes_in[p.rows]
    picked = np.take(rows, p.cols, axis=1)  # (R, 2w, C)
    out_w, channels = len(p.cols) // 2, planes_in.shape[2]
    planes = np.empty((2, channels, len(p.rows), out_w), np.float32)
    quotients = _byte_quotients()[0]
    for side in range(2):
        planes[side] = quotients[picked[:, side * out_w:(side + 1) * out_w].transpose(2, 0, 1)]
    return torch.from_numpy(planes)


@functools.cache
def _byte_quotients() -> np.ndarray:
    """v/255 for every byte value v: darknet's loader's true float32 division (the same kernel as the
    device path's), as a (1, 256) table; a lookup gives those very floats at a fraction of the cost."""
    values = torch.arange(256, dtype=torch.uint8)
    return torch.div(values, torch.tensor(255.0, dtype=torch.float32)).numpy().reshape(1, 256).copy()


def _gather_on_device(sources: Tensor, p: Plan, planes: Tensor) -> None:
    """(N, R, W, 3) uint8 BGR rows already on the device (the host sends only the rows read)."""
    n, rows, _, _ = sources.shape
    picked = sources.index_select(2, p.cols_on_device).view(n, rows, 2, -1, 3)
    for c in range(3):  # v/255 as darknet's loader (a true division, by a tensor: see the module notes)
        torch.div(picked[..., 2 - c].permute(2, 0, 1, 3), p.divisor, out=planes[:, :, c])


# -- darknet's arithmetic ----------------------------------------------------------------------------------
def _interpolate(planes: Tensor, p: Plan, out: Tensor, top: Tensor, bottom: Tensor) -> None:
    """planes (2, …, 3, R, w) pixels (v/255) → out (…, 3, h, w): the horizontal pass, then the vertical pass.
    `top` and `bottom` are work buffers shaped like `out`."""
    left, right = planes[0], planes[1]
    left.mul_(p.wx0)
    right.mul_(p.wx1)
    left.add_(right)  # horizontal: (1−dx)·a + dx·b
    torch.index_select(left, -2, p.row0, out=top).mul_(p.wy0)
    torch.index_select(left, -2, p.row1, out=bottom).mul_(p.wy1)
    torch.add(top, bottom, out=out)  # vertical: (1−dy)·top + dy·bottom


def resize_image_into(image: np.ndarray, out: Tensor | np.ndarray) -> None:
    """darknet's resize_image of one BGR uint8 (H, W, 3) host image into `out` (3, h, w) float32 RGB in host memory
    (a numpy array or a CPU tensor, written in place; a view is fine); a grey (H, W) image into `out` (1, h, w), an
    (H, W, C) one of another channel count into (C, h, w), in order."""
    target = torch.from_numpy(out) if isinstance(out, np.ndarray) else out
    p = plan(image.shape[1], image.shape[0], target.shape[-1], target.shape[-2], target.device)
    colour = image.ndim == 3 and image.shape[2] == 3
    if use_kernel and _kernel_available():
        _kernel.resize(image, target.numpy(), *p.axes, _byte_quotients()[0], colour, 0, target.shape[-2])
        return
    top, bottom = (torch.from_numpy(_scratch.get(name, tuple(target.shape), np.float32)) for name in ("top", "bottom"))
    _interpolate((_gather_on_host if colour else _gather_planes_on_host)(image, p), p, target, top, bottom)


def prepare_into(image: np.ndarray, out: Tensor | np.ndarray, letterbox: bool) -> tuple[int, int]:
    """resize_image (stretch) or letterbox_image of one BGR uint8 host image into `out` (3, h, w) in host memory
    (a grey or other-channel image: see resize_image_into); returns the size (new_w, new_h) the image occupies inside `out`."""
    target = out.numpy() if isinstance(out, Tensor) else out
    height, width = target.shape[-2:]
    if not letterbox:
        resize_image_into(image, target)
        return width, height
    new_w, new_h = letterbox_size(image.shape[1], image.shape[0], width, height)
    left, top = (width - new_w) // 2, (height - new_h) // 2
    target.fill(LETTERBOX_FILL)
    resize_image_into(image, target[:, top:top + new_h, left:left + new_w])
    return new_w, new_h


def _upload_rows(images: Sequence[np.ndarray], rows: np.ndarray, device: torch.device,
                 map_: Callable[..., Iterable] = map) -> Tensor:
    """The source rows darknet reads of same-sized uint8 images, (N, R, W, 3) on `device`. On CUDA they are gathered
    straight into pinned host memory (one copy on the host, where stacking copies made two; each image's by `map_`,
    a thread pool's map for a batch) and sent asynchronously: a pageable upload is staged by the driver and blocks
    the host. torch's caching host allocator reuses the block once the copy has finished."""
    pinned = device.type == "cuda"
    host = torch.empty((len(images), len(rows), *images[0].shape[1:]), dtype=torch.uint8, pin_memory=pinned)
    staged = host.numpy()

    def gather(slot: int) -> None:
        np.take(images[slot], rows, axis=0, out=staged[slot], mode="clip")  # rows are in range; "raise" buffers `out`
    for _ in map_(gather, range(len(images))):
        pass
    return host.to(device, non_blocking=pinned)


def prepare_batch_on_device(images: Sequence[np.ndarray], width: int, height: int, letterbox: bool,
                            device: torch.device, map_: Callable[..., Iterable] = map) -> tuple[Tensor, list[tuple[int, int]]]:
    """Several BGR uint8 host images → (N, 3, height, width) float32 on `device`, resized there.
    Each image goes up as uint8, only the rows darknet reads (gathered on the host by `map_`: a thread pool's map
    spreads a batch over cores); same-sized images are resized together."""
    batch = torch.empty((len(images), 3, height, width), dtype=torch.float32, device=device)
    inner: list[tuple[int, int]] = [(width, height)] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault((image.shape[1], image.shape[0]), []).append(i)
    if letterbox:
        batch.fill_(LETTERBOX_FILL)
    for (image_w, image_h), members in by_size.items():
        new_w, new_h = letterbox_size(image_w, image_h, width, height) if letterbox else (width, height)
        left, top = (width - new_w) // 2, (height - new_h) // 2
        p = plan(image_w, image_h, new_w, new_h, device)
        sources = _upload_rows([images[i] for i in members], p.rows, device, map_)
        planes = torch.empty((2, len(members), 3, len(p.rows), new_w), dtype=torch.float32, device=device)
        _gather_on_device(sources, p, planes)
        index = torch.tensor(members, device=device)
        resized = torch.empty((len(members), 3, new_h, new_w), dtype=torch.float32, device=device)
        _interpolate(planes, p, resized, torch.empty_like(resized), torch.empty_like(resized))
        if len(members) == len(images) and not letterbox:
            batch = resized
        else:
            batch[:, :, top:top + new_h, left:left + new_w].index_copy_(0, index, resized)
        for i in members:
            inner[i] = (new_w, new_h)
    return batch, inner
