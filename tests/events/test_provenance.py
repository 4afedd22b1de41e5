"""The store records who delivered every event and dead letter, apart from the ``source`` an event
names itself; a sender retracts only its own events; stores from before keep "unknown".
Tests taking ``open_store`` run on both store backends (tests/support/stores.py); the store from
before senders is an embedded one (its SQLite index edited), as no PostgreSQL store predates them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from events.contract.validation import Rejected, verdict
from events.storage.store import EventStore, Received
from tests.support.events import line, make_event
from tests.support.stores import OpenStore

HARROW = "E09000015"


def delivered(event: dict | bytes, sender: str | None, origin: str = "test") -> Received:
    raw = event if isinstance(event, bytes) else line(event)
    return Received(raw, origin, verdict(raw), sender)


def retraction_of(event: dict) -> dict:
    return make_event("event.retracted", {"target_event_id": event["event_id"], "reason": "sent in error"})


def test_each_event_and_dead_letter_records_its_sender_not_its_source(open_store: OpenStore) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": HARROW}, source="cdrp-barnet")  # a claim, not who sent it
    with open_store(writer=True) as store:
        store.append([delivered(audit, "cdrp-harrow"), delivered(b"not json", "cdrp-harrow", "bad")])
        (record,) = store.records()
        (event,) = store.events()
        (letter,) = store.dead_letters()
        assert record["sender"] == "cdrp-harrow" and record["source"] == "cdrp-barnet"
        assert event["sender"] == "cdrp-harrow"
        assert letter["sender"] == "cdrp-harrow"
        assert store.counts_by_sender() == {"events": {"cdrp-harrow": 1}, "dead_letters": {"cdrp-harrow": 1}}


def test_a_sender_cannot_retract_another_senders_event(open_store: OpenStore) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": HARROW})
    with open_store(writer=True) as store:
        store.append([delivered(audit, "cdrp-harrow")])
        outcome = store.append([delivered(retraction_of(audit), "webhooks", "r1")])
        assert outcome.accepted == []
        (letter,) = store.dead_letters()
        assert letter["sender"] == "webhooks"
        assert letter["reasons"] == [
            f"payload.target_event_id: sender webhooks may retract only events it sent itself ({audit['event_id']}"
            " was sent by cdrp-harrow); ask its sender or the data team to retract it"
        ]
        own = store.append([delivered(retraction_of(audit), "cdrp-harrow", "r2")])
        by_operator = store.append([delivered(retraction_of(audit), "operator:alice", "r3")])
        assert len(own.accepted) == 1 and len(by_operator.accepted) == 1


def test_a_retraction_in_the_same_batch_as_its_target_is_checked_too(open_store: OpenStore) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": HARROW})
    with open_store(writer=True) as store:
        outcome = store.append([delivered(audit, "cdrp-harrow", "a"), delivered(retraction_of(audit), "webhooks", "r")])
        assert outcome.accepted == [audit["event_id"]]
        assert [origin for origin, _ in outcome.rejected] == ["r"]


def test_a_retraction_names_its_target_in_any_spelling(open_store: OpenStore) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": HARROW})
    shouted = make_event("event.retracted", {"target_event_id": audit["event_id"].upper(), "reason": "x"})
    with open_store(writer=True) as store:
        store.append([delivered(audit, "cdrp-harrow")])
        assert store.append([delivered(shouted, "webhooks")]).accepted == []


def test_a_store_from_before_senders_were_recorded_says_unknown(tmp_path: Path) -> None:
    old = make_event("stage.signed_off")
    with EventStore(tmp_path, writer=True) as store:
        store.append([delivered(old, None), delivered(b"{", None, "bad")])
    db = sqlite3.connect(tmp_path / "store.sqlite")  # as a store of the version before: no sender columns
    for table in ("event_ids", "dead_letters"):
        db.execute(f"ALTER TABLE {table} DROP COLUMN sender")
    db.commit()
    db.close()
    with EventStore(tmp_path) as reader:  # a reader copes before any writer has added the columns
        assert reader.counts_by_sender() == {"events": {"unknown": 1}, "dead_letters": {"unknown": 1}}
        assert [d["sender"] for d in reader.dead_letters()] == [None]
    with EventStore(tmp_path, writer=True) as store:
        new = make_event("stage.signed_off")
        store.append([delivered(new, "operator:alice")])
        assert [e["sender"] for e in store.events()] == [None, "operator:alice"]
        assert store.counts_by_sender()["events"] == {"operator:alice": 1, "unknown": 1}
        assert len(store.dead_letters(sender="unknown")) == 1 and store.dead_letters(sender="operator:alice") == []


def test_the_counts_by_sender_add_up_what_each_append_stored(open_store: OpenStore) -> None:
    """Kept as the appends go (a row per segment and sender, or a row per sender in PostgreSQL), not counted
    event by event when asked: a duplicate adds nothing, a conflict counts as its sender's dead letter."""
    audits = [make_event("cdrp.audit_submitted", {"borough": HARROW}) for _ in range(3)]
    conflict = {**audits[1], "payload": {**audits[1]["payload"], "borough": "E09000003"}}  # same id, another body
    with open_store(writer=True) as store:
        store.append([delivered(audit, "cdrp-harrow", f"a{i}") for i, audit in enumerate(audits[:2])])
        store.append([delivered(audits[0], "cdrp-harrow", "again"), delivered(audits[2], "cdrp-harrow", "a2"),
                      delivered(make_event("stage.signed_off"), None, "s"), delivered(b"{", "webhooks", "bad")])
        store.append([delivered(conflict, "webhooks", "c")])
        assert store.counts_by_sender() == {"events": {"cdrp-harrow": 3, "unknown": 1}, "dead_letters": {"webhooks": 2}}
        assert store.counts() == {"events": 4, "dead_letters": 2}
        assert store.counts()["events"] == len(list(store.records()))


def test_a_store_from_before_segment_senders_counts_its_old_segments_once(tmp_path: Path) -> None:
    """Segments committed before ``segment_senders`` existed: a reader groups the event ids instead, and the
    first writer of this version counts each such segment once, from the index."""
    with EventStore(tmp_path, writer=True) as store:
        store.append([delivered(make_event("stage.signed_off"), "operator:alice")])
        store.append([delivered(make_event("stage.signed_off"), None, "u"), delivered(make_event("stage.signed_off"), "operator:bob", "b")])
        store.append([delivered(make_event("stage.signed_off"), "operator:bob")])
        expected = store.counts_by_sender()
    assert expected["events"] == {"operator:alice": 1, "operator:bob": 2, "unknown": 1}

    def segment_senders() -> list[tuple]:
        with sqlite3.connect(tmp_path / "store.sqlite") as db:
            return db.execute("SELECT first_position, sender, events FROM segment_senders ORDER BY 1, 2").fetchall()

    counted = segment_senders()
    assert counted == [(1, "operator:alice", 1), (2, "operator:bob", 1), (2, "unknown", 1), (4, "operator:bob", 1)]
    for forget in ("DELETE FROM segment_senders WHERE first_position = 2", "DROP TABLE segment_senders"):
        db = sqlite3.connect(tmp_path / "store.sqlite")  # as a store of the version before left it, or partly so
        db.execute(forget)
        db.commit()
        db.close()
        with EventStore(tmp_path) as reader:
            assert reader.counts_by_sender() == expected
        with EventStore(tmp_path, writer=True) as store:
            assert store.counts_by_sender() == expected
        assert segment_senders() == counted


def test_an_event_of_unknown_origin_is_retracted_only_by_the_data_team(open_store: OpenStore) -> None:
    old = make_event("stage.signed_off")
    with open_store(writer=True) as store:
        store.append([delivered(old, None)])
        assert store.append([delivered(retraction_of(old), "webhooks", "w")]).accepted == []
        assert len(store.append([delivered(retraction_of(old), "operator:bob", "o")]).accepted) == 1


def test_dead_letters_filter_by_sender(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append([delivered(b"1", "a-sender", "x"), delivered(b"2", "b-sender", "y"), delivered(b"3", "a-sender", "z")])
        assert [d["origin"] for d in store.dead_letters(sender="a-sender")] == ["x", "z"]
        assert [d["origin"] for d in store.dead_letters()] == ["x", "y", "z"]
        assert isinstance(verdict(b"1"), Rejected)
        assert all(json.loads(json.dumps(d["reasons"])) for d in store.dead_letters())
