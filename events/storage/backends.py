"""Which event store a process uses: the embedded one (the default) or PostgreSQL.

``PLANNING_STORE`` chooses: unset or empty, the embedded store under
``$PLANNING_HOME/store`` (``events.storage.store``); a ``postgresql://`` or
``postgres://`` URL, the PostgreSQL store in that database
(``events.storage.postgres``), whose schema ``planning store init`` makes.
Anything else is refused with what is accepted, rather than guessed at.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from events.storage.erasure_ledger import Erasure, ledger_path
from events.storage.refusals import StoreRefused, StoreUnavailable

STORE_ENV = "PLANNING_STORE"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class UnknownStore(ValueError):
    """``PLANNING_STORE`` names no backend this version knows."""


@dataclass(frozen=True)
class StoreChoice:
    url: str | None  # None: the embedded store

    @property
    def embedded(self) -> bool:
        return self.url is None


def chosen_store(environ: dict[str, str] | None = None) -> StoreChoice:
    value = (os.environ if environ is None else environ).get(STORE_ENV, "").strip()
    if not value:
        return StoreChoice(None)
    if value.startswith(POSTGRES_SCHEMES):
        return StoreChoice(value)
    raise UnknownStore(f"{STORE_ENV}: {value.split('://')[0]!r} is not a store this version knows; leave it unset for"
                       " the embedded store under $PLANNING_HOME, or give a postgresql://user@host:port/database URL")


def is_embedded(environ: dict[str, str] | None = None) -> bool:
    """Whether ``PLANNING_STORE`` leaves the embedded store chosen (one writer at a time)."""
    return chosen_store(environ).embedded


def describe_store(store_root: Path, environ: dict[str, str] | None = None) -> str:
    """Where the chosen store is, for messages: its directory, or its database (without a password)."""
    choice = chosen_store(environ)
    return str(store_root) if choice.embedded else f"the event store in PostgreSQL at {_redacted(choice.url)}"


class Store(Protocol):
    """What the pipeline may ask of an event store, on either backend (docs/decisions.md, "The PostgreSQL
    store"). Segment files, quarantine and recovery are the embedded store's own and not part of it."""

    def append(self, batch: Sequence[Any], recorded_at: datetime | None = None, *, other_kind: str = "refuse") -> Any: ...
    def reapply_erasures(self, erasures: Sequence[Erasure]) -> tuple[int, int]: ...
    def mark_replayed(self, positions: dict[int, int], replayed_at: datetime) -> None: ...
    def high_water_mark(self) -> int: ...
    def data_kind(self) -> str | None: ...
    @property
    def synthetic(self) -> bool: ...
    def redaction_mark(self) -> int: ...
    def records(self, after: int = 0) -> Iterator[dict[str, Any]]: ...
    def events(self, after: int = 0) -> Iterator[dict[str, Any]]: ...
    def live_keys(self, subjects: list[str]) -> dict[str, bytes]: ...
    def subjects_known(self, subjects: Sequence[str]) -> set[str]: ...
    def cycles(self, after: int = 0) -> list[str]: ...
    def has_retraction_after(self, after: int) -> bool: ...
    def dead_letters(self, sender: str | None = None) -> list[dict[str, Any]]: ...
    def positions_of(self, event_ids: Sequence[str]) -> dict[str, int]: ...
    def senders_of(self, event_ids: Sequence[str]) -> dict[str, str | None]: ...
    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]: ...
    def counts_by_sender(self) -> dict[str, dict[str, int]]: ...
    def event_ids_between(self, first: int, last: int) -> list[tuple[int, str]]: ...
    def counts(self) -> dict[str, int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *_: object) -> None: ...


def open_store(store_root: Path, *, writer: bool = False, holder: str = "planning", environ: dict[str, str] | None = None) -> Store:
    """The store ``PLANNING_STORE`` chooses: the embedded one at ``store_root`` ($PLANNING_HOME/store), or PostgreSQL.
    Either way the erasure ledger is the home's ($PLANNING_HOME/erasures), apart from the store."""
    choice = chosen_store(environ)
    if choice.embedded:
        from events.storage.store import EventStore

        return EventStore(store_root, writer=writer, holder=holder)
    from events.storage.postgres.store import PostgresStore

    try:
        return PostgresStore(choice.url, writer=writer, erasure_ledger=ledger_path(store_root))
    except Exception as error:
        if lost_connection(error):
            raise StoreUnavailable(f"cannot reach the event store in PostgreSQL ({_redacted(choice.url)}):"
                                   f" {str(error).strip()}; check that the database runs and that {STORE_ENV} names it,"
                                   " then try again") from error
        raise


def lost_connection(error: BaseException) -> bool:
    """Whether ``error`` is the PostgreSQL store's connection lost or refused (a restart, a failover, a network
    cut), rather than a fault of the store or of the data. Appends are idempotent, so a writer may open the
    store again and repeat what it was doing; the embedded store never raises it."""
    if isinstance(error, StoreUnavailable):
        return True
    if "psycopg" not in sys.modules:  # no PostgreSQL connection was ever made here
        return False
    from events.storage.postgres.errors import is_lost_connection

    return is_lost_connection(error)


def _redacted(url: str) -> str:
    from events.storage.postgres.migrations import redacted_url

    return redacted_url(url)


@contextmanager
def record_files(store: Store, after: int = 0, upto: int | None = None, cycle: str | None = None) -> Iterator[list[str]]:
    """JSON Lines files holding the store's records at positions in (after, upto], for DuckDB's
    ``read_json`` (``projections.building.event_cache.read_segments_sql``); with ``cycle``, files that
    hold at least that cycle's events and every retraction. The lines are the same on both backends:
    the embedded store's segments, checked intact first, or for PostgreSQL one file copied out in bulk
    (``COPY``) into a temporary directory removed when the block ends. Files may hold records outside
    the range (a segment is read whole): filter by position, as the builds do."""
    from events.storage.store import EventStore

    if isinstance(store, EventStore):
        from events.storage.integrity import ensure_intact

        segments = store.segments(after, upto) if cycle is None else store.segments_for_cycles([cycle], upto)
        ensure_intact(segments)
        yield [str(segment.path) for segment in segments]
        return
    with tempfile.TemporaryDirectory(prefix="planning-records-") as directory:
        target = Path(directory) / "records.jsonl"
        written = store.copy_records(target, after, upto, cycle)  # type: ignore[attr-defined]
        yield [str(target)] if written else []


__all__ = ["STORE_ENV", "Store", "StoreRefused", "StoreUnavailable", "UnknownStore", "chosen_store", "describe_store",
           "is_embedded", "lost_connection", "open_store", "record_files"]
