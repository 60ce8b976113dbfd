"""The layer contract (darknet_py/model/layers/registry.py): every section type registers its builder
and its description together, a type without a description cannot be registered, and a layer
written in one file is built, described in `info` and run without touching any other file."""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch

from darknet_py.format.cfg import parse_text
from darknet_py.model import layers
from darknet_py.model.info import format_table, layer_rows
from darknet_py.model.layers import registry
from darknet_py.model.network import Network

pytestmark = pytest.mark.timeout(120)

ZOO_CFGS = sorted((Path(__file__).resolve().parents[2] / "shared" / "zoo" / "cfg").glob("*.cfg"))

# Small networks that together use every registered section type (aliases included).
COVERAGE_CFGS = {
    "conv, pools, route, shortcut, upsample, yolo": """
        [net]
        width=64
        height=64
        channels=3
        [convolutional]
        filters=8
        size=3
        stride=1
        pad=1
        activation=leaky
        [conv]
        filters=8
        size=3
        stride=1
        pad=1
        activation=linear
        xnor=1
        [max]
        size=2
        stride=2
        [maxpool]
        size=2
        stride=1
        maxpool_depth=1
        out_channels=4
        [local_avgpool]
        size=2
        stride=1
        [local_avg]
        size=3
        stride=1
        [route]
        layers=-1,-2
        [shortcut]
        from=-3
        activation=linear
        [upsample]
        stride=2
        [upsample]
        stride=-2
        [reorg3d]
        stride=2
        [reorg]
        stride=2
        reverse=1
        [reorg]
        stride=2
        [sam]
        from=-1
        [convolutional]
        filters=255
        size=1
        stride=1
        activation=linear
        [yolo]
        mask=0,1,2
        anchors=10,14, 23,27, 37,58
        classes=80
        num=3
    """,
    "other heads": """
        [net]
        width=64
        height=64
        channels=3
        [convolutional]
        filters=125
        size=1
        stride=1
        activation=linear
        [region]
        anchors=1,1, 2,2, 3,3, 4,4, 5,5
        classes=20
        num=5
        coords=4
        [route]
        layers=-2
        [convolutional]
        filters=117
        size=1
        stride=1
        activation=linear
        [Gaussian_yolo]
        mask=0,1,2
        anchors=10,14, 23,27, 37,58
        classes=30
        num=3
        [route]
        layers=-4
        [convolutional]
        filters=255
        size=1
        stride=1
        activation=linear
        [yolo]
        mask=0,1,2
        anchors=10,14, 23,27, 37,58
        classes=80
        num=3
        [contrastive]
        classes=80
        yolo_layer=-1
    """,
    "classifier tail": """
        [net]
        width=16
        height=16
        channels=3
        [convolutional]
        filters=8
        size=3
        stride=2
        pad=1
        activation=relu
        [avg]
        [convolutional]
        filters=8
        size=1
        stride=1
        activation=linear
        [scale_channels]
        from=-3
        [avgpool]
        [local]
        size=1
        stride=1
        filters=8
        activation=leaky
        [dropout]
        probability=0.5
        [connected]
        output=10
        activation=linear
        [softmax]
        groups=1
        [cost]
        type=sse
    """,
    "recurrent, crop, detection": """
        [net]
        width=16
        height=16
        channels=3
        [crop]
        crop_width=12
        crop_height=12
        [crnn]
        output=4
        hidden=4
        size=3
        pad=1
        batch_normalize=1
        [conv_lstm]
        output=4
        size=3
        pad=1
        [rnn]
        output=8
        hidden=8
        [gru]
        output=8
        [lstm]
        output=8
        [connected]
        output=40
        activation=linear
        [detection]
        classes=5
        coords=4
        num=1
        side=2
    """,
}


def _build(text: str, name: str = "test.cfg") -> Network:
    return Network(parse_text(textwrap.dedent(text), name))


def test_every_registered_type_has_a_description_and_is_used_by_a_test_network():
    used: set[str] = set()
    for name, text in COVERAGE_CFGS.items():
        model = _build(text, f"{name}.cfg")
        for info, layer in zip(model.infos, model.layers):
            described = registry.layer_type(info.type).describe(layer, info)
            assert isinstance(described, registry.Description), info.type
            assert isinstance(described.detail, str) and described.bflops >= 0 and described.params >= 0
            used.add(info.type)
    missing = set(layers.supported_types()) - used
    assert not missing, f"registered section types no test network builds: {sorted(missing)}"


SHARED_AND_NORMALISED = """
    [net]
    width=16
    height=16
    channels=3
    [convolutional]
    batch_normalize=1
    filters=4
    size=3
    pad=1
    activation=leaky
    [convolutional]
    batch_normalize=1
    filters=4
    size=3
    pad=1
    activation=mish
    [convolutional]
    batch_normalize=1
    filters=4
    size=3
    pad=1
    dilation=2
    share_index=-1
    activation=leaky
    [connected]
    output=6
    batch_normalize=1
    activation=linear
"""


@pytest.mark.parametrize("text", [*COVERAGE_CFGS.values(), SHARED_AND_NORMALISED],
                         ids=[*COVERAGE_CFGS, "share_index, normalised connected"])
def test_a_network_built_for_weights_read_next_holds_exactly_what_a_randomly_initialised_one_does(text):
    """Network(init_weights=False) (load() with a weights file, synthesize) skips torch's random init through
    registry.weights_module: after the same floats are read, every parameter and buffer equals, bit for bit, the
    network built with torch's init, so no tensor is left out of the .weights layout unwritten."""
    sections = parse_text(textwrap.dedent(text), "test.cfg")
    drawn, skipped = Network(sections), Network(sections, init_weights=False)
    floats = torch.randn(drawn.num_weights(), generator=torch.Generator().manual_seed(0)).numpy()
    for model in (drawn, skipped):
        model.load_weight_array(floats)
    want, got = drawn.state_dict(), skipped.state_dict()
    assert list(want) == list(got) and want
    for name in want:
        assert type(want[name]) is type(got[name]) and torch.equal(want[name], got[name]), name
    assert [type(m) for m in drawn.modules()] == [type(m) for m in skipped.modules()]  # the layers' own classes


def test_weights_follow_holds_only_in_its_block_and_its_thread():
    """registry.weights_follow (a core.scoped_flag.ScopedFlag): a network built by another thread meanwhile, or
    after the block, gets torch's initialisation."""
    import threading

    flag = registry._WEIGHTS_FOLLOW
    seen: list[bool] = []
    with registry.weights_follow():
        assert flag
        with registry.weights_follow():
            assert flag
        assert flag  # the inner block restored the outer one's value, not False
        other = threading.Thread(target=lambda: seen.append(bool(flag)))
        other.start()
        other.join()
    assert seen == [False] and not flag


def test_registering_a_type_without_a_description_is_an_error():
    with pytest.raises(TypeError, match=r"\[toy_without_description\] registered without describe="):
        registry.register("toy_without_description")
    assert "toy_without_description" not in layers.supported_types()


def test_a_builder_must_return_a_layer():
    @registry.register("toy_plain_module", describe=registry.describe_nothing)
    def build(s, ctx):
        return registry.Built(torch.nn.Identity(), ctx.prev_shape, (ctx.prev,))

    try:
        with pytest.raises(TypeError, match=r"\[toy_plain_module\] returned a Identity, not a Layer"):
            _build("[net]\nwidth=8\nheight=8\n[toy_plain_module]\n")
    finally:
        del registry._TYPES["toy_plain_module"]


TOY_LAYER = '''
"""[toy_scale]: multiplies its input by `factor` (a layer written for the contract test)."""
from torch import Tensor

from darknet_py.model.layers.registry import Built, Description, Layer, register


class ToyScale(Layer):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def describe_toy(layer, info):
    out = info.out_shape
    return Description(f"       x{layer.factor:g}", out.c * out.h * out.w / 1e9, 0)


@register("toy_scale", describe=describe_toy)
def build_toy_scale(s, ctx):
    return Built(ToyScale(s.get_float("factor", 1.0)), ctx.prev_shape, (ctx.prev,))
'''


def test_a_layer_in_one_file_builds_runs_and_shows_in_info(tmp_path):
    path = tmp_path / "toy_scale.py"
    path.write_text(TOY_LAYER)
    spec = importlib.util.spec_from_file_location("toy_scale_layer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registering is all the file does; nothing else is edited
    try:
        model = _build("[net]\nwidth=8\nheight=4\nchannels=2\n[toy_scale]\nfactor=3\n")
        x = torch.rand(1, 2, 4, 8)
        (out,) = model(x)
        assert torch.equal(out, x * 3)
        (row,) = layer_rows(model)
        assert (row.type, row.detail.strip(), row.bflops, row.params) == ("toy_scale", "x3", 2 * 4 * 8 / 1e9, 0)
        assert "toy_scale" in format_table(model)
    finally:
        del registry._TYPES["toy_scale"]


@pytest.mark.parametrize("cfg", ZOO_CFGS, ids=lambda p: p.name)
def test_zoo_cfgs_describe_every_layer(cfg):
    """Every layer of the official cfgs gets its row from its own registration."""
    model = Network(parse_text(cfg.read_text(), str(cfg)), 128 if "p7" not in cfg.name else 256)
    rows = layer_rows(model)
    assert len(rows) == len(model.layers)
    convs = [r for r in rows if r.type == "convolutional"]
    assert convs and all(r.bflops > 0 and r.params > 0 for r in convs)
