"""The classification run over image files (what `darknet-py classify` does): batches of images, each file read once;
one that cannot be read is skipped and its reason kept, as detect's run skips it (run.run_images)."""
from __future__ import annotations

from typing import Iterator, Sequence

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from ..core.in_flight import iter_batches
from ..pipeline.classifications import Classification


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
