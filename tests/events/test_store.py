"""The event store: idempotent by event_id (and dead letters by origin and bytes), conflicts rejected,
appends all-or-nothing, one writer."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from events.storage.store import SCHEMA as STORE_SCHEMA
from events.storage.store import EventStore, Received, StoreLocked
from events.contract.validation import verdict
from tests.support.events import line, make_event
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT


def received(event: dict, origin: str = "test") -> Received:
    raw = line(event)
    return Received(raw, origin, verdict(raw))


def test_append_assigns_positions_and_recorded_at(tmp_path: Path) -> None:
    events = [make_event("stage.signed_off") for _ in range(3)]
    with EventStore(tmp_path, writer=True) as store:
        outcome = store.append([received(e) for e in events])
        stored = list(store.events())
    assert outcome.accepted == [e["event_id"] for e in events]
    assert [s["position"] for s in stored] == [1, 2, 3]
    assert all(s["recorded_at"].endswith("Z") for s in stored)
    assert [s["payload"] for s in stored] == [e["payload"] for e in events]


def test_same_id_same_body_is_a_duplicate_stored_once(tmp_path: Path) -> None:
    event = make_event("stage.signed_off")
    with EventStore(tmp_path, writer=True) as store:
        first = store.append([received(event)])
        again = store.append([received(event), received(event)])
        assert first.accepted == [event["event_id"]]
        assert again.accepted == [] and again.duplicates == [event["event_id"]] * 2
        assert store.counts() == {"events": 1, "dead_letters": 0}


def test_duplicate_within_one_batch_is_stored_once(tmp_path: Path) -> None:
    event = make_event("stage.signed_off")
    with EventStore(tmp_path, writer=True) as store:
        outcome = store.append([received(event), received(event)])
        assert (len(outcome.accepted), len(outcome.duplicates)) == (1, 1)
        assert store.counts()["events"] == 1


def test_same_id_other_body_is_a_conflict_and_the_original_is_kept(tmp_path: Path) -> None:
    original = make_event("stage.signed_off")
    changed = {**original, "payload": {**original["payload"], "body": "authority"}}
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(original)])
        outcome = store.append([received(changed, "f.jsonl:7")])
        (stored,) = list(store.events())
        (letter,) = store.dead_letters()
    assert outcome.accepted == [] and outcome.duplicates == []
    assert outcome.rejected == [("f.jsonl:7", (f"event_id: {original['event_id']} is already stored with a different body (the original is kept)",))]
    assert stored["payload"]["body"] == "csmb"
    assert letter["raw"] == line(changed) and letter["origin"] == "f.jsonl:7"


def test_a_reject_is_dead_lettered_once_by_its_origin_and_bytes(tmp_path: Path) -> None:
    def reject(raw: bytes, origin: str) -> Received:
        return Received(raw, origin, verdict(raw))

    batch = [reject(b"{bad", "f.jsonl:2"), reject(b"{bad", "f.jsonl:5"), reject(b"[]", "f.jsonl:9")]
    with EventStore(tmp_path, writer=True) as store:
        first = store.append(batch)
        again = store.append([*batch, reject(b"{bad", "f.jsonl:2")])  # the same batch, with one line twice
        edited = store.append([reject(b"[1]", "f.jsonl:9")])  # the same origin, other bytes: another line
        letters = [(letter["origin"], letter["raw"]) for letter in store.dead_letters()]
    assert (first.rejected, first.already_dead_lettered) == ([(r.origin, r.verdict.reasons) for r in batch], [])
    assert len(again.rejected) == 4 and again.already_dead_lettered == ["f.jsonl:2", "f.jsonl:5", "f.jsonl:9", "f.jsonl:2"]
    assert edited.already_dead_lettered == []
    assert letters == [("f.jsonl:2", b"{bad"), ("f.jsonl:5", b"{bad"), ("f.jsonl:9", b"[]"), ("f.jsonl:9", b"[1]")]


def test_a_redacted_dead_letter_is_known_by_its_origin_and_reasons(tmp_path: Path) -> None:
    """After an erasure redacts a dead letter's bytes, the same bad line again adds nothing, but another
    broken line at that origin (other reasons) is still a dead letter of its own."""
    mine = make_event("consultation.response_received", {"channel": "carrier_pigeon"})  # respondent r-8812
    bad = line(mine)
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": "r-8812"})
    other = b'{"event_type": "stage.signed_off"}'
    with EventStore(tmp_path, writer=True) as store:
        store.append([Received(bad, "daily.jsonl:3", verdict(bad))])
        store.append([received(erasure)])
        again = store.append([Received(bad, "daily.jsonl:3", verdict(bad))])
        edited = store.append([Received(other, "daily.jsonl:3", verdict(other))])
        letters = [(letter["origin"], letter["raw"]) for letter in store.dead_letters()]
    assert again.already_dead_lettered == ["daily.jsonl:3"]
    assert edited.already_dead_lettered == [] and edited.rejected[0][0] == "daily.jsonl:3"
    assert letters == [("daily.jsonl:3", None), ("daily.jsonl:3", other)]


def test_rejects_in_a_batch_do_not_lose_their_accepted_neighbours(tmp_path: Path) -> None:
    good = [make_event("stage.signed_off") for _ in range(2)]
    batch = [received(good[0]), Received(b"{bad", "x:2", verdict(b"{bad")), received(good[1])]
    with EventStore(tmp_path, writer=True) as store:
        outcome = store.append(batch)
        assert outcome.accepted == [g["event_id"] for g in good]
        assert store.counts() == {"events": 2, "dead_letters": 1}
        assert store.dead_letters()[0]["reasons"][0].startswith("line: not valid JSON")


def test_one_writer_at_a_time_and_readers_alongside(tmp_path: Path) -> None:
    with EventStore(tmp_path, writer=True, holder="planning worker") as store:
        store.append([received(make_event("stage.signed_off"))])
        with pytest.raises(StoreLocked, match="planning worker"):
            EventStore(tmp_path, writer=True)
        with EventStore(tmp_path) as reader:
            assert reader.high_water_mark() == 1
    with EventStore(tmp_path, writer=True):  # released on close
        pass


def test_reader_cannot_append(tmp_path: Path) -> None:
    with EventStore(tmp_path) as reader, pytest.raises(RuntimeError, match="read-only"):
        reader.append([received(make_event("stage.signed_off"))])


def test_a_reader_never_writes_the_index_even_while_a_writer_is_still_creating(tmp_path: Path) -> None:
    # A store caught between its tables and its pepper (as an older writer committed them apart):
    # the reader sees no vault and leaves the index untouched, so it cannot race the writer's insert.
    db = sqlite3.connect(tmp_path / "store.sqlite")
    db.executescript(STORE_SCHEMA)
    db.close()
    with EventStore(tmp_path) as reader:
        assert reader.vault is None
        assert reader.counts()["events"] == 0
    db = sqlite3.connect(tmp_path / "store.sqlite")
    assert db.execute("SELECT count(*) FROM meta").fetchone() == (0,)
    db.close()


def test_readers_opening_while_the_writer_creates_the_store_all_succeed(tmp_path: Path) -> None:
    # The worker creates its store while tests and the Panel already poll it (a CI failure once).
    for attempt in range(20):
        root = tmp_path / str(attempt)
        writer = subprocess.Popen(
            [sys.executable, "-c", f"from events.storage.store import EventStore; EventStore({str(root)!r}, writer=True).close()"]
        )
        opened = 0
        while writer.poll() is None or opened == 0:
            if (root / "store.sqlite").exists():
                with EventStore(root) as reader:
                    assert reader.counts()["events"] == 0
                opened += 1
        assert writer.returncode == 0
        with EventStore(root) as reader:
            assert reader.vault is not None


def test_personal_data_is_sealed_in_the_segments(tmp_path: Path) -> None:
    event = make_event("consultation.response_received", {"comment": "PLATYPUS-4471", "respondent": {"respondent_ref": "r-ZX81", "ethnic_group": "mixed"}})
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(event)])
        (read_back,) = list(store.events())
    everything = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"PLATYPUS-4471" not in everything and b"r-ZX81" not in everything
    assert read_back["payload"]["comment"] == "PLATYPUS-4471"  # the key holder can still read it
    assert read_back["payload"]["respondent"]["respondent_ref"] == "r-ZX81"


def test_erasure_shreds_the_respondent_everywhere_in_the_store(tmp_path: Path) -> None:
    mine = make_event("consultation.response_received", {"comment": "PLATYPUS-4471", "respondent": {"respondent_ref": "r-ZX81", "gender": "other"}})
    theirs = make_event("consultation.response_received", {"respondent": {"respondent_ref": "r-other"}})
    conflict = {**mine, "payload": {**mine["payload"], "channel": "ward_panel"}}
    erase = make_event("respondent.erasure_requested", {"respondent_ref": "r-ZX81"})
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(mine), received(theirs)])
        store.append([received(conflict)])  # a dead letter carrying the comment in its raw bytes
        store.append([received(erase)])
        events = {e["event_id"]: e for e in store.events()}
        letters = store.dead_letters()
    assert "comment" not in events[mine["event_id"]]["payload"]
    assert "respondent" not in events[mine["event_id"]]["payload"]
    assert events[mine["event_id"]]["payload"]["themes"] == mine["payload"]["themes"]  # still counts
    assert events[theirs["event_id"]]["payload"]["respondent"]["respondent_ref"] == "r-other"
    assert letters[0]["raw"] is None
    assert letters[0]["reasons"]  # why it was rejected is kept
    everything = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"PLATYPUS-4471" not in everything and b"r-ZX81" not in everything


def test_an_erased_respondent_arriving_late_is_stored_without_personal_data(tmp_path: Path) -> None:
    erase = make_event("respondent.erasure_requested", {"respondent_ref": "r-late"})
    late = make_event("consultation.response_received", {"comment": "WOMBAT", "respondent": {"respondent_ref": "r-late"}})
    with EventStore(tmp_path, writer=True) as store:
        store.append([received(erase)])
        store.append([received(late)])
        (_, stored) = list(store.records())
    assert stored["sealed"] is None and stored["subject"]
    assert b"WOMBAT" not in b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


# --- crash safety ------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, os, signal, sys, uuid
    from events.storage.store import EventStore, Received
    from events.contract.validation import verdict
    root, batches, size, crash_point = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if crash_point == "before-commit":
        real_replace = os.replace
        calls = {"n": 0}
        def replace_then_die(src, dst):
            real_replace(src, dst)
            calls["n"] += 1
            if calls["n"] == batches:  # the last batch's segment is on disk, not committed
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace_then_die
    store = EventStore(root, writer=True)
    for b in range(batches):
        batch = []
        for i in range(size):
            event = {"event_id": str(uuid.uuid4()), "event_type": "stage.signed_off", "schema_version": 1,
                     "occurred_at": "2026-07-14T18:30:00Z", "source": "crash-test", "cycle": "2027-28",
                     "payload": {"stage": "analysis", "body": "csmb", "decision_ref": f"D-{b}-{i}"}}
            raw = json.dumps(event).encode()
            batch.append(Received(raw, "crash", verdict(raw)))
        store.append(batch)
        print(b, flush=True)
    """
)


def run_writer(root: Path, batches: int, size: int, crash_point: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(batches), str(size), crash_point],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )


def assert_store_whole(root: Path, size: int) -> int:
    """Every committed batch complete, positions contiguous, no orphan file: returns the event count."""
    with EventStore(root, writer=True) as store:  # a writer reopening cleans up after the crash
        records = list(store.records())
        segment_files = {s.path.name for s in store.segments()}
    assert [r["position"] for r in records] == list(range(1, len(records) + 1))
    assert len(records) % size == 0, "a batch was half written"
    assert {p.name for p in (root / "segments").iterdir()} == segment_files
    return len(records)


def test_a_writer_killed_between_segment_and_commit_leaves_none_of_that_batch(tmp_path: Path) -> None:
    writer = run_writer(tmp_path, batches=3, size=500, crash_point="before-commit")
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "segments").glob("*.jsonl"))) == 3  # the orphan is on disk before reopening
    assert assert_store_whole(tmp_path, 500) == 1000


def test_a_writer_killed_at_random_moments_leaves_whole_batches(tmp_path: Path) -> None:
    committed = 0
    for delay in (0.0, 0.1, 0.5):  # after its first commit: mid-batch, however busy the machine
        writer = run_writer(tmp_path, batches=40, size=1000, crash_point="none")
        assert writer.stdout.readline().strip() == "0", "the writer committed no batch"
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        count = assert_store_whole(tmp_path, 1000)
        assert count > committed  # this writer's first batch at least
        committed = count
