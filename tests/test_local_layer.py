"""YOLOv1's `[local]` (locally connected: every output position its own kernels) and yolor's / yolov7's
`activation=silu`, against the real darknet on small cfgs written for it (benchmarks/oracle/small_cfgs.py; synthetic weights,
weights_tools).

[local]: every layer's output of a yolov1.cfg-shaped network (convolutions, [local] size=3 pad=1, [dropout],
[connected], [detection]) and of a stack of [local] variants (pad 0, stride 2, size 1) equals darknet's
forward pass; `info` shows its BFLOPs; darknet's inconsistent geometries are refused in one line.

silu: darknet does not know it and computes ReLU ("Couldn't find activation function silu, going with ReLU");
darknet_py computes SiLU, says so once per load, and equals darknet reading the same cfg with `swish` on a
yolov7-shaped and a yolor-shaped network — while darknet reading `silu` as written computes something else.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import darknet_py
from benchmarks.oracle.small_cfgs import LOCAL_CFGS, NET, SILU_CFGS, local, local_comparison, silu_comparison
from darknet_py.model.info import layer_rows

pytestmark = pytest.mark.timeout(600)  # the reference darknet may be built first (minutes, once per machine)

TOLERANCE = 1e-4  # max |ours − darknet| / max |darknet|, per layer output or detection head


@pytest.mark.parametrize("name", sorted(LOCAL_CFGS))
def test_local_layers_equal_darknet(name: str, darknet_ref, tmp_path: Path) -> None:
    errors = local_comparison(name, darknet_ref, tmp_path)
    assert max(errors) <= TOLERANCE, [f"{e:.2g}" for e in errors]


def test_local_in_info_and_its_weights() -> None:
    model = darknet_py.Darknet(darknet_py.parse_text(LOCAL_CFGS["local variants"]))
    # 40x32x3 → 20x16x8 (size 2, stride 2, pad 0) → 10x8x6 ((20 − 1)/2 + 1 with pad 1) → 10x8x5
    assert [str(info.out_shape) for info in model.infos] == ["20x16x8", "10x8x6", "10x8x5"]
    weights = [20 * 16 * 8 * 3 * 4, 10 * 8 * 6 * 8 * 9, 10 * 8 * 5 * 6 * 1]
    biases = [20 * 16 * 8, 10 * 8 * 6, 10 * 8 * 5]  # one per output value
    assert [info.n_weights for info in model.infos] == [w + b for w, b in zip(weights, biases)]
    rows = layer_rows(model)
    assert [(r.bflops, r.params) for r in rows] == [(2 * w / 1e9, w + b) for w, b in zip(weights, biases)]
    assert rows[1].detail.split() == ["6", "3", "x", "3/2", "local", "logistic"]


@pytest.mark.parametrize("size, pad", [(5, 1), (1, 1), (3, 2)])
def test_darknets_inconsistent_local_geometry_is_refused(size: int, pad: int) -> None:
    with pytest.raises(darknet_py.CfgError, match=rf"test.cfg:10: \[local\] \(layer 0\): size={size} pad={pad}: darknet sizes"):
        darknet_py.Darknet(darknet_py.parse_text(NET.format(w=16, h=16) + local(4, size, 1, pad), "test.cfg"))


# -- activation=silu ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SILU_CFGS))
def test_silu_equals_darknet_reading_swish_and_warns_once(name: str, darknet_ref, tmp_path: Path) -> None:
    compared = silu_comparison(name, darknet_ref, tmp_path)
    silu_layers = SILU_CFGS[name].count("activation=silu")
    first = SILU_CFGS[name].splitlines().index("activation=silu") + 1
    (said,) = compared.warnings  # one warning per load, naming darknet's fallback, the first layer and the count
    assert "Couldn't find activation function silu, going with ReLU" in said
    assert said.startswith(f"{name}.cfg:{first}: ") and f"(and {silu_layers - 1} more like it)" in said
    assert len(compared.vs_swish) == 2 - (name == "yolor-shaped")
    assert max(compared.vs_swish) <= TOLERANCE
    assert min(compared.vs_as_written) > 0.05  # darknet's ReLU: another network
