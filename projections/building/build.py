"""Build one cycle's Panel tables into a new DuckDB file, and the data team's dead letters.

Each build writes files no reader has ever opened (``builds/<cycle>/<build_id>/``);
``projections.reading.snapshots.publish_cycles`` then makes them the current ones.
So a reader never sees half a build.

Builds queue: a run holds the build lock (:func:`build_lock`) from its first
step to its last, so two runs never write, publish or sweep at once, whoever
started them (`planning build`, the sensor, the schedule).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from events.storage.backends import Store
from events.storage.store import UNKNOWN_SENDER
from projections.building.sql_files import read_sql
from projections.connection import connect, sql_string


@contextmanager
def build_lock(projections_dir: Path) -> Iterator[None]:
    """Held for a whole run: one build at a time writes, publishes and sweeps under ``projections_dir``."""
    projections_dir.mkdir(parents=True, exist_ok=True)
    with open(projections_dir / "build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_path(projections_dir: Path, cycle: str, build_id: str) -> Path:
    """Where a build's files are (builds/<cycle>/<build_id>), without making the folder: for reading a build,
    which should find it as its steps left it, not make an empty one."""
    return projections_dir / "builds" / cycle / build_id


def build_dir(projections_dir: Path, cycle: str, build_id: str) -> Path:
    """A build's folder, made if missing: for the steps that write it."""
    path = build_path(projections_dir, cycle, build_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_table(build: Path, name: str) -> int:
    """Create one Panel table in ``build/panel.duckdb`` from its SQL file; returns its row count."""
    return build_tables(build, [name])[name]


def build_tables(build: Path, names: Iterable[str]) -> dict[str, int]:
    """Create Panel tables in ``build/panel.duckdb`` from their SQL files, in the order given, through one
    connection to the file; returns each table's row count."""
    with connect(build / "panel.duckdb") as db:
        db.execute(f"ATTACH {sql_string(build / 'staging.duckdb')} AS staging (READ_ONLY)")
        db.execute("CREATE OR REPLACE TABLE build_info AS SELECT * FROM staging.build_info")
        rows = {}
        for name in names:
            db.execute(f"CREATE OR REPLACE TABLE {name} AS\n{read_sql(name)}")
            rows[name] = db.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        return rows


def build_dead_letters(store: Store, ops_file: Path, as_of: datetime) -> int:
    """The dead_letters table (received_at, sender, reason, raw, replayed_position) as known at ``as_of``."""
    rows = [
        (letter["received_at"], letter["sender"] or UNKNOWN_SENDER, "; ".join(letter["reasons"]),
         None if letter["raw"] is None else letter["raw"].decode("utf-8", "replace"), letter["replayed_position"])
        for letter in store.dead_letters()
    ]
    with connect(ops_file) as db:
        db.execute("CREATE TABLE dead_letters"
                   " (received_at TIMESTAMPTZ, sender VARCHAR, reason VARCHAR, raw VARCHAR, replayed_position BIGINT)")
        if rows:
            db.executemany("INSERT INTO dead_letters VALUES (?::TIMESTAMPTZ, ?, ?, ?, ?)", rows)
        db.execute("DELETE FROM dead_letters WHERE received_at > ?", [as_of])
        db.execute("CREATE TABLE build_info AS SELECT ?::TIMESTAMPTZ AS as_of, now() AS built_at, ?::BOOLEAN AS synthetic",
                   [as_of, store.synthetic])
        return db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]


def read_build_info(panel_file: Path) -> dict[str, str]:
    with connect(panel_file) as db:
        columns = [c[0] for c in db.execute("SELECT * FROM build_info").description]
        values = db.execute("SELECT * FROM build_info").fetchone()
    return {c: (v.isoformat() if hasattr(v, "isoformat") else v) for c, v in zip(columns, values)}

