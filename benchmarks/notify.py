"""How soon `--notify` delivers, and how many messages a second it can, to an MQTT broker and to an HTTP receiver —
beside the peer: a paho-mqtt script of one's own, publishing at QoS 1 with paho's defaults (up to 20 messages awaiting
their acknowledgement at once, where --notify keeps one, for its order across reconnections).

Everything on this machine: Mosquitto (tests/mqtt_broker.py, started here) with a subscriber, and a Python
http.server receiver (tests/test_notify.py's).
- Latency: a message posted, then the time until the subscriber (MQTT) or the receiver (HTTP) has it; the next one
  after that. Medians and 95th percentiles over LATENCY_MESSAGES.
- Throughput: BURST messages posted at once (a busy line's crossings after a reconnection), then the time until the
  last is acknowledged (MQTT: the broker's PUBACK; HTTP: the 200), in messages a second.
Interleaved rounds, medians.

    python -m benchmarks.notify [--rounds 3] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from benchmarks.report import write_json
from darknet_py.core.machine import cpu_model
from darknet_py.media.notify import Notifier
from tests.mqtt_broker import Broker, Subscriber
from tests.test_notify import Receiver

LATENCY_MESSAGES = 200
BURST = 2000
MESSAGE = {"type": "event", "source": "gate", "frame": 62, "time": 2.48, "track_id": 1, "class_id": 0,
           "name": "person", "line": "door", "direction": "in", "utc": "2026-12-07T08:05:24.594Z"}
KINDS = ("--notify mqtt://", "--notify http://", "paho script (20 in flight)")


def _latencies(send, arrived) -> list[float]:
    """Seconds from each send(n) to arrived(n) returning, one message at a time."""
    seconds = []
    for n in range(LATENCY_MESSAGES):
        start = time.perf_counter()
        send(n)
        arrived(n)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(kind: str, broker: Broker) -> tuple[list[float], float]:
    """(latencies in s, burst messages a second) of one way of sending."""
    if kind == KINDS[1]:
        receiver = Receiver()
        taken = threading.Condition()

        class Noted(list):
            def append(self, item) -> None:  # the server's handler appends each POST: wake the waiting side
                with taken:
                    super().append(item)
                    taken.notify_all()

        receiver.got = Noted()
        notifier = Notifier(receiver.url)

        def arrived(n: int) -> None:
            with taken:
                assert taken.wait_for(lambda: len(receiver.got) > n, timeout=60)

        try:
            latencies = _latencies(lambda n: notifier.post({**MESSAGE, "n": n}), arrived)
            return latencies, _burst(notifier)
        finally:
            notifier.close()
            receiver.close()
    subscriber = Subscriber(broker, "bench/#")
    try:
        if kind == KINDS[0]:
            notifier = Notifier(f"{broker.url}/bench")
            while subscriber.next()[:2] != ("bench/status", "online"):  # an earlier round's retained `offline` first
                pass
            send = lambda n: notifier.post({**MESSAGE, "n": n})  # noqa: E731
            try:
                latencies = _latencies(send, lambda n: subscriber.next())
                return latencies, _burst(notifier)
            finally:
                notifier.close()
        return _paho_script(broker, subscriber)
    finally:
        subscriber.close()


def _burst(notifier: Notifier) -> float:
    """BURST messages posted at once to *notifier*: messages a second until the last is delivered."""
    done = notifier.report.delivered + BURST
    start = time.perf_counter()
    for n in range(BURST):
        notifier.post({**MESSAGE, "n": n})
    while notifier.report.delivered < done:  # the benchmark's side only: tests wait on events
        time.sleep(0.001)
    return BURST / (time.perf_counter() - start)


def _paho_script(broker: Broker, subscriber: Subscriber) -> tuple[list[float], float]:
    """The peer: a paho client publishing each message at QoS 1 as it comes, paho's defaults otherwise."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    assert connected.wait(60)
    try:
        latencies = _latencies(lambda n: client.publish("bench/gate/event", json.dumps({**MESSAGE, "n": n}), qos=1),
                               lambda n: subscriber.next())
        start = time.perf_counter()
        infos = [client.publish("bench/gate/event", json.dumps({**MESSAGE, "n": n}), qos=1) for n in range(BURST)]
        for info in infos:
            info.wait_for_publish(60)
        return latencies, BURST / (time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    latency: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rate: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="notify-bench-") as folder:
        broker = Broker(Path(folder)).start()
        try:
            for round_index in range(args.rounds):
                for kind in KINDS[round_index % 3:] + KINDS[:round_index % 3]:
                    seconds, per_s = measure(kind, broker)
                    latency[kind] += seconds
                    rate[kind].append(per_s)
                    print(f"round {round_index + 1}, {kind}: latency median {statistics.median(seconds) * 1000:.2f} ms,"
                          f" burst {per_s:.0f}/s", flush=True)
        finally:
            broker.stop()
    results = {"cpu": cpu_model(), "rounds": args.rounds, "latency_messages": LATENCY_MESSAGES, "burst": BURST,
               "latency_ms": {kind: {"median": round(statistics.median(values) * 1000, 3),
                                     "p95": round(statistics.quantiles(values, n=20)[-1] * 1000, 3)}
                              for kind, values in latency.items()},
               "burst_per_s": {kind: round(statistics.median(values)) for kind, values in rate.items()},
               "burst_rounds": {kind: [round(value) for value in values] for kind, values in rate.items()}}
    write_json(Path(args.out), "notify.json", results)


if __name__ == "__main__":
    main()
