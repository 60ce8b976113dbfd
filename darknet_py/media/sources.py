"""What a SOURCE argument names (images, a list of images, a video, a stream, a camera), and output names for sources."""
from __future__ import annotations

import glob
import sys
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import cv2

from ..core.errors import DarknetWarning, InputError
from ..format.darknet_data import read_image_list
from ..pipeline.image_url import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, has_image_extension, is_image_url, url_path

LIST_EXTENSION = ".txt"  # a list of image paths, one per line (what darknet reads from its standard input)
STDIN = "-"


def source_items(source: str) -> tuple[str, list[str] | str | int]:
    """What SOURCE names: ("images", [paths]) or ("video", path|url|camera index).

    Args:
        source (str): an image, a folder, a glob, a `.txt` list of image paths (`-`: the list on standard input),
            a video file, a stream URL or a camera index.

    Returns:
        tuple: ("images", image paths in order) or ("video", the file, URL or camera index).
    """
    if source == STDIN:  # darknet's way: `darknet detector test … < list.txt`
        text = sys.stdin.read()
        return "images", listed_images([line.rstrip("\r") for line in text.split("\n") if line.strip()], "standard input")
    if source.isdigit():
        return "video", int(source)
    if "://" in source:  # an image on a web server is an image (fetched whole); other URLs are streams or videos
        return ("images", [source]) if is_image_url(source) else ("video", source)
    path = Path(source)
    if path.is_dir():
        entries = list(path.iterdir())
        files = sorted(str(f) for f in entries if has_image_extension(f))
        videos = sorted(f.name for f in entries if f.suffix.lower() in VIDEO_EXTENSIONS)
        play = "give videos as SOURCEs of their own (several at once: detect a.mp4 b.mp4)"
        if not files:
            held = f"; it holds {len(videos)} video(s) ({_first(videos)}): {play}" if videos else ""
            folders = sorted(f.name for f in entries if f.is_dir())
            if folders and not videos:  # a dataset's train/ and val/: a folder SOURCE is not searched below itself
                held = (f"; it holds {len(folders)} folder(s) ({_first(folders)}): give one, or a glob that goes down "
                        f"into them ('{Path(source) / '**' / '*.jpg'}')")
            raise InputError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder {source}{held}")
        if videos:  # a folder SOURCE is its images; a video there would otherwise be passed over without a word
            warnings.warn(f"{source}: a folder SOURCE is its images; {len(videos)} video(s) there are left out "
                          f"({_first(videos)}): {play}", DarknetWarning, stacklevel=2)
        return "images", files
    if path.is_file() and path.suffix.lower() == LIST_EXTENSION:
        return "images", listed_images(read_image_list(path, "image list"), source)
    if path.is_file():
        return ("video", source) if path.suffix.lower() in VIDEO_EXTENSIONS else ("images", [source])
    matches = sorted(f for f in glob.glob(source, recursive=True) if has_image_extension(f))
    if matches:
        return "images", matches
    raise InputError(f"source not found: {source}")


def _first(names: list[str]) -> str:
    return names[0] + (", …" if len(names) > 1 else "")


def listed_images(paths: list[str], name: str) -> list[str]:
    """The images of a list SOURCE (format.darknet_data.read_image_list: one path per line as written, relative
    paths from the working directory as darknet opens them, blank lines skipped), each checked to exist before any
    is detected (an image's http(s) URL is fetched when it is read).

    Raises:
        InputError: a listed image is missing, or the list names none.
    """
    if not paths:
        raise InputError(f"{name} lists no images (one image path per line expected)")
    missing = [path for path in paths if not is_image_url(path) and not Path(path).is_file()]  # URLs: when fetched
    if missing:
        raise InputError(f"{name} lists {len(missing)} image(s) that do not exist (first: {missing[0]})")
    return paths


def video_stem(source: str | int) -> str:
    """The name a video source's outputs are given: a camera's `cameraN`, else the file's or URL's stem.

    Args:
        source (str or int): a camera index (or its digits, as given on the command line), a file or a URL.

    Returns:
        str: e.g. `camera0`, `walk` for `walk.mp4`, `stream` for a URL that ends in a slash.
    """
    if isinstance(source, int) or source.isdigit():
        return f"camera{int(source)}"
    if "://" in source:  # the URL's path only: never its credentials, host or query
        return Path(urlsplit(source).path).stem or "stream"
    return Path(source).stem or "stream"


def source_names(sources: list) -> list[str]:
    """A folder name for each of several video sources (their outputs go there): the file's or URL path's stem, a
    camera's `cameraN`, never a URL's credentials or host; a name taken already gets `-2`, `-3`, ...

    Args:
        sources (list of str or int): video files, stream URLs, camera indexes.

    Returns:
        list of str: one distinct name per source, in order.
    """
    names: list[str] = []
    for source in sources:
        base = video_stem(source)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def image_name(source: str) -> str:
    """An image source's file name: a path's last part, or the last part of a URL's path (never its host, query or
    credentials: `https://u:p@host/photos/dog.jpg?s=1` → `dog.jpg`)."""
    path = url_path(source)
    return Path(source if path is None else path).name or "image"


def first_shared_name(paths: list[str], by_stem: bool = False) -> tuple[str, str, str] | None:
    """The first two images whose outputs named after the file would take one name in one folder (a/x.jpg, b/x.jpg):
    (first, second, the name), or None.

    Args:
        paths (list of str): the images of a run.
        by_stem (bool): compare the files' stems (a label `x.txt`, crops `x_K.jpg`: x.jpg and x.png collide too)
            rather than the annotated images' names.
    """
    seen: dict[str, str] = {}
    for path in paths:
        key = Path(image_name(path)).stem if by_stem else annotated_name(path)
        if key in seen:
            return seen[key], path, key
        seen[key] = path
    return None


def annotated_name(source: str) -> str:
    """The source's file name, plus .jpg when OpenCV has no writer for its extension (e.g. photo.raw)."""
    name = image_name(source)
    return name if cv2.haveImageWriter(name) else f"{name}.jpg"
