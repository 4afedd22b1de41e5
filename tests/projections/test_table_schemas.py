"""Each Panel table is described once, beside its SQL, and guarded by checks that can fail.

The tables are built from an empty cycle's staging file: DuckDB types a
SELECT from its text, not from its rows, so the columns a table's SQL
produces are the same whatever the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from events.contract.instants import Instants
from events.storage.store import EventStore
from events.contract.vocabulary import STAGES
from projections.building.build import build_table
from projections.connection import connect
from projections.building.staging import stage_cycle
from projections.tables import ALL_TABLES, DEAD_LETTERS, PANEL_TABLES, TableCheck, sql_folder

CHECKS = [check for table in PANEL_TABLES.values() for check in table.checks]

# One way to break each check's rule in a valid build: the check must then report it.
BREAKS: dict[tuple[str, str], str] = {
    ("stage_status", "every_stage_present"): "DELETE FROM stage_status WHERE stage = 'brief'",
    ("consultation_coverage", "every_borough_present"):
        "DELETE FROM consultation_coverage WHERE borough = 'E09000002' AND channel = 'all'",
    ("cdrp_audits", "every_borough_present"): "DELETE FROM cdrp_audits WHERE borough = 'E09000002'",
    ("feedback_log", "every_borough_present"): "DELETE FROM feedback_log WHERE round = 2 AND borough = 'E09000002'",
    ("inclusion", "every_scope_present"): "DELETE FROM inclusion WHERE scope = 'LONDON'",
    ("inclusion", "no_small_cell_shown"):
        "UPDATE inclusion SET suppressed = false, respondents = 3 WHERE scope = 'LONDON' AND \"group\" = 'female'",
    ("inclusion", "no_lone_suppressed_cell"):
        "UPDATE inclusion SET suppressed = false, respondents = 50 WHERE scope = 'LONDON' AND dimension = 'gender' AND \"group\" <> 'female'",
    ("survey_indicators", "estimates_within_0_100"):
        "INSERT INTO survey_indicators VALUES ('2027-28', '2026Q2', 'LONDON', 'trust', 50, 60, 70, 400, 380, false)",
    ("survey_indicators", "no_small_base_shown"):
        "INSERT INTO survey_indicators VALUES ('2027-28', '2026Q2', 'LONDON', 'trust', 50, 40, 60, 12, 12, false)",
    ("theme_ranking", "every_scope_present"): "UPDATE theme_ranking SET rank = 1 WHERE scope = 'LONDON'",
    ("group_activity", "one_row_per_group"):
        "INSERT INTO group_activity VALUES ('2027-28', 'cg-1', 'consultative_group', 'E09000002', 1, 10, 50, 5),"
        " ('2027-28', 'cg-1', 'ward_panel', 'E09000003', 1, 10, 50, 5)",
    ("group_activity", "totals_consistent"):
        "INSERT INTO group_activity VALUES ('2027-28', 'cg-1', 'consultative_group', 'E09000002', 2, 10, 100, 5)",
    ("priority_traceability", "one_row_per_rank"):
        "INSERT INTO priority_traceability VALUES ('2027-28', 1, 'knife_crime', 'LONDON', 0, 0, 0, [], 0, 'q'),"
        " ('2027-28', 1, 'burglary', 'LONDON', 0, 0, 0, [], 0, 'q')",
    ("priority_traceability", "evidence_trail_complete"):
        "INSERT INTO priority_traceability VALUES ('2027-28', 1, 'knife_crime', 'E09000002', 2, 0, 0, ['E09000003'], 3, 'q')",
    ("priority_evidence", "one_row_per_event"):
        "INSERT INTO priority_evidence VALUES ('2027-28', 'LONDON', 1, 'cdrp_audit', 'a'), ('2027-28', 'LONDON', 1, 'cdrp_audit', 'a')",
    ("priority_evidence", "counted_in_traceability"):
        "INSERT INTO priority_traceability VALUES ('2027-28', 1, 'knife_crime', 'LONDON', 1, 0, 0, [], 1, 'q')",
}


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """Every Panel table of a cycle with no events, built by its SQL file."""
    build = tmp_path_factory.mktemp("schemas")
    with EventStore(build / "store", writer=True) as store:
        instants = Instants(date(2026, 9, 10), datetime(2026, 9, 10, 12, tzinfo=timezone.utc))
        stage_cycle(store, build / "staging.duckdb", "2027-28", instants, cache=None)
    for name in PANEL_TABLES:
        build_table(build, name)
    with connect(build / "panel.duckdb") as db:
        yield db


@pytest.mark.parametrize("name", PANEL_TABLES)
def test_the_schema_file_documents_exactly_the_columns_the_sql_produces(panel: duckdb.DuckDBPyConnection, name: str) -> None:
    produced = [(column, kind) for column, kind, *_ in panel.execute(f"DESCRIBE {name}").fetchall()]
    assert [(c.name, c.type) for c in PANEL_TABLES[name].columns] == produced
    assert all(c.description.strip() for c in PANEL_TABLES[name].columns)


def test_every_table_has_a_description_a_group_and_an_order_readers_can_use(panel: duckdb.DuckDBPyConnection) -> None:
    for table in PANEL_TABLES.values():
        assert table.description.startswith("One row per"), table.name
        assert table.group in ("timetable", "fieldwork", "analysis", "feedback", "publication"), table.name
        panel.execute(f"SELECT * FROM {table.name} ORDER BY {table.order_by}").fetchall()
    stages = [stage for (stage,) in panel.execute(f"SELECT stage FROM stage_status ORDER BY {PANEL_TABLES['stage_status'].order_by}").fetchall()]
    assert stages == list(STAGES)


def test_every_schema_file_and_check_file_belongs_to_a_table() -> None:
    folder = sql_folder()
    schema_files = {f.name for f in folder.iterdir() if f.name.endswith(".yml")}
    assert schema_files == {f"{name}.yml" for name in ALL_TABLES}
    assert all(folder.joinpath(f"{name}.sql").is_file() for name in PANEL_TABLES)
    check_files = {f.name for f in folder.joinpath("checks").iterdir() if f.name.endswith(".sql")}
    assert check_files == {f"{c.table}__{c.name}.sql" for c in CHECKS}
    assert DEAD_LETTERS.checks == ()  # the data team's table is not in the Panel's checked build


def test_every_panel_table_has_at_least_one_check() -> None:
    assert [name for name, table in PANEL_TABLES.items() if not table.checks] == []
    assert set(BREAKS) == {(c.table, c.name) for c in CHECKS}  # and each check below is shown to fail


def offending_rows(db: duckdb.DuckDBPyConnection, check: TableCheck) -> list[tuple]:
    return db.execute(check.sql).fetchall()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c.table}__{c.name}")
def test_a_check_passes_on_a_valid_build_and_reports_a_broken_one(panel: duckdb.DuckDBPyConnection, check: TableCheck) -> None:
    assert offending_rows(panel, check) == []
    panel.execute("BEGIN TRANSACTION")
    try:
        panel.execute(BREAKS[(check.table, check.name)])
        offending = offending_rows(panel, check)
    finally:
        panel.execute("ROLLBACK")
    assert offending and all(isinstance(row[0], str) and row[0] for row in offending), offending
