"""The `planning` command as docs/cli.md defines it: exit codes, formats, refusals."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from tests.support.events import make_event, write_jsonl
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT


def planning(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def ingested(home: PlanningHome, tmp_path: Path) -> PlanningHome:
    events = [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
        make_event("consultation.response_received", {"borough": "E09000012"}),
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
    ]
    assert planning("ingest", str(write_jsonl(tmp_path / "ok.jsonl", events))) == 0
    # the current snapshot at a pinned `on` (`planning build --on` would publish it as a named what-if snapshot)
    from pipelines.orchestration.runs import build

    build(home, on="2026-09-10")
    return home


def test_ingest_exit_codes_and_counts(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = make_event("stage.signed_off")
    assert planning("ingest", str(write_jsonl(tmp_path / "a.jsonl", [good]))) == 0
    assert capsys.readouterr().out.strip() == "accepted 1  duplicate 0  rejected 0"
    mixed = write_jsonl(tmp_path / "b.jsonl", [good, make_event("stage.signed_off", {"body": "mayor"}), b"[1]", b"", make_event("stage.signed_off")])
    assert planning("ingest", str(mixed)) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "accepted 1  duplicate 1  rejected 3"
    assert f"rejected {mixed}:2: payload.body: 'mayor' is not a body" in captured.err
    assert f"rejected {mixed}:3: line: expected a JSON object, got an array" in captured.err
    assert f"rejected {mixed}:4: line: empty line" in captured.err


def test_ingest_reads_stdin(home: PlanningHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    data = (json.dumps(make_event("stage.signed_off")) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert planning("ingest", "-") == 0
    assert "accepted 1" in capsys.readouterr().out


def test_ingest_missing_file_is_a_usage_error(home: PlanningHome) -> None:
    assert planning("ingest", "/no/such/file.jsonl") == 2


def test_ingest_refuses_while_another_writer_holds_the_store(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from events.storage.store import EventStore

    with EventStore(home.store, writer=True, holder="planning worker"):
        assert planning("ingest", str(write_jsonl(tmp_path / "a.jsonl", [make_event("stage.signed_off")]))) == 3
    assert "planning worker" in capsys.readouterr().err


def test_query_json_csv_and_table(ingested: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("query", "stage_status", "--format", "json") == 0
    stages = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in stages][:3] == ["brief", "programme_approval", "fieldwork"]
    assert stages[0] == {
        "cycle": "2027-28", "stage": "brief", "opens_on": "2026-03-01", "due_on": "2026-03-31", "status": "overdue",
        "ready": True, "blockers": [], "signed_off_by": None, "signed_off_at": None,
    }
    assert planning("query", "cdrp_audits", "--format", "csv", "--cycle", "2027-28") == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 32 and table[6]["borough"] == "E09000008" and table[6]["top_priorities"] == '["violence", "drugs"]'
    assert planning("query", "consultation_coverage") == 0
    assert "(33 rows)" in capsys.readouterr().out  # 32 'all' rows and one channel row


def test_query_lists_one_priority_s_evidence_as_its_row_counts_it(home: PlanningHome, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from pipelines.orchestration.runs import build

    adopted = {"priorities": [{"rank": 1, "theme": "knife_crime", "scope": "LONDON"},
                              {"rank": 2, "theme": "violence", "scope": "LONDON"},
                              {"rank": 1, "theme": "knife_crime", "scope": "E09000012"}]}
    events = [
        make_event("consultation.response_received", {"borough": "E09000012"}),
        make_event("consultation.response_received", {"borough": "E09000020"}),
        make_event("survey.response_recorded", {"priorities": ["knife_crime"]}),
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
        make_event("priorities.adopted", adopted, occurred_at="2026-08-20T10:00:00Z"),
    ]
    assert planning("ingest", str(write_jsonl(tmp_path / "ok.jsonl", events))) == 0
    build(home, on="2026-09-10")
    capsys.readouterr()
    assert planning("query", "priority_traceability", "--cycle", "2027-28", "--scope", "LONDON", "--format", "json") == 0
    london = json.loads(capsys.readouterr().out)
    assert [(p["rank"], p["supporting_responses"], p["supporting_interviews"], p["cdrp_boroughs"], p["evidence_events"])
            for p in london] == [(1, 2, 1, [], 3), (2, 0, 0, ["E09000008"], 1)]
    assert london[0]["evidence_query"] == "planning query priority_evidence --cycle 2027-28 --scope LONDON --rank 1"
    assert planning(*london[0]["evidence_query"].split()[1:], "--format", "json") == 0
    evidence = json.loads(capsys.readouterr().out)
    assert sorted((e["kind"], e["event_id"]) for e in evidence) == sorted(
        [("consultation_response", events[0]["event_id"]), ("consultation_response", events[1]["event_id"]),
         ("survey_interview", events[2]["event_id"])])
    assert {(e["cycle"], e["scope"], e["rank"]) for e in evidence} == {("2027-28", "LONDON", 1)}
    assert planning("query", "priority_evidence", "--scope", "e09000012", "--rank", "1", "--format", "json") == 0
    assert [e["event_id"] for e in json.loads(capsys.readouterr().out)] == [events[0]["event_id"]]


def test_query_refuses_a_filter_the_table_cannot_take(ingested: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("query", "stage_status", "--rank", "1") == 2
    assert "stage_status has no rank column" in capsys.readouterr().err
    assert planning("query", "cdrp_audits", "--scope", "LONDON") == 2
    assert "--scope is for" in capsys.readouterr().err
    assert planning("query", "priority_evidence", "--scope", "Camden") == 2
    assert "'Camden' is not a scope" in capsys.readouterr().err
    assert planning("query", "priority_evidence", "--rank", "0") == 2
    assert "--rank: 0 is out of range" in capsys.readouterr().err


def test_query_unknown_table_lists_the_known_ones(ingested: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("query", "priorities") != 0
    err = capsys.readouterr().err
    assert "unknown table 'priorities'" in err and "stage_status" in err and "cdrp_audits" in err


def test_query_before_any_build_says_what_to_do(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("query", "stage_status") != 0
    assert "planning build" in capsys.readouterr().err


def test_sql_reads_and_refuses_writes(ingested: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("sql", "SELECT count(*) AS n FROM cdrp_audits WHERE received", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 1}]
    published = (ingested.projections / "published.json").read_text()
    for statement in ("DROP TABLE stage_status", "CREATE TABLE x AS SELECT 1", "INSERT INTO stage_status SELECT * FROM stage_status",
                      "COPY stage_status TO '/tmp/leak.csv'", "ATTACH '/tmp/x.duckdb'", "SELECT * FROM read_csv('/etc/passwd')",
                      "SELECT * FROM dead_letters"):
        assert planning("sql", statement) == 1, statement
    assert planning("sql", "SELEC nothing") == 1
    assert "syntax error" in capsys.readouterr().err
    assert (ingested.projections / "published.json").read_text() == published
    assert not Path("/tmp/leak.csv").exists()


def test_build_rejects_a_bad_date_clearly(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    assert planning("build", "--on", "31/08/2026") == 2
    assert "31/08/2026" in capsys.readouterr().err
    assert planning("build", "--cycle", "2027-29") == 2


def test_every_subcommand_has_help() -> None:
    for command in ("demo", "ingest", "build", "query", "sql", "deadletters"):
        result = subprocess.run([sys.executable, "-m", "pipelines.cli", command, "--help"], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        assert result.returncode == 0 and "usage: planning" in result.stdout, command


def test_every_option_and_argument_has_help_text() -> None:
    """Walks the parser, every subcommand's and every action's, so a new option without help is caught."""
    import argparse

    from pipelines.cli.main import _parser

    def unhelped(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += unhelped(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    parser = _parser()
    assert unhelped(parser, "planning") == []
    walked = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    assert {"query", "ui", "emit", "worker", "pack", "export", "up"} <= walked.keys()  # the walk reaches them


def test_a_reader_that_leaves_early_gets_no_traceback(ingested: PlanningHome) -> None:
    """`planning query … | head`: the reader closes the pipe before the output is written."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLANNING_HOME": str(ingested.root)}
    for command in (["query", "consultation_coverage"], ["sql", "SELECT 1 AS one"], ["deadletters"]):
        process = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *command], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdout.close()  # as `head` does once it has its lines
        stderr = process.stderr.read().decode()
        assert process.wait(60) == 141, (command, stderr)  # 128 + SIGPIPE, as shells report a tool SIGPIPE stopped
        assert stderr == "", command


def test_a_million_line_file_is_ingested_in_bounded_memory(tmp_path: Path) -> None:
    """1,000,000 lines (a thousand events re-sent a thousand times): peak memory stays far below the file size."""
    events = [json.dumps(make_event("stage.signed_off", {"decision_ref": "D-" + "x" * 150})).encode() for _ in range(1000)]
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as out:
        for _ in range(1000):
            out.write(b"\n".join(events) + b"\n")
    size_mb = big.stat().st_size / 2**20
    # VmHWM is this process's own peak; ru_maxrss would carry pytest's peak across exec.
    probe = (
        "import sys\n"
        "from pipelines.cli.main import main\n"
        "code = main(['ingest', sys.argv[1]])\n"
        "peak_kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
        "print('peak_mb', peak_kb / 1024, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(big)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "PLANNING_HOME": str(tmp_path / "home")}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "accepted 1,000  duplicate 999,000  rejected 0"
    assert "1,000,000 lines" in result.stderr  # progress was shown
    peak_mb = float(result.stderr.rsplit("peak_mb", 1)[1])
    assert size_mb > 250 and peak_mb < 150, (size_mb, peak_mb)


def test_ingest_imports_dagster_only_to_rebuild_the_dead_letters(home: PlanningHome, tmp_path: Path) -> None:
    """An erasure with no published dead letters to correct needs no Dagster: ingest stays light."""
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": "r-8812"})
    probe = (
        "import sys\n"
        "from pipelines.cli.main import main\n"
        "code = main(['ingest', sys.argv[1], '--recorded-at', '2026-09-01T00:00:00Z'])\n"
        "print('dagster' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(write_jsonl(tmp_path / "a.jsonl", [make_event("stage.signed_off"), erasure]))],
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO), "PLANNING_HOME": str(home.root)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "False"
