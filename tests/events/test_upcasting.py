"""schema_version upcasting: older events are stored as sent and read as the current version."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.contract import upcasting
from events.home import PlanningHome
from events.contract.instants import Instants
from events.storage.store import EventStore
from events.contract.validation import Accepted, verdict
from pipelines.orchestration.runs import build
from pipelines.ingest.files import ingest_files
from projections.connection import connect
from projections.reading.snapshots import open_reader
from projections.building.staging import stage_cycle
from tests.support.events import make_event, write_jsonl


def signed_off_v0_to_v1(body: dict[str, Any]) -> dict[str, Any]:
    """A made-up version 0 named the signing body `signed_off_by`."""
    payload = dict(body["payload"])
    payload["body"] = payload.pop("signed_off_by")
    return {**body, "payload": payload}


@pytest.fixture
def v0_upcaster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)


def v0_event() -> dict:
    event = make_event("stage.signed_off", {"stage": "brief"}, schema_version=0, occurred_at="2026-03-20T10:00:00Z")
    event["payload"]["signed_off_by"] = event["payload"].pop("body")
    return event


def test_without_an_upcaster_an_old_version_is_rejected() -> None:
    assert not isinstance(verdict(json.dumps(v0_event()).encode()), Accepted)


def test_an_old_version_is_upcast_for_validation_but_stored_as_sent(v0_upcaster: None, tmp_path: Path) -> None:
    event = v0_event()
    with EventStore(tmp_path, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "v0.jsonl", [event]))], progress=None)
        (record,) = list(store.records())
        (read,) = list(store.events())
    assert record["schema_version"] == 0 and record["payload"]["signed_off_by"] == "csmb"  # never rewritten
    assert read["schema_version"] == 1 and read["payload"]["body"] == "csmb"  # upcast on read


def test_builds_read_old_versions_as_the_current_one(v0_upcaster: None, home: PlanningHome, tmp_path: Path) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / "v0.jsonl", [v0_event()]))], progress=None)
    build(home, on="2026-04-02")
    row = open_reader(home.projections).execute(
        "SELECT status, signed_off_by FROM stage_status WHERE stage = 'brief'"
    ).fetchone()
    assert row == ("signed_off", "csmb")


def response_v0_to_v1(body: dict[str, Any]) -> dict[str, Any]:
    """A made-up version 0 called the respondent's age band `age`: an upcaster of personal fields."""
    payload = dict(body["payload"])
    respondent = dict(payload["respondent"])
    respondent["age_band"] = respondent.pop("age")
    return {**body, "payload": {**payload, "respondent": respondent}}


def test_the_store_and_staging_read_an_old_response_through_the_same_conversion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(upcasting.UPCASTERS, ("consultation.response_received", 0), response_v0_to_v1)
    event = make_event("consultation.response_received", schema_version=0)
    event["payload"]["respondent"]["age"] = event["payload"]["respondent"].pop("age_band")
    with EventStore(tmp_path / "store", writer=True) as store:
        recorded_at = datetime(2026, 8, 1, tzinfo=timezone.utc)
        ingest_files(store, [str(write_jsonl(tmp_path / "v0.jsonl", [event]))], recorded_at=recorded_at, progress=None)
        (read,) = list(store.events())
        stage_cycle(store, tmp_path / "staging.duckdb", event["cycle"], Instants.parse("2026-09-01", "2026-09-01"))
    with connect(tmp_path / "staging.duckdb", read_only=True) as staged:
        demographics = staged.execute("SELECT age_band, gender FROM response_demographics").fetchall()
        (themes,) = staged.execute("SELECT themes FROM responses").fetchone()
        kept = {name for (name,) in staged.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert (read["schema_version"], read["payload"]["respondent"]["age_band"]) == (1, "16-24")
    assert demographics == [("16-24", "female")]  # unsealed, then upcast, as the store reads it
    assert themes == event["payload"]["themes"]  # the rest of the response staged as sent
    assert not {"store_events", "events"} & kept  # no record's payload, sealed or not, is kept in the file
