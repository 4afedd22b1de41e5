"""Published snapshots: what readers open.

``published.json`` names, per cycle, the one panel file that is current,
and the current dead-letters file for the data team. Under ``named`` it
names the panel files of each what-if build (``projections.reading.named``):
``named[NAME][cycle]``, read with ``--snapshot NAME``, never in place of the
current ones. Publishing writes a new
pointer file and renames it over the old one, so a reader sees the old
snapshot or the new one, never a mix. Published files are never written
again.

A superseded build folder outlives every reader that may still open it. A
reader holds a shared lock on the folder's ``readers.lock`` from reading the
pointer until its files are attached (DuckDB then holds them open, and an
open file survives its deletion on Linux); if the folder went first, it reads
the pointer again. A folder is deleted only by :func:`sweep`, under the build
lock, and only when it can take that lock exclusively at once: a folder being
opened is left for the next sweep. The sweep also deletes what a failed or
killed build left behind (its staging file holds demographics).

Readers open an in-memory DuckDB, attach the published files read-only, and
see one view per table across cycles. Many readers, no writer: no lock to
fight over while a build runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from projections.connection import connect, sql_string
from projections.reading.named import CURRENT
from projections.tables import DEAD_LETTERS, PANEL_TABLES

POINTER = "published.json"
READERS_LOCK = "readers.lock"  # in each build folder: shared while a reader attaches its files
OPEN_ATTEMPTS = 50  # a reader re-reads the pointer when a sweep took its folder; never 50 sweeps in a row
# What one reader's queries may hold in memory, and spill to disk beyond it: a Panel query
# that needs more is stopped with DuckDB's out-of-memory error, not left to take the machine.
READER_MEMORY_LIMIT = "512MB"
READER_SPILL_LIMIT = "1GB"


class NoSnapshot(RuntimeError):
    """Nothing has been published yet."""


class UnknownSnapshot(LookupError):
    """No named snapshot has this name; ``known`` lists those that exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        listed = ", ".join(known) if known else "none yet (a build with --on, --as-of or --name makes one)"
        super().__init__(f"no snapshot is named {name!r}; named snapshots: {listed} (`planning snapshots` lists them)")


def published(projections_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((projections_dir / POINTER).read_text())
    except FileNotFoundError:
        return {"cycles": {}, "operations": None}


def named_snapshots(pointer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {cycle: entry} of every named snapshot in ``pointer`` (a pointer written before them has none)."""
    return pointer.get("named") or {}


@contextmanager
def _publishing(projections_dir: Path) -> Iterator[dict[str, Any]]:
    """Read-modify-write the pointer under a lock; replace it atomically."""
    projections_dir.mkdir(parents=True, exist_ok=True)
    with open(projections_dir / "publish.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pointer = published(projections_dir)
        yield pointer
        temporary = projections_dir / f".{POINTER}.tmp"
        temporary.write_text(json.dumps(pointer, indent=2, default=str))
        os.replace(temporary, projections_dir / POINTER)


def publish_cycles(
    projections_dir: Path, builds: dict[str, tuple[Path, dict[str, Any]]], snapshot: str | None = None
) -> None:
    """Make each build's panel file (cycle -> its build folder and build info) the cycle's current one,
    or the cycle's file in the named ``snapshot`` (the current one is then left as it was): every cycle
    of a run at once, in one replacement of the pointer, so readers see them change together; then
    one sweep. Call under the build lock (it sweeps)."""
    for build, _ in builds.values():
        (build / "staging.duckdb").unlink(missing_ok=True)  # evidence in staging form is never published
    with _publishing(projections_dir) as pointer:
        cycles = pointer["cycles"] if snapshot is None else pointer.setdefault("named", {}).setdefault(snapshot, {})
        for cycle, (build, info) in builds.items():
            cycles[cycle] = {"file": str(build / "panel.duckdb"), **info}
    sweep(projections_dir)


def drop_snapshot(projections_dir: Path, name: str) -> list[str]:
    """Remove the named snapshot from the pointer and sweep its folders; the cycles it held.

    Call under the build lock (it sweeps). A folder a reader is opening stays for the next sweep.
    """
    with _publishing(projections_dir) as pointer:
        named = named_snapshots(pointer)
        if name not in named:
            raise UnknownSnapshot(name, sorted(named))
        dropped = sorted(named.pop(name))
    sweep(projections_dir)
    return dropped


def listed_snapshots(projections_dir: Path) -> list[dict[str, Any]]:
    """One row per published cycle of every snapshot, current first, then the named ones by name:
    snapshot, cycle, on, as_of, built_at."""
    pointer = published(projections_dir)
    snapshots = [(CURRENT, pointer["cycles"])] + sorted(named_snapshots(pointer).items())
    return [
        {"snapshot": name, "cycle": cycle, "on": entry.get("on_date"), "as_of": entry.get("as_of"),
         "built_at": entry.get("built_at")}
        for name, cycles in snapshots for cycle, entry in sorted(cycles.items())
    ]


def publish_operations(projections_dir: Path, build: Path, info: dict[str, Any]) -> None:
    """Make ``build``'s dead letters the current ones. Call under the build lock (it sweeps)."""
    with _publishing(projections_dir) as pointer:
        pointer["operations"] = {"file": str(build / "ops.duckdb"), **info}
    sweep(projections_dir)


def sweep(projections_dir: Path, only: str | None = None) -> list[Path]:
    """Delete the build folders no pointer names (every one, or the run ``only``'s), bar those a reader is opening.

    Call it under the build lock, so that no folder swept is a build in progress. Returns the folders deleted.
    """
    builds = projections_dir / "builds"
    if not builds.is_dir():
        return []
    pointer = published(projections_dir)
    named = [entry for cycles in named_snapshots(pointer).values() for entry in cycles.values()]
    current = {Path(e["file"]).parent for e in [*pointer["cycles"].values(), *named, pointer.get("operations") or {}] if e}
    swept = []
    for folder in sorted(f for cycle in builds.iterdir() if cycle.is_dir() for f in cycle.iterdir() if f.is_dir()):
        if folder in current or (only is not None and folder.name != only):
            continue
        if _remove_unless_read(folder):
            swept.append(folder)
    return swept


def _remove_unless_read(folder: Path) -> bool:
    """Delete ``folder`` if no reader holds its lock; it is renamed first, so no reader finds it half deleted."""
    try:
        lock = open(folder / READERS_LOCK, "a")
    except FileNotFoundError:  # a folder of a build that failed before writing its lock, or half swept
        lock = None
    try:
        if lock is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a reader is opening it: the next sweep takes it
        doomed = folder.with_name(f".swept-{folder.name}")
        try:
            os.replace(folder, doomed)
        except FileNotFoundError:
            return False
    finally:
        if lock is not None:
            lock.close()
    shutil.rmtree(doomed, ignore_errors=True)
    return True


@contextmanager
def _attaching(files: list[str]) -> Iterator[bool]:
    """Hold a shared lock on each file's build folder while it is attached; False if a sweep took one first."""
    locks = []
    try:
        for file in files:
            try:
                lock = open(Path(file).parent / READERS_LOCK, "a")
            except FileNotFoundError:  # the folder is gone: swept
                yield False
                return
            except OSError:  # a home this reader cannot write: read without the lock, as before it existed
                continue
            locks.append(lock)
            fcntl.flock(lock, fcntl.LOCK_SH)
            if not os.path.exists(file):  # swept between opening the lock and taking it
                yield False
                return
        yield True
    finally:
        for lock in locks:
            lock.close()


def open_reader(
    projections_dir: Path, *, operations: bool = False, cycles: Iterable[str] | None = None, snapshot: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only view of the published tables: the current snapshot's, or the named ``snapshot``'s
    (``UnknownSnapshot`` if there is none of that name).

    The Panel tables are views across every published cycle, or across the
    named ``cycles`` only: a reader that wants one cycle attaches one file,
    so opening it costs the same at 2 cycles of history as at 20. If none of
    the named cycles is published, the newest cycle's file is attached so
    the tables still exist with their columns (a ``WHERE cycle = ?`` then
    finds nothing, as it would across every cycle).
    With ``operations=True`` the data team's ``dead_letters`` is there too;
    the Panel's own connections (query, sql, packs) never have it.
    After attaching, the connection can touch no file and no network, and its
    queries hold at most ``READER_MEMORY_LIMIT`` in memory.
    """
    for _ in range(OPEN_ATTEMPTS):
        db = _open_published(projections_dir, _chosen(published(projections_dir), snapshot), operations, cycles)
        if db is not None:
            return db
    raise RuntimeError(f"the published snapshots in {projections_dir} kept changing while they were opened; try again")


def _chosen(pointer: dict[str, Any], snapshot: str | None) -> dict[str, Any]:
    """``pointer`` with the named ``snapshot``'s cycles in place of the current ones (None: as it is)."""
    if snapshot is None or snapshot == CURRENT:
        return pointer
    named = named_snapshots(pointer)
    if snapshot not in named:
        raise UnknownSnapshot(snapshot, sorted(named))
    return {**pointer, "cycles": named[snapshot]}


def _open_published(
    projections_dir: Path, pointer: dict[str, Any], operations: bool, cycles: Iterable[str] | None
) -> duckdb.DuckDBPyConnection | None:
    """``open_reader`` on one reading of the pointer; None if a file it names was swept meanwhile."""
    if not pointer["cycles"] and not (operations and pointer.get("operations")):
        raise NoSnapshot("no projections have been published yet: run `planning build` first")
    entries = sorted(pointer["cycles"].items())
    if cycles is not None:
        wanted = set(cycles)
        entries = [e for e in entries if e[0] in wanted] or entries[-1:]
    operations_file = pointer["operations"]["file"] if operations and pointer.get("operations") else None
    files = [entry["file"] for _, entry in entries] + ([operations_file] if operations_file else [])
    db = connect()
    with _attaching(files) as present:
        if not present:
            db.close()
            return None
        aliases = [f"cycle_{index}" for index in range(len(entries))]
        for alias, (_, entry) in zip(aliases, entries):
            db.execute(f"ATTACH {sql_string(entry['file'])} AS {alias} (READ_ONLY)")
        if operations_file:
            db.execute(f"ATTACH {sql_string(operations_file)} AS operations (READ_ONLY)")
    if len(aliases) == 1:
        # One cycle's file holds the Panel tables under their own names: read them in place.
        db.execute(f"USE {aliases[0]}")
    elif aliases:
        _create_union_views(db, aliases)
    if operations_file:
        db.execute(f"CREATE TEMP VIEW {DEAD_LETTERS.name} AS SELECT * FROM operations.dead_letters")
    db.execute(f"SET memory_limit = '{READER_MEMORY_LIMIT}'")
    db.execute(f"SET max_temp_directory_size = '{READER_SPILL_LIMIT}'")
    db.execute("SET enable_external_access = false")
    db.execute("SET lock_configuration = true")
    return db


def _create_union_views(db: duckdb.DuckDBPyConnection, aliases: list[str]) -> None:
    """One view per table across the attached cycles (a file built before a table existed lacks it)."""
    present = db.execute(
        "SELECT database_name, table_name FROM duckdb_tables() WHERE database_name IN ?", [aliases]
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for alias, name in sorted(present, key=lambda r: aliases.index(r[0])):
        if name in PANEL_TABLES or name == "build_info":
            tables.setdefault(name, []).append(f"SELECT * FROM {alias}.{name}")
    for name, selects in tables.items():
        db.execute(f"CREATE TEMP VIEW {name} AS " + " UNION ALL BY NAME ".join(selects))
