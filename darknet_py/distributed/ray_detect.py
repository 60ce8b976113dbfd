"""Detection over large collections on Ray: a Ray Data pipeline with a pool of model actors.

    image rows ─ read + pre-process (tasks) ─┐
    video ─ sequential decode in chunks ─────┴─ model actors (batched forward + decode + NMS)
                                              ─ [annotate: draw + write images] ─ driver: shard files

Ray is optional (`pip install 'darknet-engine[ray]'`); nothing here imports it until used.
The driver loads and checks the model once, then ships it to the actors through the object
store (one model load per actor, nothing read from the model files on other nodes).
Restart safety lives in shards.RunFolder: the driver writes each shard whole when its last
record arrives; Ray Data restarts a killed actor and retries its batches, and records are keyed
by (shard, item), so a retried batch can neither lose nor duplicate a result.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence, TextIO

import numpy as np

from ..backends import Backend, Portable, rebuild
from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import DarknetError, InputError
from ..core.progress import Progress
from ..format.names import class_filter, default_names
from ..media.sinks import AnnotatedImagesSink, Result, detection_record
from ..media.sources import first_shared_name, source_items
from ..pipeline.detect import DetectOptions, PreparedBatch, select
from ..pipeline.detections import Detections
from ..pipeline.preprocess import DEFAULT_RESIZE, Transform, network_image, prepare, read_image
from .shards import Plan, RunFolder, VideoSource

INSTALL_HINT = "pip install 'darknet-engine[ray]'"
PREPARE_CPUS = 0.5  # logical CPUs per read/pre-process task: leaves room beside the actors' 1 CPU each
ANNOTATED_DIR = "images"
REACH_TIMEOUT_S = 10.0  # --ray HOST:PORT: how long a connection to the cluster's head may take to open


def require_ray() -> Any:
    """The `ray` package, imported now with its Data library.

    Returns:
        module: ray.

    Raises:
        InputError: Ray or Ray Data is not installed (with the pip command that installs it).
    """
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra of Ray
    except ImportError:
        raise InputError(f"--ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


@dataclass
class RayOptions:
    """How the work is spread; none of these changes a result except `worker_threads` (float summation order).

    Attributes:
        address (str or None): None, "" or "local": start a private local Ray; "auto" or "ray://host:port": join a
            cluster. A Ray this process has already initialised is used whatever this says.
        workers (int): model actors, 1 CPU each (and 1 GPU each on CUDA).
        worker_threads (int or None): torch/onnxruntime/OpenVINO threads per actor; None: this process's torch
            thread count.
        batch (int): images (or frames) per forward on an actor.
        shard_size (int): images (or video frames) per output shard.
        save_images (bool): also write annotated copies of the images in OUTPUT/images (not of video frames).
        exist_ok (bool): write into an output folder that holds files but no run plan.
        progress (bool): a progress line on stderr.
    """

    address: str | None = None  # None or "": start a local Ray; "auto" or "ray://host:port": join a cluster
    workers: int = 2  # model actors
    worker_threads: int | None = None  # torch/onnxruntime/OpenVINO threads per actor; None: this process's torch default
    batch: int = 8  # images per forward
    shard_size: int = 64  # images (or video frames) per output shard
    save_images: bool = False  # annotated copies in OUTPUT/images (images only)
    exist_ok: bool = False
    progress: bool = True

    def validate(self) -> None:
        """Refuse counts below 1.

        Raises:
            InputError: workers, batch, shard_size or worker_threads (when given) below 1, named as its option.
        """
        for name in ("workers", "batch", "shard_size"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.worker_threads is not None and self.worker_threads < 1:
            raise InputError(f"--worker-threads must be at least 1, got {self.worker_threads}")


@dataclass
class RayReport:
    """What `detect_on_ray` did (`print_report` says it in one line).

    Attributes:
        images (int): the images of the plan.
        frames (int): the video records (one per frame; one for a video that could not be read).
        records (int): the records in detections.jsonl.
        errors (int): the error records among them (sources that could not be read).
        shards_run (int): the shards (image shards and videos) run by this call.
        shards_resumed (int): the shards an earlier run had finished (0 for a new run).
        seconds (float): the time from the plan to the merged result (Ray's start included).
        output (Path): the output folder.
        workers (int): model actors asked for.
        ray (str): what it ran on, in words ("a private local Ray (2 CPUs)"); "" when nothing was left to run.
    """

    images: int
    frames: int
    records: int
    errors: int
    shards_run: int
    shards_resumed: int
    seconds: float
    output: Path
    workers: int = 0
    ray: str = ""  # what it ran on: "a private local Ray (2 CPUs)", "the Ray cluster at host:port (8 CPUs)"

    @property
    def per_second(self) -> float:
        """Images and frames per second of `seconds` (0.0 for no time)."""
        done = self.images + self.frames
        return done / self.seconds if self.seconds > 0 else 0.0


# -- the model, shipped once ---------------------------------------------------------
@dataclass
class ModelRecipe:
    """What an actor needs to rebuild the checked model: the backend's `Portable` (the torch module itself, or an
    exported graph's bytes) and the settings the driver's pre-processing uses.

    Attributes:
        portable (Portable): what rebuilds the backend (darknet_py.backends.rebuild).
        device (str): where the actors run it ("cpu", "cuda:0").
        width (int): the network input width.
        height (int): the network input height.
        letterbox (bool): whether images are letterboxed.
        resize (str): the image resize (darknet_py.pipeline.preprocess), recorded in run.json.
        channels (int): the network's input channels (1: images read grey, frames converted; see preprocess).
    """

    portable: Portable
    device: str
    width: int
    height: int
    letterbox: bool
    resize: str = DEFAULT_RESIZE  # the image resize (darknet_py.pipeline.preprocess), recorded in run.json
    channels: int = 3  # the network's input channels (1: images read grey, frames converted; see preprocess)

    @property
    def backend(self) -> str:
        """The backend's registry name (torch, onnxruntime, openvino)."""
        return self.portable.backend

    def build(self, threads: int) -> Backend:
        """The backend on this worker.

        Args:
            threads (int): torch (and graph runtime) threads in this process.

        Returns:
            Backend: the model, rebuilt on `device` at `width` x `height`.
        """
        return rebuild(self.portable, self.device, self.width, self.height, threads)

    def digest(self) -> str:
        """Identifies the network and its weights: a resumed run must use the very same model.

        Returns:
            str: hex sha256 of the backend's name and, for torch, the module's repr and every state tensor; for a
            graph, its bytes (and its options).
        """
        digest = hashlib.sha256(self.backend.encode())
        payload = self.portable.payload
        if self.backend == "torch":
            digest.update(repr(payload).encode())  # layer types, sizes, activations
            for name, tensor in payload.state_dict().items():
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        else:
            for part in payload if isinstance(payload, tuple) else (payload,):  # OpenVINO IR: xml, bin
                digest.update(part)
            if self.portable.options:
                digest.update(json.dumps(self.portable.options, sort_keys=True).encode())
        return digest.hexdigest()


def model_recipe(model: Backend, letterbox: bool | None = None, resize: str | None = None) -> ModelRecipe:
    """A loaded model (what darknet_py.load returns) → what actors rebuild.

    Args:
        model (Backend): the loaded, checked model.
        letterbox (bool or None): letterbox the images; None: the model's (the cfg's letter_box).
        resize (str or None): the image resize; None: the model's.

    Returns:
        ModelRecipe: the model's portable form with its device, input size, channels and pre-processing.

    Raises:
        InputError: the model gives no candidates (an export with its NMS inside the graph).
    """
    traits = model.traits
    if not traits.candidates:
        raise InputError("this model gives detections, not candidates (an export does its NMS inside the graph); "
                         "--ray needs an export with --output-format boxes (the default) or raw")
    letterbox = bool(model.letter_box if letterbox is None else letterbox)
    return ModelRecipe(model.portable(), traits.device, model.width, model.height, letterbox, resize or model.resize,
                       model.channels)


# -- pipeline stages (run on Ray workers) ---------------------------------------------
def _empty_pixels(recipe: ModelRecipe) -> np.ndarray:
    return np.zeros((recipe.channels, recipe.height, recipe.width), np.float32)


def _transform_row(transform: Transform | None) -> np.ndarray:
    if transform is None:
        return np.zeros(6, np.float64)
    return np.array([transform.scale_x, transform.scale_y, transform.pad_x, transform.pad_y,
                     transform.image_w, transform.image_h], np.float64)


def _prepare_image(row: dict, recipe: ModelRecipe) -> dict:
    """Read + letterbox/resize one image; an unreadable one travels on as an error record."""
    try:
        pixels, transform = prepare(read_image(row["source"], recipe.channels), recipe.width, recipe.height, recipe.letterbox,
                                    resize=recipe.resize)
        row.update(pixels=pixels, transform=_transform_row(transform), error="")
    except DarknetError as exc:
        row.update(pixels=_empty_pixels(recipe), transform=_transform_row(None), error=str(exc))
    return row


def _frames(capture, wanted):
    """(index, frame) in decoding order; frames not wanted are grabbed (decoded, not converted): frame None."""
    index = 0
    while True:
        ok, frame = capture.read() if wanted(index) else (capture.grab(), None)
        if not ok:
            return
        yield index, frame
        index += 1


def _decode_video(batch: dict, recipe: ModelRecipe, chunk_size: int):
    """One video, decoded in order (frame-exact, unlike seeking); yields one batch per chunk of frames.

    Chunks already written (batch["skip"]) are decoded but not pre-processed. The chunk holding
    the last frame is marked `last`, found by reading one frame ahead.
    """
    import cv2

    video = VideoSource(str(batch["key"][0]), str(batch["path"][0]))
    skip = set(json.loads(str(batch["skip"][0])))
    capture = cv2.VideoCapture(video.path)
    try:  # released however the generator ends: an unreadable video, or closed early by Ray
        frames = _frames(capture, lambda index: index // chunk_size not in skip)
        current = next(frames, None) if capture.isOpened() else None
        if current is None:
            yield _chunk_batch(video, 0, [], recipe, last=True, error=f"cannot read any frame of video {video.path}")
            return
        rows: list = []
        while current is not None:
            following = next(frames, None)
            index, frame = current
            chunk = index // chunk_size
            if chunk not in skip:
                rows.append((index, *prepare(network_image(frame, recipe.channels), recipe.width, recipe.height,
                                             recipe.letterbox, resize=recipe.resize)))
            if following is None or following[0] // chunk_size != chunk:
                if chunk not in skip:
                    yield _chunk_batch(video, chunk, rows, recipe, last=following is None)
                rows = []
            current = following
    finally:
        capture.release()


def _chunk_batch(video: VideoSource, chunk: int, rows: list, recipe: ModelRecipe, last: bool, error: str = "") -> dict:
    count = max(len(rows), 1)  # an unreadable video still gives one (error) record
    return {
        "shard": np.array([video.chunk_key(chunk)] * count, dtype=object),
        "item": np.arange(count),
        "of": np.full(count, count),
        "last": np.full(count, last),
        "source": np.array([video.path] * count, dtype=object),
        "frame": np.array([r[0] for r in rows] if rows else [-1]),
        "pixels": np.stack([r[1] for r in rows]) if rows else _empty_pixels(recipe)[None],
        "transform": np.stack([_transform_row(r[2]) for r in rows]) if rows else _transform_row(None)[None],
        "error": np.array([error] * count, dtype=object),
    }


class DetectorActor:
    """One model per actor; batches of pre-processed rows in, one JSON record per row out.

    Built by Ray Data in each actor (ActorPoolStrategy): the model is fetched from the object store and rebuilt.

    Args:
        recipe_ref (list): one ray.ObjectRef of the ModelRecipe, in a list; the actor fetches it (ray.get).
        options (dict): the DetectOptions fields, as dataclasses.asdict gives them.
        names (list of str): the class names for the records.
        threads (int): torch (and graph runtime) threads in the actor.
    """

    def __init__(self, recipe_ref: list, options: dict, names: list[str], threads: int) -> None:
        import ray

        events.emit("actor-starting")
        recipe = ray.get(recipe_ref[0])
        self.model = recipe.build(threads)
        self.options, self.names = DetectOptions(**options), names

    def __call__(self, batch: dict) -> dict:
        """Detect on a batch of rows and turn each into its JSON record.

        Args:
            batch (dict): numpy columns: shard, item, of, last, source, frame (-1 for an image), pixels (N, C, H, W),
                transform (N, 6) and error ("" for a row that was read).

        Returns:
            dict: the shard, item, of, last and source columns, and "record": each row's JSON line (the detection
            record, or {"source", "error"} for a row with an error).
        """
        errors = batch["error"]
        ok = np.flatnonzero(errors == "")
        records = [json.dumps({"source": str(s), "error": str(e)}) for s, e in zip(batch["source"], errors)]
        if len(ok):
            for i, dets in zip(ok, self._detect(batch, ok)):
                frame = int(batch["frame"][i])
                records[i] = json.dumps(detection_record(dets, str(batch["source"][i]), frame if frame >= 0 else None))
        return {"shard": batch["shard"], "item": batch["item"], "of": batch["of"], "last": batch["last"],
                "source": batch["source"], "record": np.array(records, dtype=object)}

    def _detect(self, batch: dict, rows: np.ndarray) -> list[Detections]:
        # python floats, as prepare() makes them: a numpy float64 scale would promote the box maths to float64
        transforms = [Transform(*map(float, t[:4]), int(t[4]), int(t[5])) for t in batch["transform"][rows]]
        prepared = PreparedBatch(np.ascontiguousarray(batch["pixels"][rows], np.float32), transforms,
                                 [str(s) for s in batch["source"][rows]])
        return select(self.model.heads, self.model.candidates_above(prepared.pixels, self.options.conf_thresh), prepared,
                      self.options, self.names)


def _annotate(row: dict, output: str, names: list[str]) -> dict:
    """Draw a finished image record onto the source and write it (atomically) under OUTPUT/images, through
    the same sink as the CLI's annotated images."""
    entry = json.loads(row["record"])
    if "error" in entry or "frame" in entry:
        return row
    found = entry["detections"]
    dets = Detections(boxes=np.array([d["box"] for d in found], np.float32).reshape(-1, 4),
                      scores=np.array([d["score"] for d in found], np.float32),
                      class_ids=np.array([d["class_id"] for d in found], np.int64), names=names,
                      image_size=(entry["width"], entry["height"]), source=entry["source"])
    image = read_image(entry["source"])  # a file, or an image's URL (fetched again: the workers keep no pixels)
    AnnotatedImagesSink(Path(output) / ANNOTATED_DIR).write(Result(entry["source"], None, image, dets))
    return row


# -- the driver ---------------------------------------------------------------------------
def _connect(ray, options: RayOptions) -> str:
    """Connect this process to Ray; what it runs on, in words, for the report line.

    No address: always a private Ray of this process, also when one is running on the machine
    (`ray start`, another user's, a test's): plain `ray.init()` would join that one, and refuse our
    CPU count. A Ray already initialised in this process (the Python API's caller did it) is used as is.
    """
    if ray.is_initialized():
        return f"the Ray this process had already initialised ({_cpus(ray)} CPUs)"
    quiet = dict(logging_level="WARNING", log_to_driver=True, configure_logging=True)
    with interrupt.handlers_kept():  # ray.init installs a SIGTERM handler of its own (sys.exit)
        if options.address in (None, "", "local"):
            cpus = max(os.cpu_count() or 1, options.workers + 1)  # the actors' CPUs plus room to pre-process
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            return f"a private local Ray ({_cpus(ray)} CPUs)"
        _check_reachable(options.address)
        try:
            ray.init(address=options.address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            interrupt.check()  # an error that only a stop signal caused is the stop
            raise InputError(f"cannot join the Ray cluster at {options.address}: {str(exc).splitlines()[0]}") from None
    return f"the Ray cluster at {ray.get_runtime_context().gcs_address} ({_cpus(ray)} CPUs)"


def _check_reachable(address: str, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Refuse a HOST:PORT nothing answers at: ray.init waits for such a cluster's GCS without end (its own log lines
    say it is retrying). `auto` and `ray://` addresses are Ray's to resolve.

    Raises:
        InputError: no connection to HOST:PORT within *timeout_s*.
    """
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit() or (":" in host and not host.startswith("[")):
        return  # Ray's own forms, and a bare IPv6 address (its last group is no port): Ray's to read
    try:
        addresses = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InputError(f"cannot join the Ray cluster at {address}: no such host ({exc.strerror or exc})") from None
    try:
        family, kind, proto, _, where = addresses[0]
        with socket.socket(family, kind, proto) as probe:
            probe.settimeout(timeout_s)
            probe.connect(where)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(f"cannot join the Ray cluster at {address}: nothing answers there ({reason} within "
                         f"{timeout_s:g} s); is `ray start --head` running on that machine, on that port?") from None


def _cpus(ray) -> str:
    return f"{ray.cluster_resources().get('CPU', 0):g}"


def _check_resources(ray, options: RayOptions, gpus: int) -> None:
    """Refuse a pool the cluster cannot hold: Ray would wait for the resources forever."""
    have = ray.cluster_resources()
    cpus_needed = options.workers + PREPARE_CPUS
    if have.get("CPU", 0) < cpus_needed:
        raise InputError(f"the Ray cluster has {have.get('CPU', 0):g} CPU(s); --workers {options.workers} needs "
                         f"{cpus_needed:g} (1 per model actor, plus {PREPARE_CPUS:g} to read and pre-process)")
    if have.get("GPU", 0) < gpus * options.workers:
        raise InputError(f"the Ray cluster has {have.get('GPU', 0):g} GPU(s); --device cuda with --workers "
                         f"{options.workers} needs {options.workers}")


def _quiet_data_context(ray) -> None:
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours is one line; Ray's bars flood logs
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def split_sources(sources: Sequence[str]) -> tuple[list[str], list[str]]:
    """Image files (from files, folders, globs) and video files; streams and cameras are refused.

    Args:
        sources (sequence of str): what `darknet-py detect` takes as SOURCE (see media.sources.source_items).

    Returns:
        tuple of (list of str, list of str): the images and the video files, each without repeats and sorted.

    Raises:
        InputError: an image URL with a user and password (the plan would keep it), a stream URL or a camera,
            or a source that media.sources refuses.
    """
    images: list[str] = []
    videos: list[str] = []
    for source in sources:
        kind, items = source_items(source)
        secret = next((item for item in items if hide_credentials(item) != item), None) if kind == "images" else None
        if secret is not None:  # the plan (run.json) and the records keep sources as given
            raise InputError(f"--ray writes every source into its run plan and records: give the image URL "
                             f"{hide_credentials(secret)} without a user and password, or run it without --ray")
        if kind == "images":
            images.extend(items)
        elif isinstance(items, int) or "://" in str(items):
            raise InputError(f"--ray cannot split a live source ({source}) into shards; run it without --ray")
        else:  # a video file
            videos.append(str(items))
    return sorted(dict.fromkeys(images)), sorted(dict.fromkeys(videos))


def detect_on_ray(sources: str | Sequence[str], output: str | os.PathLike[str], model: Backend, *,
                  conf_thresh: float = 0.25, nms_thresh: float = 0.45, names: list[str] | None = None,
                  ray_options: RayOptions | None = None, **detect_options: Any) -> RayReport:
    """Detect over image files, folders, globs and video files on Ray; results in OUTPUT/detections.jsonl.

    `model` is what darknet_py.load returns (torch or ONNX); it is checked here and shipped to the
    actors. Rerunning with the same output folder resumes: finished shards are kept, the rest run.
    Records equal single-process `model.detect` ones when `worker_threads` equals this process's
    torch thread count (the default): more or fewer threads can change float sums in the last bit.

    Args:
        sources (str or sequence of str): image files, folders, globs and video files (no streams or cameras).
        output (str or PathLike): the run's folder: run.json, shards/, detections.jsonl (and images/).
        model (Backend): what darknet_py.load returns; it must give candidates (not an `nms` export).
        conf_thresh (float): score threshold.
        nms_thresh (float): NMS overlap threshold.
        names (list of str or None): class names for the records; None: the model's, else COCO's for 80 classes.
        ray_options (RayOptions or None): how the work is spread; None: RayOptions().
        **detect_options: other DetectOptions fields (class ids in `classes`, max_det, letterbox...); tiles,
            tile_overlap and roi are refused.

    Returns:
        RayReport: what was done, and where.

    Raises:
        InputError: invalid Ray options, tiles or regions, an unknown or out-of-range detect option, a model
            without candidates, a refused source, two images that would write one annotated name, an output
            folder holding another run (or other files without exist_ok), Ray not installed or a cluster that
            cannot be joined or cannot hold the workers, or shards still unfinished at the end.
        Interrupted: a stop signal (finished shards are kept; a rerun resumes).
    """
    import time

    options = ray_options or RayOptions()
    options.validate()
    tiled = [name for name in ("tiles", "tile_overlap", "roi") if name in detect_options]
    if tiled:  # the actors detect whole images; tiles would need their batching on each worker
        raise InputError(f"{', '.join(tiled)} not available on Ray (its workers detect whole images): "
                         "detect with the model in this process instead")
    unknown = sorted(set(detect_options) - {f.name for f in fields(DetectOptions)})
    if unknown:
        raise InputError(f"unknown detect option(s) for Ray: {', '.join(unknown)}")
    names = names or model.names or default_names(model.num_classes)
    if detect_options.get("classes") is not None:  # names or ids, any iterable, as model.detect takes them
        detect_options["classes"] = class_filter(detect_options["classes"], names)
    opts = DetectOptions(conf_thresh=conf_thresh, nms_thresh=nms_thresh, **detect_options)
    opts.validate(model.num_classes)
    recipe = model_recipe(model, opts.letterbox, opts.resize)
    images, videos = split_sources([sources] if isinstance(sources, (str, os.PathLike)) else sources)
    shared = first_shared_name(images) if options.save_images else None
    if shared is not None:  # OUTPUT/images/NAME: the second would replace the first
        raise InputError(f"{shared[0]} and {shared[1]} would write their annotated image under one name ({shared[2]}) "
                         f"in {ANNOTATED_DIR}/: run them separately, or with --no-save (the records keep each path)")
    threads = options.worker_threads or _default_threads()
    settings = {"model": recipe.digest(), "backend": recipe.backend, "device": recipe.device,
                "size": [recipe.width, recipe.height], "letterbox": recipe.letterbox, **asdict(opts), "resize": recipe.resize,
                "names": hashlib.sha256("\n".join(names).encode()).hexdigest()[:16], "worker_threads": threads}
    plan = Plan(images, videos, options.shard_size, json.loads(json.dumps(settings)))
    folder = RunFolder(output)
    resumed = folder.start(plan, options.exist_ok)
    todo = set(folder.missing(plan))
    done_images = [shard.key for shard in plan.image_shards if shard.key not in todo]
    if resumed and options.save_images and done_images and not (folder.root / ANNOTATED_DIR).is_dir():
        # not in the plan (older plans would all differ): the images are what tells
        raise InputError(f"{folder.root} holds a run made with --no-save: its {len(done_images)} finished image "
                         "shard(s) wrote no annotated images; rerun it with --no-save to resume, or choose another "
                         "--output")
    started = time.monotonic()
    ray_used = ""
    if todo:
        try:
            ray_used = _run_shards(plan, folder, todo, recipe, opts, names, threads, options)
        except BaseException:
            if not resumed:
                with contextlib.suppress(OSError):  # the run's own error (or stop) is what is said
                    folder.abandon()  # ended before any work: no plan left behind to refuse the corrected rerun
            raise
    records, errors = folder.merge(plan)
    events.emit("merged")
    shards_total = len(plan.image_shards) + len(plan.video_sources)
    return RayReport(images=len(images), frames=records - len(images), records=records, errors=errors,
                     shards_run=len(todo), shards_resumed=shards_total - len(todo) if resumed else 0,
                     seconds=time.monotonic() - started, output=Path(output), workers=options.workers, ray=ray_used)


def _run_shards(plan: Plan, folder: RunFolder, todo: set[str], recipe: ModelRecipe, opts: DetectOptions,
                names: list[str], threads: int, options: RayOptions) -> str:
    """Run the unfinished shards on Ray; leaves Ray as it found it (connected or not). What it ran on, in words.

    A stop signal (interrupt.py) ends this within moments wherever it lands: every finished shard is
    already written whole, the rest are redone by a rerun.
    """
    ray = require_ray()
    connected_here = not ray.is_initialized()
    try:
        ray_used = _connect(ray, options)
        interrupt.check()  # a stop during ray.init may have been swallowed inside it
        events.emit("ray-started")
        _quiet_data_context(ray)
        _check_resources(ray, options, 1 if recipe.device.startswith("cuda") else 0)
        dataset, _model_ref = _pipeline(ray, plan, folder, todo, recipe, opts, names, threads, options)
        _drain(dataset, folder, _records_expected(plan, folder, todo), options.progress)
        return ray_used
    except BaseException as exc:
        if not isinstance(exc, interrupt.Interrupted):
            interrupt.check()  # what a stop signal turned into inside Ray (a bare KeyboardInterrupt, a failed get)
        raise
    finally:
        if connected_here:  # also after a stop inside ray.init: the head it was starting must not outlive us
            with interrupt.deferred():  # let the teardown finish: a half-stopped private Ray is worse
                ray.shutdown()


def _records_expected(plan: Plan, folder: RunFolder, todo: set[str]) -> tuple[int, bool]:
    """(records the unfinished shards will give, whether that is an estimate): their images, and their videos' frames
    as the files' headers count them, less a resumed video's chunks already done."""
    import cv2  # as _decode_video: not at the module's import

    images = sum(len(shard.paths) for shard in plan.image_shards if shard.key in todo)
    videos = [video for video in plan.video_sources if video.key in todo]
    done = folder.done() if videos else set()
    frames = 0
    for video in videos:
        capture = cv2.VideoCapture(video.path)
        whole = int(max(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0))
        capture.release()
        frames += max(whole - len(folder.video_chunks_done(video, done)[0]) * plan.shard_size, 0)
    return images + frames, bool(videos)


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()


def _pipeline(ray, plan: Plan, folder: RunFolder, todo: set[str], recipe: ModelRecipe, detect_options: DetectOptions,
              names: list[str], threads: int, options: RayOptions):
    recipe_ref = ray.put(recipe)
    parts = []
    rows = [{"shard": shard.key, "item": i, "of": len(shard.paths), "last": False, "source": path, "frame": -1}
            for shard in plan.image_shards if shard.key in todo for i, path in enumerate(shard.paths)]
    if rows:
        blocks = max(1, min(len(rows), 4 * options.workers, len(rows) // 8 or 1))
        parts.append(ray.data.from_items(rows, override_num_blocks=blocks)
                     .map(_prepare_image, fn_kwargs={"recipe": recipe}, num_cpus=PREPARE_CPUS))
    done = folder.done()
    videos = [{"key": v.key, "path": v.path, "skip": json.dumps(sorted(folder.video_chunks_done(v, done)[0]))}
              for v in plan.video_sources if v.key in todo]
    if videos:
        parts.append(ray.data.from_items(videos, override_num_blocks=len(videos))
                     .map_batches(_decode_video, batch_size=1, num_cpus=PREPARE_CPUS,
                                  fn_kwargs={"recipe": recipe, "chunk_size": plan.shard_size}))
    dataset = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    gpus = 1 if recipe.device.startswith("cuda") else 0
    dataset = dataset.map_batches(
        DetectorActor, batch_size=options.batch, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.workers), num_cpus=1, num_gpus=gpus,
        fn_constructor_kwargs={"recipe_ref": [recipe_ref], "options": asdict(detect_options), "names": names,
                               "threads": threads})
    if options.save_images and rows:
        dataset = dataset.map(_annotate, fn_kwargs={"output": str(folder.root), "names": names}, num_cpus=PREPARE_CPUS)
    return dataset, recipe_ref  # the caller holds the reference: a restarted actor fetches the model again


def _drain(dataset, folder: RunFolder, expected: tuple[int, bool], show_progress: bool) -> None:
    """Collect records per shard; write each shard the moment its last record arrives. *expected*: (records, whether
    an estimate), for the progress line."""
    pending: dict[str, dict[int, str]] = {}
    written = 0
    total, estimate = expected
    progress = Progress("ray detect", total or None, unit="records", approximate=estimate) if show_progress else None
    events.emit("pipeline-started")
    batches = iter(dataset.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        for batch in batches:
            for shard, item, of, last, record in zip(batch["shard"], batch["item"], batch["of"], batch["last"],
                                                     batch["record"]):
                records = pending.setdefault(str(shard), {})
                records[int(item)] = str(record)  # keyed: a retried batch replaces, never duplicates
                if len(records) == int(of):
                    with interrupt.deferred():  # a finished shard is written, not dropped by a stop that lands here
                        folder.write_shard(str(shard), pending.pop(str(shard)), last=bool(last))
                    written += 1
                    events.emit(f"shards-written {written}")
            if progress:
                progress.update(len(batch["record"]))
            interrupt.check()  # a stop whose exception was swallowed inside Ray while we waited for this batch
    finally:
        # Closing the iterator shuts Ray Data's executor down now. Left to the garbage collector (the traceback
        # of a stop keeps it alive), its threads still call into Ray after the caller's ray.shutdown(), and
        # Ray's core worker then ends the process with exit status 1 instead of our 130.
        close = getattr(batches, "close", None)
        if close is not None:
            with interrupt.deferred():
                close()
    if progress:
        progress.close()
    if pending:
        raise InputError(f"{len(pending)} shard(s) ended incomplete ({', '.join(sorted(pending)[:3])}); "
                         "rerun the same command to finish them")


def print_report(report: RayReport, stream: TextIO | None = None) -> None:
    """Say what a run did: images and frames, shards run (time, rate, what it ran on) or already done, where the
    records are, and a warning line when some sources could not be read.

    Args:
        report (RayReport): what `detect_on_ray` returned.
        stream (text stream or None): where the lines go; None: sys.stderr.
    """
    stream = stream or sys.stderr
    done = f"{report.images} image(s)" + (f", {report.frames} video frame(s)" if report.frames else "")
    if report.shards_run:
        resumed = f"; {report.shards_resumed} shard(s) were already done" if report.shards_resumed else ""
        on = f" on {report.ray}" if report.ray else ""
        line = f"{done}: {report.shards_run} shard(s) run in {report.seconds:.1f} s ({report.per_second:.1f}/s){on}{resumed}"
    else:
        line = f"{done}: all {report.shards_resumed} shard(s) were already done"
    print(f"{line} → {report.output / 'detections.jsonl'}", file=stream)
    if report.errors:
        print(f"warning: {report.errors} source(s) could not be read; their records in detections.jsonl say why",
              file=stream)
