"""Signing in and out over real HTTP: passwords, one-time passwords, cookies, rotation and the end of sessions.

What a test claims about the server's side it reads back: a session that has ended no longer opens a page
with its old cookie.
"""

from __future__ import annotations

import sqlite3

import pytest

from events.home import PlanningHome
from pipelines.web.accounts import accounts_path
from pipelines.web.sessions import ABSOLUTE, IDLE, PRE_SIGN_IN_COOKIE, SESSION_COOKIE, digest
from tests.support.web import Browser, Site, running_site

PASSWORD = "three random words"
NEW_PASSWORD = "four other random words"


@pytest.fixture
def site(home: PlanningHome):
    with running_site(home) as running:
        yield running


def signed_in(site: Site, name: str = "j.smith", role: str = "panel") -> Browser:
    site.account(name, role, PASSWORD)
    browser = site.browser()
    assert browser.sign_in(name, PASSWORD).status == 303
    return browser


def opens_account_page(browser: Browser) -> bool:
    reply = browser.get("/account/password")
    assert reply.status in (200, 303), reply.status
    return reply.status == 200


def stored_sessions(home: PlanningHome) -> list[tuple[str, str]]:
    with sqlite3.connect(accounts_path(home)) as db:
        return db.execute("SELECT account, token_sha256 FROM sessions ORDER BY account").fetchall()


def test_a_right_password_signs_in_and_goes_to_the_page_asked_for(site: Site) -> None:
    site.account("j.smith", "panel", PASSWORD)
    browser = site.browser()
    asked = browser.get("/account/password")
    assert (asked.status, asked.header("location")) == (303, "/sign-in?next=%2Faccount%2Fpassword")
    reply = browser.sign_in("j.smith", PASSWORD, next_page="/account/password")
    assert (reply.status, reply.header("location")) == (303, "/account/password")
    page = browser.get("/account/password")
    assert page.status == 200 and "Signed in as <strong>j.smith</strong>" in page.text
    assert '<a class="govuk-service-navigation__link" href="/account/password">Change password</a>' in page.text and "Sign out" in page.text


@pytest.mark.parametrize("name, password", [("j.smith", "not the password"), ("nobody", PASSWORD), ("j.smith", "")])
def test_a_wrong_name_or_password_is_refused_alike_and_starts_no_session(site: Site, home: PlanningHome,
                                                                       name: str, password: str) -> None:
    site.account("j.smith", "panel", PASSWORD)
    browser = site.browser()
    reply = browser.sign_in(name, password)
    assert reply.status == 401
    assert "Enter a correct account name and password" in reply.text and "govuk-error-summary" in reply.text
    assert SESSION_COOKIE not in browser.cookies and stored_sessions(home) == []


@pytest.mark.parametrize("next_page", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_only_a_path_of_this_site_is_followed_after_sign_in(site: Site, next_page: str) -> None:
    site.account("j.smith", "panel", PASSWORD)
    reply = site.browser().sign_in("j.smith", PASSWORD, next_page=next_page)
    assert (reply.status, reply.header("location")) == (303, "/")


def test_a_one_time_password_must_be_changed_before_anything_else(site: Site, home: PlanningHome) -> None:
    one_time = site.account("j.smith", "panel")
    browser = site.browser()
    reply = browser.sign_in("j.smith", one_time, next_page="/somewhere")
    assert (reply.status, reply.header("location")) == (303, "/account/password?next=%2Fsomewhere")
    held_back = browser.get("/")
    assert (held_back.status, held_back.header("location")) == (303, "/account/password?next=%2F")
    form = browser.get("/account/password")
    assert form.status == 200 and "You signed in with a one-time password" in form.text
    too_short = browser.post("/account/password", {"csrf_token": form.csrf_token, "current_password": one_time,
                                                   "new_password": "short", "confirm_password": "short"})
    assert too_short.status == 400 and "Use at least 12 characters" in too_short.text
    before = browser.cookies[SESSION_COOKIE]
    changed = browser.post("/account/password", {"csrf_token": form.csrf_token, "current_password": one_time,
                                                 "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                                 "next": "/"})
    assert (changed.status, changed.header("location")) == (303, "/")
    assert browser.cookies[SESSION_COOKIE] != before, "the session is rotated when the password changes"
    assert browser.get("/").status == 200
    assert "one-time password" not in browser.get("/account/password").text
    assert site.accounts.signs_in("j.smith", one_time) is None
    assert site.accounts.signs_in("j.smith", NEW_PASSWORD) is not None


def test_a_wrong_current_password_or_confirmation_changes_nothing(site: Site) -> None:
    browser = signed_in(site)
    token = browser.form_token()
    wrong = browser.post("/account/password", {"csrf_token": token, "current_password": "not it",
                                               "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert wrong.status == 400 and "It is not your current password" in wrong.text
    mismatch = browser.post("/account/password", {"csrf_token": token, "current_password": PASSWORD,
                                                  "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD + "x"})
    assert mismatch.status == 400 and "It is not the same as the new password" in mismatch.text
    assert site.accounts.signs_in("j.smith", PASSWORD) is not None


def test_cookies_are_httponly_samesite_lax_and_secure_except_on_a_loopback_host(site: Site) -> None:
    site.account("j.smith", "panel", PASSWORD)
    for host, secure in (("127.0.0.1", False), ("localhost", False), ("planning.example.org", True)):
        browser = site.browser(host)
        form = browser.get("/sign-in")
        reply = browser.sign_in("j.smith", PASSWORD)
        for cookie in (form.cookies_set()[PRE_SIGN_IN_COOKIE], reply.cookies_set()[SESSION_COOKIE]):
            attributes = [a.strip() for a in cookie.split(";")[1:]]
            assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes), cookie
            assert ("Secure" in attributes) is secure, (host, cookie)


def test_signing_in_rotates_the_session(site: Site, home: PlanningHome) -> None:
    site.account("j.smith", "panel", PASSWORD)
    browser = site.browser()
    browser.get("/sign-in")
    before = dict(browser.cookies)
    assert list(before) == [PRE_SIGN_IN_COOKIE]
    browser.sign_in("j.smith", PASSWORD)
    assert PRE_SIGN_IN_COOKIE not in browser.cookies
    first = browser.cookies[SESSION_COOKIE]
    assert first not in before.values()
    assert browser.get("/sign-in").header("location") == "/", "signed in: the form sends you on"
    again = browser.post("/sign-in", {"csrf_token": browser.form_token(), "name": "j.smith", "password": PASSWORD})
    assert again.status == 303 and browser.cookies[SESSION_COOKIE] != first
    assert stored_sessions(home) == [("j.smith", digest(browser.cookies[SESSION_COOKIE]))], "the old session has ended"


def test_only_the_tokens_digest_is_stored(site: Site, home: PlanningHome) -> None:
    browser = signed_in(site)
    token = browser.cookies[SESSION_COOKIE]
    assert stored_sessions(home) == [("j.smith", digest(token))]
    assert token.encode() not in accounts_path(home).read_bytes()


def test_sign_out_ends_the_session_on_the_server(site: Site, home: PlanningHome) -> None:
    browser = signed_in(site)
    stolen = browser.cookies[SESSION_COOKIE]
    reply = browser.post("/sign-out", {"csrf_token": browser.form_token()})
    assert (reply.status, reply.header("location")) == (303, "/")
    assert "Max-Age=0" in reply.cookies_set()[SESSION_COOKIE] and SESSION_COOKIE not in browser.cookies
    assert stored_sessions(home) == []
    replayed = site.browser()
    replayed.cookies[SESSION_COOKIE] = stolen
    assert not opens_account_page(replayed)


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(site: Site, home: PlanningHome) -> None:
    browser = signed_in(site)
    assert opens_account_page(browser)
    site.accounts.disable("j.smith")
    assert not opens_account_page(browser)
    assert stored_sessions(home) == []
    assert site.browser().sign_in("j.smith", PASSWORD).status == 401


def test_a_reset_ends_the_accounts_sessions(site: Site) -> None:
    browser = signed_in(site)
    site.accounts.reset("j.smith")
    assert not opens_account_page(browser)


def test_a_session_ends_after_its_idle_time_and_its_absolute_time(site: Site) -> None:
    browser = signed_in(site)
    site.clock.move(seconds=IDLE.total_seconds() - 60)
    assert opens_account_page(browser), "a request within the idle time keeps it alive"
    site.clock.move(seconds=IDLE.total_seconds() - 60)
    assert opens_account_page(browser)
    site.clock.move(seconds=IDLE.total_seconds())
    assert not opens_account_page(browser), "idle too long"

    busy = site.browser()
    assert busy.sign_in("j.smith", PASSWORD).status == 303
    steps = int(ABSOLUTE / (IDLE / 2))
    for _ in range(steps - 1):
        site.clock.move(seconds=IDLE.total_seconds() / 2)
        assert opens_account_page(busy)
    site.clock.move(seconds=IDLE.total_seconds() / 2)
    assert not opens_account_page(busy), "past the absolute time, however busy"
