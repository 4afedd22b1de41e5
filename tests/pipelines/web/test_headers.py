"""The security headers on every kind of response: a page, a redirect, each refusal, a 404, a static file."""

from __future__ import annotations

import pytest

from events.home import PlanningHome
from pipelines.web.app import govuk_frontend
from pipelines.web.audience import Page
from pipelines.web import pages
from tests.support.web import Reply, Site, running_site

PASSWORD = "three random words"


async def for_the_data_team(request):  # a data-team page, for a 403
    raise AssertionError("the guard lets no panel account here")


async def broken(request):  # a page that fails, for a 500
    raise RuntimeError("a page's own failure")


@pytest.fixture
def site(home: PlanningHome, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pages, "ROUTES", [Page("/team-only", for_the_data_team, audience="data_team"),
                                          Page("/broken", broken, audience="public")])
    with running_site(home) as running:
        running.account("j.smith", "panel", PASSWORD)
        yield running


def responses(site: Site) -> dict[str, Reply]:
    anonymous, panel = site.browser(), site.browser()
    panel.sign_in("j.smith", PASSWORD)
    return {
        "200 page": anonymous.get("/"),
        "200 signed-in page": panel.get("/account/password"),
        "303 to sign in": anonymous.get("/team-only"),
        "401 anonymous POST": anonymous.post("/account/password", {}),
        "403 wrong role": panel.get("/team-only"),
        "403 no CSRF token": panel.post("/sign-out", {}),
        "404": anonymous.get("/no/such/page"),
        "405": anonymous.request("DELETE", "/"),
        "static 200": anonymous.get("/assets/govuk/govuk-frontend.min.css"),
        "static 404": anonymous.get("/assets/govuk/nothing.css"),
        "500": anonymous.get("/broken"),
    }


def test_every_response_carries_the_security_headers(site: Site) -> None:
    got = responses(site)
    assert {kind: reply.status for kind, reply in got.items()} == {
        "200 page": 200, "200 signed-in page": 200, "303 to sign in": 303, "401 anonymous POST": 401,
        "403 wrong role": 403, "403 no CSRF token": 403, "404": 404, "405": 405, "static 200": 200, "static 404": 404, "500": 500}
    for kind, reply in got.items():
        policy = reply.header("content-security-policy") or ""
        directives = {d.strip().split(" ", 1)[0]: d.strip() for d in policy.split(";")}
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, kind
        assert directives["default-src"] == "default-src 'self'", kind
        assert directives["frame-ancestors"] == "frame-ancestors 'none'", kind
        assert directives["form-action"] == "form-action 'self'", kind
        assert directives["base-uri"] == "base-uri 'none'", kind
        assert reply.header("referrer-policy") == "no-referrer", kind
        assert reply.header("x-content-type-options") == "nosniff", kind
        assert reply.header("x-frame-options") == "DENY", kind
        expected = "public, max-age=86400" if kind == "static 200" else "no-store"
        assert reply.header("cache-control") == expected, kind
        assert reply.header("strict-transport-security") is None, "plain HTTP: no HSTS"


def test_pages_have_no_inline_script_or_style(site: Site) -> None:
    browser = site.browser()
    browser.sign_in("j.smith", PASSWORD)
    for page in (site.browser().get("/"), site.browser().get("/sign-in"), browser.get("/account/password")):
        assert page.status == 200
        assert "style=" not in page.text and "<style" not in page.text
        assert page.text.count("<script") == page.text.count("<script src=\"/assets/") + page.text.count(
            '<script type="module" src="/assets/'), "every script is a file of the site"
        assert "/assets/govuk/govuk-frontend.min.css" in page.text
    assert "js-enabled" in site.browser().get("/assets/site/js-enabled.js").text


def test_the_gds_transport_font_is_neither_served_nor_loaded(site: Site) -> None:
    """GDS Transport is for GOV.UK services only: its files are not served by any path, and the policy loads
    no fonts, so a page cannot fall back on it even where the compiled CSS still names it."""
    fonts = sorted(p.name for p in govuk_frontend().joinpath("assets", "fonts").iterdir())
    assert fonts, "GOV.UK Frontend ships the font files this test asks for"
    anonymous = site.browser()
    for name in fonts:
        for path in (f"/assets/fonts/{name}", f"/assets/govuk/assets/fonts/{name}",
                     f"/assets/govuk/assets/images/../fonts/{name}", f"/assets/govuk/./assets/fonts/{name}"):
            assert anonymous.get(path).status == 404, path
    assert anonymous.get("/assets/images/favicon.ico").status == 200, "the images are served still"
    policy = anonymous.get("/").header("content-security-policy") or ""
    assert "font-src 'none'" in policy.split("; ")
    stylesheet = anonymous.get("/assets/govuk/govuk-frontend.min.css")
    assert stylesheet.status == 200 and stylesheet.header("content-type").startswith("text/css")
    assert "gds transport" not in stylesheet.text.lower() and "@font-face" not in stylesheet.text
    assert stylesheet.text.count("font-family:arial,sans-serif") >= 50, "GOV.UK Frontend's own fallback stays"
