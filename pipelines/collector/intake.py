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

When the streaming stack runs, the stream worker is the store's writer and
the collector hands its events to Kafka instead (``pipelines.collector.handing_over``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from events.home import PlanningHome
from events.senders.registry import Sender, SenderRegistry
from events.storage.store import BatchOutcome, EventStore, Received
from pipelines.ingest.files import unwritable_reason

HOLDER = "planning serve"
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


class OwnThread(Generic[T]):
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
        self._store = OwnThread("store", lambda: EventStore(home.store, writer=True, holder=holder))
        try:
            self._senders = OwnThread("senders", lambda: SenderRegistry.of(home))
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

