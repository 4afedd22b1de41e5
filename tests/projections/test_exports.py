"""`planning export`: every Panel table of a cycle, in csv, parquet and xlsx, with every column documented.

The outputs are opened the way their readers would open them: csv with the
csv module, parquet with DuckDB's read_parquet, xlsx with openpyxl.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from projections.connection import connect
from projections.reading.exports import XLSX_CELL_LIMIT
from projections.reading.snapshots import open_reader
from projections.tables import PANEL_TABLES
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home

CYCLE = "2027-28"
CANARY = "CANARY-DEAD-LETTER-export"
RESPONSE = make_event("consultation.response_received", {"borough": "E09000012"})  # names knife_crime, the priority


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    """A small cycle that fills every table, with list columns, a suppressed cell, and a dead letter."""
    root = tmp_path_factory.mktemp("exports") / "planning-home"
    events = [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
        make_event("programme.approved", occurred_at="2026-05-20T09:00:00Z"),
        RESPONSE,
        make_event("survey.response_recorded"),
        make_event("borough.profile_recorded", occurred_at="2026-04-01T09:00:00Z"),
        make_event("group.meeting_held"),
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
        make_event("feedback.published", occurred_at="2026-10-05T10:00:00Z"),
        make_event("priorities.adopted", {"priorities": [{"rank": 1, "theme": "knife_crime", "scope": "LONDON"}]},
                   occurred_at="2026-11-10T10:00:00Z"),
        f'{{"event_type": "{CANARY}"}}',
    ]
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        # knowledge time pinned before as_of, so the build sees the same events whatever the day
        assert main(["ingest", "--recorded-at", "2026-11-20T09:00:00Z", str(write_jsonl(root.parent / "events.jsonl", events))]) == 1
        # the current snapshot at pinned instants (`planning build --on/--as-of` names a what-if snapshot)
        build(home, on="2026-11-23", as_of="2026-11-23T12:00:00Z")
        yield home


def snapshot_columns(home: PlanningHome) -> dict[str, list[str]]:
    db = open_reader(home.projections)
    return {name: [r[0] for r in db.execute(f"DESCRIBE {name}").fetchall()] for name in PANEL_TABLES}


def snapshot_rows(home: PlanningHome, name: str) -> int:
    return open_reader(home.projections).execute(f"SELECT count(*) FROM {name} WHERE cycle = ?", [CYCLE]).fetchone()[0]


def export(fmt: str, to: Path, capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    assert main(["export", "--cycle", CYCLE, "--format", fmt, "--to", str(to)]) == 0
    return capsys.readouterr().out


def documented_columns(readme: str) -> dict[str, list[str]]:
    """Each '### `table`' section's '| `column` | type | meaning |' rows."""
    tables: dict[str, list[str]] = {}
    current = None
    for line in readme.splitlines():
        heading = re.match(r"### `(\w+)`", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
        row = re.match(r"\| `(\w+)` \| [^|]+ \| (.+) \|$", line)
        if row and current is not None and row.group(2).strip():
            current.append(row.group(1))
    return tables


def test_the_schema_files_document_every_column_of_every_published_table(built: PlanningHome) -> None:
    for name, names in snapshot_columns(built).items():
        assert [c.name for c in PANEL_TABLES[name].columns] == names, name
        assert all(len(c.description) > 10 for c in PANEL_TABLES[name].columns), name


def test_csv_export(built: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = export("csv", tmp_path, capsys)
    columns = snapshot_columns(built)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(f"{n}.csv" for n in PANEL_TABLES), "README.md"])
    for name in PANEL_TABLES:
        with open(tmp_path / f"{name}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0] == columns[name], name
        assert len(rows) - 1 == snapshot_rows(built, name) > 0, name
        assert f"{name}" in out
    with open(tmp_path / "priority_traceability.csv", newline="", encoding="utf-8") as f:
        (priority,) = list(csv.DictReader(f))
    assert priority["theme"] == "knife_crime"
    assert json.loads(priority["cdrp_boroughs"]) == []  # lists are JSON arrays
    with open(tmp_path / "priority_evidence.csv", newline="", encoding="utf-8") as f:
        evidence = list(csv.DictReader(f))  # the evidence trail the row counts, one event a row
    assert [(e["scope"], e["rank"], e["kind"], e["event_id"]) for e in evidence] == [
        ("LONDON", "1", "consultation_response", RESPONSE["event_id"])]
    assert int(priority["evidence_events"]) == int(priority["supporting_responses"]) == len(evidence)
    with open(tmp_path / "inclusion.csv", newline="", encoding="utf-8") as f:
        suppressed = [r for r in csv.DictReader(f) if r["suppressed"] == "true"]
    assert suppressed and all(r["respondents"] == r["share"] == r["representation_ratio"] == "" for r in suppressed)
    readme = (tmp_path / "README.md").read_text()
    assert documented_columns(readme) == columns
    assert "dead_letters" not in "".join(p.name for p in tmp_path.iterdir())
    assert CANARY not in "".join(p.read_text() for p in tmp_path.iterdir())


def test_parquet_export(built: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    export("parquet", tmp_path, capsys)
    columns = snapshot_columns(built)
    db = connect()
    for name in PANEL_TABLES:
        path = tmp_path / f"{name}.parquet"
        cursor = db.execute("SELECT * FROM read_parquet(?)", [str(path)])
        assert [d[0] for d in cursor.description] == columns[name], name
        assert len(cursor.fetchall()) == snapshot_rows(built, name)
    # types survive: lists stay lists, booleans booleans, dates dates
    (top, ready) = db.execute(
        "SELECT (SELECT top_priorities FROM read_parquet(?) WHERE borough = 'E09000008'),"
        " (SELECT bool_and(ready IS NOT NULL) FROM read_parquet(?))",
        [str(tmp_path / "cdrp_audits.parquet"), str(tmp_path / "stage_status.parquet")],
    ).fetchone()
    assert top == ["violence", "drugs"] and ready is True
    original = open_reader(built.projections).execute(
        "SELECT * FROM survey_indicators WHERE cycle = ? ORDER BY wave, scope, indicator", [CYCLE]).fetchall()
    exported = db.execute("SELECT * FROM read_parquet(?) ORDER BY wave, scope, indicator", [str(tmp_path / "survey_indicators.parquet")]).fetchall()
    assert exported == original
    assert documented_columns((tmp_path / "README.md").read_text()) == columns


def test_xlsx_export(built: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from openpyxl import load_workbook

    export("xlsx", tmp_path, capsys)
    columns = snapshot_columns(built)
    book = load_workbook(tmp_path / f"panel-{CYCLE}.xlsx", read_only=True)
    assert book.sheetnames[0] == "README"
    assert set(PANEL_TABLES) <= set(book.sheetnames)
    assert "dead_letters" not in book.sheetnames
    for name in PANEL_TABLES:
        rows = list(book[name].iter_rows(values_only=True))
        assert list(rows[0]) == columns[name], name
        assert len(rows) - 1 == snapshot_rows(built, name)
        assert all(len(str(v)) <= XLSX_CELL_LIMIT for row in rows for v in row if v is not None)
    # the column docs as a sheet: one row per table x column, with its meaning
    docs = list(book["README"].iter_rows(values_only=True))
    header = next(i for i, r in enumerate(docs) if r[:4] == ("table", "column", "type", "meaning"))
    documented = {(r[0], r[1]): r[3] for r in docs[header + 1:] if r[0]}
    assert set(documented) == {(n, c) for n, cs in columns.items() for c in cs}
    assert all(documented.values())
    on = next(r for r in docs if r[0] == "on_date")
    assert str(on[1]).startswith("2026-11-23")
    assert documented_columns((tmp_path / "README.md").read_text()) == columns


def test_export_of_an_unknown_cycle_fails_clearly(built: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["export", "--cycle", "2030-31", "--format", "csv", "--to", str(tmp_path)]) == 3
    assert "cycle 2030-31 is not in the published snapshot (published: 2027-28)" in capsys.readouterr().err


def test_export_without_a_snapshot_fails_clearly(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", "--cycle", CYCLE, "--format", "csv", "--to", str(tmp_path / "out")]) == 3
    assert "no projections have been published yet" in capsys.readouterr().err
