"""The audit log: who signed in and out, who failed to, who viewed which page and downloaded what, and when.

Each test reads the log back from its file (``AuditLog.latest``) and through the data team's ``/audit`` page.
"""

from __future__ import annotations

import pytest
from starlette.responses import PlainTextResponse

from events.home import PlanningHome
from pipelines.web import pages
from pipelines.web.audience import Page
from pipelines.web.audit import AuditLog
from tests.support.web import NOW, Site, running_site

PASSWORD = "three random words"
AT = NOW.isoformat().replace("+00:00", "Z")


async def coverage_csv(request):
    return PlainTextResponse("borough,responses\nE09000015,12\n",
                             headers={"Content-Disposition": 'attachment; filename="coverage.csv"'})


async def coverage(request):
    return PlainTextResponse("the table")


@pytest.fixture
def site(home: PlanningHome, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pages, "ROUTES", [
        Page("/tables/coverage", coverage, audience="panel"),
        Page("/tables/coverage.csv", coverage_csv, audience="panel"),
        Page("/public.csv", coverage_csv, audience="public"),
    ])
    with running_site(home) as running:
        running.account("j.smith", "panel", PASSWORD)
        running.account("a.jones", "data_team", PASSWORD)
        yield running


def logged(home: PlanningHome) -> list[tuple]:
    """Oldest first: (at, account, action, path, detail)."""
    return [(e.at, e.account, e.action, e.path, e.detail) for e in reversed(AuditLog.of(home).latest())]


def test_sign_ins_views_downloads_and_sign_outs_are_recorded_with_who_and_when(site: Site, home: PlanningHome) -> None:
    anonymous, panel = site.browser(), site.browser()
    assert anonymous.get("/public.csv").status == 200
    assert anonymous.get("/tables/coverage").status == 303  # refused: not a view
    assert panel.sign_in("j.smith", "wrong guess").status == 401
    assert panel.sign_in("j.smith", PASSWORD).status == 303
    assert panel.get("/").status == 200  # public: not recorded
    assert panel.get("/tables/coverage?borough=E09000015").status == 200
    assert panel.get("/tables/coverage.csv?borough=E09000015").status == 200
    assert panel.get("/audit").status == 403  # refused: not a view
    assert panel.post("/sign-out", {"csrf_token": "forged"}).status == 403  # refused: still signed in
    token = panel.get("/account/password").csrf_token
    assert panel.post("/sign-out", {"csrf_token": token}).status == 303
    assert logged(home) == [
        (AT, None, "downloaded", "/public.csv", "coverage.csv"),
        (AT, "j.smith", "sign_in_failed", "/sign-in", ""),
        (AT, "j.smith", "signed_in", "/sign-in", ""),
        (AT, "j.smith", "viewed", "/tables/coverage?borough=E09000015", ""),
        (AT, "j.smith", "downloaded", "/tables/coverage.csv?borough=E09000015", "coverage.csv"),
        (AT, "j.smith", "viewed", "/account/password", ""),
        (AT, "j.smith", "signed_out", "/sign-out", ""),
    ]


def test_a_name_that_is_no_accounts_is_not_kept(site: Site, home: PlanningHome) -> None:
    typed = "my-secret-password-typed-as-a-name"
    assert site.browser().sign_in(typed, "anything").status == 401
    assert logged(home) == [(AT, None, "sign_in_failed", "/sign-in", "")]
    assert typed.encode() not in (home.root / "web" / "audit.sqlite").read_bytes()


def test_the_data_team_reads_the_log_and_can_keep_to_one_account(site: Site) -> None:
    panel, team = site.browser(), site.browser()
    panel.sign_in("j.smith", PASSWORD)
    panel.get("/tables/coverage.csv")
    site.clock.move(minutes=5)
    team.sign_in("a.jones", PASSWORD)
    page = team.get("/audit")
    assert page.status == 200
    assert page.text.index("a.jones") < page.text.index("/tables/coverage.csv"), "newest first"
    assert "coverage.csv" in page.text and "2026-08-01T09:05:00Z" in page.text
    only = team.get("/audit?account=j.smith")
    assert "/tables/coverage.csv" in only.text and "a.jones</td>" not in only.text
