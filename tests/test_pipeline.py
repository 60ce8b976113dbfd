"""Pipeline pieces: letterbox round trip, NMS against a box-by-box greedy loop, decode, zoo."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import threading
import warnings
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import darknet_py
from darknet_py.core.errors import InputError
from darknet_py.format import zoo
from darknet_py.pipeline.nms import batched_nms, pairwise_overlap
from darknet_py.pipeline.preprocess import prepare
from tests.conftest import IMAGES, ZOO_CFG, ZOO_WEIGHTS, official, photos, same_detections, shared_path


@pytest.mark.parametrize("letterbox", [True, False])
def test_box_round_trip_through_the_network_transform(letterbox: bool) -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    tensor, transform = prepare(image, 416, 416, letterbox)
    assert tensor.shape == (3, 416, 416)
    if letterbox:  # 640x480 → 416x312, centred: 52 px of 0.5 grey above and below
        assert transform.pad_y == 52 and np.allclose(tensor[:, :52], 0.5) and np.allclose(tensor[:, 60:300], 0)
    boxes = np.array([[10, 20, 300, 400], [0, 0, 640, 480]], np.float32)
    assert np.allclose(transform.to_image(transform.to_network(boxes)), boxes, atol=1e-3)


def _greedy(boxes, scores, groups, thresh, kind, beta):
    """Darknet's loop: sort, and each still-kept box suppresses later overlapping ones."""
    order = np.argsort(-scores, kind="stable")
    overlap = pairwise_overlap(torch.from_numpy(boxes), kind, beta).numpy()
    kept, dead = [], set()
    for a, i in enumerate(order):
        if i in dead:
            continue
        kept.append(i)
        for j in order[a + 1 :]:
            if groups[j] == groups[i] and overlap[i, j] > thresh:
                dead.add(j)
    return kept


@pytest.mark.parametrize("block", [4096, 16])  # 16: groups packed into many blocks, some groups larger than one
@pytest.mark.parametrize("kind, beta", [("iou", 0.6), ("diou", 0.6), ("diou", 0.9)])
def test_matrix_nms_equals_greedy_loop(kind: str, beta: float, block: int, monkeypatch) -> None:
    from darknet_py.pipeline import nms

    monkeypatch.setattr(nms, "BLOCK", block)
    rng = np.random.default_rng(7)
    for trial in range(20):
        xy = rng.uniform(0, 100, (60, 2))
        wh = rng.uniform(5, 40, (60, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        scores = rng.uniform(0, 1, 60).astype(np.float32)
        groups = rng.integers(0, 3 if trial % 2 else 12, 60)  # few big groups, or many small ones
        ours = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.45, kind, beta)
        assert ours.tolist() == _greedy(boxes, scores, groups, 0.45, kind, beta)


def test_cfg_nms_kind_and_multi_label() -> None:
    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    image = str(photos()[0].parent / "dog.jpg")
    default = model.detect(image)[0]  # the cfg's greedynms (DIoU)
    multi = model.detect(image, multi_label=True)[0]
    assert len(multi) >= len(default) and set(default.labels) <= set(multi.labels)
    only_dogs = model.detect(image, classes=(16,))[0]
    assert set(only_dogs.labels) == {"dog"}
    with pytest.raises(InputError, match=r"classes \[80, -1\]: not class ids of this model \(it has 80: 0..79\)"):
        model.detect(image, classes=(16, 80, -1))
    # one class alone, by name or id, is that class (not a string's letters, not a TypeError)
    assert model.detect(image, classes="dog")[0] == only_dogs and model.detect(image, classes=16)[0] == only_dogs
    assert len(model.detect(image, max_det=2)[0]) == 2
    for options, message in ((dict(max_det=-1), "max_det must be a whole number of detections, 1 or more, got -1"),
                             (dict(max_det=2.5), "max_det must be a whole number"),
                             (dict(conf_thresh="0.5"), "confidence threshold must be a number in [0, 1], got '0.5'"),
                             (dict(nms_thresh=float("nan")), "NMS threshold must be a number in [0, 1], got nan")):
        with pytest.raises(InputError, match=re.escape(message)):
            model.detect(image, **options)
    with pytest.raises(InputError, match=re.escape("names: 2 given for a model of 80 classes")):
        model.detect(image, names=["a", "b"])  # the other classes would be labelled by their numbers
    picture = cv2.imread(image)
    assert default.draw(picture).shape == picture.shape
    for wrong, message in ((image, "draw: give the image the detections were found in as a numpy array (H, W, 3) BGR, "
                                   "as cv2.imread reads it; got str"),
                           (picture[:100], "draw: the image is 768x100, the detections were found in a 768x576 one")):
        with pytest.raises(InputError, match=re.escape(message)):
            default.draw(wrong)
    coco = default.to_coco(7, category_ids=np.arange(1, 81))  # an array of ids as a list of them
    assert [entry["category_id"] for entry in coco] == [int(c) + 1 for c in default.class_ids]
    batch = model.detect([image, image])
    assert len(batch) == 2 and np.allclose(batch[0].boxes, batch[1].boxes)


def test_new_coords_decode_matches_darknet_formula() -> None:
    from darknet_py.model.layers.yolo import YoloSpec
    from darknet_py.pipeline.decode import decode_head

    spec = YoloSpec(anchors=((10.0, 20.0),), classes=1, scale_x_y=2.0, new_coords=True, nms_kind="diounms", beta_nms=0.6)
    head = torch.full((1, 6, 2, 2), 0.75)
    boxes, obj, scores = decode_head(head, spec, 32, 32)
    # x = (col + 0.75·2 − 0.5)/2·64; w = (2·0.75)²·10
    cx, w = (1 + 0.75 * 2 - 0.5) / 2 * 64, (2 * 0.75) ** 2 * 10
    assert torch.isclose(boxes[0, 3, 2] - boxes[0, 3, 0], torch.tensor(w)) and torch.isclose((boxes[0, 3, 0] + boxes[0, 3, 2]) / 2, torch.tensor(cx))
    assert torch.isclose(obj[0, 0], torch.tensor(0.75)) and torch.isclose(scores[0, 0, 0], torch.tensor(0.75 * 0.75))


@pytest.fixture
def fake_release(tmp_path: Path, monkeypatch):
    """A local HTTP server standing in for the official release (no network in tests)."""
    served = tmp_path / "served"
    served.mkdir()
    cfg, weights = official("yolov3-tiny")
    (served / "m.cfg").write_bytes(cfg.read_bytes())
    (served / "m.weights").write_bytes(weights.read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    entry = {"cfg": f"{base}/m.cfg", "weights": f"{base}/m.weights", "weights_size": weights.stat().st_size,
             "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    monkeypatch.setattr(zoo, "manifest", lambda: {"default": "m", "models": {"m": entry}})
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DARKNET_PY_ZOO", raising=False)
    yield entry, served
    server.shutdown()


def test_zoo_downloads_verifies_and_caches(fake_release, tmp_path: Path) -> None:
    entry, served = fake_release
    cfg, weights = zoo.resolve("m")
    assert weights.parent == tmp_path / "cache" and weights.stat().st_size == entry["weights_size"]
    (served / "m.weights").unlink()  # second call must come from the cache
    assert zoo.resolve("m") == (cfg, weights)


def test_zoo_rejects_a_corrupt_download_and_leaves_nothing(fake_release, tmp_path: Path) -> None:
    entry, served = fake_release
    (served / "m.weights").write_bytes(b"\0" * entry["weights_size"])
    with pytest.raises(darknet_py.InputError, match="corrupt: .*sha256"):
        zoo.resolve("m")
    assert not any(p.name.endswith(".weights") for p in (tmp_path / "cache").iterdir())


def test_zoo_mirror_and_offline_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DARKNET_PY_CACHE", str(tmp_path / "cache"))
    cfg, weights = official("yolov4-tiny")
    monkeypatch.setenv("DARKNET_PY_ZOO", str(cfg.parents[1]))
    assert zoo.resolve("yolov4-tiny") == (cfg, weights)
    monkeypatch.setenv("DARKNET_PY_ZOO", str(tmp_path / "empty"))
    monkeypatch.setattr(zoo, "_download", lambda url, *a: (_ for _ in ()).throw(
        darknet_py.InputError(f"cannot download {url} (offline); download it yourself and put it in …")))
    with pytest.raises(darknet_py.InputError, match="download it yourself"):
        zoo.resolve("yolov4-tiny")


def test_load_takes_an_official_name_as_the_cli_s_model(tmp_path: Path, monkeypatch) -> None:
    """load("yolov4-tiny") is `--model yolov4-tiny`: the official cfg and weights (not random ones); a bare word
    that is neither a file nor a name lists the names; a file of that name in the working folder wins."""
    cfg, weights = official("yolov4-tiny")
    monkeypatch.setenv("DARKNET_PY_ZOO", str(cfg.parents[1]))
    monkeypatch.chdir(tmp_path)
    image = str(shared_path(IMAGES / "dog.jpg"))
    by_name = darknet_py.load("yolov4-tiny").detect(image)[0]
    same_detections(darknet_py.load(cfg, weights).detect(image), [by_name], score_tol=0, box_tol=0)
    assert {"dog", "bicycle", "truck"} <= set(by_name.labels)
    with pytest.raises(darknet_py.InputError, match=r"^yolov4-tinyy: no such file, nor an official model's name "
                                                    r"\(those are: yolov3, yolov3-tiny, yolov4, "):
        darknet_py.load("yolov4-tinyy")
    for arguments, options, message in (
            ((None,), {}, "load() takes the cfg as a path (str or Path) or an official model name; got NoneType None"),
            ((123,), {}, "load() takes the cfg as a path"),
            ((cfg, 7), {}, "load() takes the weights as a path (str or Path); got int 7"),
            ((cfg, weights), {"size": 416.0}, "size 416.0: give the network's input size in whole pixels, N or (W, H)"),
            ((cfg, weights), {"size": (416, 0)}, "size (416, 0): give the network's input size"),
            (("yolov4-tiny", weights), {}, "yolov4-tiny names an official model, which comes with its weights"),
            ((tmp_path / "m.onnx", weights), {}, f"{tmp_path / 'm.onnx'} is an exported model, which holds its network "
                                                 "and weights: give it alone")):
        with pytest.raises(darknet_py.InputError, match=re.escape(message)):
            darknet_py.load(*arguments, **options)
    model = darknet_py.load(cfg, weights)
    for wrong, found in ((torch.zeros(1, 3, 300, 300), "a float32 tensor of shape (1, 3, 300, 300)"),
                         (torch.zeros(3, 416, 416), "a float32 tensor of shape (3, 416, 416)"),
                         (torch.zeros(1, 1, 416, 416), "a float32 tensor of shape (1, 1, 416, 416)"),
                         (np.zeros((1, 3, 416, 416), np.float32), "a ndarray")):
        with pytest.raises(darknet_py.InputError, match=re.escape(f"forward_heads takes a float tensor (N, 3, 416, 416): "
                                                                  f"the network's channels, height and width; found {found}")):
            model.forward_heads(wrong)
    official_first = darknet_py.load(cfg, weights, fast=False).layers[0].conv.weight
    assert torch.equal(darknet_py.load("yolov4-tiny", fast=False).layers[0].conv.weight, official_first)
    (tmp_path / "yolov4-tiny").write_text(cfg.read_text())  # a cfg file without an extension: read, random weights
    assert not torch.equal(darknet_py.load("yolov4-tiny", fast=False).layers[0].conv.weight, official_first)


def test_detect_takes_an_image_file_s_bytes_as_it_reads_the_file(tmp_path: Path) -> None:
    """An upload's bytes (bytes, bytearray, memoryview) decode as the file reads: the same detections to the bit;
    what is not an image, a folder, or a value of another type is one InputError naming it."""
    model = darknet_py.load(*official("yolov4-tiny"))
    paths = [shared_path(IMAGES / name) for name in ("dog.jpg", "horses.jpg")]
    png = tmp_path / "dog.png"
    png.write_bytes(cv2.imencode(".png", cv2.imread(str(paths[0])))[1].tobytes())
    from_files = model.detect([*map(str, paths), str(png)])
    data = [path.read_bytes() for path in [*paths, png]]
    from_bytes = model.detect([data[0], bytearray(data[1]), memoryview(data[2])])
    same_detections(from_files, from_bytes, score_tol=0, box_tol=0)
    assert len(model.detect(data[0])) == 1  # one image's bytes are one image, not a batch of byte values
    for bad, message in [(b"GIF89a-truncated", r"cannot decode image: image bytes \(16 bytes\) \(not an image"),
                         (b"", r"cannot decode image: image bytes \(0 bytes\)"),
                         (str(tmp_path), "is a folder, not an image: pass its images"),
                         (7, "cannot read a int as an image: give a BGR numpy array, an image path, an image file's "
                             "bytes, a \\(C, H, W\\) RGB tensor or a PIL image"),
                         ([None], "cannot read a NoneType as an image")]:
        with pytest.raises(InputError, match=message):
            model.detect(bad)


def test_detect_takes_torchvision_tensors_and_pil_images_as_their_pixels(tmp_path: Path) -> None:
    """A (C, H, W) RGB tensor (uint8, or float in [0, 1] at any precision that holds 256 levels) and an (N, C, H, W)
    batch detect as the BGR array of the same pixels, to the bit; a PIL image of a PNG as the file does. An (H, W, C)
    tensor, whose channel order cannot be known, is refused with what to do."""
    from PIL import Image

    model = darknet_py.load(*official("yolov4-tiny"))
    bgr = cv2.imread(str(shared_path(IMAGES / "dog.jpg")))
    expected = model.detect(bgr)
    assert len(expected[0]) == 4
    rgb = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)
    for tensor in (rgb, rgb.float() / 255, rgb.double() / 255, rgb.half() / 255):  # x/255·255 lands under x: rounded
        same_detections(expected, model.detect(tensor), score_tol=0, box_tol=0)
    batch = model.detect(torch.stack([rgb, rgb.flip(2)]))
    same_detections([*expected, *model.detect(bgr[:, ::-1].copy())], batch, score_tol=0, box_tol=0)
    png = tmp_path / "dog.png"
    cv2.imwrite(str(png), bgr)
    from_file = model.detect(str(png))
    for image in (Image.open(png), Image.open(png).convert("RGBA")):
        same_detections(from_file, model.detect(image), score_tol=0, box_tol=0)
    grey16 = tmp_path / "grey16.png"  # PIL opens it as "I;16", convert("I") holds its levels in 32 bits
    cv2.imwrite(str(grey16), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    same_detections(model.detect(str(grey16)), model.detect(Image.open(grey16).convert("I")), score_tol=0, box_tol=0)
    with pytest.raises(InputError, match=r"a tensor image is \(C, H, W\) RGB, as torchvision's; got \(576, 768, 3\): "
                                         r"\.permute\(2, 0, 1\) an RGB \(H, W, C\) tensor, or give a BGR numpy array"):
        model.detect(torch.from_numpy(bgr))
    with pytest.raises(InputError, match=r"a tensor image is .* or \(H, W\) grey; got \(5,\)"):
        model.detect(torch.zeros(5))


def test_a_long_list_goes_through_the_network_in_parts(monkeypatch) -> None:
    """detect(list) ran every image as one batch (1,000 paths: ~14 GB at 416x416); it now runs parts of
    images_per_call images (64 at 416, 4 at 1536), each image's detections as alone."""
    from darknet_py.pipeline import detect as detect_module

    model = darknet_py.load(*official("yolov4-tiny"))
    assert detect_module.images_per_call(416, 416) == 64 and detect_module.images_per_call(1536, 1536) == 4
    monkeypatch.setattr(detect_module, "MAX_INPUT_PIXELS_PER_CALL", 2 * 416 * 416)
    seen = []
    real = model.candidates_above
    monkeypatch.setattr(model, "candidates_above", lambda pixels, thresh: seen.append(len(pixels)) or real(pixels, thresh))
    images = [str(p) for p in photos()][:5]
    found = model.detect(images)
    assert seen == [2, 2, 1] and [d.source for d in found] == images
    same_detections([model.detect(image)[0] for image in images], found)
    same_detections(found, model.detect(iter(images)), score_tol=0, box_tol=0)  # a generator is read once, whole


def test_detections_iterate_index_and_select_like_a_sequence() -> None:
    """`for d in dets` gives each detection (box, score, class, name, track); an int gives one, a mask, a slice or
    indices a Detections of those with every per-detection array cut alike (what `classes=` keeps, by score here)."""
    model = darknet_py.load(*official("yolov4-tiny"))
    image = str(shared_path(IMAGES / "dog.jpg"))
    dets = model.detect(image)[0]
    rows = list(dets)
    assert [(d.name, round(d.score, 2)) for d in rows] == [("dog", 0.84), ("truck", 0.79), ("bicycle", 0.6), ("car", 0.45)]
    assert rows[0] == dets[0] and dets[-1].name == "car" and rows[0].track_id is None
    assert rows[0].box == tuple(dets.boxes[0].tolist()) and dets[np.int64(1)].class_id == 7
    box, score, class_id, name, track_id = rows[2]
    assert (class_id, name) == (1, "bicycle") and score == float(dets.scores[2])
    sure = dets[dets.scores > 0.5]
    assert isinstance(sure, darknet_py.Detections) and sure.labels == ["dog", "truck", "bicycle"]
    assert sure.source == image and sure.image_size == dets.image_size and sure.names is dets.names
    for field in ("boxes", "unclipped", "box_ids", "class_ids"):
        assert np.array_equal(getattr(sure, field), getattr(dets, field)[:3])
    same_detections(model.detect(image, classes=["dog", "car"]), [dets[[0, 3]]], score_tol=0, box_tol=0)
    assert len(dets[:0]) == 0 and dets[::-1].labels == dets.labels[::-1]
    with pytest.raises(IndexError):
        dets[4]
    tracked = dataclasses.replace(dets, track_ids=np.array([3, -1, 5, 1]))  # -1: in no confirmed track
    assert [d.track_id for d in tracked] == [3, None, 5, 1] and tracked[1:].track_ids.tolist() == [-1, 5, 1]
    assert dets == model.detect(image)[0] and dets[:] == dets and dets != sure and tracked != dets  # by value
    assert dets != dataclasses.replace(dets, source="other.jpg") and dets != "dets"


def test_classes_by_name_unknown_options_and_a_readable_repr() -> None:
    """detect(classes=...) takes names as the command line's --classes does (they used to fail deep inside with a
    TypeError); an unknown keyword is named with the likely one; repr(Detections) lists what was found instead of
    every array and all 80 names."""
    model = darknet_py.load(*official("yolov4-tiny"))
    image = str(shared_path(IMAGES / "dog.jpg"))
    by_name = model.detect(image, classes=["dog", "truck"])
    same_detections(model.detect(image, classes=[16, 7]), by_name, score_tol=0, box_tol=0)
    assert by_name[0].labels == ["dog", "truck"]
    assert model.detect(image, classes=["dog", 7])[0].labels == ["dog", "truck"]
    with pytest.raises(InputError, match=r"^classes doggo: not a class of this model \(80 classes: person, bicycle"):
        model.detect(image, classes=["doggo"])
    for wrong, hint in (("thresh", " (did you mean conf_thresh?)"), ("multilabel", " (did you mean multi_label?)"),
                        ("zzz", "")):  # other tools' names and typos: named, not a TypeError about DetectOptions
        with pytest.raises(InputError, match=rf"^detect\(\) has no option '{wrong}'{re.escape(hint)}; it takes "
                                             r"conf_thresh, nms_thresh, multi_label, "):
            model.detect(image, **{wrong: 0.3})
    everything = model.detect(image)[0]
    assert repr(everything) == f"Detections(4 on {image} 768x576: dog 0.84, truck 0.79, bicycle 0.60, car 0.45)"
    assert repr(model.detect(image, 0.99)[0]) == f"Detections(0 on {image} 768x576)"


def test_manifest_sizes_and_digests_match_the_files_we_have() -> None:
    """Sizes in cfg/zoo.json are what each cfg needs; digests match the official files in ../shared."""
    models = zoo.manifest()["models"]
    checked = 0
    for name, entry in models.items():
        cfg = ZOO_CFG / f"{name}.cfg"
        if cfg.is_file() and "weights_size" in entry:
            assert entry["weights_size"] == 20 + 4 * darknet_py.load(cfg).num_weights(), name
            checked += 1
        local = ZOO_WEIGHTS / f"{name}.weights"
        if local.is_file():
            assert hashlib.sha256(local.read_bytes()).hexdigest() == entry["weights_sha256"], name
    assert checked >= 7


def test_candidate_cap_is_per_image(monkeypatch) -> None:
    """At map's 0.005 threshold the cap bites: an image's result must not depend on its batch-mates."""
    from darknet_py.pipeline import detect as pipeline

    cfg, weights = official("yolov4-tiny")
    model = darknet_py.load(cfg, weights)
    images = [str(p) for p in photos()[:3]]
    monkeypatch.setattr(pipeline, "MAX_CANDIDATES", 300)
    alone = [model.detect(image, 0.005, multi_label=True)[0] for image in images]
    together = model.detect(images, 0.005, multi_label=True)
    for a, b in zip(alone, together):
        assert len(a) > 5 and a.labels == b.labels and np.allclose(a.scores, b.scores)


def test_tiled_nms_of_a_crowded_class_equals_one_tile(monkeypatch) -> None:
    # 3,000 candidates of one class (a crowded image at map's 0.005 threshold): tiles of 256
    # checked against earlier tiles give exactly what one 3,000-box matrix gives.
    from darknet_py.pipeline import nms

    g = torch.Generator().manual_seed(3)
    xy = torch.rand(3000, 2, generator=g) * 600
    boxes = torch.cat([xy, xy + torch.rand(3000, 2, generator=g) * 120 + 4], 1)
    scores, groups = torch.rand(3000, generator=g), torch.zeros(3000, dtype=torch.long)
    monkeypatch.setattr(nms, "BLOCK", 4096)
    whole = batched_nms(boxes, scores, groups, 0.45, "diou", 0.6)
    monkeypatch.setattr(nms, "BLOCK", 256)
    tiled = batched_nms(boxes, scores, groups, 0.45, "diou", 0.6)
    assert 300 < len(whole) < 3000 and torch.equal(whole, tiled)


def test_a_jpeg_cut_short_is_the_same_image_as_bytes_and_as_a_file(tmp_path: Path) -> None:
    """OpenCV's imread decodes a JPEG cut short (libjpeg fills the rest; darknet's OpenCV build reads it so) where
    imdecode gives nothing: the bytes (an upload, the server's body) are read as the file is, the same pixels."""
    from darknet_py.pipeline.preprocess import decode_image, read_image

    cut = tmp_path / "cut.jpg"
    cut.write_bytes((photos()[0].parent / "dog.jpg").read_bytes()[:120_000])
    assert np.array_equal(decode_image(cut.read_bytes()), read_image(str(cut)))
    with pytest.raises(InputError, match=r"cannot decode image: image bytes \(3,000 bytes\)"):
        decode_image(cut.read_bytes()[:3000])  # no picture at all: refused alike
    short = tmp_path / "short.jpg"
    short.write_bytes(cut.read_bytes()[:3000])
    with pytest.raises(InputError, match="cannot decode image"):
        read_image(str(short))


def test_float_images_with_nan_or_inf_convert_without_numpy_warnings() -> None:
    """NaN is black, inf white, the range read from the finite values (in [0, 1]: scaled by 255); an all-NaN image is
    black — without numpy's 'All-NaN slice' or overflow warnings reaching the user."""
    from darknet_py.pipeline.preprocess import as_bgr8

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert as_bgr8(np.full((4, 4, 3), np.nan, np.float32)).max() == 0
        assert as_bgr8(np.array([[[0.5, np.nan, np.inf]]], np.float32)).tolist() == [[[128, 0, 255]]]
        assert as_bgr8(np.array([[[100.0, -np.inf, np.inf]]], np.float64)).tolist() == [[[100, 0, 255]]]
