"""Builds never read a damaged segment: the event cache checks each segment once, as it enters the cache,
and staging straight from the segments (the full rebuild, the cache's check) checks those it reads."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from events.contract.instants import Instants
from events.contract.validation import verdict
from events.storage.store import EventStore, Received
from projections.building import event_cache
from projections.building.staging import stage_cycle
from tests.support.events import line, make_event

RECORDED_AT = datetime(2026, 8, 1, tzinfo=timezone.utc)


def append(root: Path, count: int) -> None:
    with EventStore(root, writer=True) as store:
        events = [make_event("consultation.response_received") for _ in range(count)]
        store.append([Received(line(e), "test", verdict(line(e), RECORDED_AT)) for e in events], recorded_at=RECORDED_AT)


def cut_last_line(path: Path) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))


def test_staging_from_the_segments_refuses_a_truncated_one(tmp_path: Path) -> None:
    append(tmp_path / "store", 20)
    (segment,) = (tmp_path / "store" / "segments").glob("*.jsonl")
    cut_last_line(segment)
    with EventStore(tmp_path / "store") as store, pytest.raises(Exception, match=rf"segment {segment.name} .* is damaged: truncated"):
        stage_cycle(store, tmp_path / "staging.duckdb", "2027-28", Instants.parse("2026-09-01", "2026-09-01"))


def test_the_cache_refuses_a_damaged_new_segment_and_never_reads_a_cached_one_again(tmp_path: Path) -> None:
    root, projections = tmp_path / "store", tmp_path / "projections"
    event_cache.cache_file(projections).parent.mkdir(parents=True)
    append(root, 10)
    with EventStore(root) as store:
        assert event_cache.refresh(store, projections)["cache_position"] == 10
    cached = next((root / "segments").glob("*.jsonl"))
    append(root, 10)
    newest = max((root / "segments").glob("*.jsonl"))
    cut_last_line(newest)
    with EventStore(root) as store, pytest.raises(Exception, match=rf"segment {newest.name} \(positions 11–20, 10 events\) is damaged"):
        event_cache.refresh(store, projections)
    cut_last_line(cached)  # damage to a segment the cache already holds: it is not read again by an incremental build
    with EventStore(root) as store:
        assert event_cache.refresh(store, projections, upto=10) == {"cache_position": 10, "cache_added": 0, "cache_rebuilt": 0}
    with EventStore(root) as store, pytest.raises(Exception, match="is damaged"):
        event_cache.refresh(store, projections, full=True)  # --full reads every segment again


def test_a_cache_holding_a_batch_the_lost_wal_forgot_is_rebuilt_from_the_store(tmp_path: Path) -> None:
    import sqlite3

    root, projections = tmp_path / "store", tmp_path / "projections"
    event_cache.cache_file(projections).parent.mkdir(parents=True)
    append(root, 10)
    with EventStore(root) as store, sqlite3.connect(tmp_path / "index-after-first.sqlite") as copy:
        store._db.backup(copy)
    append(root, 10)
    with EventStore(root) as store:
        assert event_cache.refresh(store, projections)["cache_position"] == 20  # the cache holds the second batch
    for name in ("store.sqlite-wal", "store.sqlite-shm"):  # then the crash that lost the WAL
        (root / name).unlink(missing_ok=True)
    (tmp_path / "index-after-first.sqlite").replace(root / "store.sqlite")
    for _ in range(2):  # the next writer quarantines the forgotten segment and reuses its positions
        append(root, 10)
    with EventStore(root) as store:
        refreshed = event_cache.refresh(store, projections)
        stored = sorted(e["event_id"] for e in store.events())
    with duckdb.connect(str(event_cache.cache_file(projections)), read_only=True) as db:
        cached = sorted(row[0] for row in db.execute("SELECT event_id FROM store_events").fetchall())
    assert refreshed["cache_rebuilt"] == 1
    assert cached == stored
