"""`planning sql` is safe: every known way out of the Panel's tables is refused, and nothing runs unbounded.

One small store is built once for the module; each attack goes through the
real command line, and must exit 1 with a message that says why, print no
data, and change nothing on disk.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.orchestration.runs import build
from projections.reading.panel_sql import PanelSqlError, run_panel_sql
from projections.reading.snapshots import open_reader
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home

CANARY = "CANARY-DEAD-LETTER-7f3a"


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    root = tmp_path_factory.mktemp("panel-sql") / "planning-home"
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        events = [
            make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
            make_event("consultation.response_received", {"borough": "E09000012"}),
            make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
        ]
        lines = [*events, f'{{"event_type": "{CANARY}"}}'.encode()]  # a dead letter the Panel must never see
        source = write_jsonl(root.parent / "events.jsonl", lines)
        assert main(["ingest", str(source)]) == 1  # the bad line was rejected, the rest kept
        build(home, on="2026-09-10")  # the current snapshot at a pinned `on` (`planning build --on` names a what-if)
        yield home


def sql(capsys: pytest.CaptureFixture, statement: str, *options: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["sql", statement, *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under PLANNING_HOME but Dagster's run history, with a digest of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file() and "dagster" not in p.relative_to(root).parts
    }


def test_a_panel_query_works(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    code, out, err = sql(capsys, "SELECT count(*) AS n FROM cdrp_audits WHERE received", "--format", "csv")
    assert (code, out.split(), err) == (0, ["n", "1"], "")
    code, out, _ = sql(capsys, "WITH b AS (SELECT * FROM stage_status) SELECT count(*) FROM b JOIN range(3) r ON true", "--format", "csv")
    assert (code, out.split()[-1]) == (0, "24")
    code, out, _ = sql(capsys, "SELECT table_name FROM information_schema.tables ORDER BY 1", "--format", "csv")
    assert code == 0 and "stage_status" in out and "dead_letters" not in out


ATTACKS = {
    # reading files: by table function, by file name, by globbing
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", r"read_csv\(\) is not available"),
    "read_csv_auto": ("SELECT * FROM read_csv_auto('/etc/passwd')", r"read_csv_auto\(\) is not available"),
    "read_text": ("SELECT * FROM read_text('/etc/passwd')", r"read_text\(\) is not available"),
    "read_blob": ("SELECT * FROM read_blob('/etc/passwd')", r"read_blob\(\) is not available"),
    "read_json": ("SELECT * FROM read_json('/etc/passwd')", r"read_json\(\) is not available"),
    "read_parquet": ("SELECT * FROM read_parquet('x.parquet')", r"read_parquet\(\) is not available"),
    "file as table": ("SELECT * FROM '/etc/passwd'", r"cannot read files"),
    "file in subquery": ("SELECT 1 WHERE EXISTS (SELECT * FROM read_text('/etc/passwd'))", r"read_text\(\) is not available"),
    "glob": ("SELECT * FROM glob('*')", r"glob\(\) is not available"),
    "dynamic sql": ("SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')", r"query\(\) is not available"),
    "dynamic table": ("SELECT * FROM query_table('stage_status')", r"query_table\(\) is not available"),
    # the event store and the data team's file
    "sqlite store": ("SELECT * FROM sqlite_scan('store/store.sqlite', 'dead_letters')", r"sqlite_scan\(\) is not available"),
    "dead letters": ("SELECT * FROM dead_letters", r"dead_letters is the data team's table"),
    "dead letters qualified": ("SELECT * FROM operations.dead_letters", r"dead_letters is the data team's table"),
    "dead letters in a cte": ("WITH x AS (SELECT * FROM dead_letters) SELECT * FROM x", r"dead_letters is the data team's table"),
    # writing, attaching, extensions, settings
    "copy to": ("COPY (SELECT * FROM stage_status) TO '/tmp/panel-sql-leak.csv'", r"COPY statements are refused"),
    "copy from": ("COPY stage_status FROM '/etc/passwd'", r"COPY statements are refused"),
    "export database": ("EXPORT DATABASE '/tmp/panel-sql-export'", r"EXPORT statements are refused"),
    "attach": ("ATTACH 'store/store.sqlite' AS store", r"ATTACH statements are refused"),
    "detach": ("DETACH cycle_0", r"DETACH statements are refused"),
    "install": ("INSTALL httpfs", r"LOAD statements are refused"),
    "load": ("LOAD sqlite_scanner", r"LOAD statements are refused"),
    "set": ("SET enable_external_access = true", r"SET statements are refused"),
    "reset": ("RESET enable_external_access", r"SET statements are refused"),
    "pragma": ("PRAGMA database_list", r"PRAGMA statements are refused"),
    "call": ("CALL pragma_database_list()", r"CALL statements are refused"),
    "create": ("CREATE TABLE t AS SELECT 1", r"CREATE statements are refused"),
    "create view": ("CREATE TEMP VIEW stage_status2 AS SELECT 1", r"CREATE statements are refused"),
    "insert": ("INSERT INTO stage_status SELECT * FROM stage_status", r"INSERT statements are refused"),
    "update": ("UPDATE stage_status SET ready = true", r"UPDATE statements are refused"),
    "delete": ("DELETE FROM stage_status", r"DELETE statements are refused"),
    "drop": ("DROP VIEW stage_status", r"DROP statements are refused"),
    "checkpoint": ("CHECKPOINT", r"statements are refused"),
    "multiple statements": ("SELECT 1; DROP VIEW stage_status", r"one statement at a time"),
    "select then copy": ("SELECT 1; COPY (SELECT 1) TO '/tmp/panel-sql-leak2.csv'", r"one statement at a time"),
    # paths and settings of the machine
    "getenv": ("SELECT getenv('HOME')", r"getenv\(\) is not available"),
    "current_setting": ("SELECT current_setting('home_directory')", r"current_setting\(\) is not available"),
    "settings": ("SELECT * FROM duckdb_settings()", r"duckdb_settings\(\) is not available"),
    "pg_settings": ("SELECT * FROM pg_catalog.pg_settings", r"pg_settings is not available"),
    "databases": ("SELECT path FROM duckdb_databases()", r"duckdb_databases\(\) is not available"),
    "database view": ("SELECT * FROM duckdb_databases", r"duckdb_databases is not available"),
    "database list": ("SELECT * FROM pragma_database_list", r"pragma_database_list is not available"),
    "extensions": ("SELECT * FROM duckdb_extensions()", r"duckdb_extensions\(\) is not available"),
    "syntax error": ("SELEC nothing", r"syntax error"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_refused_and_changes_nothing(name: str, panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    statement, reason = ATTACKS[name]
    before = fingerprint(panel.root)
    code, out, err = sql(capsys, statement, "--format", "csv")
    assert code == 1, (statement, out, err)
    assert re.search(reason, err), err
    assert out == ""
    assert "root:" not in err and CANARY not in err
    assert fingerprint(panel.root) == before
    for leaked in ("/tmp/panel-sql-leak.csv", "/tmp/panel-sql-leak2.csv", "/tmp/panel-sql-export"):
        assert not Path(leaked).exists()


def test_the_dead_letter_never_shows(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    """Whatever a Panel member can list, the rejected line is nowhere in it."""
    for statement in (
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM duckdb_tables()",
        "SELECT database_name, table_name FROM duckdb_columns()",
        "SELECT * FROM information_schema.schemata",
    ):
        code, out, err = sql(capsys, statement, "--format", "csv")
        assert code == 0, err
        assert "dead_letters" not in out and CANARY not in out and "operations" not in out


def test_a_query_that_runs_forever_is_stopped_at_the_time_limit(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    code, out, err = sql(capsys, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert code == 1 and out == ""
    assert "stopped after the time limit of 1 s" in err and "--timeout" in err
    assert elapsed < 6, elapsed


def test_the_default_time_limit_is_ten_seconds(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    code, _, err = sql(capsys, "SELECT count(*) FROM range(1000000) a, range(1000000) b")  # 10^12 pairs
    elapsed = time.monotonic() - started
    assert code == 1 and "time limit of 10 s" in err
    assert 9 < elapsed < 20, elapsed


def test_a_cross_join_of_a_hundred_million_rows_stops_at_the_row_limit(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    started = time.monotonic()
    code, out, err = sql(capsys, "SELECT a.range AS a, b.range AS b FROM range(10000) a, range(10000) b", "--format", "csv")
    assert code == 0
    assert len(out.splitlines()) == 1 + 10_000  # header and the default limit
    assert "truncated: showing the first 10,000 rows" in err
    assert time.monotonic() - started < 10

    code, out, err = sql(capsys, "SELECT * FROM range(10000) a, range(10000) b", "--format", "csv", "--limit", "5")
    assert code == 0 and len(out.splitlines()) == 6 and "first 5 rows" in err

    code, out, err = sql(capsys, "SELECT * FROM range(7)", "--format", "csv", "--limit", "7")
    assert code == 0 and len(out.splitlines()) == 8 and err == ""  # exactly at the limit: not truncated


def test_limits_must_make_sense(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    """On the command line a senseless limit is a usage error (exit 2); called directly, a refusal."""
    assert sql(capsys, "SELECT 1", "--limit", "0")[0] == 2
    assert sql(capsys, "SELECT 1", "--timeout", "0")[0] == 2
    code, out, err = sql(capsys, "SELECT 1", "--timeout", "nan")
    assert code == 2 and out == "" and "argument --timeout" in err
    for limit, timeout in ((0, 1.0), (1, float("nan")), (1, float("inf")), (1, -1.0)):
        with pytest.raises(PanelSqlError):
            run_panel_sql(panel.projections, "SELECT 1", limit=limit, timeout=timeout)


def test_a_query_may_not_take_the_machines_memory(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    """About 1 GB of strings in one aggregate: stopped at the reader's memory limit, with a message."""
    code, out, err = sql(capsys, "SELECT length(list(repeat('x', 100))) FROM range(8000000)")
    assert code == 1 and out == ""
    assert "more memory than a Panel query may use (512MB" in err
    db = open_reader(panel.projections)
    try:
        assert db.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "488.2 MiB"
    finally:
        db.close()


def test_a_huge_result_stops_at_the_size_cap_and_says_so(panel: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    """100 MB of text in 1,000 rows (under the row limit): fetching stops at 32 MB, and the reader is told."""
    code, out, err = sql(capsys, "SELECT repeat('x', 100000) AS text FROM range(1000)", "--format", "csv")
    assert code == 0
    rows = len(out.splitlines()) - 1
    assert 300 < rows < 340 and len(out) < 33 * 1024 * 1024
    assert f"output stopped at {rows:,} rows / 32 MB" in err and "planning export" in err
