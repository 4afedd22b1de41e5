"""The `planning` commands on the PostgreSQL store (PLANNING_STORE): the same round trip as on the
embedded one; `verify` checks what can be checked there; backup, restore and recover refuse and say
what to use instead; `store reapply-erasures` is restore's erasure step after a database restore."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psycopg
import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from tests.support.events import make_event, write_jsonl

RECORDED_AT = "2026-09-01T00:00:00Z"


@pytest.fixture
def on_postgres(home: PlanningHome, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> PlanningHome:
    monkeypatch.setenv("PLANNING_STORE", postgres_url)
    assert main(["store", "init"]) == ExitCode.OK
    return home


def ingest(path: Path, events: list) -> int:
    return main(["ingest", str(write_jsonl(path, events)), "--recorded-at", RECORDED_AT])


def database(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, options="-c search_path=planning_store")


def test_ingest_build_query_round_trip(on_postgres: PlanningHome, postgres_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        make_event("cycle.opened", {"timetable": []}, occurred_at="2026-02-15T09:00:00Z"),
        make_event("consultation.response_received", {"borough": "E09000012"}),
        make_event("cdrp.audit_submitted", occurred_at="2026-08-15T10:00:00Z"),
    ]
    assert ingest(tmp_path / "ok.jsonl", [*events, b"not json"]) == ExitCode.REJECTED
    assert "accepted 3  duplicate 0  rejected 1" in capsys.readouterr().out
    assert ingest(tmp_path / "ok.jsonl", events) == ExitCode.OK  # again: duplicates, harmless
    assert "accepted 0  duplicate 3" in capsys.readouterr().out
    with database(postgres_url) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    assert not (on_postgres.store / "store.sqlite").exists()  # nothing went to an embedded store

    assert main(["deadletters"]) == ExitCode.OK
    assert "not valid JSON" in capsys.readouterr().out
    assert main(["build", "--on", "2026-09-10", "--as-of", "2026-09-10", "--name", "pg"]) == ExitCode.OK
    capsys.readouterr()
    assert main(["query", "cdrp_audits", "--format", "csv", "--cycle", "2027-28", "--snapshot", "pg"]) == ExitCode.OK
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == 32 and table[6]["borough"] == "E09000008" and table[6]["top_priorities"] == '["violence", "drugs"]'


def test_verify_passes_an_intact_store_and_names_what_is_broken(on_postgres: PlanningHome, postgres_url: str,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [make_event("consultation.response_received", {"borough": "E09000012"}) for _ in range(3)]
    events[1]["payload"]["respondent"]["respondent_ref"] = "r-0002"
    assert ingest(tmp_path / "a.jsonl", [*events, make_event("stage.signed_off")]) == ExitCode.OK
    capsys.readouterr()
    assert main(["verify"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "4 events up to position 4, 4 bodies checked" in out and "intact" in out

    with database(postgres_url) as db:
        # a record whose body was changed behind the store's back, a lost event, a key cut short
        db.execute("UPDATE events SET record = replace(record, 'E09000012', 'E09000013') WHERE position = 1")
        db.execute("DELETE FROM events WHERE position = 3")
        db.execute("UPDATE respondent_keys SET key = substring(key FROM 1 FOR 16)"
                   " WHERE subject = (SELECT record::json->>'subject' FROM events WHERE position = 2)")
        event_id = db.execute("SELECT event_id FROM events WHERE position = 1").fetchone()[0]
    assert main(["verify"]) == ExitCode.REJECTED
    captured = capsys.readouterr()
    assert f"WRONG RECORD  position 1 (event_id {event_id}): its body's digest is" in captured.out
    assert "MISSING  position 3: no event stored there" in captured.out
    assert "KEYS  subject " in captured.out and "its key is 16 bytes, not 32" in captured.out
    # the deleted event is still in the count the append kept for its sender (what the Panel's provenance shows)
    assert "COUNTS  sender operator:" in captured.out and ": the kept count says 4 events, the store holds 3" in captured.out
    assert "NOT INTACT" in captured.err and "point-in-time recovery" in captured.err


@pytest.mark.parametrize(("command", "instead"), [
    (["backup", "DIR"], "pg_basebackup"),
    (["restore", "DIR"], "planning store reapply-erasures"),
    (["recover"], "point-in-time recovery"),
])
def test_the_embedded_stores_own_commands_refuse_saying_what_to_use(on_postgres: PlanningHome, tmp_path: Path,
                                                                    command: list[str], instead: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / "backup") if word == "DIR" else word for word in command]
    assert main(argv) == ExitCode.USAGE
    error = capsys.readouterr().err
    assert f"planning {command[0]}: the event store is in PostgreSQL" in error and instead in error
    assert not (tmp_path / "backup").exists() and not on_postgres.store.exists()


def test_reapply_erasures_erases_again_after_a_database_restore(on_postgres: PlanningHome, postgres_url: str,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    response = make_event("consultation.response_received")
    assert ingest(tmp_path / "a.jsonl", [response]) == ExitCode.OK
    with database(postgres_url) as db:
        before = db.execute("SELECT ref_digest, subject, key FROM respondent_keys").fetchall()
    assert ingest(tmp_path / "b.jsonl", [make_event("respondent.erasure_requested")]) == ExitCode.OK
    # The database restored to a time before the erasure: the key is back.
    with database(postgres_url) as db:
        for digest, subject, key in before:
            db.execute("UPDATE respondent_keys SET key = %s, erased_at = NULL WHERE ref_digest = %s", (key, digest))
    capsys.readouterr()

    assert main(["store", "reapply-erasures"]) == ExitCode.OK
    assert "1 key(s) shredded again" in capsys.readouterr().out
    with database(postgres_url) as db:
        assert db.execute("SELECT count(*) FROM respondent_keys WHERE key IS NOT NULL").fetchone()[0] == 0
    assert main(["store", "reapply-erasures"]) == ExitCode.OK  # again: nothing more to do
    assert "0 key(s) shredded again" in capsys.readouterr().out


def test_an_unreachable_database_stops_a_command_with_what_to_check(home: PlanningHome, postgres_cluster,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_STORE", postgres_cluster.url("no_such_database"))
    assert main(["deadletters"]) == ExitCode.FAILED
    error = capsys.readouterr().err
    assert error.startswith("planning deadletters: cannot reach the event store in PostgreSQL")
    assert "PLANNING_STORE" in error


def test_a_store_never_initialised_says_to_run_store_init(home: PlanningHome, postgres_url: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_STORE", postgres_url)
    assert main(["verify"]) == ExitCode.FAILED
    assert "run `planning store init` first" in capsys.readouterr().err
