"""Every route of the web site, enumerated from the app itself, so that a new one cannot slip past the guard.

The guard applies to the web site only: the collector's ``/v1/…`` routes are not in this app (`planning
serve` sends ``/v1/`` to the collector, with its own Bearer authentication, tests/pipelines/cli/test_serve.py).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from starlette.routing import Route

from events.home import PlanningHome
from pipelines.web import pages
from pipelines.web.app import web_app
from pipelines.web.audience import Assets, Page
from pipelines.web.oidc import IdentityProvider
from tests.support.web import CHEAP, running_site

PASSWORD = "three random words"
# a sample value for each path parameter a page may have; a new parameter name must be added here
SAMPLES = {"borough": "E09000015", "cycle": "2026-27", "stage": "fieldwork", "table": "consultation_coverage",
           "name": "j.smith", "path": "govuk-frontend.min.css", "snapshot": "current", "format": "csv"}
PARAMETER = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-zA-Z_]+)?}")


def filled(path: str) -> str:
    missing = sorted(set(PARAMETER.findall(path)) - SAMPLES.keys())
    assert not missing, f"{path}: add a sample value for {missing} to SAMPLES"
    return PARAMETER.sub(lambda m: quote(SAMPLES[m.group(1)], safe=""), path)


def site_routes(home: PlanningHome) -> list:
    """Every route the site can have: with an identity provider, so its sign-in routes are counted too."""
    provider = IdentityProvider("http://127.0.0.1:9", "planning", "a secret")  # never asked: no request goes to it
    return list(web_app(home, hasher=CHEAP, provider=provider).routes)


def requests_of(routes: list, audiences: set[str]) -> list[tuple[str, str]]:
    """(method, path) of every page of these audiences."""
    return [(method, filled(r.path)) for r in routes if isinstance(r, Page) and r.audience in audiences
            for method in sorted(r.methods - {"HEAD"})]


def test_every_route_is_a_page_or_public_assets(home: PlanningHome) -> None:
    routes = site_routes(home)
    assert routes, "the app has routes"
    undeclared = [getattr(r, "path", r) for r in routes if not isinstance(r, (Page, Assets))]
    assert not undeclared, f"routes without an audience: {undeclared}"
    assert not any(getattr(r, "path", "").startswith("/v1") for r in routes), "the collector's routes are not the site's"
    assert {r.path for r in routes if isinstance(r, Page)} >= {"/", "/sign-in", "/sign-out", "/account/password",
                                                               "/sign-in/oidc", "/sign-in/oidc/callback"}


def test_each_non_public_page_refuses_an_anonymous_request_and_each_data_team_page_a_panel_account(
        home: PlanningHome) -> None:
    routes = site_routes(home)
    protected = requests_of(routes, {"panel", "data_team"})
    assert ("GET", "/account/password") in protected
    with running_site(home) as site:
        site.account("j.smith", "panel", PASSWORD)
        anonymous, panel = site.browser(), site.browser()
        assert panel.sign_in("j.smith", PASSWORD).status == 303
        for method, path in protected:
            reply = anonymous.request(method, path, b"", {"Content-Type": "application/x-www-form-urlencoded"})
            if method == "GET":
                assert (reply.status, reply.header("location")) == (303, f"/sign-in?next={quote(path, safe='')}"), path
            else:
                assert reply.status == 401, (method, path)
        for method, path in requests_of(routes, {"data_team"}):
            assert panel.request(method, path).status == 403, (method, path)


async def page(request):
    raise AssertionError("the guard should have refused this request")


def test_the_guard_refuses_an_undeclared_route_to_all_and_a_data_team_page_to_the_panel(
        home: PlanningHome, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "ROUTES", [
        Route("/undeclared", page),  # a plain Starlette route: no audience
        Page("/team/{borough}", page, audience="data_team", methods=("GET", "POST")),
    ])
    with running_site(home) as site:
        site.account("j.smith", "panel", PASSWORD)
        site.account("a.jones", "data_team", PASSWORD)
        anonymous, panel, team = site.browser(), site.browser(), site.browser()
        panel.sign_in("j.smith", PASSWORD)
        team.sign_in("a.jones", PASSWORD)
        for browser in (anonymous, panel, team):
            reply = browser.get("/undeclared")
            assert reply.status == 403 and "declares no audience" in reply.text
        assert anonymous.get("/team/E09000015").header("location") == "/sign-in?next=%2Fteam%2FE09000015"
        assert anonymous.post("/team/E09000015", {}).status == 401
        wrong_role = panel.get("/team/E09000015")
        assert wrong_role.status == 403 and "It is for the data team; your account (j.smith) is a panel account" in wrong_role.text
        assert panel.post("/team/E09000015", {"csrf_token": panel.form_token()}).status == 403
        with pytest.raises(AssertionError, match="SAMPLES"):
            filled("/team/{ward}")
