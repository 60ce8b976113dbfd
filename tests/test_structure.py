"""CSP block recognition (against the paper's stage depths and the cfgs' own sections) and
model scaling (the paper's cost laws on yolov4-csp; the scaled cfg loads in OpenCV 4 alike)."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import darknet_py
from darknet_py import cli
from darknet_py.model.info import blocks, summary
from darknet_py.model.network import build
from darknet_py.model.scaling import ScaleSpec, scale, scaled_filters
from darknet_py.model.structure import CSP_TYPES, csp_depths
from tests.conftest import ZOO_CFG, shared_path, zoo_cfgs
from tests.oracle import opencv_heads, oracle_epsilon, relative_error


def _build(name: str, size: int | None = None) -> darknet_py.Darknet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)  # P7's num=16 (tested elsewhere)
        return build(shared_path(ZOO_CFG / f"{name}.cfg"), size)


def _types(found) -> dict[str, int]:
    counts: dict[str, int] = {}
    for b in found:
        counts[b.type] = counts.get(b.type, 0) + 1
    return counts


# -- recognition ---------------------------------------------------------------------
def test_yolov4_csp_blocks_follow_the_paper() -> None:
    # YOLOv4-CSP: CSPDarknet53s backbone (a plain residual stage, then CSP stages of 2, 8, 8, 4
    # residual units) and a CSP-ized PAN: CSPSPP, two CSPUp, two CSPDown.
    model = _build("yolov4-csp", 512)
    found = blocks(model)
    counts = _types(found)
    assert {t: counts.get(t, 0) for t in CSP_TYPES} == {
        "CSPDark": 4, "CSPSPP": 1, "CSPOSA": 0, "CSPUp": 2, "CSPDown": 2, "rCSP": 0}
    assert csp_depths(found) == [2, 8, 8, 4]
    assert [b.stride for b in found if b.type == "CSPDark"] == [4, 8, 16, 32]
    assert [b.width for b in found if b.type == "CSPDark"] == [128, 256, 512, 1024]
    assert csp_depths(found, "Res") == [1]
    assert [b.stride for b in found if b.type in ("CSPUp", "CSPDown")] == [16, 8, 16, 32]
    # Each CSPDark stage holds exactly its shortcuts, and one two-source route (the concatenation).
    for b in (b for b in found if b.type == "CSPDark"):
        types = [model.sections[i].type for i in b.layers]
        assert types.count("shortcut") == b.depth and types.count("route") == 2  # split + concat
        assert model.infos[b.layers[0]].out_shape.w * 2 == model.infos[b.layers[0]].in_shapes[0].w  # opens with a downsample


def test_yolov4_tiny_has_three_cspos_a_blocks_with_partial_routes() -> None:
    model = _build("yolov4-tiny")
    found = [b for b in blocks(model) if b.type in CSP_TYPES]
    assert [b.type for b in found] == ["CSPOSA"] * 3
    assert [b.depth for b in found] == [2, 2, 2]
    assert [b.width for b in found] == [128, 256, 512] and [b.stride for b in found] == [4, 8, 16]
    for b in found:
        partial = [i for i in b.layers if model.sections[i].type == "route"
                   and model.sections[i].options.get("groups") == "2" and model.sections[i].options.get("group_id") == "1"]
        assert len(partial) == 1


@pytest.mark.parametrize("name, depths", [("yolov4-p5", [1, 3, 15, 15, 7]), ("yolov4-p6", [1, 3, 15, 15, 7, 7]),
                                          ("yolov4", [1, 2, 8, 8, 4])])
def test_csp_stage_depths_of_the_large_models(name: str, depths: list[int]) -> None:
    # Scaled-YOLOv4 Table 3 (P5, P6) and CSPDarknet53 (YOLOv4).
    assert csp_depths(blocks(_build(name, 256))) == depths


def test_darknet53_is_not_csp() -> None:
    found = blocks(_build("yolov3", 256))
    assert not [b for b in found if b.type in CSP_TYPES]
    assert csp_depths(found, "Res") == [1, 2, 8, 8, 4]
    assert _types(found)["Head"] == 3


@pytest.mark.parametrize("cfg", zoo_cfgs(), ids=lambda p: p.stem)
def test_blocks_partition_every_cfg(cfg: Path) -> None:
    model = _build(cfg.stem, 256)
    found = blocks(model)
    layers = sorted(i for b in found for i in b.layers)
    assert layers == list(range(len(model.layers)))
    assert sum(b.bflops for b in found) == pytest.approx(summary(model)["bflops"], rel=1e-12)
    assert all(-1 <= source < b.index for b in found for source in b.inputs)
    assert _types(found)["Head"] >= len(model.heads) // 2


def test_info_prints_blocks_and_writes_dot(tmp_path: Path, capsys) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    dot = tmp_path / "csp.dot"
    assert cli.main(["info", str(cfg), "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "CSP blocks: 4 CSPDark, 1 CSPSPP, 2 CSPUp, 2 CSPDown" in out
    assert re.search(r"^\s+2 CSPDark\s+5-17\s+P2\s+2\s+128\s+4\s", out, re.M)
    text = dot.read_text()
    nodes = set(re.findall(r"^\s+(b\d+) \[label=", text, re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+);", text, re.M)
    assert len(nodes) == len(blocks(build(cfg)))
    assert edges and all(a in nodes | {"input"} and b in nodes for a, b in edges)
    assert ("b8", "b9") in edges and ("b6", "b7") in edges  # CSPUp → head, CSPSPP → CSPUp
    # A second run does not overwrite the graph without --exist-ok.
    assert cli.main(["info", str(cfg), "--dot", str(dot)]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli.main(["info", str(cfg), "--dot", str(dot), "--exist-ok", "--json"]) == 0


# -- scaling -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def csp608() -> darknet_py.Darknet:
    return _build("yolov4-csp", 608)


def _cost(model, spec: ScaleSpec) -> tuple[float, int, darknet_py.Darknet]:
    _, scaled = scale(model, spec, "test")
    total = summary(scaled)
    return total["bflops"], total["params"], scaled


@pytest.mark.parametrize("name", ["darknet19", "resnet50", "yolov2-tiny", "Gaussian_yolov3_BDD", "yolov4-tiny"])
def test_width_keeps_what_the_outputs_fix_classes_and_heads(darknet_ref, name: str) -> None:
    """`scale --width 0.5` made darknet19's 1000-class convolution 504 filters (a 504-class classifier no names or
    weights fit) and could not scale a [region] or [Gaussian_yolo] detector (their convolutions were halved too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", darknet_py.DarknetWarning)
        model = build(darknet_ref.folder / "cfg" / f"{name}.cfg")
    _, scaled = scale(model, ScaleSpec(width=0.5), "test")
    assert scaled.num_classes == model.num_classes and scaled.is_classifier == model.is_classifier
    assert [h.classes for h in scaled.heads] == [h.classes for h in model.heads]
    assert [m.out_shape for m in scaled.infos[-1:]] == [m.out_shape for m in model.infos[-1:]] or not model.is_classifier
    assert summary(scaled)["params"] < 0.4 * summary(model)["params"]  # the rest did shrink


@pytest.mark.parametrize("width", [0.5, 0.75, 1.5, 2.0])
def test_width_scales_cost_as_w_squared(csp608, width: float) -> None:
    base = summary(csp608)
    flops, params, scaled = _cost(csp608, ScaleSpec(width=width))
    # Table 1: a layer's cost grows with the square of its width; the 3-channel stem and the
    # fixed 255-filter output convolutions scale linearly, so the total is within a few %.
    assert flops / base["bflops"] == pytest.approx(width ** 2, rel=0.05)
    assert params / base["params"] == pytest.approx(width ** 2, rel=0.05)
    for section, base_section in zip(scaled.sections, csp608.sections):
        if section.type == "convolutional":
            old, new = int(base_section.options["filters"]), int(section.options["filters"])
            assert new == old == 255 or (new % 8 == 0 and abs(new - old * width) <= 4)


def test_depth_scales_cost_linearly_and_stage_depths(csp608) -> None:
    points = {d: _cost(csp608, ScaleSpec(depth=d)) for d in (0.5, 1.0, 1.5, 2.0)}
    assert csp_depths(blocks(points[0.5][2])) == [1, 4, 4, 2]
    assert csp_depths(blocks(points[2.0][2])) == [4, 16, 16, 8]
    slope = (points[2.0][0] - points[1.0][0]) / 1.0
    for d, (flops, _, _) in points.items():
        assert flops == pytest.approx(points[1.0][0] + slope * (d - 1.0), rel=1e-9)
    assert points[1.0][0] == pytest.approx(summary(csp608)["bflops"], rel=1e-12)
    assert csp_depths(blocks(points[1.0][2])) == [2, 8, 8, 4]


@pytest.mark.parametrize("size", [320, 512, 640])
def test_size_scales_cost_as_s_squared(csp608, size: int) -> None:
    flops, params, scaled = _cost(csp608, ScaleSpec(size=size))
    assert (scaled.width, scaled.height) == (size, size)
    assert flops / summary(csp608)["bflops"] == pytest.approx((size / 608) ** 2, rel=1e-9)
    assert params == summary(csp608)["params"]


def test_identity_scale_is_the_same_network(synthetic_weights) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    base = darknet_py.load(cfg, synthetic_weights(cfg), size=256, fast=False)  # plain modules, like `same`
    text, same = scale(base, ScaleSpec(), "identity")
    assert [(s.type, s.options) for s in same.sections] == [(s.type, s.options) for s in base.sections]
    same.load_weight_array(base.weight_array())
    same.eval()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        for a, b in zip(base(x), same(x)):
            assert torch.equal(a, b)


def test_scaled_cfg_loads_in_opencv_and_matches(tmp_path: Path) -> None:
    from weights_tools.synth import synthesize

    out = tmp_path / "csp-s.cfg"
    assert cli.main(["scale", str(shared_path(ZOO_CFG / "yolov4-csp.cfg")), "--width", "0.25", "--depth", "0.5",
                     "--size", "256", "-o", str(out)]) == 0
    model = synthesize(out, seed=3)
    weights = tmp_path / "csp-s.weights"
    model.save_weights(weights)
    model = darknet_py.load(out, weights)
    assert csp_depths(blocks(model)) == [1, 4, 4, 2] and (model.width, model.height) == (256, 256)
    oracle_epsilon(model)
    blob = np.random.default_rng(2).uniform(0, 1, (1, 3, 256, 256)).astype(np.float32)
    with torch.no_grad():
        heads = model.forward_heads(torch.from_numpy(blob))
    reference = opencv_heads(out, weights, blob, model.head_indices)
    assert len(heads) == len(reference) == 3
    for head, expected in zip(heads, reference):
        assert relative_error(head, expected) <= 1e-4


def test_scale_errors_are_clear_and_write_nothing(tmp_path: Path, capsys) -> None:
    csp, tiny = (str(shared_path(ZOO_CFG / f"{n}.cfg")) for n in ("yolov4-csp", "yolov4-tiny"))
    out = tmp_path / "x.cfg"
    cases = [
        ([csp, "--size", "500"], "must be a multiple of the network's total stride"),
        ([tiny, "--depth", "2"], "yolov4-tiny.cfg has none"),
        ([csp, "--width", "0"], "--width must be a multiple in (0, 16]"),
        ([csp, "--depth", "nan"], "--depth must be"),
    ]
    for args, message in cases:
        assert cli.main(["scale", *args, "-o", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not list(tmp_path.iterdir())
    out.write_text("mine")
    assert cli.main(["scale", csp, "-o", str(out)]) == 2
    assert out.read_text() == "mine"


def test_scaled_filters_round_to_multiples_of_eight() -> None:
    assert [scaled_filters(f, w) for f, w in [(32, 0.25), (32, 0.1), (64, 0.75), (100, 1.0), (255, 0.5)]] == [8, 8, 48, 104, 128]
