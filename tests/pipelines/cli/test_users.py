"""`planning users`: the web site's accounts, from the command line, read back from the accounts file."""

from __future__ import annotations

import json
import sqlite3

import pytest

from events.home import PlanningHome
from pipelines.cli.main import main
from pipelines.exit_codes import ExitCode
from pipelines.web import identities
from pipelines.web.accounts import AccountBook, accounts_path


def planning(*args: str) -> int:
    return main(list(args))


def add(capsys: pytest.CaptureFixture, name: str, role: str) -> str:
    assert planning("users", "add", name, "--role", role) == ExitCode.OK
    return capsys.readouterr().out.splitlines()[-1]


def test_add_prints_a_generated_one_time_password_last_and_keeps_only_its_argon2id_hash(
        home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    password = add(capsys, "j.smith", "panel")
    other = add(capsys, "a.jones", "data_team")
    assert len(password) >= 20 and password != other
    stored = sqlite3.connect(accounts_path(home)).execute(
        "SELECT name, role, password_hash, must_change FROM accounts ORDER BY name").fetchall()
    assert [(n, r, m) for n, r, _, m in stored] == [("a.jones", "data_team", 1), ("j.smith", "panel", 1)]
    assert all(h.startswith("$argon2id$") and password not in h and other not in h for _, _, h, _ in stored)
    assert (accounts_path(home).stat().st_mode & 0o777) == 0o600
    book = AccountBook.of(home)
    assert book.signs_in("j.smith", password) is not None and book.signs_in("j.smith", other) is None


def test_list_shows_roles_and_states_never_a_password(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    password = add(capsys, "j.smith", "panel")
    assert planning("users", "disable", "j.smith") == ExitCode.OK
    assert "sessions have ended" in capsys.readouterr().out
    assert planning("users", "list", "--format", "json") == ExitCode.OK
    listed = capsys.readouterr().out
    assert password not in listed
    [row] = json.loads(listed)
    assert (row["name"], row["role"], row["state"], row["must_change_password"]) == ("j.smith", "panel", "disabled", True)
    assert planning("users") == ExitCode.OK
    assert "j.smith  panel  disabled  one-time" in capsys.readouterr().out


def test_reset_gives_a_new_one_time_password_and_the_old_one_stops_working(
        home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    first = add(capsys, "j.smith", "panel")
    assert planning("users", "reset", "j.smith") == ExitCode.OK
    second = capsys.readouterr().out.splitlines()[-1]
    book = AccountBook.of(home)
    assert second != first
    assert book.signs_in("j.smith", first) is None and book.signs_in("j.smith", second) is not None


def test_refusals_name_the_field_and_say_what_to_do(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    add(capsys, "j.smith", "panel")
    assert planning("users", "disable", "j.smith") == ExitCode.OK
    capsys.readouterr()
    assert planning("users", "add", "j.smith", "--role", "panel") == ExitCode.USAGE
    assert "name: account j.smith exists already (disabled); a name is never reused" in capsys.readouterr().err
    assert planning("users", "reset", "j.smith") == ExitCode.USAGE
    assert "disabled account stays disabled" in capsys.readouterr().err
    assert planning("users", "add", "J Smith", "--role", "panel") == ExitCode.USAGE
    assert "name: 'J Smith' is not an account name" in capsys.readouterr().err
    assert planning("users", "disable", "nobody") == ExitCode.USAGE
    assert "account nobody does not exist (`planning users list`" in capsys.readouterr().err
    assert planning("users", "add", "b.brown", "--role", "admin") == ExitCode.USAGE
    assert "invalid choice: 'admin'" in capsys.readouterr().err
    assert [a.name for a in AccountBook.of(home).all()] == ["j.smith"]


ISSUER = "https://login.example.gov.uk/tenant"


def test_link_lets_the_provider_sign_the_account_in_and_switches_its_password_off(
        home: PlanningHome, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    password = add(capsys, "j.smith", "panel")
    monkeypatch.setenv("PLANNING_OIDC_ISSUER", ISSUER)
    assert planning("users", "link", "j.smith", "--subject", "00u1ab2c") == ExitCode.OK
    assert "signs in through that provider only" in capsys.readouterr().out
    book = AccountBook.of(home)
    assert book.signs_in("j.smith", password) is None
    assert identities.account_of(book, ISSUER, "00u1ab2c").name == "j.smith"
    assert planning("users", "list", "--format", "json") == ExitCode.OK
    [row] = json.loads(capsys.readouterr().out)
    assert (row["has_password"], row["identity_providers"]) == (False, [ISSUER])
    assert planning("users") == ExitCode.OK
    assert "j.smith  panel  active  provider" in capsys.readouterr().out


def test_a_subject_is_linked_to_one_account_and_unlink_frees_it(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    add(capsys, "j.smith", "panel")
    add(capsys, "a.jones", "panel")
    assert planning("users", "link", "j.smith", "--subject", "00u1", "--issuer", ISSUER) == ExitCode.OK
    capsys.readouterr()
    assert planning("users", "link", "a.jones", "--subject", "00u1", "--issuer", ISSUER) == ExitCode.USAGE
    assert "`planning users unlink j.smith` first" in capsys.readouterr().err
    assert planning("users", "unlink", "j.smith") == ExitCode.OK
    assert "unlinked account j.smith from subject 00u1" in capsys.readouterr().out
    assert planning("users", "link", "a.jones", "--subject", "00u1", "--issuer", ISSUER) == ExitCode.OK


def test_link_refuses_without_an_issuer_or_for_a_disabled_account(
        home: PlanningHome, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANNING_OIDC_ISSUER", raising=False)
    add(capsys, "j.smith", "panel")
    assert planning("users", "link", "j.smith", "--subject", "00u1") == ExitCode.USAGE
    assert "give --issuer, or set $PLANNING_OIDC_ISSUER" in capsys.readouterr().err
    assert planning("users", "disable", "j.smith") == ExitCode.OK
    assert planning("users", "link", "j.smith", "--subject", "00u1", "--issuer", ISSUER) == ExitCode.USAGE
    assert "disabled" in capsys.readouterr().err
    assert planning("users", "link", "nobody", "--subject", "00u1", "--issuer", ISSUER) == ExitCode.USAGE
