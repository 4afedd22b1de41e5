"""The event store's behaviours, held by both backends: the embedded store and the PostgreSQL one.

One parametrised fixture opens a writer on either, the way a recorder's tests are shared
between its back ends; the PostgreSQL cases run against a real server (tests/support/postgres.py).
Behaviours only one backend has (segment files, the single-writer lock, many writers) are
tested beside it."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from events.contract import upcasting
from events.contract.validation import verdict
from events.storage.backends import record_files
from events.storage.postgres.migrations import LATEST, init_store, SchemaOutOfDate, migrate, schema_version
from events.storage.postgres.store import PostgresStore
from events.storage.store import EventStore, MixedData, Received
from projections.building.event_cache import read_segments_sql
from tests.support.events import line, make_event

EPOCH = datetime(2027, 1, 5, 9, 0, tzinfo=timezone.utc)  # a pinned knowledge time
OpenStore = Callable[..., Any]  # (writer=True) -> a store, closed by the fixture


def received(event: dict, origin: str = "test", sender: str | None = None) -> Received:
    raw = line(event)
    return Received(raw, origin, verdict(raw), sender)


def stored_bytes_of(backend: str, tmp_path: Path, url: str | None, *, after_erasure: bool = False) -> bytes:
    """Everything the backend keeps on disk: the store directory, or the cluster's files (tables and WAL).
    ``after_erasure``: first let PostgreSQL finish the WAL segments that held the erased rows, and
    checkpoint twice, so that (with ``wal_recycle = off``) the segments before the checkpoint are removed."""
    if backend == "embedded":
        return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    with psycopg.connect(url, autocommit=True) as admin:
        for _ in range(2 if after_erasure else 0):
            admin.execute("SELECT pg_switch_wal()")
            admin.execute("CHECKPOINT")
        admin.execute("CHECKPOINT")
        data_dir = Path(admin.execute("SHOW data_directory").fetchone()[0])
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


@pytest.fixture(params=["embedded", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OpenStore]:
    opened: list[Any] = []
    url = None
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as connection:
            migrate(connection)

    def opener(writer: bool = False) -> Any:
        store = EventStore(tmp_path / "store", writer=writer) if url is None else PostgresStore(url, writer=writer)
        opened.append(store)
        return store

    opener.url = url  # type: ignore[attr-defined]
    yield opener
    for store in opened:
        store.close()


def test_append_assigns_positions_and_recorded_at(open_store: OpenStore) -> None:
    events = [make_event("stage.signed_off") for _ in range(3)]
    store = open_store(writer=True)
    outcome = store.append([received(e) for e in events])
    stored = list(store.events())
    assert outcome.accepted == [e["event_id"] for e in events]
    assert outcome.high_water_mark == 3 == store.high_water_mark()
    assert [s["position"] for s in stored] == [1, 2, 3]
    assert all(s["recorded_at"].endswith("Z") for s in stored)
    assert [s["payload"] for s in stored] == [e["payload"] for e in events]


def test_same_id_same_body_is_a_duplicate_stored_once(open_store: OpenStore) -> None:
    event = make_event("stage.signed_off")
    store = open_store(writer=True)
    first = store.append([received(event)])
    again = store.append([received(event), received(event)])
    assert first.accepted == [event["event_id"]]
    assert again.accepted == [] and again.duplicates == [event["event_id"]] * 2
    assert store.counts() == {"events": 1, "dead_letters": 0}


def test_same_id_other_body_is_a_conflict_and_the_original_is_kept(open_store: OpenStore) -> None:
    original = make_event("stage.signed_off")
    changed = {**original, "payload": {**original["payload"], "body": "authority"}}
    store = open_store(writer=True)
    store.append([received(original)])
    outcome = store.append([received(changed, "f.jsonl:7", sender="borough-a")])
    (stored,) = list(store.events())
    (letter,) = store.dead_letters()
    assert outcome.accepted == [] and outcome.duplicates == []
    reason = f"event_id: {original['event_id']} is already stored with a different body (the original is kept)"
    assert outcome.rejected == [("f.jsonl:7", (reason,))]
    assert stored["payload"]["body"] == "csmb"
    assert (letter["raw"], letter["origin"], letter["sender"]) == (line(changed), "f.jsonl:7", "borough-a")


def test_a_reject_is_dead_lettered_once_by_its_origin_and_bytes(open_store: OpenStore) -> None:
    def reject(raw: bytes, origin: str) -> Received:
        return Received(raw, origin, verdict(raw))

    batch = [reject(b"{bad", "f.jsonl:2"), reject(b"{bad", "f.jsonl:5"), reject(b"[]", "f.jsonl:9")]
    store = open_store(writer=True)
    first = store.append(batch)
    again = store.append(batch)
    assert [o for o, _ in first.rejected] == ["f.jsonl:2", "f.jsonl:5", "f.jsonl:9"] and first.already_dead_lettered == []
    assert again.already_dead_lettered == ["f.jsonl:2", "f.jsonl:5", "f.jsonl:9"]
    assert [d["origin"] for d in store.dead_letters()] == ["f.jsonl:2", "f.jsonl:5", "f.jsonl:9"]


def test_the_sender_is_recorded_with_events_and_dead_letters(open_store: OpenStore) -> None:
    event = make_event("stage.signed_off")
    store = open_store(writer=True)
    store.append([received(event, sender="borough-a"), Received(b"{bad", "f:1", verdict(b"{bad"))])
    assert store.senders_of([event["event_id"]]) == {event["event_id"]: "borough-a"}
    assert store.counts_by_sender() == {"events": {"borough-a": 1}, "dead_letters": {"unknown": 1}}
    assert [e["sender"] for e in store.events()] == ["borough-a"]


def test_a_reader_cannot_append(open_store: OpenStore) -> None:
    open_store(writer=True)  # creates the embedded store
    with pytest.raises(RuntimeError, match="read-only"):
        open_store().append([received(make_event("stage.signed_off"))])


def test_personal_data_is_sealed_and_the_key_holder_reads_it(open_store: OpenStore, backend: str, tmp_path: Path) -> None:
    event = make_event("consultation.response_received",
                       {"comment": "PLATYPUS-4471", "respondent": {"respondent_ref": "r-ZX81", "ethnic_group": "mixed"}})
    store = open_store(writer=True)
    store.append([received(event)])
    (read_back,) = list(store.events())
    (record,) = list(store.records())
    everything = stored_bytes_of(backend, tmp_path, open_store.url)
    assert b"PLATYPUS-4471" not in everything and b"r-ZX81" not in everything
    assert record["sealed"] and "comment" not in record["payload"]
    assert read_back["payload"]["comment"] == "PLATYPUS-4471"
    assert read_back["payload"]["respondent"]["respondent_ref"] == "r-ZX81"


def test_erasure_shreds_the_key_and_redacts_dead_letters(open_store: OpenStore, backend: str, tmp_path: Path) -> None:
    comment, ref = f"PLATYPUS-{uuid.uuid4().hex}", f"r-{uuid.uuid4().hex}"  # unique: the cluster is shared by the session
    mine = make_event("consultation.response_received",
                      {"comment": comment, "respondent": {"respondent_ref": ref, "gender": "other"}})
    theirs = make_event("consultation.response_received", {"respondent": {"respondent_ref": "r-other"}})
    conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}
    erase = make_event("respondent.erasure_requested", {"respondent_ref": ref})
    store = open_store(writer=True)
    store.append([received(mine), received(theirs)])
    store.append([received(conflict)])  # a dead letter carrying the comment in its raw bytes
    (subject,) = [r["subject"] for r in store.records() if r["event_id"] == mine["event_id"]]
    (key,) = store.live_keys([subject]).values()
    outcome = store.append([received(erase)])
    events = {e["event_id"]: e for e in store.events()}
    (letter,) = store.dead_letters()
    assert (outcome.erasures, outcome.redacted) == (1, 1)
    assert "comment" not in events[mine["event_id"]]["payload"] and "respondent" not in events[mine["event_id"]]["payload"]
    assert events[mine["event_id"]]["payload"]["themes"] == mine["payload"]["themes"]
    assert events[theirs["event_id"]]["payload"]["respondent"]["respondent_ref"] == "r-other"
    assert letter["raw"] is None and letter["reasons"]
    assert store.redaction_mark() == 1 and store.live_keys([subject]) == {}
    everything = stored_bytes_of(backend, tmp_path, open_store.url, after_erasure=True)
    assert comment.encode() not in everything and ref.encode() not in everything
    assert key not in everything  # the shredded key is gone from the files (tables, and WAL for PostgreSQL)


def test_an_erased_respondent_arriving_late_is_stored_without_personal_data(open_store: OpenStore) -> None:
    erase = make_event("respondent.erasure_requested", {"respondent_ref": "r-late"})
    late = make_event("consultation.response_received", {"comment": "WOMBAT", "respondent": {"respondent_ref": "r-late"}})
    store = open_store(writer=True)
    store.append([received(erase)])
    store.append([received(late)])
    (_, stored) = list(store.records())
    assert stored["sealed"] is None and stored["subject"]


def test_the_first_event_sets_the_kind_of_data(open_store: OpenStore) -> None:
    store = open_store(writer=True)
    assert store.data_kind() is None
    store.append([received(make_event("stage.signed_off"))])
    assert store.data_kind() == "real" and not store.synthetic


def test_cycles_and_event_ids_between(open_store: OpenStore) -> None:
    events = [make_event("stage.signed_off", cycle=c) for c in ("2027-28", "2026-27", "2027-28")]
    store = open_store(writer=True)
    for event in events:  # one batch each: the embedded store knows cycles per segment
        store.append([received(event)])
    assert store.cycles() == ["2026-27", "2027-28"] and store.cycles(after=2) == ["2027-28"]
    assert store.event_ids_between(2, 3) == [(2, events[1]["event_id"]), (3, events[2]["event_id"])]
    assert store.positions_of([events[0]["event_id"]]) == {events[0]["event_id"]: 1}


def test_a_sender_retracts_only_its_own_events(open_store: OpenStore) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": "E09000015"})

    def retraction() -> dict:
        return make_event("event.retracted", {"target_event_id": audit["event_id"], "reason": "sent in error"})

    store = open_store(writer=True)
    store.append([received(audit, sender="cdrp-harrow")])
    refused = store.append([received(retraction(), "r1", sender="webhooks")])
    own = store.append([received(retraction(), "r2", sender="cdrp-harrow")])
    assert refused.accepted == [] and len(own.accepted) == 1
    (letter,) = store.dead_letters()
    assert letter["reasons"] == [
        f"payload.target_event_id: sender webhooks may retract only events it sent itself ({audit['event_id']}"
        " was sent by cdrp-harrow); ask its sender or the data team to retract it"
    ]


def test_a_replayed_dead_letter_is_marked_once(open_store: OpenStore) -> None:
    store = open_store(writer=True)
    store.append([Received(b"{bad", "f:1", verdict(b"{bad"))])
    (letter,) = store.dead_letters()
    store.mark_replayed({letter["id"]: 7}, EPOCH)
    store.mark_replayed({letter["id"]: 9}, EPOCH)  # already replayed: kept as first marked
    (marked,) = store.dead_letters()
    assert (marked["replayed_position"], marked["replayed_at"]) == (7, "2027-01-05T09:00:00.000000Z")


def test_an_old_version_is_stored_as_sent_and_upcast_on_read(open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def signed_off_v0_to_v1(body: dict[str, Any]) -> dict[str, Any]:
        payload = dict(body["payload"])
        payload["body"] = payload.pop("signed_off_by")
        return {**body, "payload": payload}

    monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)
    event = make_event("stage.signed_off", {"stage": "brief"}, schema_version=0, occurred_at="2026-03-20T10:00:00Z")
    event["payload"]["signed_off_by"] = event["payload"].pop("body")
    store = open_store(writer=True)
    store.append([received(event)])
    (record,) = list(store.records())
    (read,) = list(store.events())
    assert record["schema_version"] == 0 and record["payload"]["signed_off_by"] == "csmb"
    assert read["schema_version"] == 1 and read["payload"]["body"] == "csmb"


def test_synthetic_and_real_events_never_share_a_store(open_store: OpenStore) -> None:
    store = open_store(writer=True)
    store.append([received(make_event("stage.signed_off", synthetic=True))])
    with pytest.raises(MixedData, match="synthetic and real events never share a store"):
        store.append([received(make_event("stage.signed_off"))])
    outcome = store.append([received(make_event("stage.signed_off"), "w:1")], other_kind="dead_letter")
    assert outcome.accepted == [] and [o for o, _ in outcome.rejected] == ["w:1"]
    assert store.synthetic and store.counts() == {"events": 1, "dead_letters": 1}


# --- PostgreSQL only ------------------------------------------------------------------------------


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
