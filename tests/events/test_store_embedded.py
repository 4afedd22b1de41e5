"""What only the embedded store has, so tested on it alone: one writer at a time (its writer lock;
PostgreSQL takes any number of writers, test_store_postgres.py), readers racing the writer that creates
the SQLite index, and crash safety of its segment files (a batch is a segment file written before the
index commits it; PostgreSQL's own transactions and WAL give that there). Its segments' digests,
quarantine and recovery are tested in test_integrity.py and test_backup.py. Behaviours both backends
share are in test_store.py."""

from __future__ import annotations

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


def test_one_writer_at_a_time_and_readers_alongside(tmp_path: Path) -> None:
    with EventStore(tmp_path, writer=True, holder="planning worker") as store:
        store.append([received(make_event("stage.signed_off"))])
        with pytest.raises(StoreLocked, match="planning worker"):
            EventStore(tmp_path, writer=True)
        with EventStore(tmp_path) as reader:
            assert reader.high_water_mark() == 1
    with EventStore(tmp_path, writer=True):  # released on close
        pass


def test_the_segments_a_build_of_several_cycles_reads_come_from_one_question(tmp_path: Path) -> None:
    """Those that touch one of the cycles or hold a retraction (which may name an event of any cycle),
    each once and in position order, whatever the number of cycles asked for."""
    events = [make_event("stage.signed_off", cycle=cycle) for cycle in ("2025-26", "2026-27", "2027-28")]
    retraction = make_event("event.retracted", {"target_event_id": events[0]["event_id"]}, cycle="2025-26")
    with EventStore(tmp_path, writer=True) as store:
        for event in [*events, retraction]:  # one batch each: one segment each, at positions 1 to 4
            assert store.append([received(event)]).accepted == [event["event_id"]]

        def firsts(cycles: list[str], upto: int | None = None) -> list[int]:
            return [segment.first_position for segment in store.segments_for_cycles(cycles, upto)]

        assert firsts(["2027-28", "2026-27", "2027-28"]) == [2, 3, 4]
        assert firsts(["2026-27", "2027-28"], upto=3) == [2, 3]
        assert firsts(["2025-26"]) == [1, 4] and firsts([]) == [4]  # a retraction's segment, for any cycle


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
