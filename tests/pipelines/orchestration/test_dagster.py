"""The projections are Dagster assets: they load, materialize, and a failing check blocks publication."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from events.home import PlanningHome
from events.senders.registry import operator
from events.storage.store import EventStore
from pipelines.orchestration.runs import build
from pipelines.orchestration.defs.assets import panel_tables, panel_tables_asset
from pipelines.orchestration.defs.checks import run_builds
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.defs.partitions import cycles
from pipelines.orchestration.defs.resources import PlanningHomeResource
from pipelines.ingest.files import ingest_files
from projections.tables import ALL_TABLES, PANEL_TABLES, TableCheck
from tests.support.events import make_event, write_jsonl


def test_definitions_load_with_assets_groups_and_checks() -> None:
    repository = defs.get_repository_def()
    keys = {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    assert {"event_store", "cycle_evidence", "stage_status", "consultation_coverage", "cdrp_audits", "panel_snapshot", "dead_letters"} <= keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in repository.asset_graph.asset_check_keys}
    assert ("consultation_coverage", "every_borough_present") in checks
    assert defs.get_assets_def("consultation_coverage").group_names_by_key[dg.AssetKey("consultation_coverage")] == "fieldwork"


def test_a_check_comparing_two_tables_runs_in_the_step_that_builds_both() -> None:
    graph = defs.get_repository_def().asset_graph
    counted = dg.AssetCheckKey(dg.AssetKey("priority_evidence"), "counted_in_traceability")
    assert PANEL_TABLES["priority_evidence"].checks[-1].reads == ("priority_traceability",)
    step = graph.assets_def_for_key(counted)
    assert {dg.AssetKey("priority_evidence"), dg.AssetKey("priority_traceability")} <= step.keys
    assert graph.get(counted).blocking
    with pytest.raises(ValueError, match=r"counted_in_traceability of priority_evidence reads \['priority_traceability'\]"):
        panel_tables_asset({"priority_evidence": PANEL_TABLES["priority_evidence"]})  # the table it reads left out


def test_the_tables_and_their_checks_are_one_step_each_keeping_its_name_meaning_and_blocking() -> None:
    """One step for every table, so each cycle's panel file is opened once to build them and once to check them."""
    graph = defs.get_repository_def().asset_graph
    step = graph.assets_def_for_key(dg.AssetKey("stage_status"))
    assert step.node_def.name == "panel_tables"
    assert step.keys == {dg.AssetKey(name) for name in PANEL_TABLES}
    for name, table in PANEL_TABLES.items():
        keys = [dg.AssetCheckKey(dg.AssetKey(name), check.name) for check in table.checks]
        assert set(keys) <= step.check_keys
        assert [(graph.get(key).description, graph.get(key).blocking) for key in keys] == [
            (check.description, True) for check in table.checks]
    assert len(step.check_keys) == sum(len(table.checks) for table in PANEL_TABLES.values())


def test_every_table_asset_shows_its_columns_with_their_meanings() -> None:
    for name, table in ALL_TABLES.items():
        schema = defs.get_assets_def(name).metadata_by_key[dg.AssetKey(name)]["dagster/column_schema"]
        assert [(c.name, c.type, c.description) for c in schema.columns] == [(c.name, c.type, c.description) for c in table.columns]
        assert schema.columns, name


def test_a_build_is_recorded_in_the_dagster_instance(home: PlanningHome, tmp_path: Path) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", [make_event("stage.signed_off")]))], progress=None)
    (cycle_build,) = build(home, on="2026-09-10")
    instance = dg.DagsterInstance.get()  # $PLANNING_HOME/dagster, as the UI sees it
    assert Path(instance.root_directory) == home.dagster
    run = instance.get_run_by_id(cycle_build.run_id)
    assert run.is_success and run.tags["dagster/partition"] == "2027-28"
    materialization = instance.get_latest_materialization_event(dg.AssetKey("cdrp_audits")).asset_materialization
    assert materialization.partition == "2027-28" and materialization.metadata["dagster/row_count"].value == 32
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("cdrp_audits"), "every_borough_present")]
    )
    assert check[dg.AssetCheckKey(dg.AssetKey("cdrp_audits"), "every_borough_present")].status.value == "SUCCEEDED"
    counted = dg.AssetCheckKey(dg.AssetKey("priority_evidence"), "counted_in_traceability")
    assert instance.event_log_storage.get_latest_asset_check_execution_by_key([counted])[counted].status.value == "SUCCEEDED"


def test_a_failing_blocking_check_keeps_the_previous_snapshot(home: PlanningHome, tmp_path: Path) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", [make_event("stage.signed_off")]))], progress=None)
    build(home, on="2026-09-10")
    before = json.loads((home.projections / "published.json").read_text())

    # one failing check among the table's own passing ones: the tables' step records every result, then blocks
    stage_status = PANEL_TABLES["stage_status"]
    always_fails = TableCheck("stage_status", "always_fails", "a check that fails", "SELECT 'deliberate failure'")
    failing = panel_tables_asset({**PANEL_TABLES, "stage_status": replace(stage_status, checks=(*stage_status.checks, always_fails))})
    assets = [failing if a is panel_tables else a for a in defs.assets]
    assert failing in assets
    # The live instance first: Dagster's definitions loading holds on to the current instance.
    with dg.DagsterInstance.get() as instance:
        broken = dg.Definitions(assets=assets, asset_checks=defs.asset_checks, jobs=defs.jobs, resources=defs.resources)
        result = broken.resolve_job_def("build_cycle").execute_in_process(
            partition_key="2027-28", instance=instance, raise_on_error=False,
            run_config={"ops": {"cycle_evidence": {"config": {"on": "2026-09-11"}}}},
        )
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(e.check_name, e.passed) for e in evaluations if e.asset_key == dg.AssetKey("stage_status")] == [
        *((check.name, True) for check in stage_status.checks), ("always_fails", False)]
    assert not any(e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == dg.AssetKey("panel_snapshot") for e in result.all_events)
    assert json.loads((home.projections / "published.json").read_text()) == before
    assert cycles.name == "cycle"


def test_a_check_finds_the_run_s_builds_without_making_a_folder(tmp_path: Path) -> None:
    """A check only reads a build: looking it up must not leave an empty folder where the build is missing."""
    planning = PlanningHomeResource(root=str(tmp_path))
    context = SimpleNamespace(partition_keys=["2026-27", "2027-28"], run=SimpleNamespace(run_id="run-1"))
    builds = run_builds(context, planning)  # type: ignore[arg-type]  # the two fields a check's context gives it
    assert builds == {cycle: tmp_path / "projections" / "builds" / cycle / "run-1" for cycle in context.partition_keys}
    assert not (tmp_path / "projections" / "builds").exists()
    assert planning.build("2027-28", "run-1").is_dir()  # a step that writes the build makes it


def test_the_event_store_is_observed_never_materialized(home: PlanningHome, tmp_path: Path) -> None:
    """The catalog shows the store as an observable source, with its observations, not as "never materialized"."""
    from dagster._core.definitions.observe import observe  # what "Observe" in the UI runs

    from pipelines.orchestration.defs.assets import event_store

    store_def = defs.get_assets_def("event_store")
    assert store_def.is_observable and not store_def.is_materializable
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", [make_event("stage.signed_off"), b"not json"]))],
                     progress=None, sender=operator("alice"))
    build(home, on="2026-09-10")  # each build observes the store it reads
    # Entered, so that the definitions ``observe`` builds load with this instance's state storage current. Dagster
    # keeps the current one in a context variable; left to whatever an earlier test's instances set there, it can
    # name a storage whose instance is gone ("Attempted to resolve undefined DagsterInstance weakref").
    with dg.DagsterInstance.get() as instance:

        def observations() -> list[dg.AssetObservation]:
            records = instance.fetch_observations(dg.AssetKey("event_store"), limit=10).records
            return [r.asset_observation for r in records]

        (seen,) = observations()
        assert seen.tags["dagster/data_version"] == "1"  # the mark counts stored events; a dead letter is not one
        assert {k: v.value for k, v in seen.metadata.items() if k != "by_sender"} == {"high_water_mark": 1, "events_stored": 1, "dead_letters": 1}
        assert seen.metadata["by_sender"].value.splitlines()[-1] == "| operator:alice | 1 | 1 |"  # events and dead letters per sender
        assert observe([event_store], instance=instance, resources={"planning": PlanningHomeResource(root=str(home.root))}).success
        latest = observations()[0]
        assert len(observations()) == 2 and latest.tags["dagster/data_version"] == "1"
        assert instance.get_latest_materialization_event(dg.AssetKey("event_store")) is None


def test_a_pack_written_by_the_command_is_in_the_catalog(home: PlanningHome, tmp_path: Path) -> None:
    """A cycle's briefing_pack is missing in the catalog only while no pack of it exists."""
    from pipelines.cli.main import main

    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", [make_event("cycle.opened", {"timetable": []})]))],
                     progress=None)
    build(home, on="2026-09-10")
    instance = dg.DagsterInstance.get()
    key = dg.AssetKey("briefing_pack")
    assert instance.get_materialized_partitions(key) == set()
    assert main(["pack", "--cycle", "2027-28", "--no-pdf", "--to", str(tmp_path / "elsewhere")]) == 0
    assert instance.get_materialized_partitions(key) == set(), "a pack written elsewhere is not the cycle's pack"
    assert main(["pack", "--cycle", "2027-28", "--no-pdf"]) == 0
    assert instance.get_materialized_partitions(key) == {"2027-28"}
    materialization = instance.get_latest_materialization_event(key).asset_materialization
    html = Path(materialization.metadata["html"].value)
    assert html.parent == home.packs / "2027-28" and html.is_file()
    assert materialization.metadata["written_by"].value == "planning pack"


def test_a_build_of_every_cycle_is_one_run_with_each_cycle_s_own_figures(home: PlanningHome, tmp_path: Path) -> None:
    """One run over the range of cycle partitions (a single-run backfill): each step works through every cycle,
    the catalog holds each cycle's own row counts, and every cycle is published from that one run."""
    from projections.reading.snapshots import published

    groups = {"2024-25": ["cpcg-a"], "2025-26": ["cpcg-a", "cpcg-b"], "2026-27": ["cpcg-a", "cpcg-b", "cpcg-c"]}
    events = [make_event("group.meeting_held", {"group_id": group}, cycle=cycle, occurred_at=f"{cycle[:4]}-07-14T18:30:00Z")
              for cycle, ids in groups.items() for group in ids]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "e.jsonl", events))], progress=None)

    builds = build(home, on="2026-09-10")
    assert [b.cycle for b in builds] == list(groups)
    assert len({b.run_id for b in builds}) == 1, "every cycle is built by one run"
    assert [b.rows["group_activity"] for b in builds] == [1, 2, 3]
    instance = dg.DagsterInstance.get()
    run = instance.get_run_by_id(builds[0].run_id)
    assert (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"]) == ("2024-25", "2026-27")
    counts = {
        record.asset_materialization.partition: record.asset_materialization.metadata["dagster/row_count"].value
        for record in instance.fetch_materializations(dg.AssetKey("group_activity"), limit=10).records
    }
    assert counts == {"2024-25": 1, "2025-26": 2, "2026-27": 3}
    pointer = published(home.projections)["cycles"]
    assert {cycle: pointer[cycle]["run_id"] for cycle in groups} == {cycle: run.run_id for cycle in groups}
    check = dg.AssetCheckKey(dg.AssetKey("cycle_evidence"), "full_rebuild_matches")
    (execution,) = instance.event_log_storage.get_asset_check_execution_history(check, limit=5)
    assert execution.run_id == run.run_id and execution.status.value == "SUCCEEDED", "a check runs once, over every cycle"
