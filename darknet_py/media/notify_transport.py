"""What a --notify transport is to the Notifier (media/notify): one call that delivers one message or says why not, and
a close. The transports: notify_http (POST to an http(s):// URL), notify_mqtt (publish to an mqtt(s):// broker)."""
from __future__ import annotations

from typing import NamedTuple, Protocol


class Failure(NamedTuple):
    """A message the receiver did not take: why (for the warning and the last lines), and whether to send it again."""

    reason: str
    retry: bool


class Transport(Protocol):
    """Delivers the Notifier's messages, one at a time, from its thread."""

    retains: bool  # whether the receiver keeps the last message of a route for those who come later (MQTT's retain)

    def send(self, route: str, body: bytes, retain: bool = False) -> Failure | None:
        """Deliver one message; None once the receiver has taken it.

        Args:
            route (str): `SOURCE/TYPE` of the message (`gate/event`), "" for one with neither: where a transport that
                has topics puts it (MQTT: under its topic); an HTTP POST goes to the one URL whatever it is.
            body (bytes): the message, JSON.
            retain (bool): a state rather than a happening: kept as the route's last word (where `retains`).

        Returns:
            Failure or None: why the receiver did not take it, and whether the same message may be sent again (the
            same *body* object is then given again: a transport may still be delivering it).
        """

    def close(self, wait_s: float) -> None:
        """The run has ended: say so where the transport can (MQTT: its status topic), taking at most *wait_s* s."""
