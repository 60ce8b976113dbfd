"""Recurrent layers ([rnn], [gru], [lstm], [crnn], [conv_lstm]) against darknet run frame after frame
(benchmarks/oracle/dump_steps.c: network_predict once per frame, the state carried), and the state's life cycle:
carried across the frames of one video, reset between sources, never frozen in a graph or an export."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import darknet_py
from benchmarks.oracle.cfg_parity import relative_error, sized_copy
from darknet_py import cli
from darknet_py.export.onnx import ExportOptions, build_onnx
from weights_tools.synth import synthesize

STEPS = 4
TOLERANCE = 1e-4
NET = "[net]\nwidth=24\nheight=24\nchannels=3\n"
STEM = "[convolutional]\nbatch_normalize=1\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
HEAD = "[connected]\noutput=10\nactivation=linear\n[softmax]\n"
LAYERS = {
    "rnn": "[rnn]\nbatch_normalize=1\noutput=20\nhidden=16\nactivation=leaky\n",
    "rnn-shortcut-logistic": "[rnn]\noutput=20\nhidden=20\nactivation=tanh\nlogistic=1\nshortcut=1\n",
    "gru": "[gru]\nbatch_normalize=1\noutput=20\n",
    "lstm": "[lstm]\nbatch_normalize=1\noutput=20\n",
    "crnn": "[crnn]\nbatch_normalize=1\nsize=3\npad=1\noutput=8\nhidden=5\nactivation=leaky\n",
    "crnn-shortcut": "[crnn]\nsize=1\noutput=8\nhidden=6\nactivation=relu\nshortcut=1\n",
    "conv_lstm": "[conv_lstm]\nbatch_normalize=1\nsize=3\npad=1\noutput=8\n",
    "conv_lstm-peephole": "[conv_lstm]\nsize=3\npad=1\noutput=8\npeephole=1\nstate_constrain=2\nactivation=leaky\n",
}


def _network(tmp_path: Path, layer: str) -> tuple[Path, Path]:
    cfg = tmp_path / "net.cfg"
    cfg.write_text(NET + STEM + LAYERS[layer] + HEAD)
    weights = tmp_path / "net.weights"
    synthesize(cfg, seed=1).save_weights(weights)
    return cfg, weights


def _frames(model, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, model.channels, model.height, model.width), dtype=np.float32)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_step_equals_darknet_run_frame_after_frame(layer: str, tmp_path: Path, darknet_steps) -> None:
    cfg, weights = _network(tmp_path, layer)
    model = darknet_py.load(cfg, weights, fast=False)
    frames = _frames(model, STEPS)
    theirs = darknet_steps.steps(cfg, weights, frames, tmp_path / "darknet")
    recurrent = model.recurrent[0]
    with torch.inference_mode():
        for step, frame in enumerate(frames):
            outputs = _layer_outputs(model, torch.from_numpy(frame)[None])
            for index in (recurrent, len(model.layers) - 1):
                error = relative_error(outputs[index], theirs[step][index].output)
                assert error <= TOLERANCE, f"{layer}, step {step}, layer {index}: {error:.2g}"
    first, later = theirs[0][recurrent].output, theirs[-1][recurrent].output
    assert relative_error(later, first) > 1e-3, "the state should change the output from step to step"


def _layer_outputs(model, x: torch.Tensor) -> list[np.ndarray]:
    """Every layer's output for one forward (the model's own graph walk)."""
    found: list[np.ndarray] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: found.append(out.float().reshape(-1).numpy()))
             for m in model.layers]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def test_the_occlusion_track_cfg_steps_like_darknet(tmp_path: Path, darknet_ref, darknet_steps) -> None:
    """darknet's own [crnn] cfg (yolov3-tiny_occlusion_track) at 128 px: its [yolo] inputs over frames."""
    cfg = sized_copy(darknet_ref.folder / "cfg" / "yolov3-tiny_occlusion_track.cfg", tmp_path, 128)
    weights = tmp_path / "track.weights"
    synthesize(cfg, seed=0).save_weights(weights)
    model = darknet_py.load(cfg, weights, fast=False)
    frames = _frames(model, 3, seed=2)
    theirs = darknet_steps.steps(cfg, weights, frames, tmp_path / "darknet")
    with torch.inference_mode():
        for step, frame in enumerate(frames):
            heads = model.forward_heads(torch.from_numpy(frame)[None])
            for head, index in zip(heads, model.output_indices):
                error = relative_error(head.reshape(-1).numpy(), theirs[step][index - 1].output)
                assert error <= TOLERANCE, f"step {step}, head {index}: {error:.2g}"


def test_a_sequence_carries_the_state_and_every_other_call_starts_fresh(tmp_path: Path) -> None:
    cfg, weights = _network(tmp_path, "crnn")
    model = darknet_py.load(cfg, weights)
    frames = torch.from_numpy(_frames(model, STEPS))
    with torch.inference_mode():
        model.reset_state()
        stepped = torch.cat([model(frames[i : i + 1])[0] for i in range(STEPS)])  # darknet: one predict per frame
        fresh = []
        for i in range(STEPS):
            model.reset_state()
            fresh.append(model(frames[i : i + 1])[0])
        fresh = torch.cat(fresh)
        with model.sequence():
            in_order = model.run_frames(frames)[0]  # one batch of frames = consecutive steps
        outside = model.run_frames(frames)[0]  # photos: each one step from a zero state
    assert torch.allclose(in_order, stepped, rtol=0, atol=1e-6)
    assert torch.allclose(outside, fresh, rtol=0, atol=1e-6)
    assert not torch.allclose(stepped[1:], fresh[1:], atol=1e-3)


def test_classify_and_detect_treat_each_photo_as_one_step(tmp_path: Path) -> None:
    cfg, weights = _network(tmp_path, "lstm")
    model = darknet_py.load(cfg, weights)
    photo = (np.random.default_rng(3).random((40, 50, 3)) * 255).astype(np.uint8)
    first = model.classify(photo, top=3)[0]
    again = model.classify([photo, photo], top=3)
    assert all(np.array_equal(r.class_ids, first.class_ids) and np.allclose(r.probabilities, first.probabilities)
               for r in again)


def test_a_video_carries_the_state_from_frame_to_frame(tmp_path: Path, clip: Path, darknet_ref) -> None:
    """detect on a video (CLI, --batch 4) equals the frames run one by one in a sequence, and differs
    from the same frames run as separate photos: the state is what makes the difference."""
    cfg = sized_copy(darknet_ref.folder / "cfg" / "yolov3-tiny_occlusion_track.cfg", tmp_path, 128)
    weights = tmp_path / "track.weights"
    synthesize(cfg, seed=0).save_weights(weights)
    out = tmp_path / "run"
    args = ["detect", str(clip), "--cfg", str(cfg), "--weights", str(weights), "--thresh", "0.05", "--batch", "4",
            "--no-save", "--save-json", "--output", str(out)]
    assert cli.main(args) == 0
    from_cli = [r["detections"] for r in json.loads((out / "detections.json").read_text())]
    model = darknet_py.load(cfg, weights)
    import cv2

    capture, frames = cv2.VideoCapture(str(clip)), []
    while (frame := capture.read()[1]) is not None:
        frames.append(frame)
    with model.sequence():
        in_order = [json.loads(model.detect(f, 0.05)[0].to_json())["detections"] for f in frames]
    as_photos = [json.loads(model.detect(f, 0.05)[0].to_json())["detections"] for f in frames]
    assert len(from_cli) == len(frames) and from_cli == in_order
    assert any(d for d in in_order) and in_order != as_photos
    # two videos through one recurrent model would mix their states: refused, and no run folder is left
    both = tmp_path / "both"
    assert cli.main(["detect", str(clip), str(clip), "--cfg", str(cfg), "--weights", str(weights),
                     "--output", str(both)]) == 2
    assert not both.exists()


def test_stateful_models_never_run_from_a_graph_or_compiled_code(tmp_path: Path) -> None:
    cfg, weights = _network(tmp_path, "gru")
    model = darknet_py.load(cfg, weights)
    with pytest.warns(darknet_py.DarknetWarning, match="recurrent"):
        runner = model.accelerate(cuda_graphs=True, compile=True).runner()
    assert not runner.options.compile and not runner.options.cuda_graphs and not runner.compiled


def test_onnx_refuses_a_recurrent_layer_naming_it(tmp_path: Path) -> None:
    cfg, weights = _network(tmp_path, "conv_lstm")
    model = darknet_py.load(cfg, weights)
    with pytest.raises(darknet_py.InputError, match=r"layer 1 \[conv_lstm\] \(line \d+\).*recurrent state"):
        build_onnx(model, [f"c{i}" for i in range(10)], ExportOptions())


@pytest.mark.parametrize("text, message", [
    ("[crnn]\nsize=3\nstride=2\npad=1\noutput=4\nhidden=4\n", "keep the 12x12 size"),
    ("[conv_lstm]\nsize=3\npad=1\noutput=4\nbottleneck=1\n", "CUDA"),
    ("[crnn]\nsize=3\npad=1\noutput=4\nhidden=4\nxnor=1\n", "xnor"),
])
def test_what_darknet_cannot_run_on_the_cpu_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(darknet_py.CfgError, match=message):
        darknet_py.Darknet(darknet_py.parse_text(NET + STEM + text))
