"""What is already stored cannot stop the builds: a retracted event never reaches one, an event
whose envelope cannot be typed is left out and reported, and one cycle's failure stops no other.

The contract now refuses such events, so they are written here straight through the store,
past validation, as an older pipeline could have stored them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from events.contract.validation import Accepted, body_digest
from events.home import PlanningHome
from events.storage.store import EventStore, Received
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import BuildFailed, build
from projections.building.timetable import default_windows
from projections.reading.snapshots import open_reader, published
from tests.support.events import make_event, write_jsonl

KNOWN = datetime(2026, 9, 5, 12, tzinfo=timezone.utc)
ON, AS_OF = "2026-09-10", "2026-09-10T12:00:00Z"


def store_unchecked(home: PlanningHome, events: list[dict[str, Any]]) -> None:
    """Append ``events`` as accepted without validating them (what an older contract let through)."""
    batch = [
        Received(json.dumps(e).encode(), f"unchecked:{i}", Accepted(e["event_id"], e, body_digest(e), None, e["event_type"]))
        for i, e in enumerate(events)
    ]
    with EventStore(home.store, writer=True) as store:
        store.append(batch, recorded_at=KNOWN)


def store_valid(home: PlanningHome, tmp_path: Path, events: list[dict[str, Any]]) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "valid.jsonl", events))], recorded_at=KNOWN, progress=None)


def retraction_of(event: dict[str, Any]) -> dict[str, Any]:
    return make_event("event.retracted", {"target_event_id": event["event_id"], "reason": "stored by mistake"},
                      occurred_at="2026-08-01T10:00:00Z")


def meetings(home: PlanningHome) -> list[tuple]:
    with open_reader(home.projections, cycles=["2027-28"]) as db:
        return db.execute("SELECT group_id, meetings, attendance FROM group_activity WHERE meetings > 0 ORDER BY group_id").fetchall()


def test_a_retracted_event_with_an_untypable_payload_never_reaches_a_build(home: PlanningHome, tmp_path: Path) -> None:
    good = make_event("group.meeting_held", {"group_id": "cpcg-good", "attendance": 12})
    huge = make_event("group.meeting_held", {"group_id": "cpcg-huge", "attendance": 10**30})
    huge_cost = make_event("group.meeting_held", {"group_id": "cpcg-cost", "attendance": 10**19})
    epoch = make_event("group.meeting_held", {"group_id": "cpcg-epoch"}, occurred_at="1700000000")
    unknown_version = make_event("group.meeting_held", {"group_id": "cpcg-v2"}, schema_version=2)  # no upcaster reads it
    braced = make_event("group.meeting_held", {"group_id": "cpcg-braced"})
    braced["event_id"] = "{" + braced["event_id"].upper() + "}"
    hostile = [huge, huge_cost, epoch, unknown_version, braced]
    store_valid(home, tmp_path, [good])
    store_unchecked(home, hostile)
    store_valid(home, tmp_path, [retraction_of({"event_id": braced["event_id"][1:-1].lower()})]
                + [retraction_of(e) for e in hostile[:-1]])

    (built,) = build(home, on=ON, as_of=AS_OF)
    assert built.cycle == "2027-28"
    assert meetings(home) == [("cpcg-good", 1, 12)]


def test_an_event_whose_envelope_cannot_be_typed_is_left_out_and_reported(home: PlanningHome, tmp_path: Path) -> None:
    good = make_event("group.meeting_held", {"group_id": "cpcg-good", "attendance": 12})
    epoch = make_event("group.meeting_held", {"group_id": "cpcg-epoch"}, occurred_at="1700000000")
    version = make_event("group.meeting_held", {"group_id": "cpcg-version"}, schema_version=10**30)
    store_valid(home, tmp_path, [good])
    store_unchecked(home, [epoch, version])

    (built,) = build(home, on=ON, as_of=AS_OF)
    assert meetings(home) == [("cpcg-good", 1, 12)]
    instance = dg.DagsterInstance.get()
    evidence = instance.get_latest_materialization_event(dg.AssetKey("cycle_evidence")).asset_materialization
    assert evidence.metadata["untypable_events"].value == 2
    key = dg.AssetCheckKey(dg.AssetKey("cycle_evidence"), "every_stored_event_readable")
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.status.value == "FAILED" and check.run_id == built.run_id  # a warning: the build still published
    assert published(home.projections)["cycles"]["2027-28"]["run_id"] == built.run_id

    store_valid(home, tmp_path, [retraction_of(epoch), retraction_of(version)])
    (again,) = build(home, on=ON, as_of=AS_OF)
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.run_id == again.run_id and check.status.value == "SUCCEEDED", "retracted, they are no longer reported"


def test_a_cycle_that_fails_stops_no_other_cycle(home: PlanningHome, tmp_path: Path) -> None:
    early = make_event("group.meeting_held", {"group_id": "cpcg-early", "attendance": 3}, cycle="2026-27",
                       occurred_at="2026-01-10T10:00:00Z")
    broken = make_event("group.meeting_held", {"group_id": "cpcg-broken", "attendance": 10**30}, cycle="2026-27")
    late = make_event("group.meeting_held", {"group_id": "cpcg-late", "attendance": 5})
    store_valid(home, tmp_path, [early, late])
    store_unchecked(home, [broken])  # standing, so 2026-27 cannot build; 2027-28 and the dead letters still do

    with pytest.raises(BuildFailed) as failure:
        build(home, on=ON, as_of=AS_OF)
    assert [f.cycle for f in failure.value.failures] == ["2026-27"]
    assert "2026-27" in str(failure.value) and failure.value.failures[0].run_id in str(failure.value)
    assert [b.cycle for b in failure.value.builds] == ["2027-28"]
    pointer = published(home.projections)
    assert set(pointer["cycles"]) == {"2027-28"} and pointer["operations"] is not None
    assert meetings(home) == [("cpcg-late", 1, 5)]
    assert not (home.projections / "builds" / "2026-27").exists() or not any((home.projections / "builds" / "2026-27").iterdir()), \
        "a failed build leaves no folder (its staging file holds demographics)"


@pytest.mark.parametrize("cycle", ["0000-01", "0001-02", "２０２７-２８", "2027"])
def test_a_cycle_that_cannot_make_a_timetable_has_none(cycle: str) -> None:
    assert default_windows(cycle) == []


def test_a_cycle_of_year_zero_stops_no_other_cycle(home: PlanningHome, tmp_path: Path) -> None:
    year_zero = make_event("group.meeting_held", {"group_id": "cpcg-zero"}, cycle="0000-01")
    store_valid(home, tmp_path, [make_event("group.meeting_held", {"group_id": "cpcg-good", "attendance": 12})])
    store_unchecked(home, [year_zero])
    store_valid(home, tmp_path, [retraction_of(year_zero)])

    builds = build(home, on=ON, as_of=AS_OF)
    assert [(b.cycle, bool(b.run_id), b.not_built is None) for b in builds] == [("0000-01", False, False), ("2027-28", True, True)]
    assert set(published(home.projections)["cycles"]) == {"2027-28"}
    assert meetings(home) == [("cpcg-good", 1, 12)]
