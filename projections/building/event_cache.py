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

The cache keeps a manifest of what it read, in the same pass that read it: each embedded segment it
read (its name, positions and the digest its bytes matched, ``cache_segments``), and for every block
of ``BLOCK`` positions the count and a digest of the rows each append put there (``cache_blocks``).
The blocking check ``full_rebuild_matches`` compares them with the store's index and with the cache's
rows as they are now (``cache_matches_store``), instead of reading the segments again. A cache made
before the manifest, by another DuckDB version (whose ``hash`` may differ) or with other blocks is rebuilt.

The cache holds what the segments hold: clear payloads, and personal data
only as ciphertext whose keys erasure deletes. Only builds touch it, one at a
time (a file lock), so there is never a second DuckDB writer.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
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


def create_store_events_table(db: duckdb.DuckDBPyConnection, *, temporary: bool = False) -> None:
    """The ``store_events`` table (the cache's, and each staging file's copy of it), unless it exists.
    ``temporary``: a table of this connection only, never written to the file (a staging's copy)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in CACHE_COLUMNS.items())
    db.execute(f"CREATE {'TEMPORARY ' if temporary else ''}TABLE IF NOT EXISTS store_events ({columns})")


def cache_file(projections_dir: Path) -> Path:
    return projections_dir / "cache" / "events.duckdb"


@contextmanager
def cache_lock(projections_dir: Path) -> Iterator[None]:
    path = cache_file(projections_dir).parent
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "cache.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


BLOCK = 4_096  # positions per digest block of the manifest (about a segment): a check re-hashes only the blocks a cycle's segments touch
# one row's digest: DuckDB's hash of every column (deterministic for a DuckDB version, which the cache records)
ROW_HASH = f"hash({', '.join(CACHE_COLUMNS)})"
MANIFEST = f"DuckDB {duckdb.__version__} hash, blocks of {BLOCK} positions"  # a cache whose manifest is not this is rebuilt

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
        cached, last_segment, manifest = db.execute("SELECT position, last_segment, manifest FROM cache_info").fetchone()
    made_otherwise = manifest != MANIFEST and cached > 0  # before the manifest (NULL), by another DuckDB's hash, other blocks
    if made_otherwise or not _store_still_holds(store, cached, last_segment):
        return refresh(store, projections_dir, full=True, upto=upto)
    added = _append(store, target, after=cached, upto=upto) if upto > cached else 0
    return {"cache_position": max(upto, cached), "cache_added": added, "cache_rebuilt": 0}


@contextmanager
def _open(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect(path)
    create_store_events_table(db)
    db.execute("CREATE TABLE IF NOT EXISTS cache_info AS SELECT 0::BIGINT AS position")
    db.execute("ALTER TABLE cache_info ADD COLUMN IF NOT EXISTS last_segment VARCHAR")  # a cache made before it: NULL
    db.execute("ALTER TABLE cache_info ADD COLUMN IF NOT EXISTS manifest VARCHAR")  # NULL: made before the manifest
    db.execute("CREATE TABLE IF NOT EXISTS cache_segments (file VARCHAR, first_position BIGINT, last_position BIGINT,"
               " events BIGINT, sha256 VARCHAR)")
    db.execute("CREATE TABLE IF NOT EXISTS cache_blocks (block BIGINT, events BIGINT, digest HUGEINT)")
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
        _record_manifest(db, store, after, upto)
        db.execute("UPDATE cache_info SET position = ?, last_segment = ?, manifest = ?", [upto, _holding(store, upto), MANIFEST])
        db.execute("COMMIT")
        return db.execute("SELECT count(*) FROM store_events").fetchone()[0] - before


def _record_manifest(db: duckdb.DuckDBPyConnection, store: Store, after: int, upto: int) -> None:
    """What this append read: the segments (embedded store) and each block's rows it added, counted and digested."""
    if isinstance(store, EventStore):
        segments = store.segments(after, upto)
        db.executemany("INSERT INTO cache_segments VALUES (?, ?, ?, ?, ?)",
                       [(s.path.name, s.first_position, s.last_position, s.events, s.sha256) for s in segments])
    db.execute(f"INSERT INTO cache_blocks SELECT position // {BLOCK}, count(*), sum({ROW_HASH}) FROM store_events"
               " WHERE position > ? AND position <= ? GROUP BY ALL", [after, upto])


def cache_matches_store(store: EventStore, projections_dir: Path, cycles: Iterable[str], upto: int) -> list[str]:
    """How the cache differs from the store for what a build of ``cycles`` at ``upto`` reads (empty: it
    does not). Every segment that can hold an event of one of the cycles or a retraction must have been
    read into the cache from bytes with the digest the store's index still records; every block of
    positions those segments touch must hold each position the store holds there once, and the rows
    read into it, by count and digest. A run of several cycles is checked in one pass: the segments
    they share (those holding retractions) are checked once."""
    segments = store.segments_for_cycles(cycles, upto)
    with cache_lock(projections_dir), _open(cache_file(projections_dir)) as db:
        cached = db.execute("SELECT position FROM cache_info").fetchone()[0]
        read = {row[0]: row[1:] for row in db.execute(
            "SELECT file, first_position, last_position, events, sha256 FROM cache_segments").fetchall()}
        differences = [
            f"segment {s.path.name}: the store's index says positions {s.first_position}-{s.last_position}, "
            f"{s.events} events, SHA-256 {s.sha256}; the cache read {read.get(s.path.name, 'nothing of it')}"
            for s in segments if read.get(s.path.name) != (s.first_position, s.last_position, s.events, s.sha256)]
        expected = _positions_per_block(store, segments, cached)
        if expected:
            db.execute("CREATE TEMP TABLE wanted (block BIGINT, positions BIGINT)")
            db.executemany("INSERT INTO wanted VALUES (?, ?)", sorted(expected.items()))
            differing = db.execute(f"""
                SELECT w.block, w.positions, r.events, n.events, n.distinct_positions,
                       r.digest IS DISTINCT FROM n.digest
                FROM wanted AS w
                LEFT JOIN (SELECT block, sum(events) AS events, sum(digest) AS digest FROM cache_blocks
                           GROUP BY block) AS r USING (block)
                LEFT JOIN (SELECT position // {BLOCK} AS block, count(*) AS events,
                                  count(DISTINCT position) AS distinct_positions, sum({ROW_HASH}) AS digest
                           FROM ({_rows_in(expected)}) GROUP BY ALL) AS n USING (block)
                WHERE coalesce(n.events, 0) <> w.positions OR n.distinct_positions <> n.events
                   OR r.events IS DISTINCT FROM n.events OR r.digest IS DISTINCT FROM n.digest
                ORDER BY w.block""").fetchall()
            differences += [f"positions {b * BLOCK}-{(b + 1) * BLOCK - 1}: the store holds {held}, {read_n or 0} were "
                            f"read into the cache, it holds {now_n or 0} now ({distinct or 0} distinct)"
                            f"{', their contents changed' if changed and read_n == now_n == held else ''}"
                            for b, held, read_n, now_n, distinct, changed in differing]
    return differences


def _rows_in(blocks: Iterable[int]) -> str:
    """The cache's rows in these blocks, one range scan per run of consecutive blocks (so DuckDB skips the rest)."""
    runs: list[list[int]] = []
    for block in sorted(blocks):
        if runs and runs[-1][1] == block - 1:
            runs[-1][1] = block
        else:
            runs.append([block, block])
    return " UNION ALL ".join(f"SELECT * FROM store_events WHERE position BETWEEN {low * BLOCK} AND {(high + 1) * BLOCK - 1}"
                              for low, high in runs)


def _positions_per_block(store: EventStore, segments: list, cached: int) -> dict[int, int]:
    """For each block the segments touch, how many positions up to ``cached`` the store's segments hold in it."""
    blocks = sorted({b for s in segments for b in range(s.first_position // BLOCK, min(s.last_position, cached) // BLOCK + 1)
                     if s.first_position <= cached})
    if not blocks:
        return {}
    counts = dict.fromkeys(blocks, 0)
    for segment in store.segments(after=blocks[0] * BLOCK - 1, upto=min(cached, (blocks[-1] + 1) * BLOCK - 1)):
        for block in range(segment.first_position // BLOCK, segment.last_position // BLOCK + 1):
            if block in counts:
                low, high = max(segment.first_position, block * BLOCK), min(segment.last_position, cached, (block + 1) * BLOCK - 1)
                counts[block] += max(0, high - low + 1)
    return counts
