"""--notify http(s)://…: each message POSTed to the URL as JSON (the Notifier, media/notify, keeps their order and
tries again). A user and password in the URL go as HTTP basic authentication; --notify-header adds headers."""
from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request

from ..core.version import __version__
from .notify_transport import Failure

REQUEST_TIMEOUT_S = 10.0  # one POST: connecting and the answer


class HttpTransport:
    """POSTs each message to *url* (see notify_transport.Transport).

    Args:
        url (str): where to POST (http or https; checked by notify.check_notify_url).
        headers (dict): more request headers (`--notify-header`), sent with every message.
    """

    retains = False  # a POST is a message, not a state a receiver keeps

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._target, self._headers = _request_parts(url)
        self._headers.update(headers)

    def send(self, route: str, body: bytes, retain: bool = False) -> Failure | None:
        """POST one message: None when the receiver took it (2xx); a 4xx is not tried again (the receiver refuses that
        message and would refuse it again), a 5xx or no answer is."""
        request = urllib.request.Request(self._target, data=body, method="POST", headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                answer.read()
            return None
        except urllib.error.HTTPError as exc:
            answer = f"{exc.code} {exc.reason}"
            if 400 <= exc.code < 500:
                return Failure(f"refused it with {answer}", retry=False)
            return Failure(f"answered {answer}", retry=True)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return Failure(f"cannot be reached: {reason}", retry=True)

    def close(self, wait_s: float) -> None:
        """Nothing to say at the end: HTTP has no connection to close."""


def _request_parts(url: str) -> tuple[str, dict[str, str]]:
    """The URL to POST to and the request's headers: a user and password in *url* (`https://user:pass@host/…`) go as
    HTTP basic authentication, as curl sends them, not in the URL (urllib would try to resolve them as the host)."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": f"darknet-py/{__version__}"}
    if parts.username is None:
        return url, headers
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), headers
