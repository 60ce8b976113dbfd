"""load(backend="auto") and --backend auto: the fastest exact runtime for a network on this CPU, timed once and
remembered (darknet_py.backends.fastest, issue 29)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import darknet_py
from darknet_py.backends import fastest
from darknet_py.core.fileio import sha256_file
from tests.conftest import IMAGES, REPO, official, shared_path
from weights_tools.synth import synthesize

EVERY_RUNTIME = ["torch", "onnxruntime", "openvino"]  # the dev extra installs OpenVINO


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of verdicts of this test's own (never the user's ~/.cache)."""
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / fastest.CACHE_FILE


@pytest.mark.parametrize(("times_ms", "chosen"), [
    ({"torch": 40.0, "onnxruntime": 41.0, "openvino": 39.0}, "torch"),  # 2.5% faster: within the margin
    ({"torch": 40.0, "onnxruntime": 41.0, "openvino": 37.0}, "openvino"),
    ({"torch": 30.0, "onnxruntime": 20.0, "openvino": 25.0}, "onnxruntime"),
    ({"torch": 30.0}, "torch"),
])
def test_the_fastest_runtime_wins_by_more_than_the_margin(times_ms: dict, chosen: str) -> None:
    assert fastest.pick(times_ms) == chosen
    said = fastest.Choice(chosen, times_ms).describe()  # torch kept behind a faster one was called "the fastest"
    kept = chosen != min(times_ms, key=times_ms.__getitem__)
    assert said.startswith(f"{chosen}: no exact runtime is 5% faster for this network on this CPU (" if kept else
                           f"{chosen}, the fastest exact runtime for this network on this CPU ("), said


def test_every_installed_runtime_is_timed_once_then_the_verdict_is_remembered(cache: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    measured: list[list[str]] = []
    choice = darknet_py.fastest_backend(cfg, weights, measuring=measured.append)
    assert measured == [EVERY_RUNTIME] and fastest.installed() == EVERY_RUNTIME
    assert not choice.remembered and sorted(choice.times_ms) == sorted(EVERY_RUNTIME)
    assert all(0 < ms < 10_000 for ms in choice.times_ms.values())
    assert choice.backend == fastest.pick(choice.times_ms)
    assert choice.backend in choice.describe() and "measured now" in choice.describe()

    again = darknet_py.fastest_backend(cfg, weights, measuring=measured.append)
    assert again == replace(choice, remembered=True) and len(measured) == 1
    assert "remembered" in again.describe()
    # another input size is another network to time; the first verdict stays
    darknet_py.fastest_backend(cfg, weights, size=320, measuring=measured.append)
    assert len(measured) == 2 and len(json.loads(cache.read_text())) == 2


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_auto_runs_the_remembered_runtime_with_torchs_detections(cache: Path, runtime: str) -> None:
    """Whichever runtime a CPU's verdict names, the detections are torch's (docs/parity.md's tolerance for graphs)."""
    cfg, weights = official("yolov4-tiny")
    key = fastest.cache_key(sha256_file(cfg), None, fastest.installed())
    fastest.remember(key, fastest.Choice(runtime, {"torch": 40.0, runtime: 30.0}))
    model = darknet_py.load(cfg, weights, backend="auto")
    assert model.traits.name == runtime
    images = [str(shared_path(IMAGES / name)) for name in ("dog.jpg", "person.jpg")]
    expected, got = darknet_py.load(cfg, weights).detect(images), model.detect(images)
    assert sum(len(d) for d in expected) >= 5
    for want, have in zip(expected, got, strict=True):
        assert have.labels == want.labels
        assert np.abs(have.scores - want.scores).max() <= 1e-3
        assert np.abs(have.boxes - want.boxes).max() <= 0.5


def test_an_unreadable_cache_is_measured_again_and_an_unwritable_one_is_skipped(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, weights = official("yolov4-tiny")
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    measured: list[list[str]] = []
    choice = darknet_py.fastest_backend(cfg, weights, size=256, measuring=measured.append)
    assert measured and json.loads(cache.read_text())  # rewritten whole, readable
    assert darknet_py.fastest_backend(cfg, weights, size=256) == replace(choice, remembered=True)

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("DARKNET_PY_CACHE", str(blocked / "cache"))  # under a file: cannot be created
    model = darknet_py.load(cfg, weights, size=256, backend="auto")
    assert model.detect(str(shared_path(IMAGES / "dog.jpg")))[0].labels
    assert not (blocked / "cache").exists()


def test_auto_refuses_what_it_cannot_choose_for() -> None:
    cfg, weights = official("yolov4-tiny")
    with pytest.raises(darknet_py.InputError, match="model.onnx is an exported model: it has one runtime's graph"):
        darknet_py.fastest_backend("model.onnx")
    with pytest.raises(darknet_py.InputError, match="options threads pick a runtime's settings"):
        darknet_py.load(cfg, weights, backend="auto", threads=1)
    with pytest.raises(darknet_py.InputError, match="unknown backend 'fastest'; use one of torch, onnxruntime, "
                                                    "openvino, auto"):
        darknet_py.load(cfg, weights, backend="fastest")


def _detect(*args: str, cache_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DARKNET_PY_CACHE": str(cache_dir)}
    return subprocess.run([sys.executable, "-m", "darknet_py.cli", "detect", *args], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=600)


def test_the_cli_says_what_it_measured_then_what_it_remembered(tmp_path: Path) -> None:
    cfg, weights = official("yolov4-tiny")
    dog = str(shared_path(IMAGES / "dog.jpg"))
    model = ["--cfg", str(cfg), "--weights", str(weights), "--backend", "auto", "--save-json"]
    first = _detect(dog, *model, "--output", str(tmp_path / "1"), cache_dir=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    assert "--backend auto: timing torch, onnxruntime, openvino on this network and CPU" in first.stderr
    chosen = next(line for line in first.stderr.splitlines() if line.startswith("backend: "))
    assert ("the fastest exact runtime for this network on this CPU" in chosen  # or torch, kept: see describe()
            or "torch: no exact runtime is 5% faster for this network on this CPU" in chosen) and "measured now" in chosen
    names = {d["name"] for d in json.loads((tmp_path / "1" / "detections.json").read_text())[0]["detections"]}
    assert names >= {"dog", "bicycle", "truck"}

    second = _detect(dog, *model, "--output", str(tmp_path / "2"), cache_dir=tmp_path / "cache")
    assert second.returncode == 0 and "timing" not in second.stderr
    assert f"{chosen.split(' (')[0]}" in second.stderr and "remembered from an earlier measurement" in second.stderr

    refused = _detect(dog, *model, "--compile", "--output", str(tmp_path / "3"), cache_dir=tmp_path / "cache")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: --backend auto picks among the exact fp32 runtimes; --compile needs --backend torch")


NET = "[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
HEAD = "[connected]\noutput=10\nactivation=linear\n[softmax]\n"


def test_a_classifier_is_timed_classifying_and_a_recurrent_network_on_the_runtimes_that_take_it(
        tmp_path: Path, cache: Path) -> None:
    classifier, weights = tmp_path / "classifier.cfg", tmp_path / "classifier.weights"
    classifier.write_text(NET + HEAD)
    synthesize(classifier, seed=0).save_weights(weights)
    choice = darknet_py.fastest_backend(classifier, weights)
    assert sorted(choice.times_ms) == sorted(EVERY_RUNTIME)
    model = darknet_py.load(classifier, weights, backend="auto")
    assert model.traits.name == choice.backend and model.is_classifier
    image = (np.arange(32 * 32 * 3) % 256).astype(np.uint8).reshape(32, 32, 3)
    expected, got = darknet_py.load(classifier, weights).classify(image, top=3)[0], model.classify(image, top=3)[0]
    assert list(got.class_ids) == list(expected.class_ids)
    assert np.abs(got.probabilities - expected.probabilities).max() <= 1e-5

    recurrent = tmp_path / "recurrent.cfg"  # no export of recurrent layers: torch is the only candidate
    recurrent.write_text(NET + "[rnn]\noutput=20\nhidden=16\nactivation=leaky\n" + HEAD)
    only = darknet_py.fastest_backend(recurrent)
    assert list(only.times_ms) == ["torch"] and only.backend == "torch"
