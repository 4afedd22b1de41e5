"""Published snapshots: what readers open.

``published.json`` names, per cycle, the one panel file that is current,
and the current dead-letters file for the data team. Publishing writes a new
pointer file and renames it over the old one, so a reader sees the old
snapshot or the new one, never a mix. Published files are never written
again; superseded ones are deleted (an open reader keeps its file on Linux).

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

from projections.connection import connect
from projections.tables import DEAD_LETTERS, PANEL_TABLES

POINTER = "published.json"


class NoSnapshot(RuntimeError):
    """Nothing has been published yet."""


def published(projections_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((projections_dir / POINTER).read_text())
    except FileNotFoundError:
        return {"cycles": {}, "operations": None}


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


def publish_cycle(projections_dir: Path, cycle: str, build: Path, info: dict[str, Any]) -> None:
    (build / "staging.duckdb").unlink(missing_ok=True)  # evidence in staging form is never published
    with _publishing(projections_dir) as pointer:
        pointer["cycles"][cycle] = {"file": str(build / "panel.duckdb"), **info}
    _remove_superseded(projections_dir / "builds" / cycle, keep=build)


def publish_operations(projections_dir: Path, build: Path, info: dict[str, Any]) -> None:
    with _publishing(projections_dir) as pointer:
        pointer["operations"] = {"file": str(build / "ops.duckdb"), **info}
    _remove_superseded(build.parent, keep=build)


def _remove_superseded(builds: Path, keep: Path) -> None:
    for old in builds.iterdir():
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def open_reader(
    projections_dir: Path, *, operations: bool = False, cycles: Iterable[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only view of the published tables.

    The Panel tables are views across every published cycle, or across the
    named ``cycles`` only: a reader that wants one cycle attaches one file,
    so opening it costs the same at 2 cycles of history as at 20. If none of
    the named cycles is published, the newest cycle's file is attached so
    the tables still exist with their columns (a ``WHERE cycle = ?`` then
    finds nothing, as it would across every cycle).
    With ``operations=True`` the data team's ``dead_letters`` is there too;
    the Panel's own connections (query, sql, packs) never have it.
    After attaching, the connection can touch no file and no network.
    """
    pointer = published(projections_dir)
    if not pointer["cycles"] and not (operations and pointer.get("operations")):
        raise NoSnapshot("no projections have been published yet: run `planning build` first")
    entries = sorted(pointer["cycles"].items())
    if cycles is not None:
        wanted = set(cycles)
        entries = [e for e in entries if e[0] in wanted] or entries[-1:]
    db = connect()
    aliases = [f"cycle_{index}" for index in range(len(entries))]
    for alias, (_, entry) in zip(aliases, entries):
        db.execute(f"ATTACH '{entry['file']}' AS {alias} (READ_ONLY)")
    if len(aliases) == 1:
        # One cycle's file holds the Panel tables under their own names: read them in place.
        db.execute(f"USE {aliases[0]}")
    elif aliases:
        _create_union_views(db, aliases)
    if operations and pointer.get("operations"):
        db.execute(f"ATTACH '{pointer['operations']['file']}' AS operations (READ_ONLY)")
        db.execute(f"CREATE TEMP VIEW {DEAD_LETTERS.name} AS SELECT * FROM operations.dead_letters")
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
