"""Where the collector's judged events go, and who it asks about secrets.

On the embedded default (``StoreIntake``) the collector is the store's one
writer, like the stream worker: it takes the writer lock when it starts
(holder ``planning serve``) and keeps it until it stops, so `planning
ingest` refuses while it runs and says why. Each request is one
``EventStore.append``, so a request is stored whole or not at all, and what
the answer counts as accepted is durable when the answer is sent.

SQLite connections belong to the thread that opened them, and an fsync
must not stop the server's event loop, so the store lives on one thread of
its own (appends are serialised there, in the order requests reach it) and
the sender registry on another (a secret is checked while a batch is being
written). Both are opened on their thread and closed there.

When the streaming stack runs (``KafkaIntake``), the stream worker is the
store's writer: the collector hands every line of a request to Kafka
(``pipelines.streaming.handover``), on the collector's topics with the sender
in a header only the collector can write, and the worker stores them. The
answer then counts as accepted what passed the contract and the grants and
was acknowledged by the broker; duplicates, conflicts and retractions of
another sender's events are found by the worker, and show in the dead letters.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from events.contract.validation import MAX_EVENT_BYTES, Accepted
from events.home import PlanningHome
from events.routing import COLLECTOR_SEGMENT, FAMILIES, collector_topic, partition_key, topic_prefix
from events.senders.registry import Sender, SenderRegistry
from events.storage.store import BatchOutcome, EventStore, Received
from pipelines.ingest.files import unwritable_reason

HOLDER = "planning serve"
UNREADABLE_FAMILY = "corrections"  # where a line goes whose event type cannot be read: kept 7 days, as personal data is
HANDOVER_THREADS = 4
T = TypeVar("T")
R = TypeVar("R")


class Unavailable(RuntimeError):
    """The request's events could not be put anywhere (a store that cannot be written, a Kafka that does not
    acknowledge); the message says why and what became of them."""


class Intake(Protocol):
    """What the HTTP side needs: who a secret belongs to, and somewhere to put a judged batch."""

    mode: str  # "store" or "kafka", as GET /v1/health says

    async def identify(self, secret: str) -> Sender | None: ...

    async def take(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome: ...

    def close(self) -> None: ...


class _Thread(Generic[T]):
    """One thread that owns one object: every call on it runs there, in the order submitted."""

    def __init__(self, name: str, opener: Callable[[], T]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        try:
            self.owned = self._executor.submit(opener).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    async def call(self, function: Callable[..., R], *args: object, **kwargs: object) -> R:
        return await asyncio.wrap_future(self._executor.submit(function, *args, **kwargs))

    def close(self, closer: Callable[[], object]) -> None:
        try:
            self._executor.submit(closer).result()
        finally:
            self._executor.shutdown(wait=True)


class StoreIntake:
    """The embedded default: the collector appends to the event store itself.

    Raises ``StoreLocked`` when another process writes the store."""

    mode = "store"

    def __init__(self, home: PlanningHome, holder: str = HOLDER) -> None:
        self._store = _Thread("store", lambda: EventStore(home.store, writer=True, holder=holder))
        try:
            self._senders = _Thread("senders", lambda: SenderRegistry.of(home))
        except BaseException:
            self._store.close(self._store.owned.close)
            raise

    async def identify(self, secret: str) -> Sender | None:
        return await self._senders.call(self._senders.owned.identify, secret)

    async def take(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome:
        try:
            # an event of the other kind than the store's (synthetic, real) is a dead letter of its own,
            # not a refusal of the whole request: the other lines of the request are kept
            return await self._store.call(self._store.owned.append, batch, received_at, other_kind="dead_letter")
        except (OSError, sqlite3.Error) as error:
            reason = unwritable_reason(error)
            if reason is None:
                raise
            raise Unavailable(f"the event store cannot be written: {reason}; nothing of this request was stored") from error

    def close(self) -> None:
        try:
            self._senders.close(self._senders.owned.close)
        finally:
            self._store.close(self._store.owned.close)


class KafkaIntake:
    """The streaming stack: each request's lines handed to Kafka as the collector principal; the worker stores them."""

    mode = "kafka"

    def __init__(self, home: PlanningHome, bootstrap: str, login: object, prefix: str | None = None) -> None:
        from pipelines.streaming.handover import Handover

        self._prefix = prefix
        self._handover = Handover(bootstrap, login)  # type: ignore[arg-type]
        self._sending = ThreadPoolExecutor(max_workers=HANDOVER_THREADS, thread_name_prefix="handover")
        try:
            self._senders = _Thread("senders", lambda: SenderRegistry.of(home))
        except BaseException:
            self._handover.close()
            raise

    async def identify(self, secret: str) -> Sender | None:
        return await self._senders.call(self._senders.owned.identify, secret)

    async def take(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome:
        from pipelines.streaming.handover import HandoverFailed, Line

        lines = [Line(*self._route(item), item.raw) for item in batch]
        sender = batch[0].sender if batch else None
        try:
            await asyncio.wrap_future(self._sending.submit(self._handover.hand_over, lines, sender or ""))
        except HandoverFailed as failed:
            raise Unavailable(f"{failed}; some events of this request may have reached the pipeline") from failed
        outcome = BatchOutcome()
        for item in batch:
            if isinstance(item.verdict, Accepted):
                outcome.accepted.append(item.verdict.event_id)
            else:
                outcome.rejected.append((item.origin, item.verdict.reasons))
        return outcome

    def _route(self, item: Received) -> tuple[str, str | None]:
        """The collector topic and partition key of a line: by its event type, read from the line when the
        contract refused it; a line with no readable event type goes to the corrections family's topic."""
        body = item.verdict.body if isinstance(item.verdict, Accepted) else _readable(item.raw)
        event_type = body.get("event_type") if body is not None else None
        if isinstance(event_type, str) and any(event_type in types for types in FAMILIES.values()):
            topic = collector_topic(event_type, self._prefix)
        else:
            topic = f"{topic_prefix(self._prefix)}.{COLLECTOR_SEGMENT}.{UNREADABLE_FAMILY}"
        return topic, partition_key(body) if body is not None else None

    def close(self) -> None:
        try:
            self._senders.close(self._senders.owned.close)
        finally:
            self._sending.shutdown(wait=True)
            self._handover.close()


def _readable(raw: bytes) -> dict | None:
    """The JSON object a line holds, when it holds one small enough to be an event; else None."""
    if len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
