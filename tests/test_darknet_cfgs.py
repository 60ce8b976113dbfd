"""Every cfg darknet ships, against the real darknet (benchmarks/oracle/darknet_reference.py).

For each cfg in darknet's own `cfg/` folder: `compare_with_darknet` (benchmarks/oracle/cfg_parity.py),
a copy at 256×256 (at the cfg's own size where a [connected] or [local] layer fixes the input size;
a classifier at 64 px, or its own size if smaller), deterministic synthetic weights from
weights_tools, then darknet's forward pass (dump_layers) and ours on the same random input.
What is compared is what `Darknet.forward_heads` returns: the input of every detection layer
([yolo], [region], [Gaussian_yolo]) in cfg order, or, for a cfg without one (a classifier), the
output of its last layer (darknet's `get_network_output`: the last layer that is not [cost]).
Two darknet quirks shape the comparison (see stops_at_an_assert and without_cpu_gaps there): ResNet's
shortcuts between maps of different sizes run in darknet's release build (the reference build's
assert stops them), and relu6, which darknet's CPU code lacks, is swapped for relu in both engines.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import darknet_py
from benchmarks.oracle.cfg_parity import compare_with_darknet
from benchmarks.oracle.darknet_reference import BUILD_SCRIPT
from tests.conftest import official, shared_path, zoo_cfgs

TOLERANCE = 1e-4  # max |ours − darknet| / max |darknet|, per compared tensor
# Text RNNs: character-level models with no image input; darknet_py refuses them with a clear message.
TEXT_RNNS = {"rnn.cfg", "rnn.train.cfg", "lstm.train.cfg", "gru.cfg", "crnn.train.cfg"}
ZOO_TEXTS = {cfg.read_bytes() for cfg in zoo_cfgs()}


def _darknet_cfg_names() -> list[str]:
    """The cfg file names inside the pinned darknet archive (read without building anything)."""
    import tarfile

    with tarfile.open(shared_path(BUILD_SCRIPT.parent / "darknet-59596d78.tgz")) as archive:
        names = [Path(m.name).name for m in archive.getmembers() if re.fullmatch(r"(\./)?cfg/[^/]+\.cfg", m.name)]
    assert len(names) == 87, f"the pinned darknet holds {len(names)} cfgs, not 87"
    return sorted(names)


@pytest.mark.parametrize("name", _darknet_cfg_names())
def test_every_darknet_cfg_equals_darknet(name: str, darknet_ref, darknet_steps, synthetic_weights, tmp_path: Path) -> None:
    cfg = darknet_ref.folder / "cfg" / name
    if name in TEXT_RNNS:
        with pytest.raises(darknet_py.DarknetError, match=r"text|character|image input"):
            darknet_py.load(cfg)
        return
    # a cfg the zoo holds too (byte for byte): its synthetic weights are made once, for this test and the zoo's
    shared = synthetic_weights if cfg.read_bytes() in ZOO_TEXTS else None
    try:
        errors = compare_with_darknet(cfg, darknet_ref, tmp_path, darknet_steps, shared)
    finally:  # synthetic weights and layer dumps: up to GBs per cfg, 87 cfgs
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert max(errors) <= TOLERANCE, f"{name}: relative error per output {['%.2g' % e for e in errors]}"


def test_a_zoo_cfg_shares_its_weights_only_where_they_are_its_sized_copys(tmp_path: Path) -> None:
    """What lets the zoo's tests reuse these weights (same_synthetic_weights): for yolov4-tiny at 416 and its copy at
    256 synthesize writes the same bytes; a copy whose layers changed (relu6 → relu) or one below 256 px is not
    taken for the same."""
    from benchmarks.oracle.cfg_parity import parity_size, same_synthetic_weights, sized_copy
    from weights_tools.synth import synthesize

    cfg = official("yolov4-tiny")[0]
    sized = sized_copy(cfg, tmp_path, parity_size(cfg))
    assert same_synthetic_weights(cfg, sized)
    synthesize(cfg, seed=0).save_weights(tmp_path / "own.weights")
    synthesize(sized, seed=0).save_weights(tmp_path / "sized.weights")
    assert (tmp_path / "own.weights").read_bytes() == (tmp_path / "sized.weights").read_bytes()
    changed = tmp_path / "changed" / cfg.name
    changed.parent.mkdir()
    changed.write_text(sized.read_text().replace("activation=leaky", "activation=relu6", 1))
    assert not same_synthetic_weights(cfg, changed)
    small = sized_copy(cfg, tmp_path / "changed", 128)
    assert not same_synthetic_weights(cfg, small)
