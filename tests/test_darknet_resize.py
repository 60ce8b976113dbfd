"""darknet's image resize (resize_image / letterbox_image), what `detector test/valid/map` feed the
network, against darknet's own (resize_dump): equal on the shared photos (PNG copies, which decode
alike in both), letterboxed sizes, upscaling and 1-pixel-wide or -high images, through the C kernel and
through the numpy/torch path each; the C kernel built; and the device path (uint8 up, resized there) equal
to the host path."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from darknet_py.core.errors import DarknetWarning
from darknet_py.pipeline import darknet_resize
from darknet_py.pipeline.darknet_resize import axis, letterbox_size, prepare_batch_on_device
from darknet_py.pipeline.preprocess import prepare, transform_for
from tests.conftest import photos


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("png")
    made = []
    for photo in photos():
        made.append(folder / f"{photo.stem}.png")
        cv2.imwrite(str(made[-1]), cv2.imread(str(photo)))
    rng = np.random.default_rng(0)
    for w, h in ((1, 37), (37, 1), (1, 1), (3, 2), (97, 55)):  # 1-pixel sides, tiny sources: upscaling
        made.append(folder / f"random-{w}x{h}.png")
        cv2.imwrite(str(made[-1]), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return made


@pytest.fixture(params=["kernel", "tensors"])
def host_path(request, monkeypatch) -> str:
    """Each darknet comparison runs through the C kernel and through the numpy/torch path."""
    monkeypatch.setattr(darknet_resize, "use_kernel", request.param == "kernel")
    return request.param


def _ours(path: Path, width: int, height: int, letterbox: bool) -> np.ndarray:
    return prepare(cv2.imread(str(path)), width, height, letterbox, resize="darknet")[0]


@pytest.mark.parametrize("width, height, letterbox", [(416, 416, False), (416, 416, True), (512, 320, True),
                                                      (320, 608, False)])
def test_equals_darknets_resize(darknet_ref, host_path: str, pngs: list[Path], tmp_path: Path, width: int, height: int,
                                letterbox: bool) -> None:
    for path in pngs:
        image = cv2.imread(str(path))
        if letterbox and min(letterbox_size(image.shape[1], image.shape[0], width, height)) == 1 < max(image.shape[:2]):
            continue  # darknet divides 0 by 0 for an inner side of 1 from a longer source (NaN pixels)
        theirs, size = darknet_ref.resize(path, width, height, letterbox, tmp_path)
        assert size == (image.shape[1], image.shape[0])
        ours = _ours(path, width, height, letterbox)
        assert np.abs(ours - theirs).max() <= 1e-6, path.name  # bit-identical in practice


def test_the_last_row_rule_darknet_has(darknet_ref, host_path: str, tmp_path: Path) -> None:
    """Where (h−1)·scale rounds below in−1, darknet's last row keeps only its (1−dy) term: near black.
    122 → 416 rows does that; the copy must too, not a "correct" bilinear row."""
    y = axis(122, 416, horizontal=False)
    assert y.i0[-1] == 120 and y.w1[-1] == 0 and y.w0[-1] < 1e-3
    path = tmp_path / "bright.png"
    cv2.imwrite(str(path), np.random.default_rng(1).integers(128, 256, (122, 90, 3), dtype=np.uint8))
    theirs, _ = darknet_ref.resize(path, 416, 416, False, tmp_path)
    ours = _ours(path, 416, 416, False)
    assert theirs[:, -1].max() < 1e-3 < theirs[:, -2].min() and np.abs(ours - theirs).max() <= 1e-6


def test_the_c_kernel_is_built() -> None:
    """setup.py builds it wherever the tests run (a compiler is there); without it the package falls back silently
    but for one warning, so a broken build would otherwise only show as slowness."""
    assert darknet_resize._kernel is not None


@pytest.mark.parametrize("shape, letterbox", [((576, 768, 3), True), ((720, 1280, 3), False), ((333, 211), False),
                                              ((40, 90, 4), True), ((1, 1, 3), False), ((5, 700, 3), True),
                                              ((300, 9, 3), False), ((50, 2003, 3), True), ((17, 417, 3), False)])
def test_kernel_equals_tensor_path(monkeypatch, shape: tuple[int, ...], letterbox: bool) -> None:
    """Bit for bit, on grey and 4-channel sources, strided views in (a crop) and out (a letterbox's inner part);
    colour sources of every width take the kernel's AVX2 columns where the CPU has them (upscaled, 9 px wide:
    most columns read the last pixel, left to the scalar loop)."""
    image = np.random.default_rng(len(shape) * shape[0]).integers(0, 256, (shape[0] + 7, shape[1] + 9, *shape[2:]),
                                                                   dtype=np.uint8)[3:3 + shape[0], 5:5 + shape[1]]
    channels = 1 if len(shape) == 2 else shape[2]
    outputs = []
    for kernel in (True, False):
        monkeypatch.setattr(darknet_resize, "use_kernel", kernel)
        out = np.full((channels, 320, 416), np.nan, np.float32)
        outputs.append((out, darknet_resize.prepare_into(image, out, letterbox)))
    (a, size_a), (b, size_b) = outputs
    assert size_a == size_b and not np.isnan(a).any() and a.tobytes() == b.tobytes()


def test_without_the_kernel_a_warning_and_the_same_pixels(monkeypatch) -> None:
    image = cv2.imread(str(photos()[0]))
    expected = prepare(image, 416, 416, False, resize="darknet")[0]
    monkeypatch.setattr(darknet_resize, "_kernel", None)
    darknet_resize._kernel_available.cache_clear()
    try:
        with pytest.warns(DarknetWarning, match="without its C kernel"):
            assert np.array_equal(prepare(image, 416, 416, False, resize="darknet")[0], expected)
    finally:
        darknet_resize._kernel_available.cache_clear()


@pytest.mark.parametrize("letterbox", [False, True])
@pytest.mark.parametrize("threads", [False, True])
def test_device_path_equals_host_path(pngs: list[Path], letterbox: bool, threads: bool) -> None:
    """The batched path a GPU runs (rows sent as uint8, gathered one image a thread for a batch, same-sized images
    resized together), here on CPU tensors."""
    images = [cv2.imread(str(p)) for p in pngs[:4]] + [cv2.imread(str(pngs[0]))]
    with ThreadPoolExecutor(3) as pool:
        batch, inner = prepare_batch_on_device(images, 416, 320, letterbox, torch.device("cpu"), pool.map if threads else map)
    for image, pixels, size in zip(images, batch, inner):
        assert np.array_equal(pixels.numpy(), prepare(image, 416, 320, letterbox, resize="darknet")[0])
        assert size == letterbox_size(image.shape[1], image.shape[0], 416, 320) if letterbox else size == (416, 320)


def test_box_correction_uses_darknets_float_offset() -> None:
    # 640x480 letterboxed into 416x416: 416x312 at offset 52; an odd inner size (601x400 → 416x276: 70)
    # puts darknet's float offset (416−276)/2 = 70.0 where the image is; 767x500 → 416x271: the image
    # sits at row 72, boxes come back with 72.5
    assert transform_for(767, 500, 416, 416, True, "darknet").pad_y == 72.5
    assert transform_for(767, 500, 416, 416, True, "opencv").pad_y == 72
    assert transform_for(640, 480, 416, 416, False, "darknet").pad_x == 0
