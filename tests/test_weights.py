"""The .weights reader/writer, exact float accounting, synth, inspect and convert."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import WeightsError, WeightsHeader
from tests.conftest import REPO, ZOO_CFG, official, shared_path
from weights_tools.synth import synthesize

TINY = "[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
TINY_FLOATS = (4 + 4 * 3 + 4 * 3 * 9) + (2 + 2 * 4)  # bias+bn(3×4)+kernel, then bias+kernel


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.cfg"
    path.write_text(TINY)
    return path


def _write(path: Path, header: bytes, floats: np.ndarray) -> Path:
    path.write_bytes(header + floats.astype("<f4").tobytes())
    return path


def test_weight_order_and_both_header_versions(tmp_path: Path, tiny_cfg: Path) -> None:
    floats = np.arange(TINY_FLOATS, dtype=np.float32)
    for header in (struct.pack("<iiiQ", 0, 2, 5, 123), struct.pack("<iiiI", 0, 1, 0, 7)):
        model = darknet_py.load(tiny_cfg, _write(tmp_path / "w.weights", header, floats))
        conv = model.layers[0]
        assert conv.bn.bias[0] == 0 and conv.bn.weight[0] == 4 and conv.bn.running_mean[0] == 8
        assert conv.bn.running_var[0] == 12 and conv.conv.weight.flatten()[0] == 16
        assert model.layers[1].conv.bias[0] == 16 + 108
    assert model.weights_header == WeightsHeader(0, 1, 0, 7)


def test_too_short_and_too_long_name_counts_and_layer(tmp_path: Path, tiny_cfg: Path) -> None:
    header = struct.pack("<iiiQ", 0, 2, 5, 0)
    with pytest.raises(WeightsError, match=rf"holds {TINY_FLOATS - 1:,} floats after the header, the cfg needs "
                                           rf"{TINY_FLOATS:,} \(first layer that does not fit: layer 1 convolutional, line 11\)"):
        darknet_py.load(tiny_cfg, _write(tmp_path / "s.weights", header, np.zeros(TINY_FLOATS - 1)))
    with pytest.raises(WeightsError, match=r"\(3 left over\): these weights belong to a different cfg"):
        darknet_py.load(tiny_cfg, _write(tmp_path / "l.weights", header, np.zeros(TINY_FLOATS + 3)))
    (tmp_path / "h.weights").write_bytes(header[:10])
    with pytest.raises(WeightsError, match="too short for a darknet weights header"):
        darknet_py.load(tiny_cfg, tmp_path / "h.weights")
    with pytest.raises(WeightsError, match="unrecognised header version"):
        darknet_py.load(tiny_cfg, _write(tmp_path / "v.weights", struct.pack("<iiiQ", 7000, 2, 5, 0), np.zeros(TINY_FLOATS)))


def test_wrong_model_weights_are_refused() -> None:
    cfg, _ = official("yolov3-tiny")
    _, weights = official("yolov4-tiny")
    with pytest.raises(WeightsError, match="yolov4-tiny.weights holds 6,062,814 floats after the header, the cfg needs 8,858,734"):
        darknet_py.load(cfg, weights)


def test_nan_weights_warn_with_the_layer(tmp_path: Path, tiny_cfg: Path) -> None:
    floats = np.ones(TINY_FLOATS, np.float32)
    floats[-1] = np.nan
    with pytest.warns(darknet_py.DarknetWarning, match="layer 1 convolutional .line 11. has 1 NaN/Inf"):
        darknet_py.load(tiny_cfg, _write(tmp_path / "n.weights", struct.pack("<iiiQ", 0, 2, 5, 0), floats))


def test_weights_are_read_and_written_a_tensor_at_a_time(tmp_path: Path) -> None:
    """load_weights reads the file a tensor at a time (numpy holds at most the largest tensor, traced by tracemalloc;
    the whole file before), save_weights streams each tensor out (no joined copy of all the floats): the official file's
    bytes come back, and the same model as from read_weights' array."""
    import tracemalloc

    cfg, weights = official("yolov4-tiny")
    model = darknet_py.Darknet(darknet_py.read_cfg(cfg), init_weights=False)
    largest = max(t.numel() for _, ts in model.weight_layout() for t in ts) * 4
    tracemalloc.start()
    try:
        model.load_weights(weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the piece, and isfinite's mask of it (a byte a float)
    assert largest <= peak < largest * 5 // 4 + (1 << 20) < weights.stat().st_size * 3 // 5
    header, floats = darknet_py.read_weights(weights)
    assert floats.flags.writeable and floats.dtype == np.float32 and floats.size == model.num_weights()
    assert model.weights_header == header and np.array_equal(model.weight_array(), floats)
    parts = list(model._weight_parts())
    assert [p.size for p in parts] == [t.numel() for _, ts in model.weight_layout() for t in ts]
    darknet_py.write_weights(tmp_path / "parts.weights", header, iter(parts))
    darknet_py.write_weights(tmp_path / "one.weights", header, torch.from_numpy(floats))  # a tensor is one array
    model.save_weights(tmp_path / "saved.weights")
    official_bytes = weights.read_bytes()
    for name in ("parts", "one", "saved"):
        assert (tmp_path / f"{name}.weights").read_bytes() == official_bytes, name


def test_a_weights_file_cut_short_while_read_is_refused(tmp_path: Path) -> None:
    from darknet_py.format.weights import WeightsFile

    count = 1 << 20  # 4 MiB: beyond what the reader has buffered when the file is cut
    path = _write(tmp_path / "w.weights", struct.pack("<iiiQ", 0, 2, 5, 0), np.ones(count, np.float32))
    with WeightsFile(path) as source:
        assert (source.count, source.header) == (count, WeightsHeader(0, 2, 5, 0))
        path.write_bytes(path.read_bytes()[:1024])  # another process truncates it after the size was checked
        with pytest.raises(WeightsError, match="w.weights ended early"):
            source.read_into(np.empty(count, np.float32))


def test_weights_from_a_pipe_load(tmp_path: Path) -> None:
    """`--weights <(zcat yolov4-tiny.weights.gz)`: a pipe has no size to check first; it is read whole, as before."""
    import threading

    cfg, weights = official("yolov4-tiny")
    fifo = tmp_path / "weights.pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(weights.read_bytes()), daemon=True)
    writer.start()  # blocks in open() until load() opens the other end
    model = darknet_py.load(cfg, fifo, fast=False)
    writer.join(timeout=60)
    assert np.array_equal(model.weight_array(), darknet_py.read_weights(weights)[1])


def test_a_write_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    def parts():
        yield np.ones(10, np.float32)
        raise KeyboardInterrupt  # Ctrl-C between two layers

    with pytest.raises(KeyboardInterrupt):
        darknet_py.write_weights(tmp_path / "w.weights", WeightsHeader(), parts())
    assert list(tmp_path.iterdir()) == []


def test_synth_is_deterministic_and_seeded(tmp_path: Path) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-tiny.cfg")
    a, b, c = (synthesize(cfg, seed=s).weight_array() for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (synthesize(cfg, seed=5).layers[0].bn.running_var > 0).all()


@pytest.mark.parametrize("name, side, batch", [("yolov4-tiny", 256, 8), ("yolov4-csp", 256, 8), ("yolov4-p5", 256, 8),
                                               ("yolov4-p6", 512, 2), ("cspx-p7-mish", 1024, 1)])
def test_synth_calibrates_deep_cfgs_where_their_deepest_maps_are_8x8(name: str, side: int, batch: int) -> None:
    """At 256 px P7's stride-128 maps are 2x2, mostly padding: statistics taken there left its heads saturated at
    1536 px (benchmarks/results/fp16_range.json). Shallower cfgs keep 256 px and their weights."""
    from weights_tools.synth import _calibration_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)  # P7's num=16 has its own test
        model, used = _calibration_model(str(shared_path(ZOO_CFG / f"{name}.cfg")))
    assert (model.width, model.height, used) == (side, side, batch)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weights_tools", *args], cwd=REPO, capture_output=True, text=True)


def test_convert_round_trip_is_byte_identical(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    pt, back = tmp_path / "m.pt", tmp_path / "back.weights"
    assert _cli("convert", str(cfg), str(weights), str(pt)).returncode == 0
    state = torch.load(pt, weights_only=True)
    assert state["header"][:2] == [0, 2]
    assert _cli("convert", str(cfg), str(pt), str(back)).returncode == 0
    assert back.read_bytes() == weights.read_bytes()


def test_convert_refuses_a_checkpoint_for_another_cfg(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    other, _ = official("yolov3-tiny")
    pt = tmp_path / "m.pt"
    assert _cli("convert", str(cfg), str(weights), str(pt)).returncode == 0
    result = _cli("convert", str(other), str(pt), str(tmp_path / "x.weights"))
    assert result.returncode == 2 and "does not fit yolov3-tiny.cfg" in result.stderr
    # the reason, not torch's first line alone ("Error(s) in loading state_dict for Network:")
    assert result.stderr.strip().splitlines()[-1].split("does not fit yolov3-tiny.cfg: ")[1].startswith(("Missing key",
                                                                                                        "Unexpected key",
                                                                                                        "size mismatch"))
    assert not (tmp_path / "x.weights").exists()


def test_inspect_and_synth_cli(tmp_path: Path, tiny_cfg: Path) -> None:
    out = tmp_path / "s.weights"
    result = _cli("synth", str(tiny_cfg), str(out), "--seed", "1")
    assert result.returncode == 0 and out.stat().st_size == 20 + 4 * TINY_FLOATS
    report = _cli("inspect", str(out), "--cfg", str(tiny_cfg)).stdout
    assert f"floats:    {TINY_FLOATS}" in report and "matches" in report
    assert "    1 convolutional     11           10" in report
    bad = _cli("inspect", str(tmp_path / "nope.weights"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read weights file")
    # an existing output is only replaced with --exist-ok
    before = out.read_bytes()
    again = _cli("synth", str(tiny_cfg), str(out), "--seed", "2")
    assert again.returncode == 2 and "exists; pass --exist-ok" in again.stderr and out.read_bytes() == before
    assert _cli("synth", str(tiny_cfg), str(out), "--seed", "2", "--exist-ok").returncode == 0
    assert out.read_bytes() != before
    negative = _cli("synth", str(tiny_cfg), str(tmp_path / "n.weights"), "--seed", "-1")
    assert negative.returncode == 2 and negative.stderr == "error: --seed -1: expected a whole number from 0 to 2^64 - 1\n"
