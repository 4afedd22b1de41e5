"""CSRF: a POST whose form lacks its page's token is 403 before its route runs, and nothing changes."""

from __future__ import annotations

import sqlite3

import pytest

from events.home import PlanningHome
from pipelines.web.accounts import accounts_path
from pipelines.web.guard import MAX_FORM_BYTES
from pipelines.web.sessions import SESSION_COOKIE
from tests.support.web import Site, running_site

PASSWORD = "three random words"
NEW_PASSWORD = "four other random words"


@pytest.fixture
def site(home: PlanningHome):
    with running_site(home) as running:
        running.account("j.smith", "panel", PASSWORD)
        running.account("a.jones", "panel", PASSWORD)
        yield running


def session_count(home: PlanningHome) -> int:
    with sqlite3.connect(accounts_path(home)) as db:
        return db.execute("SELECT count(*) FROM sessions").fetchone()[0]


def refused(reply) -> None:
    assert reply.status == 403, reply.status
    assert "The form could not be accepted" in reply.text and "reload the page" in reply.text


@pytest.mark.parametrize("token", [None, "", "forged", "from another browser"])
def test_sign_in_without_its_pre_sign_in_token_starts_no_session(site: Site, home: PlanningHome, token: str | None) -> None:
    browser = site.browser()
    mine = browser.get("/sign-in").csrf_token
    if token == "from another browser":
        token = site.browser().get("/sign-in").csrf_token
        assert token != mine
    fields = {"name": "j.smith", "password": PASSWORD} | ({} if token is None else {"csrf_token": token})
    refused(browser.post("/sign-in", fields))
    assert SESSION_COOKIE not in browser.cookies and session_count(home) == 0


def test_the_sign_in_token_is_no_good_without_its_cookie(site: Site, home: PlanningHome) -> None:
    token = site.browser().get("/sign-in").csrf_token
    cookieless = site.browser()
    refused(cookieless.post("/sign-in", {"csrf_token": token, "name": "j.smith", "password": PASSWORD}))
    assert session_count(home) == 0


def test_a_signed_in_form_needs_its_own_sessions_token(site: Site) -> None:
    mine, theirs = site.browser(), site.browser()
    mine.sign_in("j.smith", PASSWORD)
    theirs.sign_in("a.jones", PASSWORD)
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    refused(mine.post("/account/password", change))
    refused(mine.post("/account/password", change | {"csrf_token": theirs.form_token()}))
    assert site.accounts.signs_in("j.smith", PASSWORD) is not None, "the password did not change"
    refused(mine.post("/sign-out", {}))
    assert mine.get("/account/password").status == 200, "still signed in"
    assert mine.post("/account/password", change | {"csrf_token": mine.form_token()}).status == 303


def test_a_form_sent_twice_with_two_tokens_or_too_large_is_refused(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("j.smith", PASSWORD)
    token = browser.form_token()
    twice = browser.request("POST", "/sign-out", f"csrf_token={token}&csrf_token={token}".encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})
    refused(twice)
    padded = browser.request("POST", "/sign-out", f"csrf_token={token}&pad={'x' * MAX_FORM_BYTES}".encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
    refused(padded)
    assert browser.get("/account/password").status == 200, "still signed in"
