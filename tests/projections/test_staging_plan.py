"""Staging builds only what the requested tables read, and each table is the same as from a full staging.

The relations a table needs are read from its SQL and from sql/_staging.sql
(projections/building/staging_plan.py); a relation left out of that reading
would make a table built from its own staging fail or differ, which the
per-table comparison below catches.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.contract.instants import Instants
from events.storage.store import EventStore
from projections.building.build import build_table
from projections.building.staging import stage_cycle
from projections.building import staging_plan
from projections.building.staging_plan import needed_by, read_by_table, staging_statements, temporary_relations
from projections.connection import connect
from projections.tables import PANEL_TABLE_NAMES
from tests.support.events import PAYLOADS, make_event, received

KNOWN_BY = datetime(2026, 9, 1, tzinfo=timezone.utc)  # knowledge time pinned before the build's as_of
AT = Instants.parse("2027-07-01", "2027-07-01")
BOROUGHS = ("E09000012", "E09000015", "E09000020")
CHANNELS = ("online_survey", "ward_panel")


def cycle_events() -> list[dict]:
    """A cycle with every event type, responses from several respondents, and a retracted response."""
    events = [make_event(kind, occurred_at="2026-08-01T10:00:00Z") for kind in PAYLOADS
              if kind not in ("event.retracted", "respondent.erasure_requested")]
    for n in range(24):
        events.append(make_event("consultation.response_received", {
            "borough": BOROUGHS[n % 3], "channel": CHANNELS[n % 2],
            "respondent": {"respondent_ref": f"r-{n % 10}", "age_band": ("16-24", "25-34")[n % 2],
                           "gender": ("female", "male")[n % 2], "ethnic_group": "white", "disability": "no"},
        }, occurred_at=f"2026-07-{1 + n:02d}T12:00:00Z"))
    events.append(make_event("event.retracted", {"target_event_id": events[-1]["event_id"], "reason": "entered twice"},
                             occurred_at="2026-08-02T10:00:00Z"))
    return events


class VaultSpy:
    """Counts the store's requests for respondents' keys."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: list[list[str]] = []
        live_keys = store.live_keys

        def asking(subjects: list[str]) -> dict[str, bytes]:
            self.asked.append(list(subjects))
            return live_keys(subjects)

        monkeypatch.setattr(store, "live_keys", asking)


@pytest.fixture()
def store(tmp_path: Path) -> Iterable[EventStore]:
    with EventStore(tmp_path / "store", writer=True) as store:
        store.append(received(cycle_events()), KNOWN_BY)
        yield store


def staged_table(store: EventStore, build: Path, table: str, tables: Iterable[str] | None = None) -> list[tuple]:
    build.mkdir()
    chosen = {} if tables is None else {"tables": tables}
    stage_cycle(store, build / "staging.duckdb", "2027-28", AT, **chosen)
    build_table(build, table)
    with connect(build / "panel.duckdb", read_only=True) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def staged_relations(build: Path) -> set[str]:
    with connect(build / "staging.duckdb", read_only=True) as db:
        return {name for (name,) in db.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_consultation_coverage_alone_stages_no_demographics_and_is_the_same_table(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = VaultSpy(store, monkeypatch)
    full = staged_table(store, tmp_path / "full", "consultation_coverage")
    assert vault.asked and "response_demographics" in staged_relations(tmp_path / "full")  # the full staging unseals
    vault.asked.clear()

    alone = staged_table(store, tmp_path / "alone", "consultation_coverage", ["consultation_coverage"])

    assert vault.asked == []
    relations = staged_relations(tmp_path / "alone")
    assert "response_demographics" not in relations
    assert {"interviews", "meetings", "feedback_reach", "profile_population"}.isdisjoint(relations)
    assert alone == full
    assert sum(row[3] for row in full if row[2] == "all") == 24  # the 25 responses counted but the retracted one


@pytest.mark.parametrize("table", PANEL_TABLE_NAMES)
def test_each_table_from_its_own_staging_equals_the_table_from_the_full_staging(
    store: EventStore, tmp_path: Path, table: str
) -> None:
    full = staged_table(store, tmp_path / "full", table)
    alone = staged_table(store, tmp_path / "alone", table, [table])
    assert full, table  # a table with rows, so the comparison says something
    assert alone == full


def test_only_inclusion_needs_the_demographics_and_every_staging_relation_is_read() -> None:
    readers = [table for table in PANEL_TABLE_NAMES if "response_demographics" in needed_by([table])]
    assert readers == ["inclusion"]
    assert {"responses", "programme", "borough_targets"} <= needed_by(["consultation_coverage"])
    assert set(staging_statements()) <= needed_by(PANEL_TABLE_NAMES)


def test_the_relations_kept_in_memory_are_never_in_the_staging_file(store: EventStore, tmp_path: Path) -> None:
    assert temporary_relations() == {"store_events", "events"}
    staged_table(store, tmp_path / "full", "stage_status")
    relations = staged_relations(tmp_path / "full")
    assert "milestones" in relations  # what stage_status reads instead of events
    assert temporary_relations().isdisjoint(relations)


def test_a_table_reading_a_relation_kept_in_memory_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    sql = {"reads_events_directly": "SELECT count(*) AS n FROM staging.events JOIN staging.boroughs USING (borough)"}
    monkeypatch.setattr(staging_plan, "read_sql", lambda name: sql[name])

    with pytest.raises(ValueError) as refused:
        read_by_table("reads_events_directly")

    message = str(refused.value)
    assert "sql/reads_events_directly.sql" in message and "['events']" in message
    assert "staging.milestones" in message  # what to do instead
