"""The sensor and the morning schedule on the PostgreSQL store: the same requests as on the embedded one.

PLANNING_STORE names a database of the test's own; events go in through `planning ingest`, so
the sensor reads what a command (or a worker) wrote there, and nothing is in $PLANNING_HOME/store.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from pipelines.orchestration.definitions import defs
from pipelines.orchestration.defs.resources import PlanningHomeResource
from pipelines.orchestration.defs.sensors import event_store_sensor
from pipelines.orchestration.instance import use_planning_dagster_home
from pipelines.orchestration.runs import build
from tests.support.events import make_event, write_jsonl

RECORDED_AT = "2026-09-01T00:00:00Z"


@pytest.fixture
def on_postgres(home: PlanningHome, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> PlanningHome:
    monkeypatch.setenv("PLANNING_STORE", postgres_url)
    assert main(["store", "init"]) == ExitCode.OK
    return home


@pytest.fixture
def instance(on_postgres: PlanningHome) -> dg.DagsterInstance:
    use_planning_dagster_home(on_postgres)
    return dg.DagsterInstance.get()


def ingest(path: Path, events: list) -> None:
    assert main(["ingest", str(write_jsonl(path, events)), "--recorded-at", RECORDED_AT]) == ExitCode.OK


def evaluate(home: PlanningHome, instance: dg.DagsterInstance, cursor: str | None = None):
    with dg.build_sensor_context(instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                                 resources={"planning": PlanningHomeResource(root=str(home.root))}) as context:
        return event_store_sensor.evaluate_tick(context)


def test_the_sensor_follows_the_postgresql_store(on_postgres: PlanningHome, instance: dg.DagsterInstance,
                                                 tmp_path: Path) -> None:
    target = make_event("stage.signed_off", cycle="2026-27")
    ingest(tmp_path / "a.jsonl", [target, make_event("stage.signed_off")])
    first = evaluate(on_postgres, instance)
    assert sorted(r.run_key for r in first.run_requests) == ["2026-27@2", "2027-28@2"]
    assert json.loads(first.cursor)["mark"] == 2
    assert not (on_postgres.store / "store.sqlite").exists()  # read from the database, not an embedded store

    ingest(tmp_path / "b.jsonl", [make_event("stage.signed_off", cycle="2026-27")])
    later = evaluate(on_postgres, instance, first.cursor)
    assert [r.run_key for r in later.run_requests] == ["2026-27@3"]

    # A retraction filed under 2027-28 removes an event of 2026-27: every cycle is built again.
    retraction = make_event("event.retracted", {"target_event_id": target["event_id"], "reason": "wrong cycle"})
    ingest(tmp_path / "c.jsonl", [retraction])
    data = evaluate(on_postgres, instance, later.cursor)
    assert sorted(r.run_key for r in data.run_requests) == ["2026-27@4", "2027-28@4"]
    (seen,) = data.asset_events
    assert seen.metadata["all_cycles_because"].value == "retraction"


def test_a_new_daemon_finds_the_cycles_built_from_postgresql_current(on_postgres: PlanningHome,
                                                                     instance: dg.DagsterInstance, tmp_path: Path) -> None:
    ingest(tmp_path / "a.jsonl", [make_event("stage.signed_off"), make_event("stage.signed_off", cycle="2026-27")])
    assert [b.cycle for b in build(on_postgres, on="2026-09-10")] == ["2026-27", "2027-28"]
    assert not (on_postgres.store / "store.sqlite").exists()  # built from the database
    first = evaluate(on_postgres, instance, cursor=None)
    assert first.run_requests == [] and "already read up to mark 2" in first.skip_message

    # A retraction after the published builds, of an event no store holds: still every cycle.
    ingest(tmp_path / "b.jsonl", [make_event("event.retracted", {"target_event_id": str(uuid.uuid4())})])
    assert sorted(r.run_key for r in evaluate(on_postgres, instance, None).run_requests) == ["2026-27@3", "2027-28@3"]
