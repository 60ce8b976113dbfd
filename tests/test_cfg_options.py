"""Options darknet ignores: a layer section's key its parser never reads (a misspelt `activaton=`) or a key given
again is ignored by darknet with an `Unused field: 'key = value'` line; darknet_py warns for exactly those. Checked
against the real darknet (`darknet ops CFG`, which parses and builds the network) on every cfg it ships and the zoo's,
and on cfgs with typos, repeated keys and options of another layer written into them."""
from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import darknet_py
from darknet_py.format.cfg import read_cfg, unused_options
from tests.conftest import REPO, ZOO_CFG, darknet_warnings, official

pytestmark = pytest.mark.timeout(600)

UNUSED = re.compile(r"^Unused field: '(.*)'$", re.M)
OURS = re.compile(r"option '(.*)' is ignored")


def _darknets(darknet_ref, cfg: Path) -> list[str] | None:
    """darknet's `Unused field` lines for *cfg* (`darknet ops`), or None where darknet's ops cannot build it."""
    done = subprocess.run([str(darknet_ref.darknet), "ops", str(cfg)], cwd=darknet_ref.folder, capture_output=True,
                          text=True, timeout=300)
    return UNUSED.findall(done.stderr) if done.returncode == 0 else None


def _ours(cfg: Path) -> list[str]:
    return [OURS.search(message).group(1) for section in read_cfg(cfg)[1:] for message in unused_options(section)]


def _mutations(folder: Path) -> list[Path]:
    """yolov4-tiny.cfg with options darknet ignores written into it."""
    cfg, _ = official("yolov4-tiny")
    text = cfg.read_text()
    edits = {
        "typo": lambda t: t.replace("activation=leaky", "activaton=leaky", 1),
        "repeated": lambda t: t.replace("[maxpool]\nsize=2", "[maxpool]\nsize=2\nsize=3", 1),
        "other-layer": lambda t: t.replace("[route]\nlayers=-1", "[route]\nlayers=-1\nignore_thresh=0.7\nfilters=9", 1),
        "upsample": lambda t: t.replace("[upsample]\nstride=2", "[upsample]\nstride=2\nbatch_normalize=1", 1),
        "net-only": lambda t: t.replace("[net]\n", "[net]\nno_such_option=1\n", 1),  # darknet never checks [net]
        "spaces": lambda t: t.replace("[yolo]\nmask = 3,4,5", "[yolo]\nmask = 3,4,5\nuc_normalizer = 0.07", 1),
    }
    made = []
    for name, edit in edits.items():
        changed = edit(text)
        assert changed != text, name
        path = folder / f"{name}.cfg"
        path.write_text(changed)
        made.append(path)
    return made


def test_the_options_darknet_ignores_are_those_darknet_says_it_ignores(darknet_ref, tmp_path: Path) -> None:
    cfgs = sorted((darknet_ref.folder / "cfg").glob("*.cfg")) + sorted(ZOO_CFG.glob("*.cfg")) + _mutations(tmp_path)
    compared, differing, flagged = 0, [], []
    for cfg in cfgs:
        theirs = _darknets(darknet_ref, cfg)
        if theirs is None:
            continue
        compared += 1
        ours = _ours(cfg)
        if ours != theirs:
            differing.append((cfg.name, ours, theirs))
        if ours:
            flagged.append(cfg.name)
    assert not differing, differing
    assert compared >= 85, compared  # darknet's ops builds nearly all of them (a few crash in its FLOPs count)
    assert sorted(flagged) == ["other-layer.cfg", "repeated.cfg", "spaces.cfg", "typo.cfg", "upsample.cfg",
                               "yolov4-sam-mish-csp-reorg-bfm.cfg"], flagged


def test_loading_a_cfg_with_a_typo_warns_once_naming_the_line(tmp_path: Path) -> None:
    """The misspelt option is ignored as darknet ignores it (the default used: here a linear first layer, so no
    detection is found) and said in one warning line naming the file, line, layer and option."""
    (path,) = [p for p in _mutations(tmp_path) if p.name == "typo.cfg"]
    _, weights = official("yolov4-tiny")
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        darknet_py.load(path, weights)
    assert darknet_warnings(recorded) == [
        "typo.cfg:40: [convolutional] (layer 0): option 'activaton = leaky' is ignored (darknet reads no 'activaton' "
        "in a [convolutional] section; its 'Unused field')"]
    shown = subprocess.run([sys.executable, "-m", "darknet_py.cli", "info", str(path)], capture_output=True, text=True,
                           timeout=300, cwd=REPO)
    assert shown.returncode == 0 and shown.stderr.splitlines() == [
        "warning: typo.cfg:40: [convolutional] (layer 0): option 'activaton = leaky' is ignored (darknet reads no "
        "'activaton' in a [convolutional] section; its 'Unused field')"]
    with warnings.catch_warnings(record=True) as clean:
        warnings.simplefilter("always")
        darknet_py.load(*official("yolov4-tiny"))
    assert darknet_warnings(clean) == []
