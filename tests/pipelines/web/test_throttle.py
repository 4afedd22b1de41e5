"""Sign-in is throttled: an account locks after repeated failures, and so does a client address."""

from __future__ import annotations

import pytest

from events.home import PlanningHome
from pipelines.web.throttle import ACCOUNT_LIMIT, ADDRESS_LIMIT, LOCKED_FOR
from tests.support.web import Site, running_site

PASSWORD = "three random words"
LOCKED = "There have been too many failed sign-ins. Try again in 15 minutes"


@pytest.fixture
def site(home: PlanningHome):
    with running_site(home) as running:
        running.account("j.smith", "panel", PASSWORD)
        yield running


def test_an_account_locks_after_repeated_failures_even_to_the_right_password_until_its_time_is_up(site: Site) -> None:
    browser = site.browser()
    for _ in range(ACCOUNT_LIMIT):
        assert browser.sign_in("j.smith", "wrong guess").status == 401
    locked = browser.sign_in("j.smith", PASSWORD)
    assert locked.status == 429 and LOCKED in locked.text
    assert locked.header("retry-after") == str(int(LOCKED_FOR.total_seconds()))
    site.clock.move(seconds=LOCKED_FOR.total_seconds() - 1)
    assert browser.sign_in("j.smith", PASSWORD).status == 429
    site.clock.move(seconds=1)
    assert browser.sign_in("j.smith", PASSWORD).status == 303


def test_a_reset_lifts_the_lock_and_a_right_password_starts_the_count_again(site: Site) -> None:
    browser = site.browser()
    for _ in range(ACCOUNT_LIMIT - 1):
        browser.sign_in("j.smith", "wrong guess")
    assert browser.sign_in("j.smith", PASSWORD).status == 303
    other = site.browser()
    for _ in range(ACCOUNT_LIMIT - 1):
        assert other.sign_in("j.smith", "wrong guess").status == 401, "the count started again"
    other.sign_in("j.smith", "wrong guess")
    assert other.sign_in("j.smith", PASSWORD).status == 429
    one_time = site.accounts.reset("j.smith")
    assert other.sign_in("j.smith", one_time).status == 303


def test_an_unknown_name_locks_alike_and_an_address_locks_over_many_names(site: Site) -> None:
    browser = site.browser()
    for _ in range(ACCOUNT_LIMIT):
        assert browser.sign_in("nobody", "wrong guess").status == 401
    assert LOCKED in browser.sign_in("nobody", "wrong guess").text, "a lock says nothing about who has an account"
    for attempt in range(ADDRESS_LIMIT - ACCOUNT_LIMIT):
        assert browser.sign_in(f"guess-{attempt}", "wrong guess").status == 401
    assert browser.sign_in("j.smith", PASSWORD).status == 429, "this address has failed too often"
