"""Work split into shards for distributed detection, and the files that make it restartable.

An output folder holds
  run.json            the plan: sources, shard size and every setting that changes a result
  shards/KEY.jsonl    one finished shard: a header line, then one record per image or frame
  detections.jsonl    all records in plan order, written once every shard is done

A shard file appears only whole (temp file + rename), so after an interruption the files
present are exactly the finished shards; a rerun with the same plan does only the rest.
Records are keyed by (shard, item): a shard redone by a restarted worker replaces, never
duplicates. Video shards are chunks of frames whose number is known only after decoding,
so the last chunk of a video says so in its header.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..core.errors import InputError
from ..core.fileio import atomic_write

PLAN_FILE = "run.json"
SHARD_DIR = "shards"
RESULT_FILE = "detections.jsonl"
PLAN_VERSION = 1


@dataclass(frozen=True)
class ImageShard:
    """A run of consecutive images of the plan, detected and written as one shard file.

    Attributes:
        key (str): the shard's name, "images-NNNNNN" (its file is shards/KEY.jsonl).
        paths (tuple of str): its images, in plan order.
    """

    key: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class VideoSource:
    """A video file of the plan; its frames are written as chunks of `shard_size` frames, a shard file each.

    Attributes:
        key (str): the video's name in the run, "video-NNNN".
        path (str): the video file.
    """

    key: str
    path: str

    def chunk_key(self, chunk: int) -> str:
        """The shard key of the video's chunk number *chunk* (counted from 0): "KEY-chunk-NNNNNN"."""
        return f"{self.key}-chunk-{chunk:06d}"


@dataclass
class Plan:
    """What a distributed run detects on, and with what: written to run.json, compared when a run resumes.

    Attributes:
        images (list of str): the image files, in the order their records are merged.
        videos (list of str): the video files, merged after the images in this order.
        shard_size (int): images per image shard, and frames per video chunk.
        settings (dict): every setting that changes a result (model digest, thresholds, size...), JSON values.

    Raises:
        InputError: a shard size below 1, or neither images nor videos.
    """

    images: list[str]
    videos: list[str]
    shard_size: int
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise InputError(f"shard size must be at least 1, got {self.shard_size}")
        if not self.images and not self.videos:
            raise InputError("nothing to detect on: no images or videos in the sources")

    @property
    def image_shards(self) -> list[ImageShard]:
        """The images cut into shards of `shard_size` (the last may be shorter), in order."""
        size = self.shard_size
        return [ImageShard(f"images-{i // size:06d}", tuple(self.images[i : i + size]))
                for i in range(0, len(self.images), size)]

    @property
    def video_sources(self) -> list[VideoSource]:
        """The videos, each with its key, in order."""
        return [VideoSource(f"video-{i:04d}", path) for i, path in enumerate(self.videos)]

    def as_dict(self) -> dict:
        """The plan as run.json holds it: version, shard_size, settings, images and videos."""
        return {"version": PLAN_VERSION, "shard_size": self.shard_size, "settings": self.settings,
                "images": self.images, "videos": self.videos}


class RunFolder:
    """The output folder of one distributed run: its plan, finished shards and final result.

    Args:
        root (str or PathLike): the folder (--output); it may not exist yet.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.shard_dir = self.root / SHARD_DIR

    def start(self, plan: Plan, exist_ok: bool = False) -> bool:
        """Write the plan, or accept the one already there; True when resuming an earlier run.

        Args:
            plan (Plan): this run's plan.
            exist_ok (bool): write into a folder that holds files but no plan (--exist-ok).

        Returns:
            bool: True when the folder holds the same plan (a resumed run); False when the plan was written now.

        Raises:
            InputError: the root is a file; it holds an unreadable plan or a different one (naming the settings
                that differ); or it holds other files and no plan, without exist_ok.
        """
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"--output {self.root} is a file, not a folder")
        plan_path = self.root / PLAN_FILE
        if plan_path.is_file():
            earlier = self._read_plan(plan_path)
            if earlier == plan.as_dict():
                return True
            differs = sorted(k for k in set(earlier) | set(plan.as_dict()) if earlier.get(k) != plan.as_dict().get(k))
            detail = sorted(k for k in plan.settings if earlier.get("settings", {}).get(k) != plan.settings[k])
            raise InputError(f"{self.root} holds a run with a different plan ({', '.join(detail or differs)} differ); "
                             "rerun it with the same sources and settings to resume, or choose another --output")
        held = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
        if held and not exist_ok:
            raise InputError(f"--output {self.root} already holds {len(held)} file(s) and no {PLAN_FILE}; pass "
                             "--exist-ok to write into it or choose another folder")
        with atomic_write(plan_path, "w") as handle:
            json.dump(plan.as_dict(), handle, indent=1)
        return False

    def abandon(self) -> None:
        """Remove the plan start() wrote when the run ends before any work (Ray not reachable, a stop while it starts)
        and the folder holds nothing else: a corrected rerun is then a new run, not 'a run with a different plan'."""
        held = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        if held - {PLAN_FILE, SHARD_DIR} or (self.shard_dir.is_dir() and any(self.shard_dir.iterdir())):
            return
        (self.root / PLAN_FILE).unlink(missing_ok=True)
        if self.shard_dir.is_dir():
            self.shard_dir.rmdir()

    @staticmethod
    def _read_plan(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: unreadable run plan ({exc}); remove it to start over") from None

    def shard_path(self, key: str) -> Path:
        """The file of the shard *key*: ROOT/shards/KEY.jsonl."""
        return self.shard_dir / f"{key}.jsonl"

    def done(self) -> set[str]:
        """Keys of the shards already written.

        Returns:
            set of str: the names of the .jsonl files in ROOT/shards (empty when the folder is missing).
        """
        if not self.shard_dir.is_dir():
            return set()
        return {p.name[: -len(".jsonl")] for p in self.shard_dir.iterdir() if p.name.endswith(".jsonl")}

    def write_shard(self, key: str, records: dict[int, str], last: bool = False) -> None:
        """records: item → JSON line. Written whole or not at all.

        The file is a header line (shard, rows, last), then the records by ascending item.

        Args:
            key (str): the shard's key.
            records (dict of int to str): each item's JSON record (one line, no newline).
            last (bool): the shard holds a video's last frame.
        """
        with atomic_write(self.shard_path(key), "w") as handle:
            handle.write(json.dumps({"shard": key, "rows": len(records), "last": last}) + "\n")
            for item in sorted(records):
                handle.write(records[item] + "\n")

    def read_shard(self, key: str) -> tuple[dict, list[str]]:
        """A finished shard's header and records.

        Args:
            key (str): the shard's key.

        Returns:
            tuple of (dict, list of str): the header (shard, rows, last) and the record lines.

        Raises:
            InputError: the file cannot be read, its header is not JSON, or it holds another number of records
                than its header says.
        """
        path = self.shard_path(key)
        try:
            header, *lines = path.read_text().splitlines()
            meta = json.loads(header)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: unreadable shard ({exc}); delete it and rerun to redo it") from None
        if meta.get("rows") != len(lines):
            raise InputError(f"{path}: header says {meta.get('rows')} records, the file holds {len(lines)}; "
                             "delete it and rerun to redo it")
        return meta, lines

    def video_chunks_done(self, video: VideoSource, done: set[str] | None = None) -> tuple[set[int], bool]:
        """(finished chunk numbers, whether the video's last chunk is among them); `done`: self.done() if known.

        Args:
            video (VideoSource): the video.
            done (set of str or None): the keys of the shards written; None: read them now.

        Returns:
            tuple of (set of int, bool): the chunk numbers written, and whether the highest of them is marked last.

        Raises:
            InputError: the highest chunk's shard cannot be read.
        """
        prefix = video.key + "-chunk-"
        chunks = {int(key[len(prefix):]) for key in (self.done() if done is None else done) if key.startswith(prefix)}
        # only the highest chunk written can be the last one: chunks are numbered in frame order
        return chunks, bool(chunks) and bool(self.read_shard(video.chunk_key(max(chunks)))[0].get("last"))

    def missing(self, plan: Plan) -> list[str]:
        """What is not finished yet: image shard keys and video keys (a video is done when all its chunks are).

        Args:
            plan (Plan): the run's plan.

        Returns:
            list of str: the unfinished image shards' keys in plan order, then the unfinished videos' keys.

        Raises:
            InputError: a video's highest chunk cannot be read.
        """
        done = self.done()
        todo = [shard.key for shard in plan.image_shards if shard.key not in done]
        for video in plan.video_sources:
            chunks, last = self.video_chunks_done(video, done)
            if not (last and chunks == set(range(max(chunks) + 1))):
                todo.append(video.key)
        return todo

    def merge(self, plan: Plan) -> tuple[int, int]:
        """All shards → detections.jsonl in plan order; (records, error records).

        Args:
            plan (Plan): the run's plan.

        Returns:
            tuple of (int, int): the records written, and how many of them are error records.

        Raises:
            InputError: a shard is unfinished, or a shard file cannot be read.
        """
        missing = self.missing(plan)
        if missing:
            raise InputError(f"{len(missing)} shard(s) unfinished ({', '.join(missing[:3])}…); rerun to finish them")
        records = errors = 0
        with atomic_write(self.root / RESULT_FILE, "w") as handle:
            for line in self._lines_in_order(plan):
                handle.write(line + "\n")
                records += 1
                errors += "error" in json.loads(line)
        return records, errors

    def _lines_in_order(self, plan: Plan) -> Iterator[str]:
        for shard in plan.image_shards:
            yield from self.read_shard(shard.key)[1]
        for video in plan.video_sources:
            chunk = 0
            while True:
                meta, lines = self.read_shard(video.chunk_key(chunk))
                yield from lines
                if meta.get("last"):
                    break
                chunk += 1

