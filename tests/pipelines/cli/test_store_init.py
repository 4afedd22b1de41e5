"""`planning store init`: makes the store PLANNING_STORE chooses, migrates PostgreSQL once, refuses what it cannot read."""

from __future__ import annotations

import psycopg
import pytest

from events.home import PlanningHome
from events.storage.postgres.migrations import LATEST
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode


def test_init_migrates_the_postgresql_store_once(postgres_url: str, home: PlanningHome, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_STORE", postgres_url)
    assert main(["store", "init"]) == ExitCode.OK
    assert "applied migration(s) 1" in capsys.readouterr().out
    assert main(["store", "init"]) == ExitCode.OK
    assert "nothing to apply" in capsys.readouterr().out
    with psycopg.connect(postgres_url) as connection:
        versions = [v for (v,) in connection.execute("SELECT version FROM planning_store.migrations ORDER BY version")]
    assert versions == list(range(1, LATEST + 1))
    assert not home.store.exists()  # the embedded store is not made on the side


def test_init_without_planning_store_makes_the_embedded_store(home: PlanningHome, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANNING_STORE", raising=False)
    assert main(["store", "init"]) == ExitCode.OK
    assert (home.store / "store.sqlite").is_file()


def test_an_unknown_store_is_a_usage_error_saying_what_is_accepted(home: PlanningHome, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_STORE", "mysql://db/store")
    assert main(["store", "init"]) == ExitCode.USAGE
    assert "postgresql://" in capsys.readouterr().err


def test_an_unreachable_database_fails_without_showing_the_password(postgres_cluster, home: PlanningHome,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_STORE", postgres_cluster.url("no_such_database").replace("postgres@", "postgres:s3cret@"))
    assert main(["store", "init"]) == ExitCode.FAILED
    error = capsys.readouterr().err
    assert "no_such_database" in error and "s3cret" not in error
