"""A Panel figure depends on which events a build counts, never on the order DuckDB reads them in.

A compensated sum (``fsum``) of the same floats can differ in its last bit with the order they are
added in, and DuckDB splits a table between threads as they come free; so a rebuild at the same
(on, as_of), a restored store's rebuild above all, once published a ``theme_ranking`` that differed
from the original's. Here the order is changed outright: the same staging with its interviews,
indicator answers, meetings and audits stored in the reverse order must give the same tables, bit for
bit. The weights are ones whose compensated sum does depend on the order.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from events.contract.instants import Instants
from events.storage.store import EventStore
from projections.building.build import build_table
from projections.building.staging import stage_cycle
from projections.connection import connect
from projections.tables import PANEL_TABLES
from tests.support.events import make_event, received

KNOWN_BY = datetime(2026, 8, 1, tzinfo=timezone.utc)
AT = Instants.parse("2026-09-01", "2026-09-01")
# their fsum in this order and in the reverse one differ in the last bit
AWKWARD = [4.580290206755945e-07, 0.17962280250303564, 3.2701202674935057e-19, 6.761590856756512e-18, 0.018327307976486858]
SUMMING = ("theme_ranking", "survey_indicators", "group_activity", "priority_traceability")
REORDERED = ("interviews", "indicator_answers", "meetings", "latest_audits")


def history() -> list[dict]:
    interviews = [make_event("survey.response_recorded", {"weight": w, "priorities": ["burglary"] if i % 2 else ["burglary", "drugs"]})
                  for i, w in enumerate(AWKWARD)]
    meetings = [make_event("group.meeting_held", {"cost_gbp": w}) for w in AWKWARD]
    audits = [make_event("cdrp.audit_submitted", {"borough": b, "priorities": [{"theme": "drugs", "rank": r}]})
              for r, b in enumerate(("E09000008", "E09000012", "E09000020"), start=1)]
    adopted = make_event("priorities.adopted", {"priorities": [{"rank": 1, "theme": "burglary", "scope": "LONDON"}]})
    return [make_event("cycle.opened"), *interviews, *meetings, *audits, adopted]


def panel_rows(build: Path) -> dict[str, list[tuple]]:
    for name in SUMMING:
        build_table(build, name)
    with connect(build / "panel.duckdb", read_only=True) as db:
        return {name: db.execute(f"SELECT * FROM {name} ORDER BY {PANEL_TABLES[name].order_by}").fetchall()
                for name in SUMMING}


def test_reading_the_evidence_in_another_order_changes_no_figure(tmp_path: Path) -> None:
    (tmp_path / "forward").mkdir()
    with EventStore(tmp_path / "store", writer=True) as store:
        store.append(received(history()), KNOWN_BY)
        stage_cycle(store, tmp_path / "forward" / "staging.duckdb", "2027-28", AT)
    (tmp_path / "reversed").mkdir()
    shutil.copy(tmp_path / "forward" / "staging.duckdb", tmp_path / "reversed" / "staging.duckdb")
    with connect(tmp_path / "reversed" / "staging.duckdb") as db:
        for table in REORDERED:
            db.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {table} ORDER BY event_id DESC")
        first = db.execute("SELECT weight FROM interviews LIMIT 1").fetchone()[0]
    assert first == AWKWARD[-1], "the reversed staging reads its interviews last to first"

    forward, reversed_ = panel_rows(tmp_path / "forward"), panel_rows(tmp_path / "reversed")
    assert all(forward[name] for name in SUMMING), "every summing table has rows"
    for name in SUMMING:
        assert reversed_[name] == forward[name], f"{name} changed with the order its rows were read in"
