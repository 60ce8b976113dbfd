"""A real MQTT broker for the tests — Mosquitto (Debian's package, installed by tests/run.sh), started by the test on a
free port of 127.0.0.1 with a configuration of its own, stopped by it — and a subscriber that keeps what it receives.

Readiness is the broker's own word: its log line `mosquitto version … running`, read from its stderr (unbuffered,
unlike its stdout); the subscriber's messages arrive in a queue the test waits on. No sleeps.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import queue
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.conftest import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
WAIT_S = 120.0  # a hang guard for each wait; reached only when something is broken


class Broker:
    """Mosquitto on 127.0.0.1:*port* (a free one by default).

    Args:
        folder (Path): where its configuration, password file and persistence go.
        port (int): its port; 0 for a free one (keep it to start the broker again on the same port).
        users (dict): user → password; given, anonymous clients are refused.
        persistence (bool): keep sessions and queued messages across a stop (SIGTERM) and start.
        tls (tuple of Paths or None): (certificate, key) for a TLS listener.
    """

    def __init__(self, folder: Path, port: int = 0, users: dict[str, str] | None = None, persistence: bool = False,
                 tls: tuple[Path, Path] | None = None) -> None:
        assert os.path.exists(MOSQUITTO), f"{MOSQUITTO} is missing: tests/run.sh installs Debian's mosquitto package"
        self.folder, self.port = folder, port or free_port()
        folder.mkdir(parents=True, exist_ok=True)
        # `user`: run as root (a container, CI), Mosquitto would become user mosquitto, who cannot read this folder
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}", "log_dest stderr", "log_type error", "log_type warning",
                 "log_type notice", "log_type information"]
        if users:
            passwords = folder / "passwords"
            passwords.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if persistence:
            lines += ["persistence true", f"persistence_location {folder}/"]
        if tls:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> "Broker":
        """Start it and return once it says it is running."""
        ready = threading.Event()
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)

        def read(process: subprocess.Popen) -> None:
            for line in process.stderr:
                self.log.append(line.rstrip())
                if " running" in line:
                    ready.set()
            ready.set()  # it ended: start() reports that

        self._reader = threading.Thread(target=read, args=(self.process,), daemon=True)
        self._reader.start()
        assert ready.wait(WAIT_S) and self.process.poll() is None, f"mosquitto did not start: {self.log}"
        return self

    def stop(self) -> None:
        """SIGTERM and wait: a persistent broker saves its sessions and queued messages."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(WAIT_S)
        if self.process is not None:
            self._reader.join(WAIT_S)  # it has read the log to its end: the pipe can be closed under no one
            self.process.stderr.close()
        self.process = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Subscriber:
    """A paho client subscribed to *topic* (QoS 1) that puts each (topic, payload, retained) in `received`: the payload
    as text, or as bytes where it is not UTF-8 (a JPEG).

    Args:
        broker (Broker): where to connect.
        topic (str): the subscription (wildcards allowed).
        session (str or None): a client id whose session the broker keeps while it is away (clean_session off): the
            messages published meanwhile are delivered when it is back.
        user (tuple or None): (user, password) for a broker that asks.
        ca (Path or None): the CA of a TLS broker's certificate.
    """

    def __init__(self, broker: Broker, topic: str, session: str | None = None, user: tuple[str, str] | None = None,
                 ca: Path | None = None) -> None:
        self.received: queue.Queue[tuple[str, str | bytes, bool]] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=session or "",
                                  clean_session=session is None, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda client, userdata, message: self.received.put(
            (message.topic, _text_or_bytes(message.payload), bool(message.retain)))
        if user:
            self.client.username_pw_set(*user)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT_S), "the subscriber's subscription was not acknowledged"

    def next(self) -> tuple[str, str | bytes, bool]:
        """The next message (topic, payload, retained), waiting for it."""
        try:
            return self.received.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no message within {WAIT_S} s") from None

    def take(self, count: int) -> list[tuple[str, str | bytes, bool]]:
        return [self.next() for _ in range(count)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _text_or_bytes(payload: bytes) -> str | bytes:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return payload


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 it signed, made with openssl: (ca.pem, server.pem, server.key)."""
    assert shutil.which("openssl"), "openssl is missing"
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, request = folder / "server.pem", folder / "server.key", folder / "server.csr"
    extensions = folder / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,"
                          "keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                          "authorityKeyIdentifier=keyid\n")
    for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj",
             "/CN=darknet-py test CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days",
             "2", "-extfile", extensions]):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


class Proxy:
    """A TCP proxy between MQTT clients and *broker* that reads the packets clients send (their type, flags and
    packet id) and can hold back the broker's answers, then cut the connections — a network that loses a PUBACK.

    Args:
        broker (Broker): where to forward.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker_port = broker.port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hold_answers = threading.Event()
        # what clients sent: (type, flags, packet id, topic, payload)
        self.sent: queue.Queue[tuple[int, int, int | None, str, bytes]] = queue.Queue()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()  # the pairs: added by the accepting thread, cut by the test's
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        pending = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for each in (source, target):
                    each.close()
                return
            if from_client:
                pending = self._read_packets(pending + data)
            elif self.hold_answers.is_set():
                continue  # the broker's answer is lost
            try:
                target.sendall(data)
            except OSError:
                return

    def _read_packets(self, data: bytes) -> bytes:
        """Note each whole packet of *data* in `sent`; return the incomplete rest."""
        while len(data) >= 2:
            length, multiplier, position = 0, 1, 1
            while position < len(data):
                byte = data[position]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                position += 1
                if not byte & 0x80:
                    break
            else:
                return data
            end = position + length
            if len(data) < end:
                return data
            kind, flags, body = data[0] >> 4, data[0] & 0x0F, data[position:end]
            packet_id, topic, payload = None, "", b""
            if kind == 3:  # PUBLISH: topic, then a packet id when QoS > 0, then the payload
                topic_length = int.from_bytes(body[:2], "big")
                topic = body[2:2 + topic_length].decode()
                payload = body[2 + topic_length:]
                if flags & 0x06:
                    packet_id, payload = int.from_bytes(payload[:2], "big"), payload[2:]
            self.sent.put((kind, flags, packet_id, topic, payload))
            data = data[end:]
        return data

    def cut(self) -> None:
        """Close every connection through the proxy, and let answers through again for the next ones."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for each in pair:
                with contextlib.suppress(OSError):
                    each.shutdown(socket.SHUT_RDWR)
                each.close()
        self.hold_answers.clear()

    def published(self, topic: str) -> tuple[int, int | None, bytes]:
        """Wait for the next PUBLISH a client sends to *topic*: (its flags, its packet id, its payload)."""
        while True:
            try:
                kind, flags, packet_id, sent_topic, payload = self.sent.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"no PUBLISH to {topic} within {WAIT_S} s") from None
            if kind == 3 and sent_topic == topic:
                return flags, packet_id, payload

    def close(self) -> None:
        self.listener.close()
        self.cut()
