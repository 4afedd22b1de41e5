"""The HTTP collector's hand-over to Kafka, when the streaming stack writes the store (`planning serve` on it).

The stream worker is then the store's only writer, so the collector does not
append: it produces every line it received to the collector's topics,
``{prefix}.collector.{family}`` (``events.routing.collector_topic``), with the
sender it authenticated in the ``planning-sender`` header, logged in as the
``collector`` principal. Only that principal may write those topics (the ACLs
of ``pipelines.streaming.access``), so the worker believes the header there and
nowhere else: a sender cannot forge another's name, because it cannot write a
collector topic at all, and on its own topics the worker reads the sender
from the topic's name.

Every line goes, valid or not: the worker judges it again (the contract, the
grants, the store) and dead-letters what it rejects, with the sender
recorded, so nothing the collector received is lost. A line whose event type
cannot be read goes to the ``corrections`` family's topic, which keeps data 7
days like every topic that may carry personal data. A line larger than the
topics accept (``RAW_MAX_MESSAGE_BYTES``) is not sent: the broker would refuse
it, and the request with it; the collector's answer has rejected it already
(the contract's limit is a quarter of that).

Delivery: an idempotent producer with ``acks=all``; ``hand_over`` returns only
when the broker has acknowledged every line, so what the collector answers
as accepted is in Kafka. Resending after a failure is safe: the store keeps
an event once. A failed hand-over replaces the producer: one refused once
(say, before the broker had applied the collector's ACLs) stays in a fatal
state for its lifetime, and the next request must not inherit that.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

from events.routing import SENDER_HEADER
from pipelines.streaming.credentials import KafkaLogin
from pipelines.streaming.topics import RAW_MAX_MESSAGE_BYTES

SEND_TIMEOUT = 30.0  # seconds for the broker to acknowledge a request's lines
HEADROOM = 64 * 1024  # a record's key, headers and batch overhead


class HandoverFailed(RuntimeError):
    """Kafka did not acknowledge every line of a request; the message says why."""


@dataclass(frozen=True)
class Line:
    """One line to hand over: its topic, its partition key (None without one) and its bytes."""

    topic: str
    key: str | None
    raw: bytes


class Handover:
    """A producer logged in as the collector. Thread-safe (kafka-python's producer is)."""

    def __init__(self, bootstrap: str, login: KafkaLogin, *, client_id: str = "planning-collector") -> None:
        self._settings = dict(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all", enable_idempotence=True,
            max_request_size=RAW_MAX_MESSAGE_BYTES + HEADROOM, linger_ms=5, batch_size=256 * 1024,
            **login.kafka_python(),
        )
        self._lock = threading.Lock()
        self._producer = KafkaProducer(**self._settings)

    def hand_over(self, lines: Sequence[Line], sender: str) -> None:
        """Send every line with the sender's header; returns once the broker acknowledged them all."""
        header = [(SENDER_HEADER, sender.encode())]
        producer = self._producer
        try:
            pending = [producer.send(line.topic, value=line.raw, headers=header,
                                     key=None if line.key is None else line.key.encode())
                       for line in lines if len(line.raw) <= RAW_MAX_MESSAGE_BYTES]
            producer.flush(timeout=SEND_TIMEOUT)
            for sent in pending:
                sent.get(timeout=SEND_TIMEOUT)
        except KafkaError as error:
            self._replace(producer)
            raise HandoverFailed(f"Kafka did not take the events ({type(error).__name__}: {error})") from error

    def _replace(self, failed: KafkaProducer) -> None:
        with self._lock:
            if self._producer is failed:
                self._producer = KafkaProducer(**self._settings)
        failed.close(timeout=0)

    def close(self) -> None:
        self._producer.close(timeout=SEND_TIMEOUT)
