"""Dagster shows which snapshot a run published, and the schedule's runs keep the current one fresh."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.defs.resources import PlanningHomeResource
from pipelines.orchestration.defs.schedules import daily_stage_status
from pipelines.orchestration.instance import use_planning_dagster_home
from pipelines.orchestration.runs import SNAPSHOT_TAG, build
from projections.reading.snapshots import published
from tests.support.events import make_event, write_jsonl

KNOWN = datetime(2026, 9, 20, 9, tzinfo=timezone.utc)
PUBLISHED = dg.AssetKey("panel_snapshot")


def ingest(home: PlanningHome, path: Path) -> None:
    events = [make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
              make_event("consultation.response_received")]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(path, events))], recorded_at=KNOWN, progress=None)


def published_to(instance: dg.DagsterInstance) -> tuple[str, str]:
    """(the run's snapshot tag, the snapshot its panel_snapshot materialization names) of the latest publication."""
    event = instance.get_latest_materialization_event(PUBLISHED)
    run = instance.get_run_by_id(event.run_id)
    return run.tags.get(SNAPSHOT_TAG, ""), event.asset_materialization.metadata["snapshot"].value


def test_a_run_names_the_snapshot_it_published(home: PlanningHome, tmp_path: Path) -> None:
    ingest(home, tmp_path / "e.jsonl")
    assert main(["build", "--on", "2026-09-15", "--as-of", "2026-09-15"]) == 0
    instance = dg.DagsterInstance.get()
    assert published_to(instance) == ("on-2026-09-15-asof-2026-09-15T235959Z",) * 2
    assert published(home.projections)["cycles"] == {}  # nothing current yet: the what-if did not become it

    build(home, on="2026-09-16", as_of="2026-09-16T12:00:00Z", snapshot="mid-september")
    assert published_to(instance) == ("mid-september", "mid-september")

    assert main(["build"]) == 0
    assert published_to(instance) == ("current", "current")
    assert set(published(home.projections)["named"]) == {"on-2026-09-15-asof-2026-09-15T235959Z", "mid-september"}


def test_the_schedule_publishes_the_current_snapshot_whatever_its_day(home: PlanningHome, tmp_path: Path) -> None:
    ingest(home, tmp_path / "e.jsonl")
    use_planning_dagster_home(home)
    instance = dg.DagsterInstance.get()
    morning = datetime(2026, 9, 21, 6, 0, tzinfo=ZoneInfo("Europe/London"))  # not the day the test runs
    tick = daily_stage_status.evaluate_tick(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=morning, repository_def=defs.get_repository_def(),
        resources={"planning": PlanningHomeResource(root=str(home.root))},
    ))
    (request,) = tick.run_requests
    result = defs.resolve_job_def("build_cycle").execute_in_process(
        partition_key=request.partition_key, run_config=request.run_config, instance=instance, tags=request.tags,
    )
    assert result.success
    assert published_to(instance)[1] == "current"
    assert published(home.projections)["cycles"]["2027-28"]["on_date"] == "2026-09-21"
    assert not published(home.projections).get("named")
