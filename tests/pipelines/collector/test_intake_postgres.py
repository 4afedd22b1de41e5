"""The collector's intake on the PostgreSQL store: a database restart fails the request in hand with
"send it again" (503 at the HTTP side), and the next request connects anew and is stored."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from events.contract.validation import verdict
from events.home import PlanningHome
from events.storage.backends import open_store
from events.storage.store import Received
from pipelines.cli.main import main
from pipelines.collector.intake import StoreIntake, Unavailable
from pipelines.exit_codes import ExitCode
from tests.support.events import line, make_event
from tests.support.postgres import Cluster

RECEIVED_AT = datetime(2026, 9, 1, tzinfo=timezone.utc)


def request(event: dict) -> list[Received]:
    raw = line(event)
    return [Received(raw, "collector:test", verdict(raw, RECEIVED_AT), sender="cdrp-harrow")]


def test_a_database_restart_fails_one_request_and_the_next_is_stored(home: PlanningHome, postgres_cluster: Cluster,
                                                                      postgres_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNING_STORE", postgres_url)
    assert main(["store", "init"]) == ExitCode.OK
    first, second = make_event("stage.signed_off"), make_event("stage.signed_off")
    intake = StoreIntake(home)
    try:
        assert asyncio.run(intake.take(request(first), RECEIVED_AT)).accepted == [first["event_id"]]
        postgres_cluster.restart()  # every connection cut, the collector's among them
        with pytest.raises(Unavailable, match="cannot be reached; send the request again"):
            asyncio.run(intake.take(request(second), RECEIVED_AT))
        assert asyncio.run(intake.take(request(second), RECEIVED_AT)).accepted == [second["event_id"]]
    finally:
        intake.close()
    with open_store(home.store) as store:
        assert [event["event_id"] for event in store.events()] == [first["event_id"], second["event_id"]]
