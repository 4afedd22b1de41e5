"""Where the collector's judged events go, and who it asks about secrets.

With the PostgreSQL store (``PLANNING_STORE``) the collector is one writer
among any, and a lost connection (a database restart) fails the request with
503, to be sent again, and the next request connects anew. On the embedded
default (``StoreIntake``) the collector is the store's one writer, like the stream worker: it takes the writer lock when it starts
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
from events.storage.backends import Store, lost_connection, open_store
from events.storage.store import BatchOutcome, Received
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
        self._open = lambda: open_store(home.store, writer=True, holder=holder)
        self._store: OwnThread[Store | None] = OwnThread("store", self._open)
        try:
            self._senders = OwnThread("senders", lambda: SenderRegistry.of(home))
        except BaseException:
            self._store.close(self._close_store)
            raise

    async def identify(self, secret: str) -> Sender | None:
        return await self._senders.call(self._senders.owned.identify, secret)

    async def take(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome:
        try:
            return await self._store.call(self._append, batch, received_at)
        except Exception as error:
            if lost_connection(error):  # PostgreSQL restarting: the request is idempotent, so it may be sent again
                raise Unavailable("the event store cannot be reached; send the request again (events stored"
                                  " already are skipped as duplicates)") from error
            reason = unwritable_reason(error) if isinstance(error, (OSError, sqlite3.Error)) else None
            if reason is None:
                raise
            raise Unavailable(f"the event store cannot be written: {reason}; nothing of this request was stored") from error

    def _append(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome:
        """On the store's thread: append, connecting again first if the last connection was lost."""
        if self._store.owned is None:
            self._store.owned = self._open()
        try:
            # an event of the other kind than the store's (synthetic, real) is a dead letter of its own,
            # not a refusal of the whole request: the other lines of the request are kept
            return self._store.owned.append(batch, received_at, other_kind="dead_letter")
        except Exception as error:
            if lost_connection(error):
                self._close_store()
            raise

    def _close_store(self) -> None:
        store, self._store.owned = self._store.owned, None
        if store is not None:
            try:
                store.close()
            except Exception as error:
                if not lost_connection(error):
                    raise

    def close(self) -> None:
        try:
            self._senders.close(self._senders.owned.close)
        finally:
            self._store.close(self._close_store)

