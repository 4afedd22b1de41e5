"""What only the PostgreSQL store has, so tested on it alone: its versioned schema, the bulk copy builds
read, and many writers appending at once (gap-free positions, one copy of each event, by the
database's constraints). Behaviours both backends share are in test_store.py; these run against
the session's real cluster (tests/support/postgres.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import psycopg
import pytest

from events.contract.validation import verdict
from events.storage.backends import record_files
from events.storage.postgres import migrations
from events.storage.postgres.integrity import verify_postgres
from events.storage.postgres.migrations import LATEST, init_store, SchemaOutOfDate, migrate, schema_version
from events.storage.postgres.store import PostgresStore
from events.storage.store import EventStore, Received
from projections.building.event_cache import read_segments_sql
from tests.support.events import line, make_event

EPOCH = datetime(2027, 1, 5, 9, 0, tzinfo=timezone.utc)  # a pinned knowledge time


def received(event: dict, origin: str = "test", sender: str | None = None) -> Received:
    raw = line(event)
    return Received(raw, origin, verdict(raw), sender)


def test_store_init_creates_the_schema_once(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert schema_version(connection) == 0
        assert migrate(connection) == list(range(1, LATEST + 1))
        assert migrate(connection) == []
        assert schema_version(connection) == LATEST


def test_a_database_without_the_store_is_refused_with_what_to_do(postgres_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="run `planning store init`"):
        PostgresStore(postgres_url)


def test_bulk_copy_writes_the_lines_a_segment_holds(postgres_url: str, tmp_path: Path) -> None:
    events = [make_event("consultation.response_received",
                         {"comment": 'quote " backslash \\ tab \t é', "respondent": {"respondent_ref": f"r-{i}"}})
              for i in range(3)] + [make_event("stage.signed_off", cycle="2026-27")]
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        migrate(connection)
    with PostgresStore(postgres_url, writer=True) as store, EventStore(tmp_path / "embedded", writer=True) as embedded:
        store.append([received(e) for e in events], recorded_at=EPOCH)
        embedded.append([received(e) for e in events], recorded_at=EPOCH)
        store.copy_records(tmp_path / "all.jsonl")
        store.copy_records(tmp_path / "cycle.jsonl", after=1, cycle="2027-28")
        segment_lines = b"".join(s.path.read_bytes() for s in embedded.segments()).splitlines(keepends=True)
        records = list(store.records())
    copied = (tmp_path / "all.jsonl").read_bytes().splitlines(keepends=True)
    assert len(copied) == 4
    # the same lines, apart from the sealed fields (a fresh nonce and key each) and the surrogate
    assert [_without_sealing(c) for c in copied] == [_without_sealing(s) for s in segment_lines]
    assert [_parse(c) for c in copied] == records
    assert [_parse(c)["position"] for c in (tmp_path / "cycle.jsonl").read_bytes().splitlines()] == [2, 3]


def test_concurrent_writers_get_gap_free_positions_and_one_copy_of_each_event(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        migrate(connection)
    shared = [make_event("stage.signed_off") for _ in range(20)]  # every writer sends these
    own = {w: [make_event("stage.signed_off") for _ in range(20)] for w in range(4)}
    outcomes: dict[int, list] = {}

    def write(worker: int) -> None:
        with PostgresStore(postgres_url, writer=True) as store:
            outcomes[worker] = [store.append([received(e) for e in (shared[i:i + 5] + own[worker][i:i + 5])])
                                for i in range(0, 20, 5)]

    threads = [threading.Thread(target=write, args=(w,)) for w in own]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with PostgresStore(postgres_url) as store:
        positions = [e["position"] for e in store.events()]
        ids = [e["event_id"] for e in store.events()]
    assert positions == list(range(1, 20 + 4 * 20 + 1))
    assert len(set(ids)) == len(ids) == 100
    accepted = sum(len(o.accepted) for batches in outcomes.values() for o in batches)
    duplicates = sum(len(o.duplicates) for batches in outcomes.values() for o in batches)
    assert (accepted, duplicates) == (100, 3 * 20)


def _parse(raw: bytes) -> dict:
    return json.loads(raw)


def _without_sealing(raw: bytes) -> dict:
    record = _parse(raw)
    return {k: v for k, v in record.items() if k not in ("sealed", "subject")}


def test_builds_read_the_same_rows_from_either_backend(postgres_url: str, tmp_path: Path) -> None:
    """What a build stages (DuckDB's read_json over the record files) is the same on both backends."""
    events = [make_event("stage.signed_off", cycle=c) for c in ("2027-28", "2026-27", "2027-28")]
    events.append(make_event("event.retracted", {"target_event_id": events[1]["event_id"], "reason": "sent in error"},
                             cycle="2026-27"))
    init_store(postgres_url)
    rows = {}
    with PostgresStore(postgres_url, writer=True) as store, EventStore(tmp_path / "embedded", writer=True) as embedded:
        for backend in (store, embedded):
            for event in events:
                backend.append([received(event)], recorded_at=EPOCH)
            with record_files(backend, after=1, cycle="2027-28") as files, duckdb.connect() as db:
                select, parameters = read_segments_sql(files)
                rows[type(backend).__name__] = db.execute(
                    f"SELECT position, event_id, cycle FROM ({select}) WHERE position > 1"
                    " AND (cycle = '2027-28' OR event_type = 'event.retracted') ORDER BY position", parameters).fetchall()
    assert rows["PostgresStore"] == rows["EventStore"]
    assert [position for position, _, _ in rows["EventStore"]] == [3, 4]


def test_a_store_at_schema_version_1_migrates_and_keeps_its_events(postgres_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 2 turns ids into uuid and digests into bytes in place: the records, the duplicate and conflict
    verdicts (which read the digests) and the keys that unseal them are all still there."""
    events = [make_event("consultation.response_received", {"comment": "é \\ \" ok", "respondent": {"respondent_ref": f"r-{i}"}})
              for i in range(2)] + [make_event("stage.signed_off", cycle="2026-27")]
    with EventStore(tmp_path / "embedded", writer=True) as embedded:  # the rows a version-1 store held, made by the same rules
        embedded.append([received(e, sender="team") for e in events], recorded_at=EPOCH)
        lines = b"".join(s.path.read_bytes() for s in embedded.segments())
    with sqlite3.connect(tmp_path / "embedded" / "store.sqlite") as index:
        pepper = index.execute("SELECT value FROM meta WHERE key = 'pepper'").fetchone()[0]
        keys = index.execute("SELECT ref_digest, subject, key FROM respondent_keys").fetchall()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        assert migrate(connection) == [1]
        monkeypatch.undo()
        connection.execute("SET search_path = planning_store")
        connection.execute("UPDATE meta SET value = %s WHERE key = 'pepper'", (pepper,))
        connection.cursor().executemany("INSERT INTO respondent_keys (ref_digest, subject, key) VALUES (%s, %s, %s)", keys)
        for event, text in zip(events, lines.decode().splitlines()):
            record = json.loads(text)
            connection.execute("INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                               (record["position"], record["event_id"], verdict(line(event)).body_sha256, record["sender"],
                                record["event_type"], record["cycle"], record["recorded_at"], text))
        assert migrate(connection) == list(range(2, LATEST + 1))
        types = dict(connection.execute("SELECT column_name, data_type FROM information_schema.columns"
                                        " WHERE table_schema = 'planning_store' AND table_name = 'events'"))
    assert (types["event_id"], types["body_sha256"]) == ("uuid", "bytea")
    changed = make_event("stage.signed_off", cycle="2026-27")
    changed["event_id"] = events[2]["event_id"]
    changed["occurred_at"] = "2026-07-15T18:30:00Z"
    with PostgresStore(postgres_url, writer=True) as store:
        store.copy_records(tmp_path / "copied.jsonl")
        assert (tmp_path / "copied.jsonl").read_bytes() == lines  # byte for byte what the version-1 store held
        assert store.positions_of([e["event_id"] for e in events]) == {e["event_id"]: i for i, e in enumerate(events, 1)}
        again = store.append([received(e, sender="team") for e in events] + [received(changed, "late")], recorded_at=EPOCH)
        assert again.duplicates == [e["event_id"] for e in events] and again.accepted == []
        assert [letter["origin"] for letter in store.dead_letters()] == ["late"]  # same id, another body: a conflict
        assert store.counts_by_sender()["events"] == {"team": 3}, "migration 3 counted the events stored before it"
        assert [e["payload"]["comment"] for e in store.events() if "comment" in e["payload"]] == ["é \\ \" ok"] * 2
        verification = verify_postgres(store)
        assert verification.intact and verification.digests_checked == 3
        fresh = store.append([received(make_event("stage.signed_off"))], recorded_at=EPOCH)
        assert fresh.high_water_mark == 4
