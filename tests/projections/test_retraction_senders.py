"""A retraction counts in a build only if its sender may retract its target, also when it arrived
before its target (so the store could not check it then)."""

from __future__ import annotations

from pathlib import Path

from datetime import datetime, timezone

from events.contract.instants import Instants
from events.contract.validation import verdict
from events.storage.store import EventStore, Received
from projections.building.retractions import permitted
from projections.building.staging import stage_cycle
from projections.connection import connect
from tests.support.events import line, make_event

HARROW = "E09000015"
KNOWN_BY = datetime(2026, 8, 1, tzinfo=timezone.utc)  # knowledge time pinned before the build's as_of


def delivered(event: dict, sender: str | None) -> Received:
    raw = line(event)
    return Received(raw, event["event_id"], verdict(raw), sender)


def staged_ids(store: EventStore, path: Path) -> set[str]:
    stage_cycle(store, path, "2027-28", Instants.parse("2026-09-01", "2026-09-01"))
    with connect(path, read_only=True) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM audits").fetchall()}


def test_a_retraction_sent_before_another_senders_event_does_not_take_it_out(tmp_path: Path) -> None:
    audit = make_event("cdrp.audit_submitted", {"borough": HARROW}, occurred_at="2026-07-01T10:00:00Z")
    hostile = make_event("event.retracted", {"target_event_id": audit["event_id"], "reason": "x"}, occurred_at="2026-07-01T11:00:00Z")
    own = make_event("event.retracted", {"target_event_id": audit["event_id"], "reason": "y"}, occurred_at="2026-07-01T12:00:00Z")
    with EventStore(tmp_path / "store", writer=True) as store:
        store.append([delivered(hostile, "webhooks")], KNOWN_BY)  # the target is not stored yet: accepted
        store.append([delivered(audit, "cdrp-harrow")], KNOWN_BY)
        assert audit["event_id"] in staged_ids(store, tmp_path / "one.duckdb")
        store.append([delivered(own, "cdrp-harrow")], KNOWN_BY)
        assert audit["event_id"] not in staged_ids(store, tmp_path / "two.duckdb")


def test_permitted_keeps_own_operator_and_unknown_retractions_and_targets_not_stored() -> None:
    a, b, r1, r2, r3, r4 = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(6))
    senders = {a: "cdrp-harrow", r1: "cdrp-harrow", r2: "webhooks", r3: "operator:alice", r4: None}
    pairs = [(r1, a), (r2, a), (r3, a), (r4, a), (r2, b)]
    assert permitted(pairs, senders) == [(r1, a), (r3, a), (r4, a), (r2, b)]
