"""Credentials in URLs (`rtsp://user:pass@camera/…`) hidden wherever a source is shown: logs, errors, records,
file names, the live page. One function, so every place hides them the same way.
"""
from __future__ import annotations

import re

HIDDEN = "***"
# scheme://, then the userinfo: everything up to the last "@" before the host's end ("/", "?", "#" or a space),
# so a password that holds a raw "@" is hidden whole.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")


def hide_credentials(text: str) -> str:
    """*text* with the user and password of every URL in it replaced by `***`.

    Works on a URL alone or on any message that holds URLs (an error from FFmpeg, a log line).

    Args:
        text (str): a URL, or text that may contain URLs.

    Returns:
        str: e.g. `rtsp://***@10.0.0.5:554/stream1` for `rtsp://admin:secret@10.0.0.5:554/stream1`; text without
        credentials comes back unchanged.
    """
    return _USERINFO.sub(lambda match: f"{match['scheme']}{HIDDEN}@", str(text))
