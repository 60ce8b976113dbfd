"""Telling another program as things happen (`--notify URL`): each crossing, entry, exit or dwelling of `--line` /
`--zone`, each clip of `--clips` once it is a finished file, each drop and return of a camera's or stream's connection,
and each image of a watched folder something is detected in, sent to URL as one JSON object — POSTed to an http(s)://
URL (a home-automation webhook, a chat bot, a script that files an alert; notify_http), or published to an MQTT broker
for an mqtt(s):// URL (Home Assistant, Node-RED; notify_mqtt: TOPIC/SOURCE/TYPE, with an online/offline status topic).

    {"type": "event", "source": "gate", "frame": 62, "time": 2.48, "track_id": 1, "class_id": 0, "name": "person",
     "line": "door", "direction": "in", "utc": "2026-12-07T08:05:24.594Z"}
    {"type": "clip", "source": "gate", "file": "clips/gate_20261207T080522.114Z.mp4", "path": "/var/lib/…", …}
    {"type": "source", "source": "gate", "state": "connected", "drops": 1, "down_s": 7.4, "utc": "…"}

An event is its events.jsonl line and a clip its clips.jsonl line (plus the clip's absolute path), with `type` and
`source` (the source's name, as its output folder has it). Messages go in order from a thread of their own, so a slow
or absent receiver never holds up detection. A receiver that cannot be reached (or answers 5xx) is tried again, the
same message, after waits of 1 s doubling to 30 s, for as long as the run goes on: messages wait in memory (up to
QUEUE_MESSAGES, then the oldest are dropped and counted), in their order, so a receiver down for an hour gets that
hour's messages when it is back. A message the receiver refuses (HTTP 4xx) is not tried again. When the run ends,
messages still waiting get DRAIN_S seconds to go; the run's last lines say how many were delivered and how many not.
"""
from __future__ import annotations

import collections
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core import events
from ..core.credentials import hide_credentials
from ..core.errors import DarknetWarning, InputError
from ..core.retry import backoff
from ..pipeline.jpeg import encode_jpeg
from .notify_http import HttpTransport
from .notify_mqtt import PORTS as MQTT_SCHEMES
from .notify_mqtt import MqttTransport, mqtt_target, topic_level
from .notify_transport import Transport
from .sinks import Result, result_record
from .source_status import SourceStatus
from .tracking_sinks import TrackedResult

QUEUE_MESSAGES = 10_000  # messages waiting for a receiver that is down, at most (a few MB)
FIRST_WAIT_S, LONGEST_WAIT_S = 1.0, 30.0  # between tries of a message the receiver did not take
DRAIN_S = 5.0  # at the run's end, what is still waiting gets this long
CLOSE_S = 2.0  # then the transport's last word (MQTT: `offline` on the status topic) this long at most
STATE_EVERY_S = 1.0  # a video's `objects` state (MQTT): at most one per second of its time, the latest
SNAPSHOT, SNAPSHOT_QUALITY = "snapshot", 90  # the annotated picture's route (MQTT) and its JPEG quality
PICTURES_WAITING = 8  # pictures waiting for a slow receiver, at most (a 1280x720 frame is 2.7 MB until encoded)


def is_mqtt(url: str) -> bool:
    """Whether a --notify URL names an MQTT broker (mqtt://, mqtts://) rather than an HTTP receiver."""
    return url.partition("://")[0].lower() in MQTT_SCHEMES


def check_notify_url(url: str, headers: bool = False) -> None:
    """Raises InputError for a URL that is neither http(s)://host… nor a valid mqtt(s)://host…/topic, or for headers
    (*headers* true: --notify-header given) with an MQTT URL, which has none."""
    scheme, _, rest = url.partition("://")
    if is_mqtt(url):
        mqtt_target(url)
        if headers:
            raise InputError(f"--notify-header: headers go with an http(s):// --notify; an MQTT broker "
                             f"({hide_credentials(url)}) takes none (put a user and password in the URL)")
        return
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise InputError(f"--notify {hide_credentials(url)}: give an http:// or https:// URL to POST to, or an mqtt:// "
                         f"or mqtts:// broker and topic to publish to")


def transport_for(url: str, headers: dict[str, str], source: str = "") -> Transport:
    """The transport of a checked --notify URL: MQTT for mqtt(s)://, else HTTP POSTs; *source*: whose messages."""
    if is_mqtt(url):
        return MqttTransport(url, source)
    return HttpTransport(url, headers)


@dataclass
class NotifyReport:
    """What a Notifier did: messages delivered, refused by the receiver (4xx), never delivered (still waiting when the
    run ended, or dropped from a full queue), and states replaced while waiting (by a newer one of the same route, the
    receiver away; or the oldest of too many pictures)."""

    delivered: int = 0
    refused: int = 0
    undelivered: int = 0
    replaced: int = 0
    last_error: str = ""


@dataclass(eq=False)
class _Message:
    """One message waiting: its route, whether it is a state (kept by a receiver that `retains`), and its body — JSON,
    or an image, encoded as JPEG when first sent (in the notifier's thread, not the detection loop's)."""

    route: str
    retain: bool
    body: bytes | None = None
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.picture = self.image is not None

    def payload(self) -> bytes:
        """The body, the same bytes object every time (a transport may be waiting for its first sending)."""
        if self.body is None:
            self.body, self.image = encode_jpeg(self.image, SNAPSHOT_QUALITY), None
        return self.body


class Notifier:
    """Sends JSON messages to one URL (POSTed, or published to a broker), in order, from a thread of its own (see the
    module's docstring).

    Args:
        url (str): where to send (http, https, mqtt or mqtts).
        queue_messages (int): messages that may wait, at most; beyond, the oldest are dropped (counted undelivered).
        headers (dict or None): more request headers (`--notify-header`: a receiver's token), sent with every message
            and never printed (HTTP only).
        source (str): the source whose messages these are, where the transport names it apart from the messages
            (MQTT: its status topic, TOPIC/SOURCE/status); "": none.
    """

    def __init__(self, url: str, queue_messages: int = QUEUE_MESSAGES, headers: dict[str, str] | None = None,
                 source: str = "") -> None:
        check_notify_url(url, headers=bool(headers))
        self.url = url
        self._transport = transport_for(url, headers or {}, source)
        self.report = NotifyReport()
        self._waiting: collections.deque[_Message] = collections.deque()
        self._limit = queue_messages
        self._changed = threading.Condition()
        self._closing = False
        self._failing = False  # the receiver failed the message at the head of the queue: warned once, until it takes one
        self._failed_tries = 0
        self._thread = threading.Thread(target=self._send_all, name="darknet_py-notify", daemon=True)
        self._thread.start()

    @property
    def retains(self) -> bool:
        """Whether the receiver keeps a route's last message for those who come later (MQTT), so states are worth
        sending (see NotifySink)."""
        return self._transport.retains

    def post(self, message: dict, retain: bool = False) -> None:
        """Queue *message* (a JSON object) to be sent; returns at once. Safe from any thread. Its `source` and `type`
        make its route (MQTT: the topic below the URL's, `gate/event`); *retain*: a state, kept by a receiver that
        `retains` as the route's last word."""
        route = "/".join(topic_level(str(message[key])) for key in ("source", "type") if key in message)
        self._queue(_Message(route, retain, body=json.dumps(message).encode()))

    def post_image(self, source: str, kind: str, image: np.ndarray) -> None:
        """Queue *image* (BGR; not changed afterwards) to be sent as a JPEG state under *source*/*kind* (MQTT:
        TOPIC/SOURCE/KIND, retained), encoded in the notifier's thread. Only for a receiver that `retains`."""
        self._queue(_Message(f"{topic_level(source)}/{kind}", True, image=image))

    def _queue(self, message: _Message) -> None:
        with self._changed:
            # never the head of the queue, which may be on its way
            if message.retain and self._failing:  # a receiver that is away gets the last state, not each one
                self._drop_first(lambda waiting: waiting.retain and waiting.route == message.route)
            if message.picture and sum(waiting.picture for waiting in self._waiting) >= PICTURES_WAITING:
                self._drop_first(lambda waiting: waiting.picture)  # a slow receiver: pictures bounded in memory
            if len(self._waiting) >= self._limit:
                self._waiting.popleft()
                self.report.undelivered += 1
            self._waiting.append(message)
            self._changed.notify()

    def figures(self) -> dict:
        """How delivery is going, for /health: `url` (credentials hidden), `up` (false while the receiver is failing:
        the message at the head of the queue was not taken), `waiting` (messages queued), `delivered`, `refused`,
        `undelivered`, `replaced` (see NotifyReport) and `last_error` (the last failure's reason, "" before any)."""
        with self._changed:
            return {"url": hide_credentials(self.url), "up": not self._failing, "waiting": len(self._waiting),
                    "delivered": self.report.delivered, "refused": self.report.refused,
                    "undelivered": self.report.undelivered, "replaced": self.report.replaced,
                    "last_error": self.report.last_error}

    def _drop_first(self, which: Callable[[_Message], bool]) -> None:
        """Drop the first waiting message *which* picks, the head aside, counted as replaced (the lock held)."""
        for index in range(1, len(self._waiting)):
            if which(self._waiting[index]):
                del self._waiting[index]
                self.report.replaced += 1
                return

    def close(self, drain_s: float = DRAIN_S) -> NotifyReport:
        """Let what is waiting go for up to *drain_s* seconds, then stop; what is left is counted undelivered.

        Returns:
            NotifyReport: the run's figures.
        """
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join(drain_s)
        with self._changed:
            self.report.undelivered += len(self._waiting)
            self._waiting.clear()
            self._changed.notify()  # a try still under way finds the queue empty and ends
        self._transport.close(CLOSE_S)
        return self.report

    def _send_all(self) -> None:
        waits = backoff(FIRST_WAIT_S, LONGEST_WAIT_S)
        while True:
            with self._changed:
                while not self._waiting and not self._closing:
                    self._changed.wait()
                if not self._waiting:
                    return
                head = self._waiting[0]
            try:
                body = head.payload()
            except InputError as exc:  # a picture the encoder refuses: that message only, the thread goes on
                with self._changed:
                    if self._waiting and self._waiting[0] is head:
                        self._waiting.popleft()
                    self.report.undelivered += 1
                    self.report.last_error = str(exc)
                    self._warn(f"{exc}: that picture is dropped")
                continue
            failure = self._transport.send(head.route, body, head.retain)
            with self._changed:
                if failure is None or not failure.retry:
                    if self._waiting and self._waiting[0] is head:  # not cleared by close() meanwhile
                        self._waiting.popleft()
                    if failure is None:
                        self.report.delivered += 1
                        self._failing, waits = False, backoff(FIRST_WAIT_S, LONGEST_WAIT_S)
                        events.emit(f"notify-delivered {self.report.delivered}")
                    else:
                        self.report.refused += 1
                        self.report.last_error = failure.reason
                        self._warn(f"the receiver {failure.reason}: that message is dropped")
                    continue
                self.report.last_error = failure.reason
                self._failed_tries += 1
                events.emit(f"notify-failed {self._failed_tries}")
                if self._closing:
                    return  # the run has ended: what is waiting is counted undelivered (close), not tried in a loop
                if not self._failing:
                    self._failing = True
                    self._warn(f"{failure.reason}; trying again, messages kept in order (up to {self._limit})")
                # the end of the run cuts the wait short: its drain tries once more at once
                self._changed.wait_for(lambda: self._closing, timeout=next(waits))

    def _warn(self, text: str) -> None:
        warnings.warn(f"--notify {hide_credentials(self.url)}: {text}", DarknetWarning, stacklevel=2)


def parse_header(text: str) -> tuple[str, str]:
    """`NAME: VALUE` (`--notify-header`) as (name, value); InputError naming the flag (never the value, which is
    often a secret) for one that is not a header."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name or any(c.isspace() or not c.isprintable() for c in name) or "\n" in value or "\r" in value:
        # the text is not shown: a header given wrongly is still most often a secret
        raise InputError("--notify-header: give NAME: VALUE (e.g. 'Authorization: Bearer TOKEN'); one given is not a "
                         "header")
    return name, value


class NotifySink:
    """Posts each frame's counting events (a TrackedResult's) to a Notifier, and finishes it when the run ends; clips
    reach it through `clip()`, which ClipsSink calls as each clip is listed, and a live source's drops and returns
    through `watch()` of its SourceStatus. An image's result (a watched folder's: --watch) is posted when something is
    detected in it: its detections.jsonl record, the image named by `file` (*image_name* of its path) and `path`
    (absolute).

    To a receiver that keeps states (MQTT's retained messages: `notifier.retains`) a video's frames also send two,
    each the latest word on its topic for whoever subscribes later (a Home Assistant sensor):
    - `objects`: how many of each class the frame holds (`{"person": 2, "car": 1}`), at the first frame and then when
      that changes, at most once per STATE_EVERY_S of the video's time (the latest; the last one at the end);
    - `counts`: with --line/--zone, counts.json's counts and each zone's tracks inside now, at the first frame and at
      each frame with an event (as counts.json is written);
    and a third, the picture: `snapshot`, the annotated frame as a JPEG, at each frame with an event and each frame
    whose `objects` state, sent, holds more of some class than the one before (something came into view); a watched
    folder's image something is detected in, annotated, too. While the receiver is away, a state waiting is replaced by
    the next one of its topic (Notifier: only the last counts), so an hour away costs a few messages, not an hour of
    pictures; and at most PICTURES_WAITING pictures wait for a slow one.

    Args:
        notifier (Notifier): where messages go.
        source (str): the source's name in each message.
        image_name (callable): an image's path → its `file` in the message (default: the file's name; a watched
            folder's WatchedFolder.name_of: its path below the folder).
    """

    def __init__(self, notifier: Notifier, source: str, image_name: Callable[[str], str] = lambda path: Path(path).name
                 ) -> None:
        self.notifier, self.source, self.image_name = notifier, source, image_name
        self._counted = False  # the counts state was sent (at the first frame, then at each event)
        self._objects: tuple[dict, dict] | None = None  # the latest frame's objects and where it was (frame, time…)
        self._sent_objects: dict | None = None  # the objects state last sent, and the video time it was sent at
        self._sent_at = 0.0

    def write(self, result: Result) -> None:
        if result.frame is None:  # an image of a watched folder (--watch): posted when something is detected in it
            if len(result.detections):
                record = result_record(result)
                path = record.pop("source")
                self.notifier.post({"type": "detections", "source": self.source, "file": self.image_name(path),
                                    "path": str(Path(path).resolve()), **record})
                if self.notifier.retains:
                    self.notifier.post_image(self.source, SNAPSHOT, result.annotated)
            return
        found = result.events if isinstance(result, TrackedResult) else ()
        date = {"utc": result.utc} if result.wall_time is not None else {}
        for event in found:
            self.notifier.post({"type": "event", "source": self.source, **event.to_dict(), **date})
        if self.notifier.retains:
            self._states(result, bool(found), date)

    def _states(self, result: Result, happened: bool, date: dict) -> None:
        """The frame's `counts` and `objects` states and its snapshot (see the class' docstring), sent retained;
        *happened*: the frame has events."""
        time = result.time or 0.0
        where = {"frame": result.frame, "time": round(time, 6), **date}
        if isinstance(result, TrackedResult) and (result.lines or result.zones) and (happened or not self._counted):
            self._counted = True
            self.notifier.post({"type": "counts", "source": self.source, **result.counts, "inside": result.inside,
                                **where}, retain=True)
        objects = dict(sorted(collections.Counter(result.detections.labels).items()))
        self._objects, before = (objects, where), self._sent_objects
        if before is None or (objects != before and time - self._sent_at >= STATE_EVERY_S):
            self._send_objects(time)
            # something came into view (more of a class than before): its picture, as at an event
            happened = happened or any(count > (before or {}).get(name, 0) for name, count in objects.items())
        if happened:
            self.notifier.post_image(self.source, SNAPSHOT, result.annotated)

    def _send_objects(self, time: float) -> None:
        objects, where = self._objects
        self._sent_objects, self._sent_at = objects, time
        self.notifier.post({"type": "objects", "source": self.source, "objects": objects, **where}, retain=True)

    def watch(self, status: SourceStatus) -> None:
        """Post the connection's drops and returns of the source *status* follows (a camera's, a stream's), and show
        in *status* (/health, /metrics) how delivery is going."""
        status.on_change(self._source_changed)
        status.add_notifier(self.notifier.figures)

    def _source_changed(self, change: dict) -> None:
        self.notifier.post({"type": "source", "source": self.source, **change})

    def clip(self, line: dict, path: Path) -> None:
        """A clip finished and listed (its clips.jsonl *line*, its file at *path*). Called from the clip thread."""
        self.notifier.post({"type": "clip", "source": self.source, **line, "path": str(path.resolve())})

    def summary(self) -> str:
        """What was delivered, for the run's last lines."""
        report = self.notifier.report
        text = f"notify: {report.delivered} delivered to {hide_credentials(self.notifier.url)}"
        if report.refused:
            text += f", {report.refused} refused"
        if report.undelivered:
            text += f", {report.undelivered} not delivered"
        if report.refused or report.undelivered:
            text += f" (last: {report.last_error})"
        if report.replaced:
            text += f"; {report.replaced} states replaced by newer ones while waiting"
        return text

    def finish(self) -> None:
        if self._objects is not None and self._objects[0] != self._sent_objects:  # the last frame's word is the last
            self._send_objects(self._objects[1]["time"])
        self.notifier.close()

