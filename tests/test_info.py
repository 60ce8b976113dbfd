"""`darknet-py info`: totals against darknet's published figures and against a from-scratch
walk over the cfg text in this file (no engine code), for every shared cfg."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import darknet_py
from darknet_py import cli
from darknet_py.model.info import summary
from tests.conftest import ZOO_CFG, shared_path, zoo_cfgs


def _sections(text: str) -> list[tuple[str, dict[str, str]]]:
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = re.sub(r"[#;].*", "", raw).replace(" ", "").replace("\t", "")
        if line.startswith("["):
            sections.append((line.strip("[]"), {}))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][1].setdefault(key, value)
    return sections


def first_principles(cfg: Path, side: int) -> tuple[float, int]:
    """(BFLOPs, trainable params) by darknet's formulas, tracking (c, h, w) layer by layer."""
    sections = _sections(cfg.read_text())
    shapes: list[tuple[int, int, int]] = []
    c, h, w = int(sections[0][1].get("channels", 3)), side, side
    flops, params = 0.0, 0
    for kind, opts in sections[1:]:
        get = lambda key, default: int(opts.get(key, default))  # noqa: E731
        if kind in ("convolutional", "conv"):
            size, stride, filters, groups = get("size", 1), get("stride", 1), get("filters", 1), get("groups", 1)
            pad = size // 2 if get("pad", 0) else get("padding", 0)
            h, w = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
            weights = filters * (c // groups) * size * size
            flops += 2 * weights * h * w / 1e9
            params += weights + filters * (2 if get("batch_normalize", 0) else 1)
            c = filters
        elif kind in ("maxpool", "max"):
            stride = get("stride", 1)
            size = get("size", stride)
            padding = get("padding", size - 1)
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
            flops += size * size * c * h * w / 1e9
        elif kind == "route":
            index = len(shapes)
            sources = [int(v) + index if int(v) < 0 else int(v) for v in opts["layers"].split(",")]
            c = sum(shapes[s][0] for s in sources) // get("groups", 1)
            h, w = shapes[sources[0]][1:]
        elif kind == "upsample":
            h, w = h * get("stride", 2), w * get("stride", 2)
        elif kind == "shortcut":  # darknet: one add per output value and `from` layer
            flops += c * h * w * len(opts["from"].split(",")) / 1e9
        elif kind not in ("sam", "scale_channels", "dropout", "yolo"):  # shape of the previous layer
            raise AssertionError(f"the test's walk does not know [{kind}]")
        shapes.append((c, h, w))
    return flops, params


@pytest.mark.parametrize("cfg", zoo_cfgs(), ids=lambda p: p.stem)
def test_totals_match_a_walk_over_the_cfg_text(cfg: Path) -> None:
    side = 256  # a size every shared cfg allows, P7 included
    with pytest.warns(darknet_py.DarknetWarning) if cfg.stem.startswith("cspx-p7") else _nothing():
        model = darknet_py.load(cfg, size=side)
    ours = summary(model)
    flops, params = first_principles(cfg, side)
    assert ours["bflops"] == pytest.approx(flops, rel=1e-9) and ours["params"] == params


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name, side, bflops", [("yolov4-tiny", 416, 6.910), ("yolov3-tiny", 416, 5.571)])
def test_totals_match_darknets_printout(name: str, side: int, bflops: float) -> None:
    assert round(summary(darknet_py.load(shared_path(ZOO_CFG / f"{name}.cfg"), size=side))["bflops"], 3) == bflops


def test_yolov4_csp_at_608_matches_the_papers_table_8() -> None:
    # Scaled-YOLOv4, Table 8: CD53s + CSPPAN-SPP + Mish at 608 — 53M parameters, 109 BFLOPs
    result = summary(darknet_py.load(shared_path(ZOO_CFG / "yolov4-csp.cfg"), size=608))
    assert round(result["params"] / 1e6) == 53 and round(result["bflops"]) == 109


def test_cli_table_and_json(capsys) -> None:
    cfg = str(shared_path(ZOO_CFG / "yolov4-tiny.cfg"))
    assert cli.main(["info", cfg]) == 0
    table = capsys.readouterr().out.splitlines()
    total = next(line for line in table if line.startswith("Total BFLOPs"))
    assert total == "Total BFLOPs 6.910, params 6,056,606 (416x416, 38 layers)"
    assert table[-1].startswith("CSP blocks: 3 CSPOSA")
    assert "maxpool" in table[10] and "2 x 2/2" in table[10]
    assert cli.main(["info", cfg, "--json", "--size", "320"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"bflops", "params", "layers", "blocks"} and len(data["layers"]) == 38
    assert [b["type"] for b in data["blocks"]].count("CSPOSA") == 3
    assert data["layers"][0]["output"] == "160x160x32" and data["params"] == 6_056_606


def test_info_and_scale_take_an_official_name_and_fetch_its_cfg_only(tmp_path: Path, monkeypatch, capsys) -> None:
    """`darknet-py info yolov4-tiny` (and scale) read the official cfg, as load("yolov4-tiny") names it (it said
    "cannot read cfg file yolov4-tiny"); the structure needs no weights, so only the cfg is looked for: a zoo folder
    with the cfg alone and no network are enough. A bare word that is no name lists the names."""
    from darknet_py.format import zoo

    folder = tmp_path / "zoo"
    folder.mkdir()
    shutil.copy(shared_path(ZOO_CFG / "yolov4-tiny.cfg"), folder)
    monkeypatch.setenv("DARKNET_PY_ZOO", str(folder))
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "_download", lambda url, *rest: pytest.fail(f"downloaded {url}"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["info", str(folder / "yolov4-tiny.cfg")]) == 0
    by_file = capsys.readouterr().out
    assert cli.main(["info", "yolov4-tiny"]) == 0
    assert capsys.readouterr().out == by_file and "Total BFLOPs 6.910" in by_file
    assert cli.main(["scale", "yolov4-tiny", "--width", "0.5", "-o", "half.cfg"]) == 0
    assert (tmp_path / "half.cfg").read_text().startswith("# half.cfg: yolov4-tiny.cfg scaled by darknet-py scale")
    assert cli.main(["info", "yolov4-tinyy"]) == 2
    assert "error: yolov4-tinyy: no such file, nor an official model's name (those are: yolov3, " in capsys.readouterr().err
