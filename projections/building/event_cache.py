"""The build's event cache: the store's events already parsed into DuckDB.

Parsing JSON segments is the expensive part of a build, so it is done once:
each build appends only the segments committed since the cache's high-water
mark (cost grows with the new events, not with the history), then stages its
cycle from the cache. ``full=True`` (``planning build --full``) rebuilds the
cache from the store alone, into a new file swapped in atomically.

A segment enters the cache only once its bytes match the digest the store
recorded when it wrote it (``events.storage.integrity``): a damaged segment
stops the build (``DamagedSegment``) before any of it is cached, so no figure
is ever computed from it. Segments already cached are not read again. The
cache remembers the digest of the segment its last event came from; if the
store no longer holds that segment there (its index lost a batch with
SQLite's WAL), the cache is rebuilt from the store.

Segments are read as text and typed with ``TRY_CAST``: a record an older
contract let in with an envelope the tables cannot hold (``occurred_at``
"1700000000", a ``schema_version`` of 10^30) is cached with that field null,
never an error. Builds leave such a record out (``TYPED``) and count it, so
the data team can see it and retract it; it can stop no build.

The cache holds what the segments hold: clear payloads, and personal data
only as ciphertext whose keys erasure deletes. Only builds touch it, one at a
time (a file lock), so there is never a second DuckDB writer.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from events.storage.backends import Store, record_files
from events.storage.store import EventStore
from projections.connection import connect

CACHE_COLUMNS = {
    "position": "BIGINT",
    "recorded_at": "TIMESTAMPTZ",
    "event_id": "VARCHAR",
    "event_type": "VARCHAR",
    "schema_version": "INTEGER",
    "occurred_at": "TIMESTAMPTZ",
    "source": "VARCHAR",
    "cycle": "VARCHAR",
    "payload": "JSON",
    "subject": "VARCHAR",
    "sealed": "VARCHAR",
}


def create_store_events_table(db: duckdb.DuckDBPyConnection) -> None:
    """The ``store_events`` table (the cache's, and each staging file's copy of it), unless it exists."""
    columns = ", ".join(f"{name} {kind}" for name, kind in CACHE_COLUMNS.items())
    db.execute(f"CREATE TABLE IF NOT EXISTS store_events ({columns})")


def cache_file(projections_dir: Path) -> Path:
    return projections_dir / "cache" / "events.duckdb"


@contextmanager
def cache_lock(projections_dir: Path) -> Iterator[None]:
    path = cache_file(projections_dir).parent
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "cache.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# A record whose envelope could be typed: every field the contract requires is there.
TYPED = " AND ".join(f"{name} IS NOT NULL" for name in CACHE_COLUMNS if name not in ("payload", "subject", "sealed"))


def read_segments_sql(files: list[str]) -> tuple[str, list]:
    """A SELECT over segment files with the store's columns, each typed by TRY_CAST (null where it cannot be)."""
    as_text = {name: "JSON" if kind == "JSON" else "VARCHAR" for name, kind in CACHE_COLUMNS.items()}
    typed = ", ".join(
        name if kind in ("VARCHAR", "JSON") else f"TRY_CAST({name} AS {kind}) AS {name}" for name, kind in CACHE_COLUMNS.items()
    )
    return f"SELECT {typed} FROM read_json(?, format = 'newline_delimited', columns = ?)", [files, as_text]


def refresh(store: Store, projections_dir: Path, *, full: bool = False, upto: int | None = None) -> dict[str, int]:
    """Bring the cache up to ``upto`` (default: the store's high-water mark). Call under ``cache_lock``."""
    upto = store.high_water_mark() if upto is None else upto
    target = cache_file(projections_dir)
    if full:
        fresh = target.with_suffix(".rebuilding")
        fresh.unlink(missing_ok=True)
        added = _append(store, fresh, after=0, upto=upto)
        os.replace(fresh, target)
        Path(str(target) + ".wal").unlink(missing_ok=True)
        return {"cache_position": upto, "cache_added": added, "cache_rebuilt": 1}
    with _open(target) as db:
        cached, last_segment = db.execute("SELECT position, last_segment FROM cache_info").fetchone()
    if not _store_still_holds(store, cached, last_segment):
        return refresh(store, projections_dir, full=True, upto=upto)
    added = _append(store, target, after=cached, upto=upto) if upto > cached else 0
    return {"cache_position": max(upto, cached), "cache_added": added, "cache_rebuilt": 0}


@contextmanager
def _open(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect(path)
    create_store_events_table(db)
    db.execute("CREATE TABLE IF NOT EXISTS cache_info AS SELECT 0::BIGINT AS position")
    db.execute("ALTER TABLE cache_info ADD COLUMN IF NOT EXISTS last_segment VARCHAR")  # a cache made before it: NULL
    try:
        yield db
    finally:
        db.close()


def _holding(store: Store, position: int) -> str | None:
    """The recorded digest of the segment holding ``position`` (None: none, no digest recorded, or a
    store without segments: PostgreSQL never reuses a committed position)."""
    if not isinstance(store, EventStore):
        return None
    segments = store.segments(after=position - 1, upto=position)
    return segments[0].sha256 if segments else None


def _store_still_holds(store: Store, cached: int, last_segment: str | None) -> bool:
    """Whether the events the cache holds are still the store's: its last one is at or below the
    store's mark, in the segment it was read from. A crash that lost the index's WAL makes the store
    forget a batch the cache may hold, and the next writer reuses its positions for other events;
    the cache is then rebuilt from the store (the forgotten batch comes back by ``planning recover``)."""
    if cached == 0:
        return True
    if cached > store.high_water_mark():
        return False
    return last_segment is None or _holding(store, cached) == last_segment


def _append(store: Store, path: Path, after: int, upto: int) -> int:
    # each segment is checked intact once, when it enters the cache (record_files does)
    with record_files(store, after, upto) as files, _open(path) as db:
        if not files:
            db.execute("UPDATE cache_info SET position = ?", [upto])
            return 0
        select, parameters = read_segments_sql(files)
        db.execute("BEGIN")
        before = db.execute("SELECT count(*) FROM store_events").fetchone()[0]
        db.execute(f"INSERT INTO store_events SELECT * FROM ({select}) WHERE position > ? AND position <= ?", [*parameters, after, upto])
        db.execute("UPDATE cache_info SET position = ?, last_segment = ?", [upto, _holding(store, upto)])
        db.execute("COMMIT")
        return db.execute("SELECT count(*) FROM store_events").fetchone()[0] - before
