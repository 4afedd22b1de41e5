"""What-if builds never replace what the Panel reads: the current snapshot and the named ones, from the command line.

Knowledge time is pinned (``--recorded-at``) before the what-if's ``as_of`` is judged, so the what-if
sees none of the events and the current build sees them all, whatever the day the test runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from tests.support.events import make_event, write_jsonl

RECORDED_AT = "2026-09-20T09:00:00Z"
WHAT_IF = ("--on", "2026-09-15", "--as-of", "2026-09-15")
DERIVED = "on-2026-09-15-asof-2026-09-15T235959Z"  # a bare date as as_of is the end of that day, UTC
RESPONSES = "SELECT sum(responses) AS responses FROM consultation_coverage WHERE channel = 'all'"


def planning(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, bytes, str]:
    """Exit code, stdout as bytes, stderr of one `planning` command."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out.encode("utf-8"), captured.err


@pytest.fixture
def built(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> PlanningHome:
    """Three responses known from 20 September, and the current snapshot built at (today, now)."""
    events = [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
        *[make_event("consultation.response_received", {"borough": "E09000012"}) for _ in range(3)],
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
    ]
    assert main(["ingest", "--recorded-at", RECORDED_AT, str(write_jsonl(tmp_path / "e.jsonl", events))]) == 0
    assert main(["build"]) == 0
    return home


def current_view(capsys: pytest.CaptureFixture) -> list[bytes]:
    """What a Panel member reads of the current snapshot: three tables and a query, as bytes."""
    views = []
    for command in (["query", "consultation_coverage", "--format", "csv"], ["query", "stage_status"],
                    ["query", "build_info", "--format", "json"], ["sql", RESPONSES, "--format", "json"]):
        code, out, err = planning(capsys, *command)
        assert code == 0, err
        views.append(out)
    return views


def test_a_what_if_build_leaves_the_current_snapshot_byte_identical(built: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    before = current_view(capsys)
    assert json.loads(before[3]) == [{"responses": 3}]
    pointer = json.loads((built.projections / "published.json").read_text())

    code, out, err = planning(capsys, "build", *WHAT_IF)
    assert code == 0, err
    assert f"published as snapshot {DERIVED}" in out.decode()

    assert current_view(capsys) == before
    after = json.loads((built.projections / "published.json").read_text())
    assert after["cycles"] == pointer["cycles"] and after["operations"] == pointer["operations"]
    # the what-if itself is there to read: nothing was known on 15 September
    code, out, _ = planning(capsys, "sql", RESPONSES, "--format", "json", "--snapshot", DERIVED)
    assert code == 0 and json.loads(out) == [{"responses": 0}]


def test_named_snapshots_are_listed_read_and_dropped(built: PlanningHome, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert planning(capsys, "build", *WHAT_IF, "--name", "october-check")[0] == 0
    code, out, _ = planning(capsys, "snapshots", "--format", "json")
    listed = json.loads(out)
    assert code == 0 and [(r["snapshot"], r["cycle"]) for r in listed] == [("current", "2027-28"), ("october-check", "2027-28")]
    named = listed[1]
    assert named["on"] == "2026-09-15" and named["as_of"].startswith("2026-09-15T23:59:59") and named["built_at"]

    code, out, _ = planning(capsys, "query", "build_info", "--snapshot", "october-check", "--format", "json")
    assert code == 0 and json.loads(out)[0]["on_date"] == "2026-09-15"
    assert planning(capsys, "export", "--cycle", "2027-28", "--to", str(tmp_path / "x"), "--snapshot", "october-check")[0] == 0
    assert "2026-09-15" in (tmp_path / "x" / "README.md").read_text()

    file = Path(json.loads((built.projections / "published.json").read_text())["named"]["october-check"]["2027-28"]["file"])
    assert file.exists()
    code, out, _ = planning(capsys, "snapshots", "drop", "october-check")
    assert code == 0 and "dropped snapshot october-check (2027-28)" in out.decode()
    assert not file.parent.exists(), "a dropped snapshot's folder is swept"
    assert [r["snapshot"] for r in json.loads(planning(capsys, "snapshots", "--format", "json")[1])] == ["current"]
    assert planning(capsys, "query", "consultation_coverage")[0] == 0  # the current one is untouched


def test_an_unknown_snapshot_is_refused_with_the_names_there_are(built: PlanningHome, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert planning(capsys, "build", *WHAT_IF, "--name", "sept")[0] == 0
    for command in (["query", "stage_status"], ["sql", "SELECT 1"], ["pack", "--no-pdf"],
                    ["export", "--cycle", "2027-28", "--to", str(tmp_path / "x")]):
        code, _, err = planning(capsys, *command, "--snapshot", "setp")
        assert code == ExitCode.USAGE, command
        assert "no snapshot is named 'setp'" in err and "sept" in err, err
    code, _, err = planning(capsys, "snapshots", "drop", "setp")
    assert code == ExitCode.USAGE and "sept" in err
    code, _, err = planning(capsys, "snapshots", "drop", "current")
    assert code == ExitCode.USAGE and "cannot be dropped" in err
    code, _, err = planning(capsys, "build", *WHAT_IF, "--name", "current")
    assert code == ExitCode.USAGE and "another name" in err
    code, _, err = planning(capsys, "build", *WHAT_IF, "--name", "../escape")
    assert code == ExitCode.USAGE and "cannot name a snapshot" in err


def test_a_named_snapshot_survives_the_next_current_build(built: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning(capsys, "build", *WHAT_IF)[0] == 0
    assert planning(capsys, "build")[0] == 0  # its run sweeps every folder no pointer names
    code, out, _ = planning(capsys, "query", "build_info", "--snapshot", DERIVED, "--format", "json")
    assert code == 0 and json.loads(out)[0]["on_date"] == "2026-09-15"


def test_every_table_sql_shows_can_be_queried(built: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = planning(capsys, "sql", "SHOW TABLES", "--format", "json")
    shown = {row["name"] for row in json.loads(out)}
    assert code == 0 and "build_info" in shown
    for table in sorted(shown):
        code, _, err = planning(capsys, "query", table, "--cycle", "2027-28")
        assert code == 0, f"{table}: {err}"
    code, _, err = planning(capsys, "query", "nothing")
    assert code == ExitCode.USAGE and set(err.split("known tables: ")[1].strip().split(", ")) == shown | {"dead_letters"}


def test_dead_letters_refuse_a_cycle_and_a_snapshot(built: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning(capsys, "query", "dead_letters")[0] == 0
    for option in (["--cycle", "2027-28"], ["--snapshot", "current"]):
        code, out, err = planning(capsys, "query", "dead_letters", *option)
        assert code == ExitCode.USAGE and out == b"" and "belong to no cycle" in err, option
