"""The three stream formats, as bytes: what goes before the first frame, each frame, and after the last.

- MJPEG: darknet's `send_mjpeg` (http_stream.cpp): `multipart/x-mixed-replace; boundary=mjpegstream`, each
  part `--mjpegstream`, `Content-Type: image/jpeg`, `Content-Length`, the JPEG. Browsers, VLC and
  `cv2.VideoCapture(url)` show it. (Each part also ends with CRLF, as multipart wants; readers that follow
  Content-Length, as darknet's users do, never see it.)
- darknet JSON: darknet's `send_json`: `application/json`, `[` then one frame object after another,
  separated by `, `. darknet never closes the array; here the last frame is followed by `]`, so a
  stream that ran to the end is one valid JSON document.
- Server-sent events (the page's /json): `text/event-stream`, one event per frame, `id:` the frame id and
  `data:` darknet's frame object on one line; `event: end` when the source is finished. Chosen over
  chunked JSON because browsers read it natively (EventSource, with reconnects), and every client splits
  it on blank lines into whole JSON documents, with no parser for half-received arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .feed import LiveFrame

BOUNDARY = "mjpegstream"  # darknet's


@dataclass(frozen=True)
class StreamFormat:
    content_type: str
    opening: bytes
    frame: Callable[[LiveFrame, bool, int], bytes]  # (frame, first, jpeg quality) → bytes
    closing: bytes


def _mjpeg_part(frame: LiveFrame, first: bool, quality: int) -> bytes:
    jpeg = frame.jpeg(quality)
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return head + jpeg + b"\r\n"


def _darknet_json_item(frame: LiveFrame, first: bool, quality: int) -> bytes:
    return (b"" if first else b", \n") + frame.json().encode()


def _sse_event(frame: LiveFrame, first: bool, quality: int) -> bytes:
    return f"id: {frame.frame_id}\ndata: {frame.json()}\n\n".encode()


MJPEG = StreamFormat(f"multipart/x-mixed-replace; boundary={BOUNDARY}", b"", _mjpeg_part, b"")
DARKNET_JSON = StreamFormat("application/json", b"[\n", _darknet_json_item, b"\n]\n")
EVENTS = StreamFormat("text/event-stream", b"retry: 2000\n\n", _sse_event, b"event: end\ndata: {}\n\n")
