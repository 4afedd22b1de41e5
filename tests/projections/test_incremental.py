"""Incremental builds take only the new events, and publish exactly what a full rebuild publishes."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.runs import build
from pipelines.demo.generator import generate_demo_lines
from pipelines.ingest.files import ingest_files
from projections.reading.snapshots import open_reader
from projections.tables import PANEL_TABLES
from tests.support.events import make_event, write_jsonl


def evidence_metadata(run_id: str) -> dict:
    instance = dg.DagsterInstance.get()
    (record,) = [r for r in instance.get_records_for_run(run_id).records
                 if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                 and r.event_log_entry.dagster_event.asset_key == dg.AssetKey("cycle_evidence")]
    metadata = record.event_log_entry.dagster_event.event_specific_data.materialization.metadata
    return {k: v.value for k, v in metadata.items()}


def snapshot(home: PlanningHome) -> dict[str, list[tuple]]:
    db = open_reader(home.projections)
    return {name: db.execute(f"SELECT * FROM {name} ORDER BY {t.order_by}").fetchall() for name, t in PANEL_TABLES.items()}


# Knowledge time is pinned, so what each build sees does not depend on the day the test runs.
HISTORY_KNOWN = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
NEW_KNOWN = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
AS_OF = "2026-11-23T23:00:00Z"


def test_second_build_takes_only_the_new_events_and_equals_a_full_rebuild(home: PlanningHome, tmp_path: Path) -> None:
    lines = [l for l in generate_demo_lines(date(2026, 11, 23), seed=7, not_after=HISTORY_KNOWN) if l.strip()]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "history.jsonl", lines))], recorded_at=HISTORY_KNOWN, progress=None)
    first = build(home, cycle="2027-28", on="2026-11-23", as_of=AS_OF)
    stored = EventStore(home.store).high_water_mark()
    assert evidence_metadata(first[0].run_id)["cache_added"] == stored

    again = build(home, cycle="2027-28", on="2026-11-23", as_of=AS_OF)
    assert evidence_metadata(again[0].run_id)["cache_added"] == 0
    before_new = snapshot(home)

    # synthetic like the history: a store holds one kind of data
    new = [make_event("consultation.response_received", {"borough": "E09000005"}, synthetic=True) for _ in range(3)]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "new.jsonl", new))], recorded_at=NEW_KNOWN, progress=None)
    incremental = build(home, cycle="2027-28", on="2026-11-23", as_of=AS_OF)
    assert evidence_metadata(incremental[0].run_id)["cache_added"] == 3
    after_incremental = snapshot(home)
    assert after_incremental != before_new, "the three new responses are seen at as_of"

    full = build(home, cycle="2027-28", on="2026-11-23", as_of=AS_OF, full=True)
    assert evidence_metadata(full[0].run_id)["cache_rebuilt"] == 1
    assert snapshot(home) == after_incremental, "bit for bit: sums run in a fixed order"
