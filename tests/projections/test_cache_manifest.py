"""The event cache's manifest, and the blocking check ``full_rebuild_matches`` that reads it.

A build stages its cycle from the event cache. The check proves that the cache holds what the store's
segments hold, for everything the cycle reads, without reading the segments again: the segments were
read from bytes with the digest the store's index records, and each block of positions still holds
each of the store's positions once, with the rows (count and digest) read into it. Each way the cache
can drift from the store is made here by hand, and each must be caught; a build then publishes nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.demo.generator import generate_demo_lines
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import BuildFailed, build
from projections.building import event_cache
from projections.reading.snapshots import open_reader
from tests.support.events import write_jsonl

KNOWN = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
CYCLE, ON, AS_OF = "2027-28", "2026-11-23", "2026-11-23T23:00:00Z"


@pytest.fixture
def built(home: PlanningHome, tmp_path: Path) -> PlanningHome:
    """A home whose store holds a demo history, built once (the cache and its manifest made)."""
    lines = [l for l in generate_demo_lines(date(2026, 11, 23), seed=11, not_after=KNOWN) if l.strip()]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "history.jsonl", lines))], recorded_at=KNOWN, progress=None)
    build(home, cycle=CYCLE, on=ON, as_of=AS_OF)
    return home


def differences(home: PlanningHome) -> list[str]:
    with EventStore(home.store) as store:
        return event_cache.cache_matches_store(store, home.projections, [CYCLE], store.high_water_mark())


def tamper(home: PlanningHome, statement: str) -> None:
    db = duckdb.connect(str(event_cache.cache_file(home.projections)))
    try:
        db.execute(statement)
    finally:
        db.close()


def a_position_of_the_cycle(home: PlanningHome) -> int:
    db = duckdb.connect(str(event_cache.cache_file(home.projections)), read_only=True)
    try:
        return db.execute("SELECT min(position) FROM store_events WHERE cycle = ? AND event_type = "
                          "'consultation.response_received'", [CYCLE]).fetchone()[0]
    finally:
        db.close()


def test_a_cache_read_from_the_store_matches_it(built: PlanningHome) -> None:
    assert differences(built) == []


def test_a_changed_row_is_caught(built: PlanningHome) -> None:
    position = a_position_of_the_cycle(built)
    tamper(built, f"UPDATE store_events SET payload = json_object('borough', 'E09000001') WHERE position = {position}")
    [found] = differences(built)
    assert "their contents changed" in found


def test_a_lost_row_is_caught(built: PlanningHome) -> None:
    tamper(built, f"DELETE FROM store_events WHERE position = {a_position_of_the_cycle(built)}")
    [found] = differences(built)
    assert "it holds" in found and "their contents changed" not in found


def test_a_row_cached_twice_is_caught(built: PlanningHome) -> None:
    position = a_position_of_the_cycle(built)
    tamper(built, f"INSERT INTO store_events SELECT * FROM store_events WHERE position = {position}")
    assert len(differences(built)) == 1


def a_segment_of_the_cycle(home: PlanningHome) -> str:
    with EventStore(home.store) as store:
        return store.segments_for_cycles([CYCLE])[-1].path.name


def test_a_segment_read_with_other_bytes_than_the_store_records_is_caught(built: PlanningHome) -> None:
    tamper(built, f"UPDATE cache_segments SET sha256 = repeat('0', 64) WHERE file = '{a_segment_of_the_cycle(built)}'")
    [found] = differences(built)
    assert found.startswith("segment ") and "SHA-256" in found


def test_a_segment_never_read_into_the_cache_is_caught(built: PlanningHome) -> None:
    tamper(built, f"DELETE FROM cache_segments WHERE file = '{a_segment_of_the_cycle(built)}'")
    assert any("the cache read nothing of it" in d for d in differences(built))


def test_the_check_blocks_publication_of_a_build_from_a_drifted_cache(built: PlanningHome) -> None:
    reader = open_reader(built.projections)
    before = reader.execute("SELECT * FROM consultation_coverage ORDER BY ALL").fetchall()
    reader.close()
    tamper(built, f"UPDATE store_events SET payload = json_object('borough', 'E09000001') "
                  f"WHERE position = {a_position_of_the_cycle(built)}")
    with pytest.raises(BuildFailed, match="check full_rebuild_matches on cycle_evidence failed"):
        build(built, cycle=CYCLE, on=ON, as_of=AS_OF)
    reader = open_reader(built.projections)
    assert reader.execute("SELECT * FROM consultation_coverage ORDER BY ALL").fetchall() == before
    reader.close()
    build(built, cycle=CYCLE, on=ON, as_of=AS_OF, full=True)  # the way out: rebuild the cache from the store
    assert differences(built) == []


def test_a_cache_made_before_the_manifest_is_rebuilt_by_the_next_build(built: PlanningHome) -> None:
    tamper(built, "UPDATE cache_info SET manifest = NULL; DELETE FROM cache_segments; DELETE FROM cache_blocks")
    with EventStore(built.store) as store, event_cache.cache_lock(built.projections):
        refreshed = event_cache.refresh(store, built.projections)
    assert refreshed["cache_rebuilt"] == 1
    assert differences(built) == []
