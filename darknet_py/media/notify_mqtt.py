"""--notify mqtt://[USER:PASSWORD@]HOST[:PORT]/TOPIC (mqtts:// over TLS): each message published to an MQTT broker —
Mosquitto, Home Assistant's, EMQX — rather than POSTed, the way home automation and camera software listen.

- A message goes to `TOPIC/SOURCE/TYPE` (`darknet/gate/event`, `darknet/gate/clip`, `darknet/gate/source`,
  `darknet/ftp/detections`), its JSON as the payload, so a subscriber picks one camera or one kind with the topic
  (`darknet/+/event`); TOPIC defaults to `darknet-py`.
- QoS 1: a message counts as delivered when the broker acknowledges it (PUBACK), one at a time, in order (the Notifier,
  media/notify, keeps the queue and tries again while the broker is away). A message sent when the connection broke is
  not published again by us: paho-mqtt resends it on reconnection (flagged DUP), and we wait for that acknowledgement
  (at least once: a subscriber may get it twice).
- States (a video's `objects` in view, its `counts`: media/notify's NotifySink) are published retained: the broker
  keeps the last of each topic for whoever subscribes later.
- `TOPIC/SOURCE/status` (a connection per source) says whether the run is up, retained, in Home Assistant's
  availability words: `online` once connected, `offline` when the run ends — and, as the connection's last will,
  published by the broker itself when the run dies (SIGKILL, a power cut, a lost network: within 1.5 × KEEPALIVE_S
  where the connection was not closed).
- The connection is paho-mqtt's (MQTT 3.1.1, clean session), reconnecting after 1 s doubling to 30 s; mqtts:// checks
  the broker's certificate against the system's CAs (SSL_CERT_FILE names another bundle, as for OpenSSL).
"""
from __future__ import annotations

import os
import secrets
import sys
import threading
import urllib.parse
from typing import NamedTuple

from ..core.credentials import hide_credentials
from ..core.errors import InputError
from .notify_transport import Failure

DEFAULT_TOPIC = "darknet-py"
PORTS = {"mqtt": 1883, "mqtts": 8883}
STATUS = "status"  # TOPIC/SOURCE/status: online / offline, retained
KEEPALIVE_S = 30  # without a word for 1.5 × this, the broker takes the run for dead and publishes its will
ANSWER_S = 10.0  # one try: waiting for the connection, then for the broker's acknowledgement
RECONNECT_S = (1, 30)  # paho's waits between connection attempts: the first, doubling up to the last


class MqttTarget(NamedTuple):
    """An mqtt(s):// --notify URL's parts."""

    host: str
    port: int
    topic: str
    user: str | None
    password: str | None
    tls: bool


def mqtt_target(url: str) -> MqttTarget:
    """The broker, port, topic and credentials of an mqtt:// or mqtts:// URL.

    Args:
        url (str): `mqtt://[user:password@]host[:port][/topic/levels]`.

    Returns:
        MqttTarget: the port defaulting to 1883 (mqtt) or 8883 (mqtts), the topic to DEFAULT_TOPIC.

    Raises:
        InputError: no host, a port that is not a number, a topic with MQTT's wildcards (`+`, `#`: a subscriber's, not a
            publisher's) or a query (`?`).
    """
    shown = f"--notify {hide_credentials(url)}"
    scheme, _, rest = url.partition("://")
    # the topic is what follows the host, taken as written: urlsplit would read its `#` (a wildcard) as a fragment
    netloc, _, path = rest.partition("/")
    parts = urllib.parse.urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"{shown}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise InputError(f"{shown}: give the broker, mqtt://HOST[:PORT]/TOPIC")
    if "?" in path:
        raise InputError(f"{shown}: an MQTT URL is mqtt://HOST[:PORT]/TOPIC, without ?…")
    topic = urllib.parse.unquote(path.strip("/")) or DEFAULT_TOPIC
    if "+" in topic or "#" in topic or "\0" in topic:
        raise InputError(f"{shown}: the topic {topic!r} holds + or #, MQTT's wildcards, which a message cannot be "
                         f"published to")
    return MqttTarget(parts.hostname, port or PORTS[scheme.lower()], topic,
                      None if parts.username is None else urllib.parse.unquote(parts.username),
                      None if parts.password is None else urllib.parse.unquote(parts.password), scheme.lower() == "mqtts")


def topic_level(name: str) -> str:
    """*name* (a source's) as one topic level: `+` and `#` (wildcards) and `/` (a level's end) become `_`."""
    return name.replace("+", "_").replace("#", "_").replace("/", "_") or "_"


class MqttTransport:
    """Publishes the Notifier's messages to a broker (see the module's docstring and notify_transport.Transport).

    Args:
        url (str): `mqtt://…` or `mqtts://…` (see mqtt_target).
        source (str): the source whose messages these are: its status topic is TOPIC/SOURCE/status ("": TOPIC/status).
        keepalive_s (int): the connection's keepalive, which bounds how soon the broker publishes the will of a run
            that died without closing it.
    """

    retains = True  # a state (a source's objects in view, its counts) is kept by the broker for later subscribers

    def __init__(self, url: str, source: str = "", keepalive_s: int = KEEPALIVE_S) -> None:
        import paho.mqtt.client as mqtt  # here, not at the top: 40 ms, paid only by a run that notifies a broker

        self.target = mqtt_target(url)
        self.status_topic = "/".join([self.target.topic, *([topic_level(source)] if source else []), STATUS])
        self._changed = threading.Condition()
        self._connected = False
        self._closed = False
        self._attempts = 0  # connection attempts that failed or were refused: a try waits for the next one at most
        self._reason = "not connected yet"  # why there is no connection, for a failed try
        self._acknowledged: set[int] = set()  # message ids the broker acknowledged and send() has not yet collected
        self._pending: tuple[bytes, int] | None = None  # the message published and not yet acknowledged, and its id
        self._status_ids: set[int] = set()  # the `online` messages' ids: their acknowledgements are not collected
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"darknet-py-{os.getpid()}-{secrets.token_hex(3)}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        if self.target.user is not None:
            client.username_pw_set(self.target.user, self.target.password)
        if self.target.tls:
            client.tls_set()  # the system's CAs (or SSL_CERT_FILE's), the host name checked
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(*RECONNECT_S)
        client.on_connect, client.on_connect_fail = self._on_connect, self._on_connect_fail
        client.on_disconnect, client.on_publish = self._on_disconnect, self._on_publish
        client.connect_async(self.target.host, self.target.port, keepalive=keepalive_s)
        client.loop_start()  # paho's thread: connects, reconnects, resends what was not acknowledged
        self._client = client

    def send(self, route: str, body: bytes, retain: bool = False) -> Failure | None:
        """Publish one message under TOPIC/*route* at QoS 1 (retained: *retain*) and wait for the broker's
        acknowledgement (ANSWER_S at most). A message already published (the same *body*, given again after a failure)
        is not published again: paho resends it once connected, and this waits for its acknowledgement."""
        # paho calls on_publish holding its own lock: publish() is called without ours, or the two could deadlock
        with self._changed:
            pending = self._pending if self._pending is not None and self._pending[0] is body else None
            attempts = self._attempts
            if pending is None:  # to be published: once connected, waiting for that until the next attempt fails
                self._changed.wait_for(lambda: self._connected or self._attempts > attempts or self._closed,
                                       timeout=ANSWER_S)
                if not self._connected:
                    return Failure(self._reason, retry=True)
        if pending is None:
            # taken even when the connection broke meanwhile (rc NO_CONN): paho sends it once it is back (its queue
            # has no limit set, so it is always taken)
            info = self._client.publish(f"{self.target.topic}/{route}" if route else self.target.topic, body, qos=1,
                                        retain=retain)
            pending = self._pending = (body, info.mid)
        mid = pending[1]
        with self._changed:
            self._changed.wait_for(lambda: mid in self._acknowledged or self._closed, timeout=ANSWER_S)
            if mid not in self._acknowledged:
                return Failure(self._reason if not self._connected else
                               f"no acknowledgement from the broker within {ANSWER_S:g} s", retry=True)
            self._acknowledged.discard(mid)
            self._pending = None
            return None

    def close(self, wait_s: float) -> None:
        """Publish `offline` to the status topic (retained; within *wait_s*, if connected), then disconnect: a closed
        connection's will is not published, so the run says it itself."""
        with self._changed:
            connected = self._connected
        if connected:
            info = self._client.publish(self.status_topic, "offline", qos=1, retain=True)
            with self._changed:
                self._changed.wait_for(lambda: info.mid in self._acknowledged, timeout=wait_s)
        self._client.disconnect()
        self._client.loop_stop()
        with self._changed:
            self._closed = True  # a try still waiting gives up now
            self._changed.notify_all()

    # -- paho's thread ------------------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:  # refused: a wrong password, a client the broker does not allow
            with self._changed:
                self._reason = f"the broker refused the connection: {reason_code}"
                self._attempts += 1
                self._changed.notify_all()
            return
        info = client.publish(self.status_topic, "online", qos=1, retain=True)
        with self._changed:
            self._status_ids.add(info.mid)
            self._connected = True
            self._changed.notify_all()

    def _on_connect_fail(self, client, userdata) -> None:
        # paho calls this from inside its `except OSError` around the connection attempt: the exception is there
        error = sys.exc_info()[1]
        with self._changed:
            self._reason = f"cannot be reached: {error}" if error is not None else "cannot be reached"
            self._attempts += 1
            self._changed.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._changed:
            if self._connected:
                self._reason = f"the connection was lost: {reason_code}"
            self._connected = False
            self._changed.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._changed:
            if mid in self._status_ids:
                self._status_ids.discard(mid)
            else:
                self._acknowledged.add(mid)
            self._changed.notify_all()
