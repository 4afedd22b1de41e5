"""The typed SDK for upstream Python systems: validate, then send to Kafka as a registered sender.

    from events.emitter import Emitter, InvalidEvent, SenderCredentials

    # PLANNING_SENDER=cdrp-harrow PLANNING_SENDER_SECRET=pps_… in the environment, or a file
    with Emitter("127.0.0.1:9092", credentials=SenderCredentials.resolve()) as emitter:
        emitter.emit({"event_id": ..., "event_type": "consultation.response_received", ...})
        emitter.emit(ConsultationResponseReceivedEvent(...))   # a model from events.contract.models
    # leaving the block flushes: every event sent has been acknowledged by the broker

An event is checked against the contract (``events.contract.validation.verdict``,
the very function the stream worker and ``planning ingest`` use) *before* it
is sent; a broken event raises :class:`InvalidEvent` naming every broken rule
and field, and never reaches the broker. Valid events go to the sender's own
topic of their family, ``{prefix}.from.{sender}.{family}``, under their
partition key (``events.routing``).

Credentials. The broker takes SASL/SCRAM-SHA-512 only; the sender's Kafka
user is its registered name and its password the secret ``planning senders
add`` printed. They come from the environment (``PLANNING_SENDER``,
``PLANNING_SENDER_SECRET``) or from a file (``--credentials FILE`` or
``$PLANNING_SENDER_CREDENTIALS``) holding the same two ``NAME=value`` lines,
never from the command line, where ``ps`` shows them to every user of the
machine. ``$PLANNING_KAFKA_CA`` (a CA bundle) makes the connection TLS
(SASL_SSL), as a broker reached from another host requires.

The broker lets a sender write only its own topics, of the families its grants
reach (anything else fails with ``TopicAuthorizationFailedError``); the worker
then checks each event's type and borough against the grants and dead-letters
what they do not cover, with the reason.

Delivery: kafka-python's ``KafkaProducer`` with ``enable_idempotence=True``
and ``acks='all'`` set explicitly (kafka-python 3 treats a conflicting
``acks`` differently across versions). Idempotence removes duplicates from
the producer's own retries within one producer session; a resend after a
restart, or the same event sent by two processes, is removed by the event
store, whose idempotency key is ``event_id``. So resending after a failure is
always safe: it is stored once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel

from events.routing import partition_key, sender_topic
from events.contract.lines import read_lines
from events.contract.validation import MAX_EVENT_BYTES, Accepted, verdict

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# An event is at most 1 MiB; the record around it (key, headers, batch overhead) needs a little more.
MAX_REQUEST_BYTES = 2 * MAX_EVENT_BYTES


SENDER_ENV, SECRET_ENV, CREDENTIALS_ENV = "PLANNING_SENDER", "PLANNING_SENDER_SECRET", "PLANNING_SENDER_CREDENTIALS"
CA_ENV = "PLANNING_KAFKA_CA"
MECHANISM = "SCRAM-SHA-512"


class MissingCredentials(ValueError):
    """No sender credentials were found, or a credentials file is broken; the message says what to do."""


@dataclass(frozen=True)
class SenderCredentials:
    """A registered sender's name and secret (its Kafka user and password)."""

    sender: str
    secret: str = field(repr=False)

    @classmethod
    def from_file(cls, path: str | Path) -> SenderCredentials:
        """``PLANNING_SENDER=…`` and ``PLANNING_SENDER_SECRET=…`` lines (``#`` comments and blank lines allowed)."""
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise MissingCredentials(f"cannot read the sender credentials file {path}: {error.strerror}") from None
        values: dict[str, str] = {}
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, equals, value = line.removeprefix("export ").partition("=")
                if equals:
                    values[key.strip()] = value.strip().strip("'\"")
        missing = [key for key in (SENDER_ENV, SECRET_ENV) if not values.get(key)]
        if missing:
            raise MissingCredentials(f"the sender credentials file {path} lacks {' and '.join(missing)} "
                                     f"(one NAME=value line each)")
        return cls(values[SENDER_ENV], values[SECRET_ENV])

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> SenderCredentials:
        """From ``path``, else ``$PLANNING_SENDER``/``$PLANNING_SENDER_SECRET``, else ``$PLANNING_SENDER_CREDENTIALS``."""
        if path is not None:
            return cls.from_file(path)
        sender, secret = os.environ.get(SENDER_ENV), os.environ.get(SECRET_ENV)
        if sender and secret:
            return cls(sender, secret)
        if os.environ.get(CREDENTIALS_ENV):
            return cls.from_file(os.environ[CREDENTIALS_ENV])
        raise MissingCredentials(
            f"no sender credentials: set {SENDER_ENV} and {SECRET_ENV} (the secret `planning senders add` "
            f"printed), or give a file of those two NAME=value lines with --credentials FILE or "
            f"{CREDENTIALS_ENV}; never put the secret on the command line")

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python's SASL settings for this sender (SASL_SSL when ``$PLANNING_KAFKA_CA`` names a CA)."""
        cafile = os.environ.get(CA_ENV)
        config: dict[str, Any] = {"security_protocol": "SASL_SSL" if cafile else "SASL_PLAINTEXT",
                                  "sasl_mechanism": MECHANISM, "sasl_plain_username": self.sender,
                                  "sasl_plain_password": self.secret}
        if cafile:
            config["ssl_cafile"] = cafile
        return config


class InvalidEvent(ValueError):
    """The event breaks the contract; ``reasons`` has one entry per broken rule, each naming the field."""

    def __init__(self, reasons: tuple[str, ...] | list[str], where: str = "event") -> None:
        self.reasons = tuple(reasons)
        self.where = where
        super().__init__(f"{where} not sent, it breaks the event contract: " + "; ".join(self.reasons))


class EmitFailed(RuntimeError):
    """The broker did not acknowledge some events (after the producer's own retries)."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} event(s) were not acknowledged by Kafka; first error: {errors[0]!r}")


@dataclass(frozen=True)
class LineProblem:
    number: int
    reasons: tuple[str, ...]


@dataclass
class EmitReport:
    """What ``emit_lines`` did with one file: valid lines sent, invalid lines reported, not sent."""

    name: str
    sent: int = 0
    invalid: list[LineProblem] = field(default_factory=list)


class Emitter:
    """Validate events and send them to their topics. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        bootstrap: str = DEFAULT_BOOTSTRAP,
        *,
        credentials: SenderCredentials | None = None,
        topic_prefix: str | None = None,
        client_id: str = "planning-emitter",
        linger_ms: int = 5,
        **producer_config: Any,
    ) -> None:
        from kafka import KafkaProducer

        self.credentials = credentials or SenderCredentials.resolve()
        self.topic_prefix = topic_prefix
        config: dict[str, Any] = {
            "max_request_size": MAX_REQUEST_BYTES,
            "batch_size": 256 * 1024,
            **producer_config,
            # not overridable: these two are what makes a send safe to retry
            "enable_idempotence": True,
            "acks": "all",
            # not overridable either: who sends is who logged in
            **self.credentials.kafka_python(),
        }
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, linger_ms=linger_ms, **config)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()

    # --- sending ---------------------------------------------------------------

    def emit(self, event: dict[str, Any] | BaseModel | bytes | str):
        """Validate one event and send it; returns kafka-python's future of its ``RecordMetadata``.

        Raises :class:`InvalidEvent` (nothing is sent) when the event breaks the contract.
        """
        raw = _serialize(event)
        checked = verdict(raw)
        if not isinstance(checked, Accepted):
            raise InvalidEvent(checked.reasons, where=_name_of(event))
        return self._send(raw, checked)

    def emit_lines(self, path: str | Path, *, stream: BinaryIO | None = None) -> EmitReport:
        """Send every valid line of a JSON Lines file (``-``: stdin); invalid lines are reported, not sent.

        The report lists each invalid line's number and reasons. Sends are
        flushed before returning, so ``report.sent`` events have been acknowledged.
        """
        name = str(path)
        report = EmitReport(name)
        if stream is None and name == "-":
            stream = sys.stdin.buffer
        opened = None if stream is not None else open(Path(path), "rb")
        try:
            for line in read_lines(stream or opened):
                checked = verdict(line.raw, size=line.size)
                if isinstance(checked, Accepted):
                    self._send(line.raw, checked)
                    report.sent += 1
                else:
                    report.invalid.append(LineProblem(line.number, checked.reasons))
        finally:
            if opened is not None:
                opened.close()
        self.flush()
        return report

    def _send(self, raw: bytes, verdict: Accepted):
        headers = [("event_type", verdict.event_type.encode()), ("event_id", verdict.event_id.encode())]
        future = self._producer.send(
            sender_topic(self.credentials.sender, verdict.event_type, self.topic_prefix),
            value=raw,
            key=partition_key(verdict.body).encode(),
            headers=headers,
        )
        future.add_errback(self._record_error)
        return future

    def _record_error(self, error: BaseException) -> None:
        with self._errors_lock:
            self._errors.append(error)

    # --- lifecycle -------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event sent so far is acknowledged; raise :class:`EmitFailed` if any was not."""
        self._producer.flush(timeout=timeout)
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise EmitFailed(errors)

    def close(self, timeout: float | None = None) -> None:
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:  # don't hide the original error behind a flush failure
            try:
                self.close()
            except EmitFailed:
                pass


def _serialize(event: dict[str, Any] | BaseModel | bytes | str) -> bytes:
    if isinstance(event, BaseModel):
        return event.model_dump_json(exclude_unset=True).encode()
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode()
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _name_of(event: object) -> str:
    event_id = getattr(event, "event_id", None) or (event.get("event_id") if isinstance(event, dict) else None)
    return f"event {event_id}" if event_id else "event"

