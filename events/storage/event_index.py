"""The event index (``event_ids``): every stored event's id, body digest, position and sender, kept in runs.

Event ids are random (UUIDs), so one B-tree keyed by id takes each new id on a leaf of its own once the
store is large: every append dirtied about one 4 KiB page per event, written to the WAL and again by the
checkpoint, and ingest slowed as the store grew (bench/README.md, "Ingest cost against the store's size").
So the ids are kept in *runs* of about ``RUN_SIZE``: the table is keyed ``(run, event_id)``, appends go
into the newest run (the *open* one), and a full open run is *closed*: its filter (``IdFilter``) is stored
beside it and a new run opened. Random inserts only ever land in the open run, a tree of at most
``RUN_SIZE`` ids, whatever the size of the store.

An id is looked up in every run, but a closed run's filter answers "certainly not here" for nearly every
new id without reading a page, so a batch costs one vectorised test per closed run and a B-tree probe only
where the id may be. The writer keeps a filter of the open run in memory too (built at open, grown with each
append). What stays exactly as it was: the id is the idempotency key, checked in SQL in the transaction
that commits the batch (a filter only skips reads, it never decides a duplicate); a conflict is found by
the stored digest.

A store made before runs is sorted into run 0 (its ids in key order, one pass) by its first writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the filters (and numpy) load at a process's first lookup or append, not for every reader of the store
    from events.storage.id_filter import IdFilter

RUN_SIZE = 100_000  # ids in the open run before it is closed: the most the random inserts ever spread over
IN_CHUNK = 500  # ids bound to one IN (...): well under SQLite's limit on parameters

EVENT_IDS_TABLE = """
CREATE TABLE IF NOT EXISTS event_ids (
    run         INTEGER NOT NULL,  -- the run holding it (event_id_runs)
    event_id    TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    position    INTEGER NOT NULL,
    sender      TEXT,              -- who delivered it (events.senders); NULL: stored before senders were recorded
    PRIMARY KEY (run, event_id)
) WITHOUT ROWID"""
RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS event_id_runs (
    run    INTEGER PRIMARY KEY,
    filter BLOB                    -- the run's IdFilter; NULL: the open run (the newest), or a filter still to build
)"""
SCHEMA = f"{EVENT_IDS_TABLE};{RUNS_TABLE};\n"
ROW = "event_id, body_sha256, position, sender"  # an index row as the store writes it, the run apart


def sorted_in_runs(db: sqlite3.Connection) -> bool:
    """Whether the index has runs: a store no writer of this version has opened yet has not."""
    return any(row[1] == "run" for row in db.execute("PRAGMA table_info(event_ids)"))


def newest_run(db: sqlite3.Connection) -> int:
    """The open run, listed in ``event_id_runs`` if it was not (a store whose writer never appended)."""
    run = db.execute("SELECT max(run) FROM event_id_runs").fetchone()[0]
    if run is None:
        run = 0
        db.execute("INSERT INTO event_id_runs (run, filter) VALUES (0, NULL)")
    return run


@dataclass
class _OpenRun:
    run: int
    events: int
    filter: IdFilter


class EventIndex:
    """The index's runs, read through their filters; ``writer`` instances also append to the open run."""

    def __init__(self, db: sqlite3.Connection, *, writer: bool = False) -> None:
        self._db = db
        self._writer = writer
        self._filters: dict[int, IdFilter] = {}  # closed runs' filters, as loaded (a closed run never changes)
        self._open: _OpenRun | None = None  # the writer's view of the open run; None: to load

    # --- reading ---------------------------------------------------------------

    def rows(self, columns: str, event_ids: Sequence[str]) -> Iterator[tuple]:
        """``(event_id, *columns)`` of each of these ids the index holds."""
        unique = list(dict.fromkeys(event_ids))
        if not unique:
            return
        if not sorted_in_runs(self._db):
            for chunk in _chunks(unique):
                yield from self._db.execute(f"SELECT event_id, {columns} FROM event_ids WHERE event_id IN ({_marks(chunk)})", chunk)
            return
        for run, candidates in self._candidates(unique):
            for chunk in _chunks(candidates):
                yield from self._db.execute(
                    f"SELECT event_id, {columns} FROM event_ids WHERE run = ? AND event_id IN ({_marks(chunk)})", [run, *chunk])

    def _candidates(self, unique: list[str]) -> Iterator[tuple[int, list[str]]]:
        """Per run, the ids it may hold: those its filter does not rule out (all of them, for a run without one)."""
        from events.storage.id_filter import IdHashes

        hashed = IdHashes(unique)
        open_run = self._open_run() if self._writer else None
        # length(), not "filter IS NULL": SQLite answers length() from the record's header, while IS NULL read
        # every filter's overflow pages (25 MB at 10M events, ~7 ms warm) at each lookup
        runs = self._db.execute("SELECT run, length(filter) IS NULL FROM event_id_runs ORDER BY run").fetchall()
        for run, unfiltered in runs:
            if open_run is not None and run == open_run.run:
                may = open_run.filter.may_hold(hashed)
            elif unfiltered:
                yield run, unique
                continue
            else:
                may = self._filter_of(run).may_hold(hashed)
            if may.any():
                yield run, [unique[i] for i in may.nonzero()[0]]

    def _filter_of(self, run: int) -> IdFilter:
        from events.storage.id_filter import IdFilter

        if run not in self._filters:
            stored = self._db.execute("SELECT filter FROM event_id_runs WHERE run = ?", (run,)).fetchone()[0]
            self._filters[run] = IdFilter.from_bytes(stored)
        return self._filters[run]

    # --- writing (inside the caller's transaction) --------------------------------

    def insert(self, rows: Sequence[tuple[str, str, int, str | None]]) -> None:
        """Add ``(event_id, body_sha256, position, sender)`` rows (new ids) to the open run, closing it first if full."""
        from events.storage.id_filter import IdHashes

        if not rows:
            return
        open_run = self._open_run()
        if open_run.events >= RUN_SIZE:
            open_run = self._close(open_run)
        self._db.executemany(f"INSERT INTO event_ids (run, {ROW}) VALUES (?, ?, ?, ?, ?)",
                             [(open_run.run, *row) for row in sorted(rows)])
        open_run.filter.add(IdHashes([row[0] for row in rows]))
        open_run.events += len(rows)

    def forget_open_run(self) -> None:
        """After a rolled-back transaction: the open run is read again from the index when next needed."""
        self._open = None

    def _open_run(self) -> _OpenRun:
        if self._open is None:
            run = newest_run(self._db)
            run_filter, events = self._built_filter(run, room_for=RUN_SIZE)
            self._open = _OpenRun(run, events, run_filter)
        return self._open

    def _close(self, full: _OpenRun) -> _OpenRun:
        from events.storage.id_filter import IdFilter

        self._db.execute("UPDATE event_id_runs SET filter = ? WHERE run = ?", (full.filter.to_bytes(), full.run))
        self._db.execute("INSERT INTO event_id_runs (run, filter) VALUES (?, NULL)", (full.run + 1,))
        self._filters[full.run] = full.filter
        self._open = _OpenRun(full.run + 1, 0, IdFilter.sized_for(RUN_SIZE))
        return self._open

    # --- at the writer's open ----------------------------------------------------

    def sort_into_runs_once(self) -> None:
        """Move an index made before runs into run 0, in key order (one pass), with its filter; open run 1."""
        if sorted_in_runs(self._db):
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("ALTER TABLE event_ids RENAME TO event_ids_before_runs")
            self._db.execute(EVENT_IDS_TABLE)
            self._db.execute(f"INSERT INTO event_ids (run, {ROW}) SELECT 0, {ROW} FROM event_ids_before_runs ORDER BY event_id")
            self._db.execute("DROP TABLE event_ids_before_runs")
            self._db.execute("DELETE FROM event_id_runs")
            self._db.execute("INSERT INTO event_id_runs (run, filter) VALUES (0, ?), (1, NULL)", (self._built_filter(0)[0].to_bytes(),))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _built_filter(self, run: int, *, room_for: int = 0) -> tuple[IdFilter, int]:
        """A filter of the ids ``run`` holds, sized for at least ``room_for`` ids, and how many it holds."""
        from events.storage.id_filter import IdFilter, IdHashes

        count = self._db.execute("SELECT count(*) FROM event_ids WHERE run = ?", (run,)).fetchone()[0]
        run_filter = IdFilter.sized_for(max(count, room_for))
        rows = self._db.execute("SELECT event_id FROM event_ids WHERE run = ?", (run,))
        while chunk := [row[0] for row in rows.fetchmany(RUN_SIZE)]:
            run_filter.add(IdHashes(chunk))
        return run_filter, count


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start:start + IN_CHUNK]


def _marks(chunk: list[str]) -> str:
    return ",".join("?" * len(chunk))
