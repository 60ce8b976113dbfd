"""cfg parsing as darknet reads it, and clear errors (file, line, section) for bad cfgs."""
from __future__ import annotations

from pathlib import Path

import pytest

import darknet_py
from darknet_py import CfgError, parse_text

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"


def test_whitespace_comments_and_first_key_wins() -> None:
    sections = parse_text(
        "# comment\n[net]\n width = 32 \nheight=32\n; other comment\n\n"
        "[route]\nlayers = -1, -2\nlayers=5\n[convolutional]\nsize=3 # inline\n",
        "x.cfg",
    )
    net, route, conv = sections
    assert net.get_int("width") == 32
    assert route.get_ints("layers") == [-1, -2]  # darknet's option_find returns the first
    assert route.line == 7 and route.option_lines["layers"] == 8 and route.index == 0
    assert conv.get_int("size") == 3 and conv.index == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no [sections] found"),
        ("width=3\n[net]\n", "appears before the first [section]"),
        ("[convolutional]\nfilters=3\n", "first section must be [net]"),
        ("[net\nwidth=3\n", "malformed section header"),
        (NET + "[convolutional]\nfilters\n", "expected key=value"),
        (NET + "[convolutional]\nfilters=abc\n", "x.cfg:6: [convolutional] (layer 0): option 'filters' must be an integer, found 'abc'"),
        (NET + "[convolutional]\nfilters=0\nsize=1\n", "'filters' must be at least 1"),
        (NET + "[convolutional]\nfilters=4\nsize=-3\n", "'size' must be at least 1"),
        (NET + "[convolutional]\nfilters=4\nsize=1\nactivation=wiggly\n", "unknown activation 'wiggly'"),
        (NET + "[history]\nhistory_size=3\n", "section type [history] is not supported; supported: "),
        (NET + "[convolutional]\nfilters=4\nsize=1\n[route]\nlayers=3\n", "layers=3 points to layer 3, but only layers 0..0 exist"),
        (NET + "[convolutional]\nfilters=4\nsize=1\n[shortcut]\nfrom=-5\n", "from=-5 points to layer -4"),
        (NET + "[convolutional]\nfilters=4\nsize=1\nbinary=1\n", "'binary' (binary weights) is not supported"),
        (NET + "[convolutional]\nfilters=4000000\nsize=99\n", "beyond any real network"),
        (NET + "[convolutional]\nfilters=18\nsize=1\n[yolo]\nmask=0,1\nanchors=1,2,3,4\nclasses=80\n",
         "filters=18, but mask has 2 anchors and classes=80, which needs filters=170"),
        (NET + "[convolutional]\nfilters=18\nsize=1\n[yolo]\nmask=0,5\nanchors=1,2,3,4\nclasses=4\n", "mask index 5 is outside the 2 listed anchors"),
        (NET + "[convolutional]\nfilters=4\nsize=1\n[maxpool]\nsize=64\nstride=64\npadding=0\n", "too small"),
        ("[net]\nwidth=0\nheight=32\n[convolutional]\nsize=1\n", "network width must be"),
        ("[net]\nwidth=32\nheight=32\n", "has a [net] section but no layers"),
    ],
)
def test_bad_cfgs_fail_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.cfg"
    path.write_text(text)
    with pytest.raises(darknet_py.DarknetError) as info:
        darknet_py.load(path)
    assert message in str(info.value)


def test_route_of_mismatched_sizes_explains_the_input_size(tmp_path: Path) -> None:
    path = tmp_path / "x.cfg"
    path.write_text(NET + "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n[convolutional]\nfilters=4\nsize=3\n"
                    "stride=2\npad=1\n[upsample]\nstride=2\n[route]\nlayers=-1,-3\n")
    assert darknet_py.load(path).infos[3].out_shape == (8, 16, 16)  # 32 is fine
    with pytest.raises(CfgError, match=r"x.cfg:\d+: \[route\] \(layer 3\).*layer 2: 4x4x4, layer 0: 3x3x4.*multiple of the network's total "
                                       r"stride; this network's total stride is 4: try 4 or 8$"):
        darknet_py.load(path, size=6)
    with pytest.raises(CfgError, match=r"this network's total stride is 4: try height 12 or 16$"):  # the side that is off
        darknet_py.load(path, size=(32, 14))


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "b.cfg"
    binary.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(CfgError, match="binary file"):
        darknet_py.read_cfg(binary)
    with pytest.raises(CfgError, match="cannot read cfg file"):
        darknet_py.read_cfg(tmp_path / "missing.cfg")
