"""The event store's behaviours, on both backends: idempotent by event_id (and dead letters by origin
and bytes), conflicts dead-lettered, rejects never losing their neighbours, personal data sealed and
shredded on erasure, retractions, replays, upcasting, one kind of data per store.

Every test here takes the ``open_store`` fixture (tests/support/stores.py), so it runs once on the
embedded store and once on the PostgreSQL one, opened through ``open_store`` as the pipeline opens
it. What only one backend has is tested beside it: segment files, the writer lock and crash
safety in test_store_embedded.py; migrations, the bulk copy and many writers in
test_store_postgres.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.contract import upcasting
from events.storage import personal_data
from events.contract.validation import verdict
from events.storage.store import MixedData, Received
from tests.support.events import line, make_event
from tests.support.stores import OpenStore, stored_bytes_of

EPOCH = datetime(2027, 1, 5, 9, 0, tzinfo=timezone.utc)  # a pinned knowledge time


def received(event: dict, origin: str = "test", sender: str | None = None) -> Received:
    raw = line(event)
    return Received(raw, origin, verdict(raw), sender)


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


def test_a_pinned_knowledge_time_is_the_recorded_at(open_store: OpenStore) -> None:
    store = open_store(writer=True)
    store.append([received(make_event("stage.signed_off"))], recorded_at=EPOCH)
    assert [e["recorded_at"] for e in store.events()] == ["2027-01-05T09:00:00.000000Z"]


def test_same_id_same_body_is_a_duplicate_stored_once(open_store: OpenStore) -> None:
    event = make_event("stage.signed_off")
    store = open_store(writer=True)
    first = store.append([received(event)])
    again = store.append([received(event), received(event)])
    assert first.accepted == [event["event_id"]]
    assert again.accepted == [] and again.duplicates == [event["event_id"]] * 2
    assert store.counts() == {"events": 1, "dead_letters": 0}


def test_duplicate_within_one_batch_is_stored_once(open_store: OpenStore) -> None:
    event = make_event("stage.signed_off")
    store = open_store(writer=True)
    outcome = store.append([received(event), received(event)])
    assert (len(outcome.accepted), len(outcome.duplicates)) == (1, 1)
    assert store.counts()["events"] == 1


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
    again = store.append([*batch, reject(b"{bad", "f.jsonl:2")])  # the same batch, with one line twice
    edited = store.append([reject(b"[1]", "f.jsonl:9")])  # the same origin, other bytes: another line
    letters = [(letter["origin"], letter["raw"]) for letter in store.dead_letters()]
    assert (first.rejected, first.already_dead_lettered) == ([(r.origin, r.verdict.reasons) for r in batch], [])
    assert len(again.rejected) == 4 and again.already_dead_lettered == ["f.jsonl:2", "f.jsonl:5", "f.jsonl:9", "f.jsonl:2"]
    assert edited.already_dead_lettered == []
    assert letters == [("f.jsonl:2", b"{bad"), ("f.jsonl:5", b"{bad"), ("f.jsonl:9", b"[]"), ("f.jsonl:9", b"[1]")]


def test_a_redacted_dead_letter_is_known_by_its_origin_and_reasons(open_store: OpenStore) -> None:
    """After an erasure redacts a dead letter's bytes, the same bad line again adds nothing, but another
    broken line at that origin (other reasons) is still a dead letter of its own."""
    mine = make_event("consultation.response_received", {"channel": "carrier_pigeon"})  # respondent r-8812
    bad = line(mine)
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": "r-8812"})
    other = b'{"event_type": "stage.signed_off"}'
    store = open_store(writer=True)
    store.append([Received(bad, "daily.jsonl:3", verdict(bad))])
    store.append([received(erasure)])
    again = store.append([Received(bad, "daily.jsonl:3", verdict(bad))])
    edited = store.append([Received(other, "daily.jsonl:3", verdict(other))])
    letters = [(letter["origin"], letter["raw"]) for letter in store.dead_letters()]
    assert again.already_dead_lettered == ["daily.jsonl:3"]
    assert edited.already_dead_lettered == [] and edited.rejected[0][0] == "daily.jsonl:3"
    assert letters == [("daily.jsonl:3", None), ("daily.jsonl:3", other)]


def test_rejects_in_a_batch_do_not_lose_their_accepted_neighbours(open_store: OpenStore) -> None:
    good = [make_event("stage.signed_off") for _ in range(2)]
    batch = [received(good[0]), Received(b"{bad", "x:2", verdict(b"{bad")), received(good[1])]
    store = open_store(writer=True)
    outcome = store.append(batch)
    assert outcome.accepted == [g["event_id"] for g in good]
    assert store.counts() == {"events": 2, "dead_letters": 1}
    assert store.dead_letters()[0]["reasons"][0].startswith("line: not valid JSON")


def test_the_sender_is_recorded_with_events_and_dead_letters(open_store: OpenStore) -> None:
    event = make_event("stage.signed_off")
    store = open_store(writer=True)
    store.append([received(event, sender="borough-a"), Received(b"{bad", "f:1", verdict(b"{bad"))])
    assert store.senders_of([event["event_id"]]) == {event["event_id"]: "borough-a"}
    assert store.counts_by_sender() == {"events": {"borough-a": 1}, "dead_letters": {"unknown": 1}}
    assert [e["sender"] for e in store.events()] == ["borough-a"]


def test_a_reader_sees_what_a_writer_stored_and_cannot_append(open_store: OpenStore) -> None:
    writer = open_store(writer=True)
    writer.append([received(make_event("stage.signed_off"))])
    reader = open_store()
    assert reader.high_water_mark() == 1
    with pytest.raises(RuntimeError, match="read-only"):
        reader.append([received(make_event("stage.signed_off"))])


def test_personal_data_is_sealed_and_the_key_holder_reads_it(open_store: OpenStore, tmp_path: Path) -> None:
    comment, ref = f"PLATYPUS-{uuid.uuid4().hex}", f"r-{uuid.uuid4().hex}"  # unique: the cluster is shared by the session
    event = make_event("consultation.response_received",
                       {"comment": comment, "respondent": {"respondent_ref": ref, "ethnic_group": "mixed"}})
    store = open_store(writer=True)
    store.append([received(event)])
    (read_back,) = list(store.events())
    (record,) = list(store.records())
    everything = stored_bytes_of(open_store.url, tmp_path)
    assert comment.encode() not in everything and ref.encode() not in everything
    assert record["sealed"] and "comment" not in record["payload"]
    assert read_back["payload"]["comment"] == comment  # the key holder can still read it
    assert read_back["payload"]["respondent"]["respondent_ref"] == ref


def test_erasure_shreds_the_respondent_everywhere_in_the_store(open_store: OpenStore, tmp_path: Path) -> None:
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
    assert comment.encode() in stored_bytes_of(open_store.url, tmp_path), "the dead letter holds it before erasure"
    outcome = store.append([received(erase)])
    events = {e["event_id"]: e for e in store.events()}
    (letter,) = store.dead_letters()
    assert (outcome.erasures, outcome.redacted) == (1, 1)
    assert "comment" not in events[mine["event_id"]]["payload"] and "respondent" not in events[mine["event_id"]]["payload"]
    assert events[mine["event_id"]]["payload"]["themes"] == mine["payload"]["themes"]  # still counts
    assert events[theirs["event_id"]]["payload"]["respondent"]["respondent_ref"] == "r-other"
    assert letter["raw"] is None and letter["reasons"]  # why it was rejected is kept
    assert store.redaction_mark() == 1 and store.live_keys([subject]) == {}
    everything = stored_bytes_of(open_store.url, tmp_path, after_erasure=True)
    assert comment.encode() not in everything and ref.encode() not in everything
    assert key not in everything  # the shredded key is gone from the files (tables, and WAL for PostgreSQL)


def test_an_erased_respondent_arriving_late_is_stored_without_personal_data(open_store: OpenStore, tmp_path: Path) -> None:
    comment, ref = f"WOMBAT-{uuid.uuid4().hex}", f"r-late-{uuid.uuid4().hex}"
    erase = make_event("respondent.erasure_requested", {"respondent_ref": ref})
    late = make_event("consultation.response_received", {"comment": comment, "respondent": {"respondent_ref": ref}})
    store = open_store(writer=True)
    store.append([received(erase)])
    store.append([received(late)])
    (_, stored) = list(store.records())
    assert stored["sealed"] is None and stored["subject"]
    assert comment.encode() not in stored_bytes_of(open_store.url, tmp_path)


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
    assert store.known_event_ids([events[0]["event_id"], str(uuid.uuid4())]) == {events[0]["event_id"]}


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


def test_new_respondents_subjects_sort_in_the_order_they_were_first_stored(open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subject starts with the time its key was made, so the unique index on subjects grows at one edge."""
    ticks = iter(range(1_800_000_000_000_000_000, 1_800_000_000_100_000_000, 1_000_000))  # one millisecond apart

    class Clock:
        @staticmethod
        def time_ns() -> int:
            return next(ticks)

    monkeypatch.setattr(personal_data, "time", Clock)
    refs = [f"r-{uuid.uuid4().hex}" for _ in range(5)]  # unique: the cluster is shared by the session
    store = open_store(writer=True)
    for ref in reversed(refs):  # references in no particular order
        store.append([received(make_event("consultation.response_received", {"respondent": {"respondent_ref": ref}}))])
    subjects = [r["subject"] for r in sorted(store.records(), key=lambda r: r["position"])]
    assert subjects == sorted(subjects) and len(set(subjects)) == 5
    assert all(s.startswith("s-") and str(uuid.UUID(s[2:])) == s[2:] for s in subjects)
