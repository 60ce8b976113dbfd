"""The classification run over image files (what `darknet-py classify` does): batches of images, each file read once;
one that cannot be read is skipped and its reason kept, as detect's run skips it (run.run_images). `classify_run`
is the whole run: each result handed on as it comes, a progress line, the records saved as classifications.json
(whole, also after Ctrl-C) in --output or a fresh runs/classify/N.

    outcome = classify_run(model, paths, top=5, each=print, save_json=True)
    print(outcome.summary())
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..core import events, interrupt
from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.fileio import atomic_write, refuse_overwrite, require_writable
from ..core.in_flight import iter_batches
from ..core.progress import Progress
from ..pipeline.classifications import Classification
from .run import none_readable
from .run_folders import run_folder

CLASSIFY_RUNS = Path("runs/classify")  # --save-json's default: a fresh CLASSIFY_RUNS/N each run
CLASSIFICATIONS_JSON = "classifications.json"


@dataclass(frozen=True)
class ClassifyOutcome:
    """How a classification run went.

    Attributes:
        done (int): images classified (and handed on, and saved with --save-json).
        interrupted (bool): a stop (Ctrl-C, SIGTERM) ended the run; what was done is kept.
        saved (Path or None): the classifications.json written, or None.
        unreadable (list of str): why each image that could not be read was skipped.
    """

    done: int
    interrupted: bool
    saved: Path | None = None
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """The run's last line (`N image(s) → OUT/classifications.json`), or None for an uneventful run that saved
        nothing (the images' own lines say it all)."""
        stopped = ", interrupted — the images done are saved" if self.interrupted else ""
        if self.saved is not None:
            return f"{self.done} image(s){stopped} → {self.saved}"
        return f"{self.done} image(s), interrupted" if self.interrupted else None


def check_classify_output(save_json: bool, output: str | None, exist_ok: bool = False) -> None:
    """Before the model loads: refuse a classifications.json that --output already holds (unless *exist_ok*), or a
    folder this user cannot write in.

    Raises:
        InputError: one line naming the file or folder.
    """
    if save_json and output:
        refuse_overwrite(Path(output) / CLASSIFICATIONS_JSON, exist_ok)
    elif save_json:
        require_writable(CLASSIFY_RUNS, f"the run's folder {CLASSIFY_RUNS}/N")


def classify_run(model, paths: Sequence[str], top: int = 5, names: list[str] | None = None, batch: int = 1, *,
                 each: Callable[[Classification], None] | None = None, save_json: bool = False,
                 output: str | None = None, progress: bool = False) -> ClassifyOutcome:
    """Classify image files, handing each result on as it comes, and save the records.

    Args:
        model: a loaded classifier (darknet_py.load).
        paths (sequence of str): image files or URLs.
        top (int): classes per image.
        names (list of str or None): class names (None: the model's).
        batch (int): images per forward.
        each (callable or None): called with each result in order (the CLI prints it); a stop waits until it
            returns, so an image's lines and its record go together.
        save_json (bool): write the records to OUTPUT/classifications.json (atomically; after a stop, the images
            done).
        output (str or None): the folder for save_json; None: a fresh runs/classify/N.
        progress (bool): a progress line (count, rate, ETA) on stderr for more than one image.

    Returns:
        ClassifyOutcome: images done, whether a stop ended the run, the file saved, the images skipped.

    Raises:
        InputError: no image could be read (the first one's reason).
    """
    records: list[dict] = []
    unreadable: list[str] = []
    interrupted = False
    meter = Progress("classify", len(paths), unit="images") if progress and len(paths) > 1 else None
    try:
        for result in classify_images(model, paths, top, names, batch, unreadable):
            with interrupt.deferred():  # an image's lines and record go together
                if each is not None:
                    each(result)
                records.append(result.as_dict())
            events.emit(f"images-done {len(records)}")
            if meter is not None:  # the images skipped count as done with, as detect's progress counts them
                meter.update(len(records) + len(unreadable) - meter.count)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the images done are kept, as detect keeps them
        interrupted = True
    finally:
        if meter is not None and records:
            meter.close()
    if unreadable and not records and not interrupted:
        raise none_readable(unreadable)
    saved = None
    if save_json and (records or not interrupted):
        out, _ = run_folder(output, CLASSIFY_RUNS)
        saved = out / CLASSIFICATIONS_JSON
        with interrupt.deferred(), atomic_write(saved, "w") as handle:
            json.dump(records, handle)
    return ClassifyOutcome(len(records), interrupted, saved, unreadable)


def classify_images(model, paths: Sequence[str], top: int, names: list[str] | None, batch: int,
                    unreadable: list[str]) -> Iterator[Classification]:
    """Each readable image's top classes, in order, *batch* images per forward.

    Args:
        model: a loaded classifier (darknet_py.load).
        paths (sequence of str): image files or URLs.
        top (int): classes per image.
        names (list of str or None): class names (None: the model's).
        batch (int): images per forward.
        unreadable (list of str): each image that cannot be read adds its reason here (and is skipped).

    Yields:
        Classification: one per image read, its `source` the path as given (an URL's password hidden).
    """
    # torch comes with the reader: imported when images are read, so that `classify --help` needs none
    from ..pipeline.preprocess import read_image

    for chunk in iter_batches(paths, batch):
        images, sources = [], []
        for path in chunk:
            try:
                images.append(read_image(path))
                sources.append(hide_credentials(path))
            except InputError as exc:  # undecodable, too large, gone since listed: this image only
                unreadable.append(str(exc))
        for result, source in zip(model.classify(images, top, names=names) if images else [], sources):
            result.source = source
            yield result
