"""Images named by an http(s) URL (`https://host/photos/dog.jpg`): fetched whole, then decoded from their bytes by
the same OpenCV call and flags as a file (preprocess.read_image), so an image on a web server gives the detections
its downloaded file gives, to the bit. (Read as a video, FFmpeg's JPEG decoder rounds differently: dog 83% for 84%.)
"""
from __future__ import annotations

import base64
import os
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from ..core.credentials import hide_credentials
from ..core.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # what folders and globs pick up
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm"}  # read as videos
URL_SCHEMES = ("http", "https")
FETCH_TIMEOUT_S = 30.0  # connecting, and each read: a server that stops sending fails the image, not the run
MAX_IMAGE_BYTES = 1 << 30  # an image file larger than this is refused rather than held in memory


def has_image_extension(name: str | os.PathLike) -> bool:
    """Whether a file's name or path ends in an image extension (IMAGE_EXTENSIONS, any case): what folders, globs,
    --sequence, --watch and --calibration pick up as images."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def url_path(text: str) -> str | None:
    """The path of an http(s) URL (`/photos/dog.jpg`), None for anything else (a file, an rtsp:// stream)."""
    parts = urlsplit(text) if "://" in text else None
    return parts.path if parts is not None and parts.scheme.lower() in URL_SCHEMES else None


def is_image_url(text: str) -> bool:
    """Whether *text* is an http(s) URL whose path ends in an image file's extension (`…/dog.jpg?size=big`):
    what read_image fetches and a SOURCE of images; other URLs are streams or videos."""
    path = url_path(text)
    return path is not None and has_image_extension(path)


def fetch_image(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> bytes:
    """The bytes an http(s) URL serves (user:password in the URL sent as HTTP basic authentication).

    Args:
        url (str): the image's URL.
        timeout_s (float): the limit for connecting and for each read.

    Returns:
        bytes: the body, whole.

    Raises:
        InputError: the server could not be reached, answered with an error, stopped sending, or sent more than
            MAX_IMAGE_BYTES; the URL shown without its credentials.
    """
    parts = urlsplit(url)
    request = urllib.request.Request(parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl())
    if parts.username is not None:  # urllib does not send a URL's userinfo by itself
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            kind = response.headers.get_content_type()
            if kind.startswith("multipart/"):  # an MJPEG stream behind a .jpg name: it would never end
                raise InputError(f"{hide_credentials(url)} serves a stream ({kind}), not one image file")
            data = response.read(MAX_IMAGE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) if not isinstance(exc, urllib.error.HTTPError) else None
        raise InputError(f"cannot fetch image {hide_credentials(url)}: {hide_credentials(str(reason or exc))}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"cannot fetch image {hide_credentials(url)}: more than {MAX_IMAGE_BYTES:,} bytes")
    return data
