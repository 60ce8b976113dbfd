"""The C mish kernel (darknet_py/model/layers/_mish.c) against float64 mish over the whole float32 range, and the
networks that run it against F.mish; darknet itself checks the mish networks through it in test_zoo_parity.py
(the default path) and test_darknet_cfgs.py (fast=False)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import darknet_py
from darknet_py.model.layers import mish_kernel
from darknet_py.model.layers.activations import MISH_THRESHOLD, Activation
from tests.conftest import ZOO_CFG, shared_path

pytestmark = pytest.mark.timeout(300)

RELATIVE = 3e-7  # mish_kernel's docstring: as accurate as F.mish


def exact_mish(x: np.ndarray) -> np.ndarray:
    """darknet's mish in float64: x·tanh(softplus(x)), and x itself above the softplus threshold."""
    x = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        y = x * np.tanh(np.logaddexp(0.0, x))
    return np.where(x > MISH_THRESHOLD, x, y)


def every_exponent() -> np.ndarray:
    """Floats of both signs at every float32 exponent, several mantissas each, and the edges of the branches."""
    mantissas = np.array([1.0, 1.1, 1.25, 1.5, 1.7, 1.999], dtype=np.float64)
    magnitudes = (mantissas[None, :] * 2.0 ** np.arange(-149, 128)[:, None]).ravel()
    magnitudes = magnitudes[magnitudes < np.finfo(np.float32).max].astype(np.float32)
    edges = np.array([MISH_THRESHOLD, -87.0, -87.3, -88.0, 0.0, -0.0], dtype=np.float32)
    edges = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))])
    rng = np.random.default_rng(0)
    dense = np.concatenate([np.linspace(-100, 100, 400_001, dtype=np.float32),
                            rng.standard_normal(200_000).astype(np.float32) * 5])
    return np.concatenate([magnitudes, -magnitudes, edges, dense])


def kernel_mish(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    mish_kernel._kernel.mish(x, out)
    return out


def test_the_kernel_is_built() -> None:
    assert mish_kernel._kernel is not None


def test_within_float_precision_of_float64_over_the_whole_range() -> None:
    x = every_exponent()
    got, want = kernel_mish(x).astype(np.float64), exact_mish(x)
    large = np.abs(want) > 1e-30
    relative = np.abs(got - want)[large] / np.abs(want)[large]
    assert relative.max() <= RELATIVE, f"{relative.max():.3g} at x = {x[large][relative.argmax()]!r}"
    assert np.abs(got - want)[~large].max() <= 1e-30  # far below zero, where mish is a denormal or zero
    torch_relative = np.abs(F.mish(torch.from_numpy(x)).double().numpy() - want)[large] / np.abs(want)[large]
    assert relative.max() <= 2 * torch_relative.max()  # the claim: as accurate as torch's own


def test_darknets_branches_and_special_values() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 25.0, MISH_THRESHOLD, -90.0, -1e30, 0.0, -0.0], dtype=np.float32)
    got = kernel_mish(x)
    assert got[0] == np.inf and got[3] == 25.0 and got[4] == np.float32(MISH_THRESHOLD)
    # darknet: x·tanh(expf(x)) below its threshold: -inf·0 is NaN, far below zero it is -0
    assert np.isnan(got[1]) and np.isnan(got[2])
    assert got[5] == 0.0 and np.signbit(got[5]) and got[6] == 0.0
    assert got[7] == 0.0 and not np.signbit(got[7]) and got[8] == 0.0


def test_in_place_and_into_another_array_give_the_same_bits() -> None:
    x = every_exponent()
    into = kernel_mish(x)
    in_place = x.copy()
    mish_kernel._kernel.mish(in_place, in_place)
    assert np.array_equal(into.view(np.uint32), in_place.view(np.uint32))


def test_the_vector_loop_gives_the_scalar_codes_bits() -> None:
    """One element at a time runs the scalar code; thousands at once, the vector clone this CPU picked."""
    x = every_exponent()[::97].copy()
    one_by_one = np.concatenate([kernel_mish(x[i:i + 1]) for i in range(len(x))])
    assert np.array_equal(kernel_mish(x).view(np.uint32), one_by_one.view(np.uint32))


def test_bad_memory_is_refused_with_a_clear_error() -> None:
    x = np.ones(10, dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        mish_kernel._kernel.mish(x.astype(np.float64), x)
    with pytest.raises(ValueError, match="src holds 10 floats, dst 9"):
        mish_kernel._kernel.mish(x, np.empty(9, dtype=np.float32))
    with pytest.raises(ValueError, match="overlap"):
        mish_kernel._kernel.mish(x[1:], x[:-1])
    with pytest.raises(ValueError):  # read-only destination
        mish_kernel._kernel.mish(x, np.frombuffer(b"\0" * 40, dtype=np.float32))


def test_tensors_in_any_dense_memory_order() -> None:
    x = torch.randn(2, 8, 5, 7) * 4
    want = kernel_mish(x.numpy().ravel()).reshape(x.shape)
    for layout in (x, x.contiguous(memory_format=torch.channels_last)):
        assert mish_kernel.applies(layout)
        out = mish_kernel.mish(layout)
        assert out.stride() == layout.stride() and np.array_equal(out.numpy(), want)
        again = layout.clone()
        assert mish_kernel.mish(again, in_place=True) is again and np.array_equal(again.numpy(), want)
    assert not mish_kernel.applies(x[:, :, ::2])  # gaps: F.mish
    assert not mish_kernel.applies(x.double()) and not mish_kernel.applies(x.half())


def test_autograd_takes_f_mish_and_gets_gradients() -> None:
    x = (torch.randn(1, 4, 6, 6) * 3).requires_grad_()
    act = Activation("mish")
    assert not mish_kernel.applies(x)
    act(x, fresh=True).sum().backward()
    want = torch.autograd.functional.jacobian(lambda t: F.mish(t).sum(), x.detach())
    assert torch.allclose(x.grad, want)
    with torch.no_grad():
        assert mish_kernel.applies(x)


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the elements the C kernel is handed."""
    calls: list[int] = []
    real = mish_kernel._kernel

    class Counting:
        @staticmethod
        def mish(src, dst) -> None:
            calls.append(src.size)
            real.mish(src, dst)
    monkeypatch.setattr(mish_kernel, "_kernel", Counting)
    return calls


@pytest.mark.parametrize("fast", [True, False])
def test_a_mish_network_runs_the_kernel_and_agrees_with_f_mish(fast: bool, synthetic_weights, kernel_calls,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    model = darknet_py.load(cfg, synthetic_weights(cfg), size=256, fast=fast)
    x = torch.rand(2, 3, 256, 256)
    kernel_calls.clear()  # load() ran the network already
    with torch.no_grad():
        got = model(x)
    mish_layers = sum(1 for m in model.modules() if isinstance(m, Activation) and m.name == "mish")
    assert len(kernel_calls) == mish_layers and mish_layers > 100
    monkeypatch.setattr(mish_kernel, "enabled", False)
    with torch.no_grad():
        want = model(x)
    for a, b in zip(got, want, strict=True):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_synthetic_weights_do_not_depend_on_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """weights_tools.synth calibrates with F.mish, so an install without a compiler writes the same file."""
    from weights_tools.synth import synthesize

    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    with_kernel = synthesize(cfg, seed=1).weight_array()
    monkeypatch.setattr(mish_kernel, "enabled", False)
    assert np.array_equal(with_kernel, synthesize(cfg, seed=1).weight_array())


def test_torch_compile_traces_a_mish_network_in_one_graph(synthetic_weights) -> None:
    """The kernel's checks must not break torch.compile's graph (a context variable did: one graph per layer,
    recompiled per layer until dynamo gave up and ran them eagerly)."""
    cfg = shared_path(ZOO_CFG / "yolov4-csp.cfg")
    model = darknet_py.load(cfg, synthetic_weights(cfg), size=256)
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(torch.rand(1, 3, 256, 256))
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons[:1]
