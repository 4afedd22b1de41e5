"""The sensor on the store's high-water mark and the morning schedule, evaluated against a real store.

Each test has its own $PLANNING_HOME (and Dagster instance under it); events
go in through the real ingest path, so the sensor reads what a worker writes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME as DAEMON_SENSOR_LOOP_SECONDS

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.orchestration.defs.resources import planning_run_config
from pipelines.orchestration.defs.schedules import daily_stage_status
from pipelines.orchestration.defs.sensors import event_store_sensor
from pipelines.orchestration.instance import use_planning_dagster_home
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.runs import SensorBuilds, build
from pipelines.orchestration.defs.partitions import RANGE_END, RANGE_START, cycles
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.defs.resources import PlanningHomeResource
from tests.support.events import make_event, write_jsonl

OBSERVED_FIELDS = {
    "high_water_mark", "events_since_last_evaluation", "events_per_second", "dead_letters", "lag_events",
    "last_built_position",
}


@pytest.fixture
def instance(home: PlanningHome) -> dg.DagsterInstance:
    use_planning_dagster_home(home)
    return dg.DagsterInstance.get()


def ingest(home: PlanningHome, path: Path, events: list) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(path, events))], progress=None)


def context(home: PlanningHome, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorEvaluationContext:
    # instance_ref (not instance): evaluate_tick then resolves partitioned requests as the daemon does.
    return dg.build_sensor_context(
        instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"planning": PlanningHomeResource(root=str(home.root))},
    )


def evaluate(home: PlanningHome, instance: dg.DagsterInstance, cursor: str | None = None):
    # closed as the daemon closes it: the instance it opened from the ref would otherwise stay Dagster's current one
    with context(home, instance, cursor) as sensor_context:
        return event_store_sensor.evaluate_tick(sensor_context)


def observation(data) -> dict:
    (event,) = data.asset_events
    assert event.asset_key == dg.AssetKey("event_store")
    return {k: v.value for k, v in event.metadata.items()}


def test_an_empty_store_requests_nothing(home: PlanningHome, instance: dg.DagsterInstance) -> None:
    data = evaluate(home, instance)
    assert data.run_requests == [] and data.skip_message
    assert json.loads(data.cursor)["mark"] == 0


def test_new_events_in_two_cycles_request_one_build_each(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    first = evaluate(home, instance)
    assert sorted(r.run_key for r in first.run_requests) == ["2026-27@2", "2027-28@2"]
    assert {r.partition_key for r in first.run_requests} == {"2026-27", "2027-28"}
    assert all(r.run_config == planning_run_config(str(home.root)) for r in first.run_requests)
    assert all(r.tags["dagster/sensor_name"] == "event_store_sensor" for r in first.run_requests)
    (added,) = first.dynamic_partitions_requests
    assert added.partitions_def_name == cycles.name and sorted(added.partition_keys) == ["2026-27", "2027-28"]
    assert json.loads(first.cursor)["mark"] == 2
    seen = observation(first)
    assert OBSERVED_FIELDS <= set(seen)
    assert seen["high_water_mark"] == 2 and seen["events_since_last_evaluation"] == 2 and seen["lag_events"] == 2
    instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))  # as the daemon does

    # Nothing new since: no run, and no repeated observation.
    again = evaluate(home, instance, first.cursor)
    assert again.run_requests == [] and again.skip_message and again.asset_events == []
    assert json.loads(again.cursor)["mark"] == 2

    # New events of one cycle: only that cycle, keyed by the new mark; the rate is measured.
    ingest(home, tmp_path / "b.jsonl", [make_event("stage.signed_off", cycle="2026-27") for _ in range(3)])
    later = evaluate(home, instance, again.cursor)
    assert [r.run_key for r in later.run_requests] == ["2026-27@5"]
    assert later.dynamic_partitions_requests == []  # the partition exists already
    seen = observation(later)
    assert seen["events_since_last_evaluation"] == 3 and seen["events_per_second"] > 0


def test_a_new_daemon_does_not_rebuild_cycles_already_current(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """`planning build` published both cycles; the daemon `planning ui` starts has no cursor yet."""
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    assert [b.cycle for b in build(home, on="2026-09-10")] == ["2026-27", "2027-28"]
    first = evaluate(home, instance, cursor=None)
    assert first.run_requests == [], [r.run_key for r in first.run_requests]
    assert "already read up to mark 2" in first.skip_message
    seen = observation(first)
    assert seen["cycles_already_current"] == "2026-27, 2027-28" and seen["lag_events"] == 0

    # An event after the published builds: its cycle is built, the other stays as it is.
    ingest(home, tmp_path / "b.jsonl", [make_event("stage.signed_off", cycle="2026-27")])
    for cursor in (first.cursor, None):
        assert [r.run_key for r in evaluate(home, instance, cursor).run_requests] == ["2026-27@3"]

    # A retraction may name an event of any cycle: every cycle is built again.
    ingest(home, tmp_path / "c.jsonl", [make_event("event.retracted", {"target_event_id": str(uuid.uuid4())})])
    assert sorted(r.run_key for r in evaluate(home, instance, None).run_requests) == ["2026-27@4", "2027-28@4"]


def test_a_retraction_requests_every_cycle(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    target = make_event("stage.signed_off", cycle="2026-27")
    ingest(home, tmp_path / "a.jsonl", [target, make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2025-26")])
    cursor = evaluate(home, instance).cursor
    # The retraction is filed under 2027-28 but removes an event of 2026-27.
    retraction = make_event("event.retracted", {"target_event_id": target["event_id"], "reason": "wrong cycle"})
    ingest(home, tmp_path / "b.jsonl", [retraction])
    data = evaluate(home, instance, cursor)
    assert sorted(r.run_key for r in data.run_requests) == ["2025-26@4", "2026-27@4", "2027-28@4"]
    assert observation(data)["all_cycles_because"] == "retraction"


def test_dead_letters_and_lag_are_observed(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off"), b"not json"])
    first = evaluate(home, instance)
    seen = observation(first)
    assert seen["dead_letters"] == 1 and seen["last_built_position"] is None and seen["lag_events"] == 1

    # Once a build published the mark, the lag is zero and that change is observed, without a new run.
    (request,) = first.run_requests
    instance.add_dynamic_partitions(cycles.name, [request.partition_key])
    result = defs.resolve_job_def("build_cycle").execute_in_process(
        partition_key=request.partition_key, run_config=request.run_config, instance=instance, tags=request.tags,
    )
    assert result.success
    caught_up = evaluate(home, instance, first.cursor)
    assert caught_up.run_requests == []
    seen = observation(caught_up)
    assert seen["last_built_position"] == 1 and seen["lag_events"] == 0


def test_a_sensor_requested_run_materializes_and_publishes(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("cycle.opened", {"timetable": []}), make_event("consultation.response_received")])
    data = evaluate(home, instance)
    (request,) = data.run_requests
    for added in data.dynamic_partitions_requests:  # as the daemon does before launching
        instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
    result = defs.resolve_job_def("build_cycle").execute_in_process(
        partition_key=request.partition_key, run_config=request.run_config, instance=instance, tags=request.tags,
    )
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/partition"] == "2027-28" and run.tags["planning/store_mark"] == "2"
    pointer = json.loads((home.projections / "published.json").read_text())
    assert pointer["cycles"]["2027-28"]["store_position"] == 2


def test_the_schedule_rebuilds_every_cycle_each_morning(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    assert daily_stage_status.cron_schedule == "0 6 * * *"
    assert daily_stage_status.execution_timezone == "Europe/London"
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    morning = datetime(2026, 9, 10, 6, 0, tzinfo=ZoneInfo("Europe/London"))
    schedule_context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=morning, repository_def=defs.get_repository_def(),
        resources={"planning": PlanningHomeResource(root=str(home.root))},
    )
    data = daily_stage_status.evaluate_tick(schedule_context)
    assert sorted(r.run_key for r in data.run_requests) == ["2026-09-10:2026-27", "2026-09-10:2027-28"]
    assert all(r.run_config == planning_run_config(str(home.root), {"cycle_evidence": {"config": {"on": "2026-09-10"}}}) for r in data.run_requests)
    assert set(instance.get_dynamic_partitions(cycles.name)) == {"2026-27", "2027-28"}


def test_the_schedule_skips_an_empty_store(home: PlanningHome, instance: dg.DagsterInstance) -> None:
    schedule_context = dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(), resources={"planning": PlanningHomeResource(root=str(home.root))},
    )
    data = daily_stage_status.evaluate_tick(schedule_context)
    assert data.run_requests == [] and "no cycle" in data.skip_message


def test_the_sensor_and_schedule_are_in_the_definitions() -> None:
    sensor = defs.resolve_sensor_def("event_store_sensor")
    assert sorted(target.job_name for target in sensor.targets) == ["build_cycle", "build_operations"]
    # under the daemon's loop (at most every 5 s): at the loop's own 5 s, a pass could skip it (~1 gap in 3 was 10 s)
    assert defs.resolve_sensor_def("event_store_sensor").minimum_interval_seconds < DAEMON_SENSOR_LOOP_SECONDS
    assert defs.resolve_schedule_def("daily_stage_status").job_name == "build_cycle"


def test_a_cycle_whose_build_is_queued_is_not_requested_again(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    first = evaluate(home, instance)
    instance.add_dynamic_partitions(cycles.name, ["2026-27", "2027-28"])
    # The run queue holds 2027-28's build (one build at a time): it will read the store when it starts.
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.orchestration.definitions")),
                               "__repository__"),
        "build_cycle",
    )
    run = instance.add_run(dg.DagsterRun(job_name="build_cycle", status=dg.DagsterRunStatus.QUEUED,
                                         remote_job_origin=origin, tags={"dagster/partition": "2027-28"}))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.QUEUED
    ingest(home, tmp_path / "b.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    data = evaluate(home, instance, first.cursor)
    assert [r.run_key for r in data.run_requests] == ["2026-27@4"]
    assert observation(data)["cycles_already_queued"] == "2027-28"

    # Once nothing else is new, only the queued cycle's events are pending: the sensor skips and says why.
    ingest(home, tmp_path / "c.jsonl", [make_event("stage.signed_off")])
    data = evaluate(home, instance, data.cursor)
    assert data.run_requests == [] and "2027-28 are queued" in data.skip_message
    assert json.loads(data.cursor)["mark"] == 5


def test_cycles_in_a_queued_run_over_a_range_are_not_requested_again(home: PlanningHome, instance: dg.DagsterInstance,
                                                                    tmp_path: Path) -> None:
    """`planning build` and a backfill from the UI queue one run over a range of cycles (range tags, no
    partition tag): each cycle in the range is queued, those outside it are requested."""
    instance.add_dynamic_partitions(cycles.name, ["2025-26", "2026-27", "2027-28"])
    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.orchestration.definitions")),
                               "__repository__"),
        "build_cycle",
    )
    instance.add_run(dg.DagsterRun(job_name="build_cycle", status=dg.DagsterRunStatus.QUEUED, remote_job_origin=origin,
                                   tags={RANGE_START: "2025-26", RANGE_END: "2026-27"}))
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off", cycle=c) for c in ("2025-26", "2026-27", "2027-28")])
    data = evaluate(home, instance)
    assert [r.run_key for r in data.run_requests] == ["2027-28@3"]
    assert observation(data)["cycles_already_queued"] == "2025-26, 2026-27"


def test_an_erasure_through_the_worker_rebuilds_the_dead_letters_copy(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """The worker's appends go through no CLI: the sensor sees the published dead letters predate a redaction."""
    bad = make_event("consultation.response_received", {"channel": "carrier_pigeon", "comment": "lives at 12 Acacia Road"})
    ingest(home, tmp_path / "a.jsonl", [bad])
    built = defs.resolve_job_def("build_operations").execute_in_process(
        run_config=planning_run_config(str(home.root), {"dead_letters": {"config": {"as_of": "2026-09-01T00:00:00Z"}}}),
        instance=instance,
    )
    assert built.success
    cursor = evaluate(home, instance).cursor
    assert evaluate(home, instance, cursor).run_requests == [], "a copy as new as the store is left alone"

    ingest(home, tmp_path / "b.jsonl", [make_event("respondent.erasure_requested", {"respondent_ref": "r-8812"})])
    data = evaluate(home, instance, cursor)
    (operations,) = [r for r in data.run_requests if r.job_name == "build_operations"]
    assert operations.run_key == "operations@redactions-1"
    assert operations.run_config["ops"] == {"dead_letters": {"config": {"as_of": "2026-09-01T00:00:00+00:00"}}}
    rebuilt = defs.resolve_job_def("build_operations").execute_in_process(run_config=operations.run_config, instance=instance)
    assert rebuilt.success
    assert [r for r in evaluate(home, instance, data.cursor).run_requests if r.job_name == "build_operations"] == []


def queue(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.DagsterRun:
    """Turn a sensor's request into a run waiting in the instance's run queue, as the daemon does:
    created NOT_STARTED, then submitted to the run coordinator of dagster_home/dagster.yaml."""
    repository = ReconstructableRepository.for_module("pipelines.orchestration.definitions", "__repository__")
    python_origin = repository.get_reconstructable_job(request.job_name).get_python_origin()
    remote_origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="pipelines.orchestration.definitions")),
                               "__repository__"),
        request.job_name,
    )
    tags = {**request.tags, "dagster/partition": request.partition_key, "dagster/run_key": request.run_key}
    run = instance.add_run(dg.DagsterRun(job_name=request.job_name, status=dg.DagsterRunStatus.NOT_STARTED, tags=tags,
                                         run_config=request.run_config, remote_job_origin=remote_origin,
                                         job_code_origin=python_origin))
    return instance.submit_run(run.run_id, workspace=None)


def builds_of(instance: dg.DagsterInstance, cycle: str, status: dg.DagsterRunStatus) -> list[dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="build_cycle", statuses=[status]))
    return [run for run in runs if run.tags.get("dagster/partition") == cycle]


def test_mark_moves_while_a_build_is_queued_coalesce_into_that_build(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off")])
    first = evaluate(home, instance)
    (request,) = first.run_requests
    instance.add_dynamic_partitions(cycles.name, ["2027-28"])
    queued = queue(instance, request)
    assert queued.status == dg.DagsterRunStatus.QUEUED  # the instance's run coordinator queues

    # Three more events of the cycle, each seen by its own evaluation, while the build waits: no second build.
    cursor = first.cursor
    for i in range(3):
        ingest(home, tmp_path / f"more-{i}.jsonl", [make_event("stage.signed_off")])
        data = evaluate(home, instance, cursor)
        assert data.run_requests == [] and "2027-28 are queued and will read up to mark" in data.skip_message
        assert observation(data)["cycles_already_queued"] == "2027-28"
        cursor = data.cursor
    assert json.loads(cursor)["mark"] == 4
    assert [run.run_id for run in builds_of(instance, "2027-28", dg.DagsterRunStatus.QUEUED)] == [queued.run_id]

    # The queued build reads the store when it starts, not at the mark it was requested at (its tag says 1):
    # it covers all four events.
    result = defs.resolve_job_def("build_cycle").execute_in_process(
        partition_key=request.partition_key, run_config=request.run_config, instance=instance, tags=request.tags,
    )
    assert result.success and request.tags["planning/store_mark"] == "1"
    pointer = json.loads((home.projections / "published.json").read_text())
    assert pointer["cycles"]["2027-28"]["store_position"] == 4


def test_an_event_after_a_build_started_gets_a_later_build(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off")])
    first = evaluate(home, instance)
    (request,) = first.run_requests
    instance.add_dynamic_partitions(cycles.name, ["2027-28"])
    running = queue(instance, request)
    # The queue launches it: once started it may already have read the store's mark.
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name="build_cycle"), running.run_id,
    )
    assert instance.get_run_by_id(running.run_id).status == dg.DagsterRunStatus.STARTED

    ingest(home, tmp_path / "b.jsonl", [make_event("stage.signed_off")])
    data = evaluate(home, instance, first.cursor)
    (later,) = data.run_requests
    assert later.run_key == "2027-28@2" and later.partition_key == "2027-28"
    assert observation(data)["cycles_already_queued"] == "none"

    # One build may wait behind the running one; further events join it, whatever the running one does.
    waiting = queue(instance, later)
    ingest(home, tmp_path / "c.jsonl", [make_event("stage.signed_off")])
    data = evaluate(home, instance, data.cursor)
    assert data.run_requests == [] and observation(data)["cycles_already_queued"] == "2027-28"
    assert [run.run_id for run in builds_of(instance, "2027-28", dg.DagsterRunStatus.QUEUED)] == [waiting.run_id]
    assert [run.run_id for run in builds_of(instance, "2027-28", dg.DagsterRunStatus.STARTED)] == [running.run_id]


def test_sensor_builds_run_what_the_sensor_requests(home: PlanningHome, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """The bench's build loop stands in for the daemon: its runs are the sensor's, the cycle's tables only."""
    ingest(home, tmp_path / "a.jsonl", [make_event("stage.signed_off")])
    (request,) = evaluate(home, instance).run_requests
    ingest(home, tmp_path / "b.jsonl", [make_event("stage.signed_off")])
    with SensorBuilds(home) as builder:
        assert builder.build("2027-28", requested_at_mark=1)
    (run,) = instance.get_runs()  # no run of build_operations beside it
    assert run.job_name == request.job_name == "build_cycle" and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["planning/store_mark"] == request.tags["planning/store_mark"] == "1"
    assert run.tags["dagster/partition"] == "2027-28" and run.run_config["resources"] == request.run_config["resources"]
    assert json.loads((home.projections / "published.json").read_text())["cycles"]["2027-28"]["store_position"] == 2
