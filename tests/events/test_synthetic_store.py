"""A store holds synthetic or real events, never both (events/storage/store.py).

The first event stored sets the store's kind; an event of the other kind is
refused before anything of its batch is stored (``MixedData``), or, for the
stream worker, dead-lettered with a reason naming ``synthetic``.

Tests taking ``open_store`` run on both store backends (tests/support/stores.py); those that
read or edit the embedded store's SQLite index, or open two stores, stay on it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.contract.validation import Accepted, Rejected, verdict
from events.storage.store import REAL, SYNTHETIC, EventStore, MixedData, Received
from tests.support.events import line, make_event
from tests.support.stores import OpenStore

RECORDED = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)  # knowledge time, pinned


def received(*events: dict, origin: str = "batch.jsonl") -> list[Received]:
    return [Received(line(e), f"{origin}:{n}", verdict(line(e), RECORDED)) for n, e in enumerate(events, start=1)]


def real(**envelope: object) -> dict:
    return make_event("stage.signed_off", **envelope)


def synthetic(**envelope: object) -> dict:
    return make_event("stage.signed_off", synthetic=True, **envelope)


def stored_kind(root: Path) -> str | None:
    row = sqlite3.connect(root / "store.sqlite").execute("SELECT value FROM meta WHERE key = 'data'").fetchone()
    return None if row is None else row[0]


def test_the_first_event_sets_the_kind_and_it_survives_reopening(tmp_path: Path) -> None:
    with EventStore(tmp_path / "demo", writer=True) as store:
        assert store.data_kind() is None and not store.synthetic
        store.append(received(synthetic()), RECORDED)
        assert store.data_kind() == SYNTHETIC and store.synthetic
    with EventStore(tmp_path / "real", writer=True) as store:
        store.append(received(real()), RECORDED)
    assert stored_kind(tmp_path / "demo") == SYNTHETIC and stored_kind(tmp_path / "real") == REAL
    with EventStore(tmp_path / "demo") as reader:  # read-only, as builds open it
        assert reader.synthetic
    with EventStore(tmp_path / "real") as reader:
        assert not reader.synthetic and reader.data_kind() == REAL


def test_a_synthetic_event_is_refused_by_a_store_of_real_events(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append(received(real()), RECORDED)
        with pytest.raises(MixedData) as refused:
            store.append(received(real(), synthetic(), synthetic(), origin="demo.jsonl"), RECORDED)
        assert store.counts() == {"events": 1, "dead_letters": 0}  # nothing of the batch, not even its real event
    message = str(refused.value)
    assert message.startswith("demo.jsonl:2: synthetic: the event is synthetic")
    assert "holds real events" in message and "another PLANNING_HOME" in message and "(1 more" in message
    assert refused.value.refused == 2


def test_a_real_event_is_refused_by_a_store_of_synthetic_events(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append(received(synthetic()), RECORDED)
        with pytest.raises(MixedData) as refused:
            store.append(received(real(), origin="real.jsonl"), RECORDED)
        assert store.counts()["events"] == 1
    assert 'real.jsonl:1: synthetic: the event is real (no "synthetic": true)' in str(refused.value)
    assert "holds synthetic events" in str(refused.value)


def test_a_first_batch_of_both_kinds_is_refused_whole(tmp_path: Path) -> None:
    with EventStore(tmp_path, writer=True) as store:
        with pytest.raises(MixedData) as refused:
            store.append(received(synthetic(), real()), RECORDED)
        assert store.counts()["events"] == 0 and store.data_kind() is None
    assert "batch.jsonl:2: synthetic: the event is real" in str(refused.value)
    assert "is empty and this batch begins with synthetic events" in str(refused.value)
    assert stored_kind(tmp_path) is None


def test_a_duplicate_of_the_other_kind_is_refused_not_taken_for_the_same_event(open_store: OpenStore) -> None:
    event = real()
    with open_store(writer=True) as store:
        store.append(received(event), RECORDED)
        with pytest.raises(MixedData):
            store.append(received({**event, "synthetic": True}), RECORDED)
        again = store.append(received({**event, "synthetic": False}), RECORDED)  # false is real: the same event
    assert again.duplicates == [event["event_id"]]


def test_the_worker_mode_dead_letters_the_other_kind_and_stores_the_rest(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append(received(real()), RECORDED)
        outcome = store.append(received(real(), synthetic(), origin="planning.timetable/0@5"), RECORDED,
                               other_kind="dead_letter")
        letters = store.dead_letters()
        assert store.counts() == {"events": 2, "dead_letters": 1}
    assert len(outcome.accepted) == 1
    assert [origin for origin, _ in outcome.rejected] == ["planning.timetable/0@5:2"]
    assert letters[0]["reasons"][0].startswith("synthetic: the event is synthetic")
    assert letters[0]["raw"] is not None  # kept, as any dead letter, for the data team


def test_every_stored_synthetic_event_reads_back_labelled(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append(received(synthetic(), synthetic()), RECORDED)
        events = list(store.events())
        records = list(store.records())
    assert [e["synthetic"] for e in events] == [True, True]
    assert all(r["synthetic"] is True for r in records)


def test_a_real_record_carries_no_label(open_store: OpenStore) -> None:
    with open_store(writer=True) as store:
        store.append(received(real(), real(synthetic=False)), RECORDED)
        records = list(store.records())
        events = list(store.events())
    assert all("synthetic" not in r for r in records) and all("synthetic" not in e for e in events)


def test_a_store_from_before_the_label_takes_the_kind_of_its_first_event(tmp_path: Path) -> None:
    """The demo marked its events by their source alone; such a store is synthetic, and a writer records it."""
    with EventStore(tmp_path, writer=True) as store:
        store.append(received(real(source="synthetic:planning-secretariat/2027-28")), RECORDED)
    db = sqlite3.connect(tmp_path / "store.sqlite")
    db.execute("DELETE FROM meta WHERE key = 'data'")  # as a store written before the mark existed
    db.commit()
    db.close()
    with EventStore(tmp_path) as reader:
        assert reader.synthetic
    assert stored_kind(tmp_path) is None
    with EventStore(tmp_path, writer=True) as store:
        with pytest.raises(MixedData):
            store.append(received(real()), RECORDED)
    assert stored_kind(tmp_path) == SYNTHETIC


def test_the_label_is_a_boolean_and_not_part_of_what_the_event_means() -> None:
    event = real()
    labelled, unlabelled = verdict(line({**event, "synthetic": True}), RECORDED), verdict(line(event), RECORDED)
    assert isinstance(labelled, Accepted) and isinstance(unlabelled, Accepted)
    assert labelled.body_sha256 == unlabelled.body_sha256
    refused = verdict(json.dumps({**event, "synthetic": "yes"}).encode(), RECORDED)
    assert isinstance(refused, Rejected) and any(r.startswith("synthetic:") for r in refused.reasons), refused
