"""A build stages the same rows from either store backend: the embedded store's segments, or
records copied out of PostgreSQL in bulk (events.storage.backends.record_files), through the event
cache and straight from the store."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.contract.instants import Instants
from events.contract.validation import verdict
from events.storage.postgres.migrations import init_store
from events.storage.postgres.store import PostgresStore
from events.storage.store import EventStore, Received
from projections.building import event_cache
from projections.building.staging import stage_cycle
from projections.connection import connect
from tests.support.events import line, make_event

RECORDED_AT = datetime(2026, 8, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("through_cache", [False, True])
def test_staging_is_the_same_from_either_backend(postgres_url: str, tmp_path: Path, through_cache: bool) -> None:
    responses = [make_event("consultation.response_received", {"respondent": {"respondent_ref": f"r-{i}", "age_band": "16-24"}})
                 for i in range(3)]
    other_cycle = make_event("stage.signed_off", cycle="2026-27")
    retraction = make_event("event.retracted", {"target_event_id": responses[0]["event_id"], "reason": "sent in error"},
                            cycle="2026-27")
    batch = [Received(line(e), f"f:{i}", verdict(line(e))) for i, e in enumerate([*responses, other_cycle, retraction])]
    init_store(postgres_url)
    staged = {}
    with EventStore(tmp_path / "store", writer=True) as embedded, PostgresStore(postgres_url, writer=True) as postgres:
        for name, store in (("embedded", embedded), ("postgresql", postgres)):
            store.append(batch, recorded_at=RECORDED_AT)
            path = tmp_path / f"{name}.duckdb"
            cache = None
            if through_cache:
                with event_cache.cache_lock(tmp_path / name):  # as builds call it
                    assert event_cache.refresh(store, tmp_path / name)["cache_added"] == 5
                cache = event_cache.cache_file(tmp_path / name)
            counts = stage_cycle(store, path, "2027-28", Instants.parse("2026-09-01", "2026-09-01"), cache=cache)
            with connect(path, read_only=True) as db:
                staged[name] = (
                    counts,
                    db.execute("SELECT position, event_id, borough, themes FROM responses ORDER BY position").fetchall(),
                    db.execute("SELECT event_id FROM retracted").fetchall(),
                    db.execute("SELECT * EXCLUDE (subject) FROM response_demographics ORDER BY ALL").fetchall(),  # surrogates are random
                )
    assert staged["postgresql"] == staged["embedded"]
    counts, rows, retracted, demographics = staged["embedded"]
    # the retracted response and the other cycle's events are not staged; the retraction, of another cycle, is resolved
    assert [(r[0], r[1]) for r in rows] == [(2, responses[1]["event_id"]), (3, responses[2]["event_id"])]
    assert retracted == [(responses[0]["event_id"],)]
    assert len(demographics) == 2
