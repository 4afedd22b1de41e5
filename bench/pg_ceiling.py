"""How fast any PostgreSQL append could be, beside the plain COPY it is held to (issue 15). Not a figure: a probe.

    python -m bench.pg_ceiling FILE [BATCH ...]    # e.g. bench/results/data/100k/events.jsonl 5000 20000

For each batch size (default 5,000, as ``planning ingest`` appends) the probe appends FILE's validated lines to
a new store by ``PostgresStore.append``, then replays the database's part of those appends into a second new
store with nothing left to build: per batch, the append lock, the look-up of the batch's ids, the high-water
mark, a binary COPY of the very rows the first store holds for it (read back as they were sent), the new
respondents' keys (spread evenly over the batches), the batch's count by sender, and the commit. The replay is what an append would cost
if its own Python (sealing, the records' JSON, the checks) were free: its ceiling. Then it times COPY of those
rows into a table without indexes, and with the store's indexes added one at a time, each in one transaction.

Same cluster settings as the bench's figures (bench/postgres.py: fsync on, a throwaway cluster).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.postgres import _new_database, backend_cpu, copied_in, local_cluster, stored_rows, validated
from events.storage.postgres.migrations import SCHEMA

# the store's indexes on ``events``, in the order the probe adds them (events/storage/postgres/migrations.py)
INDEXES = [
    ("PRIMARY KEY (position)", "ALTER TABLE t ADD PRIMARY KEY (position)"),
    ("UNIQUE (event_id)", "ALTER TABLE t ADD UNIQUE (event_id)"),
    ("events_by_cycle", "CREATE INDEX ON t (cycle, position)"),
    ("events_retractions", "CREATE INDEX ON t (position) WHERE event_type = 'event.retracted'"),
]
ROWS_AS_SENT = ("SELECT position, uuid_send(event_id), body_sha256, sender, event_type, cycle, recorded_at,"
                " convert_to(record, 'UTF8') FROM events ORDER BY position")


def appended(url: str, lines: list[Any], batch_size: int) -> tuple[float, list[int]]:
    """(wall s, events stored per batch) of appending ``lines`` to a new store at ``url`` by the store's own append."""
    from events.storage.postgres.migrations import init_store
    from events.storage.postgres.store import PostgresStore

    init_store(url)
    with PostgresStore(url, writer=True) as store:
        started, stored = time.perf_counter(), []
        for first in range(0, len(lines), batch_size):
            stored.append(len(store.append(lines[first:first + batch_size]).accepted))
        return time.perf_counter() - started, stored


def replayed(source: str, url: str, lines: list[Any], batch_size: int, stored: list[int]) -> tuple[float, float]:
    """(wall s, server CPU s) of the database's part of the same appends, into a new store at ``url``."""
    import psycopg

    from events.contract.validation import Accepted
    from events.storage.postgres.migrations import init_store
    from events.storage.postgres.store import APPEND_LOCK, COPY_EVENTS, COPY_EVENTS_TYPES, PostgresStore

    with psycopg.connect(source) as db:
        db.execute(f"SET search_path = {SCHEMA}")
        rows = db.execute(ROWS_AS_SENT).fetchall()
        keys = db.execute("SELECT ref_digest, subject, key FROM respondent_keys").fetchall()
    init_store(url)
    with PostgresStore(url, writer=True) as store:
        db = store._db
        backend, next_row, next_key = db.info.backend_pid, 0, 0
        server, started = backend_cpu(backend), time.perf_counter()
        for number, first in enumerate(range(0, len(lines), batch_size)):
            ids = [r.verdict.event_id for r in lines[first:first + batch_size] if isinstance(r.verdict, Accepted)]
            batch_rows = rows[next_row:next_row + stored[number]]
            batch_keys = keys[next_key:len(keys) * (number + 1) // len(stored)]
            next_row, next_key = next_row + len(batch_rows), next_key + len(batch_keys)
            with db.transaction():
                db.execute(APPEND_LOCK)
                store._known_digests(ids)
                store.high_water_mark()  # where the batch's positions start
                with db.cursor() as cursor, cursor.copy(COPY_EVENTS) as copy:
                    copy.set_types(COPY_EVENTS_TYPES)
                    for row in batch_rows:
                        copy.write_row(row)
                with db.cursor() as cursor, cursor.copy("COPY respondent_keys (ref_digest, subject, key) FROM STDIN") as copy:
                    for key in batch_keys:
                        copy.write_row(key)
                db.execute("INSERT INTO sender_events (sender, events) VALUES ('probe', %s) ON CONFLICT (sender)"
                           " DO UPDATE SET events = sender_events.events + excluded.events", (len(batch_rows),))
        return time.perf_counter() - started, backend_cpu(backend) - server


def copies(source: str) -> list[tuple[str, float, float]]:
    """(indexes, wall s, server CPU s) of COPY of the store's rows into a table with no index, then with each of the
    store's indexes added in turn."""
    import psycopg

    with psycopg.connect(source, autocommit=True) as db:
        columns, rows_text = stored_rows(db)
        timed = []
        for count in range(len(INDEXES) + 1):
            db.execute("DROP TABLE IF EXISTS t")
            db.execute(f"CREATE TABLE t AS SELECT {columns} FROM {SCHEMA}.events WITH NO DATA")
            for _, statement in INDEXES[:count]:
                db.execute(statement)
            label = "no index" if count == 0 else "+ " + INDEXES[count - 1][0]
            timed.append((label, *copied_in(db, "t", columns, rows_text)))
        db.execute("DROP TABLE t")
    return timed


def main(argv: list[str]) -> None:
    events_file, batch_sizes = Path(argv[0]), [int(size) for size in argv[1:]] or [5_000]
    lines = validated(events_file)
    with local_cluster() as cluster:
        for size in batch_sizes:
            source = _new_database(cluster, f"appended_{size}")
            append_seconds, stored = appended(source, lines, size)
            replay_seconds, replay_server = replayed(source, _new_database(cluster, f"replayed_{size}"), lines, size, stored)
            timed = copies(source)
            events, plain = sum(stored), timed[0][1]
            print(f"batches of {size:,}: {events:,} events; append {append_seconds:.3f} s ({events / append_seconds:,.0f}/s,"
                  f" {plain / append_seconds:.2f}x of the plain COPY); its database part alone {replay_seconds:.3f} s"
                  f" ({events / replay_seconds:,.0f}/s, server CPU {replay_server:.2f} s, {plain / replay_seconds:.2f}x)")
            for label, seconds, server in timed:
                print(f"  COPY, {label:26s} {seconds:.3f} s ({events / seconds:,.0f} rows/s, server CPU {server:.2f} s,"
                      f" the plain COPY {plain / seconds:.2f}x of it)")


if __name__ == "__main__":
    main(sys.argv[1:])
