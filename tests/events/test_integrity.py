"""Corruption detection as a person meets it: a flipped byte, a truncated segment, a deleted one; and the
segment a crash that lost SQLite's WAL leaves behind, quarantined and recovered."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.contract.validation import verdict
from events.storage.digests import file_digest
from events.storage.integrity import DamagedSegment, ensure_intact, verify
from events.storage.recovery import recover
from events.storage.store import EventStore, Received
from tests.support.events import line, make_event

RECORDED_AT = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
LATER = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def received(event: dict, sender: str | None = None) -> Received:
    raw = line(event)
    return Received(raw, "test", verdict(raw, RECORDED_AT), sender)


def responses(count: int, ref_prefix: str) -> list[dict]:
    return [make_event("consultation.response_received",
                       {"respondent": {"respondent_ref": f"{ref_prefix}-{i}", "age_band": "16-24", "gender": "female",
                                       "ethnic_group": "black", "disability": "no"}, "comment": f"comment {ref_prefix}-{i}"})
            for i in range(count)]


def store_of(root: Path, batches: int, size: int = 50) -> list[list[dict]]:
    written = []
    with EventStore(root, writer=True) as store:
        for b in range(batches):
            events = responses(size, f"b{b}")
            store.append([received(e) for e in events], recorded_at=RECORDED_AT)
            written.append(events)
    return written


def segment_files(root: Path) -> list[Path]:
    return sorted((root / "segments").glob("*.jsonl"))


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(b'"borough":"E09000012"') + len('"borough":"E0900001')
    data[at] = ord("3")  # E09000012 -> E09000013: still valid JSON, still a borough
    path.write_bytes(bytes(data))


def cut_lines(path: Path, lines: int) -> None:
    kept = path.read_bytes().splitlines(keepends=True)[:-lines]
    path.write_bytes(b"".join(kept))


def test_the_index_records_each_segments_digest_and_size_when_it_is_written(tmp_path: Path) -> None:
    store_of(tmp_path, 2)
    with EventStore(tmp_path) as store:
        recorded = {(s.path.name, s.sha256, s.size) for s in store.segments()}
    assert recorded == {(p.name, *file_digest(p)) for p in segment_files(tmp_path)}


def test_verify_names_a_flipped_a_truncated_and_a_deleted_segment_and_their_events(tmp_path: Path) -> None:
    written = store_of(tmp_path, 4)
    first, second, third, fourth = segment_files(tmp_path)
    with EventStore(tmp_path) as store:
        assert verify(store).intact
    flip_one_byte(first)
    cut_lines(second, 20)
    third.unlink()
    with EventStore(tmp_path) as store:
        found = verify(store)
    assert not found.intact
    broken = {b.segment.path.name: b for b in found.broken}
    assert set(broken) == {first.name, second.name, third.name}
    assert "bytes changed" in broken[first.name].problem
    assert broken[second.name].problem.startswith("truncated")
    assert broken[second.name].unreadable == list(range(81, 101))  # the 20 lines cut off
    assert broken[third.name].problem == "the file is missing"
    for index, name in ((0, first.name), (1, second.name), (2, third.name)):
        assert broken[name].event_ids == [e["event_id"] for e in written[index]]
    assert fourth.name not in broken


def test_records_edited_into_other_valid_json_of_the_same_length_are_found(tmp_path: Path) -> None:
    store_of(tmp_path, 1)
    (segment,) = segment_files(tmp_path)
    text = segment.read_text()
    edited = text.replace('"channel":"online_survey"', '"channel":"online_surveX"', 30)
    assert edited != text and len(edited) == len(text)
    segment.write_text(edited)
    with EventStore(tmp_path) as store:
        with pytest.raises(DamagedSegment, match=rf"segment {segment.name} \(positions 1–50, 50 events\) is damaged"):
            ensure_intact(store.segments())
        assert [b.segment.path.name for b in verify(store).broken] == [segment.name]


def test_a_segment_file_no_commit_refers_to_is_reported(tmp_path: Path) -> None:
    store_of(tmp_path, 1)
    shutil.copy(segment_files(tmp_path)[0], tmp_path / "segments" / "000000000051-000000000100.jsonl")
    with EventStore(tmp_path) as store:
        found = verify(store)
    assert found.uncommitted == ["000000000051-000000000100.jsonl"] and not found.intact


def test_a_store_from_before_digests_gets_them_once_trusted_as_found(tmp_path: Path) -> None:
    store_of(tmp_path, 2)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # as an older version left it
        db.execute("ALTER TABLE segments DROP COLUMN sha256")
        db.execute("ALTER TABLE segments DROP COLUMN bytes")
    with EventStore(tmp_path) as store:
        assert [s.sha256 for s in store.segments()] == [None, None]
        assert verify(store).undigested == 2
    with EventStore(tmp_path, writer=True):
        pass
    with EventStore(tmp_path) as store:
        assert {(s.path.name, s.sha256, s.size) for s in store.segments()} == {(p.name, *file_digest(p)) for p in segment_files(tmp_path)}
        assert verify(store).intact


def lose_the_wal_after_first_batch(root: Path) -> tuple[list[dict], list[dict]]:
    """Two batches committed, then a crash that lost SQLite's WAL: the index is back to the first batch
    while the second batch's segment is complete on disk. The second batch holds new respondents and one
    already known (b0-0), and an erasure of b0-1."""
    first, second = responses(50, "b0"), responses(48, "b1")
    second += [make_event("consultation.response_received", {"respondent": {"respondent_ref": "b0-0"}}),
               make_event("respondent.erasure_requested", {"respondent_ref": "b0-1"})]
    with EventStore(root, writer=True) as store:
        store.append([received(e, "cdrp-harrow") for e in first], recorded_at=RECORDED_AT)
        with sqlite3.connect(root / "index-after-first.sqlite") as copy:
            store._db.backup(copy)
        store.append([received(e, "cdrp-brent") for e in second], recorded_at=LATER)
    for name in ("store.sqlite-wal", "store.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    (root / "index-after-first.sqlite").replace(root / "store.sqlite")
    return first, second


def test_a_committed_segment_the_lost_wal_forgot_is_quarantined_then_recovered(tmp_path: Path) -> None:
    first, second = lose_the_wal_after_first_batch(tmp_path)
    forgotten = segment_files(tmp_path)[1]
    with EventStore(tmp_path, writer=True) as store:  # the next writer: quarantines, never deletes
        store.append([received(e) for e in responses(5, "c")], recorded_at=LATER)
    assert (tmp_path / "quarantine" / forgotten.name).read_bytes()
    with EventStore(tmp_path) as store:
        found = verify(store)
        assert [(q.path.name, q.events, q.not_in_store) for q in found.quarantined] == [(forgotten.name, 50, 50)]
        assert not found.intact
    with EventStore(tmp_path, writer=True) as store:
        recovery = recover(store)
        again = recover(store)
        events = list(store.events())
        erased = store.vault.erased_among({"b0-1"})
    assert recovery.appended == 50 and again.appended == 0
    assert recovery.files[0].keys_lost == 48  # the 48 respondents first seen in the forgotten batch
    ids = [e["event_id"] for e in events]
    assert sorted(ids) == sorted({e["event_id"] for e in first + second} | set(ids[50:55]))  # none lost
    assert len(ids) == len(set(ids)) == 105  # none duplicated
    back = {e["event_id"]: e for e in events}
    for event in second:
        assert back[event["event_id"]]["recorded_at"] == "2026-11-02T09:00:00.000000Z"
        assert back[event["event_id"]]["sender"] == "cdrp-brent"
    assert back[second[0]["event_id"]]["payload"].get("comment") is None  # its key was lost with the WAL
    assert back[second[48]["event_id"]]["payload"]["respondent"]["respondent_ref"] == "b0-0"  # its key survived
    assert erased, "the erasure the lost WAL held is applied again"
    assert back[first[1]["event_id"]]["payload"].get("comment") is None
    with EventStore(tmp_path) as store:
        found = verify(store)
    assert found.intact and [q.not_in_store for q in found.quarantined] == [0]


def test_recovering_appends_nothing_the_store_already_holds(tmp_path: Path) -> None:
    first, second = lose_the_wal_after_first_batch(tmp_path)
    with EventStore(tmp_path, writer=True) as store:  # the sender resent part of the forgotten batch
        store.append([received(e, "cdrp-brent") for e in second[:20]], recorded_at=LATER)
        recovery = recover(store)
        ids = [e["event_id"] for e in store.events()]
    assert (recovery.appended, recovery.files[0].already_stored) == (30, 20)
    assert sorted(ids) == sorted(e["event_id"] for e in first + second)
    assert json.loads((tmp_path / "quarantine").iterdir().__next__().read_text().splitlines()[0])["position"] == 51


def test_an_index_counting_other_event_ids_than_the_committed_events_is_reported(tmp_path: Path) -> None:
    store_of(tmp_path, 2)
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        db.execute("INSERT INTO event_ids (run, event_id, body_sha256, position) VALUES (0, '00000000-0000-4000-8000-ffffffffffff', 'x', 101)")
    with EventStore(tmp_path) as store:
        found = verify(store)
    assert found.store_problems == ["the index knows 101 event ids but the committed segments hold 100 events",
                                    "sender unknown: the segments' counts say 100 events, the index holds 101"]
    assert not found.intact and not found.broken


def test_counts_by_sender_that_disagree_with_the_index_are_reported_per_sender(tmp_path: Path) -> None:
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(e, "survey-team") for e in responses(30, "s")], recorded_at=RECORDED_AT)
        store.append([received(e, "borough-unit") for e in responses(20, "b")], recorded_at=RECORDED_AT)
    with EventStore(tmp_path) as store:
        assert verify(store).intact
    with sqlite3.connect(tmp_path / "store.sqlite") as db:  # the counts kept for the first segment, credited to another
        db.execute("UPDATE segment_senders SET sender = 'borough-unit' WHERE sender = 'survey-team'")
    with EventStore(tmp_path) as store:
        assert store.counts_by_sender()["events"] == {"borough-unit": 50}  # what the sensor and builds would show
        found = verify(store)
    assert found.store_problems == ["sender borough-unit: the segments' counts say 50 events, the index holds 20",
                                    "sender survey-team: the segments' counts say 0 events, the index holds 30"]
    assert not found.intact
