"""schema_version upcasting: older events are stored as sent and read as the current version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from events import upcasting
from events.home import PlanningHome
from events.store import EventStore
from events.validation import Accepted, verdict
from pipelines.orchestration.runs import build
from pipelines.ingest.files import ingest_files
from projections.snapshots import open_reader
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
