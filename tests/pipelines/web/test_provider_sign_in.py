"""Signing in through the authority's identity provider (OpenID Connect), against a real local provider.

The site and the provider (``tests.support.identity_provider``) each run on their own port; the test's
``Browser`` follows the redirects between them as a browser would, carrying the site's cookies only to
the site. The provider checks the client's secret, the code, the redirect URI and the PKCE verifier; the
site checks the state, the ID token's signature, issuer, audience, expiry and nonce, and lets in only a
subject the data team linked to an active account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from events.home import PlanningHome
from pipelines.web import identities
from pipelines.web.audit import AuditLog
from pipelines.web.flows import FLOW_COOKIE
from pipelines.web.sessions import SESSION_COOKIE
from tests.support.identity_provider import CLIENT_SECRET, Lies, LocalProvider, running_provider
from tests.support.web import Browser, Reply, Site, running_site

PASSWORD = "three random words"


@dataclass
class World:
    home: PlanningHome
    site: Site
    provider: LocalProvider

    def link(self, name: str, subject: str, role: str = "panel") -> None:
        self.site.account(name, role, PASSWORD)
        identities.link(self.site.accounts, name, self.provider.issuer, subject)


@pytest.fixture
def world(home: PlanningHome) -> Iterator[World]:
    with running_provider() as provider, running_site(home, provider=provider.for_site()) as site:
        yield World(home, site, provider)


def to_provider(browser: Browser, next_page: str = "/") -> Reply:
    """Press "Sign in with …": the site's redirect to the provider's authorization endpoint."""
    return browser.get(f"/sign-in/oidc?next={quote(next_page, safe='')}")


def at_provider(world: World, sent: Reply) -> str:
    """What the provider answers the browser it was sent: the site's callback, as a path and query."""
    assert sent.status == 302, sent.text[:500]
    where = urlsplit(sent.header("location"))
    assert f"{where.scheme}://{where.netloc}" == world.provider.issuer
    back = Browser(world.provider.port).get(f"{where.path}?{where.query}")
    assert back.status == 302, back.text[:500]
    callback = urlsplit(back.header("location"))
    assert (callback.hostname, callback.port) == ("127.0.0.1", world.site.port)
    return f"{callback.path}?{callback.query}"


def sign_in_through_provider(world: World, browser: Browser, next_page: str = "/") -> Reply:
    return browser.get(at_provider(world, to_provider(browser, next_page)))


def audit(world: World) -> list[tuple[str | None, str, str]]:
    return [(e.account, e.action, e.detail) for e in reversed(AuditLog.of(world.home).latest())]


def test_a_linked_person_signs_in_through_the_provider_with_pkce_state_and_nonce(world: World) -> None:
    world.link("j.smith", "subject-0001")
    browser = world.site.browser()
    browser.cookies[SESSION_COOKIE] = "a session fixed by someone else"
    sent = to_provider(browser, "/audit?account=x")
    asked = parse_qs(urlsplit(sent.header("location")).query)
    assert asked["scope"] == ["openid"] and asked["code_challenge_method"] == ["S256"]
    assert asked["state"][0] and asked["nonce"][0] and "code_verifier" not in asked
    assert FLOW_COOKIE in browser.cookies
    arrived = browser.get(at_provider(world, sent))
    assert arrived.status == 303 and arrived.header("location") == "/audit?account=x"
    assert browser.cookies[SESSION_COOKIE] != "a session fixed by someone else"  # a new session: rotation
    assert FLOW_COOKIE not in browser.cookies
    assert "HttpOnly" in arrived.cookies_set()[SESSION_COOKIE] and "SameSite=Lax" in arrived.cookies_set()[SESSION_COOKIE]
    assert browser.get("/account/password").status == 200  # a Panel page opens
    assert browser.get("/audit").status == 403  # and the role is the account's: a Panel member's
    token_request = next(s for s in world.provider.seen if s["endpoint"] == "token")
    assert token_request["code_verifier"] and CLIENT_SECRET not in str(token_request.get("client_secret", ""))
    assert ("j.smith", "signed_in", f"through {world.provider.issuer}") in audit(world)


def test_the_sign_in_page_offers_the_provider_and_the_password_form_both(world: World) -> None:
    page = world.site.browser().get("/sign-in?next=/tables")
    assert page.status == 200
    assert 'href="/sign-in/oidc?next=/tables"' in page.text and "Sign in with the Authority&#39;s account" in page.text
    assert 'action="/sign-in"' in page.text


def test_without_a_provider_there_is_no_provider_route_and_no_button(home: PlanningHome) -> None:
    with running_site(home) as site:
        browser = site.browser()
        assert browser.get("/sign-in/oidc").status == 404
        assert browser.get("/sign-in/oidc/callback?code=x&state=y").status == 404
        assert "/sign-in/oidc" not in browser.get("/sign-in").text


def test_a_subject_linked_to_no_account_is_refused_and_told_its_reference(world: World) -> None:
    world.provider.signs_in_as = "subject-stranger"
    browser = world.site.browser()
    refused = sign_in_through_provider(world, browser)
    assert refused.status == 401 and SESSION_COOKIE not in browser.cookies
    assert "subject-stranger" in refused.text and "Ask the data team to link your account" in refused.text
    assert (None, "sign_in_failed", f"subject subject-stranger of {world.provider.issuer} is linked to no account") \
        in audit(world)


def test_a_disabled_account_is_refused_though_the_provider_knows_the_person(world: World) -> None:
    world.link("j.smith", "subject-0001")
    world.site.accounts.disable("j.smith")
    browser = world.site.browser()
    assert sign_in_through_provider(world, browser).status == 401
    assert SESSION_COOKIE not in browser.cookies
    assert any(a == "j.smith" and action == "sign_in_failed" and "disabled" in detail for a, action, detail in audit(world))


@pytest.mark.parametrize("lie", [
    Lies(foreign_key=True), Lies(audience="another-client"), Lies(issuer="http://127.0.0.1:1"),
    Lies(announced_issuer="http://127.0.0.1:1"), Lies(nonce="a nonce of another sign-in"), Lies(expired=True),
    Lies(no_id_token=True),
], ids=["foreign key", "audience", "issuer", "announced issuer", "nonce", "expired", "no ID token"])
def test_an_id_token_that_fails_a_check_lets_no_one_in(world: World, lie: Lies) -> None:
    world.link("j.smith", "subject-0001")
    world.provider.lies = lie
    browser = world.site.browser()
    refused = sign_in_through_provider(world, browser)
    assert refused.status == 401 and "could not be verified" in refused.text
    assert SESSION_COOKIE not in browser.cookies
    [failure] = [detail for _, action, detail in audit(world) if action == "sign_in_failed"]
    assert failure.startswith(world.provider.issuer)


def test_a_callback_is_taken_once_and_only_by_the_browser_that_started_it(world: World) -> None:
    world.link("j.smith", "subject-0001")
    victim, attacker = world.site.browser(), world.site.browser()
    callback = at_provider(world, to_provider(attacker))
    # login CSRF: the attacker's callback, opened in someone else's browser, signs that browser in as no one
    assert victim.get(callback).status == 400 and SESSION_COOKIE not in victim.cookies
    assert attacker.get(callback).status == 303  # it stays the attacker's own, usable by the attacker's browser only
    again = attacker.get(callback)
    assert again.status == 400 and "Start signing in again" in again.text  # and only once


def test_a_replayed_or_crossed_callback_is_refused_and_says_start_again(world: World) -> None:
    world.link("j.smith", "subject-0001")
    browser = world.site.browser()
    first = at_provider(world, to_provider(browser))
    second = at_provider(world, to_provider(browser))  # a second sign-in, started in another tab, replaces the first
    crossed = browser.get(first)
    assert crossed.status == 400 and "Start signing in again" in crossed.text
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get(at_provider(world, to_provider(browser))).status == 303
    assert world.site.browser().get(second).status == 400  # no flow in a fresh browser


def test_a_flow_older_than_ten_minutes_is_refused(world: World) -> None:
    world.link("j.smith", "subject-0001")
    browser = world.site.browser()
    callback = at_provider(world, to_provider(browser))
    world.site.clock.move(minutes=11)
    assert browser.get(callback).status == 400 and SESSION_COOKIE not in browser.cookies


def test_the_provider_refusing_the_person_is_shown_and_recorded(world: World) -> None:
    world.provider.lies = Lies(refuse="access_denied")
    browser = world.site.browser()
    refused = sign_in_through_provider(world, browser)
    assert refused.status == 401 and "access_denied" in refused.text
    assert (None, "sign_in_failed", f"{world.provider.issuer} answered access_denied") in audit(world)


def test_a_provider_that_cannot_be_reached_is_said_and_passwords_still_work(home: PlanningHome) -> None:
    with running_provider() as provider:
        gone = provider.for_site()
    with running_site(home, provider=gone) as site:
        site.account("j.smith", "panel", PASSWORD)
        browser = site.browser()
        down = browser.get("/sign-in/oidc")
        assert down.status == 502 and "cannot be reached" in down.text
        assert browser.sign_in("j.smith", PASSWORD).status == 303


def test_a_provider_failing_mid_sign_in_is_said_not_a_server_error(world: World) -> None:
    world.link("j.smith", "subject-0001")
    world.provider.lies = Lies(broken=True)
    browser = world.site.browser()
    failed = sign_in_through_provider(world, browser)
    assert failed.status == 502 and "cannot be reached" in failed.text and SESSION_COOKIE not in browser.cookies


def test_linking_switches_the_password_off_and_a_reset_gives_one_back(world: World) -> None:
    world.link("j.smith", "subject-0001")
    browser = world.site.browser()
    assert browser.sign_in("j.smith", PASSWORD).status == 401
    one_time = world.site.accounts.reset("j.smith")
    assert world.site.browser().sign_in("j.smith", one_time).status == 303
    assert sign_in_through_provider(world, world.site.browser()).status == 303  # the link stays


def test_unlinking_ends_the_sessions_and_the_next_sign_in_is_refused(world: World) -> None:
    world.link("j.smith", "subject-0001")
    browser = world.site.browser()
    assert sign_in_through_provider(world, browser).status == 303
    assert [i.subject for i in identities.unlink(world.site.accounts, "j.smith")] == ["subject-0001"]
    assert browser.get("/account/password").status == 303  # back to sign-in: the session ended
    assert sign_in_through_provider(world, world.site.browser()).status == 401
