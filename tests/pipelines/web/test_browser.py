"""The site in headless Chromium: sign-in, a filter, a download and sign-out; every page type at desktop
and phone width, screenshotted and checked with axe-core (WCAG 2.2 A and AA); a keyboard-only pass; a
sign-in through the identity provider.

The site is the real one (``planning serve``'s app over the demo home) on 127.0.0.1; Chromium can reach
nothing else. Screenshots are kept under the session's temp dir (``screens``), for a person to look at.
Chromium is required: these tests fail without it, never skip.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.home import PlanningHome
from pipelines.web import identities
from tests.pipelines.web.conftest import ACCOUNTS, PASSWORD
from tests.support.browser import LOOPBACK_FLAGS, Chromium, Page, start_chromium
from tests.support.identity_provider import running_provider
from tests.support.paths import REPO_ROOT
from tests.support.web import Site, running_site

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE, DESKTOP = 375, 1024
# Every page type: (name, path, who sees it).
PAGE_TYPES = [
    ("start", "/", None),
    ("boroughs", "/boroughs", None),
    ("borough", "/boroughs/hackney", None),
    ("not-found", "/boroughs/atlantis", None),
    ("sign-in", "/sign-in", None),
    ("dashboard", "/panel", "panel"),
    ("tables", "/panel/tables", "panel"),
    ("table", "/panel/tables/inclusion?scope=E09000012", "panel"),
    ("packs", "/panel/packs", "panel"),
    ("snapshots", "/panel/snapshots", "panel"),
    ("sql", "/panel/sql", "panel"),
    ("dead-letters", "/data/dead-letters", "data_team"),
    ("builds", "/data/builds", "data_team"),
    ("senders", "/data/senders", "data_team"),
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    browser = start_chromium(LOOPBACK_FLAGS, why="the web site's tests drive headless Chromium")
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screens")


def address(site: Site, path: str) -> str:
    return f"http://127.0.0.1:{site.port}{path}"


def sign_in(page: Page, role: str) -> None:
    """Fill in the sign-in form and submit it, as a person would with a mouse."""
    mark = page.loading()
    page.evaluate(f"""document.getElementById('name').value = {json.dumps(ACCOUNTS[role])};
                      document.getElementById('password').value = {json.dumps(PASSWORD)};
                      document.querySelector('form[action="/sign-in"] button').click()""")
    page.loaded(mark)


def click(page: Page, selector: str) -> None:
    mark = page.loading()
    page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
    page.loaded(mark)


def shown_table(page: Page) -> list[list[str]]:
    return page.evaluate("""[...document.querySelectorAll('table.app-data-table tr')]
        .map(tr => [...tr.cells].map(c => c.textContent.trim()))""")


def axe_violations(page: Page) -> list[dict]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(f"""axe.run(document, {{runOnly: {json.dumps(WCAG)}}}).then(r => JSON.stringify(
        r.violations.map(v => ({{id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}}))))""", awaited=True)
    return json.loads(found)


def test_sign_in_a_filter_a_download_and_sign_out(demo_site: Site, chromium: Chromium, tmp_path: Path) -> None:
    page = chromium.open(address(demo_site, "/panel/tables/theme_ranking"), DESKTOP)
    try:
        assert "/sign-in?next=" in page.url  # the Panel's page asks for a sign-in first
        sign_in(page, "panel")
        assert page.url == address(demo_site, "/panel/tables/theme_ranking")
        mark = page.loading()
        page.evaluate("""document.getElementById('filter-scope').value = 'E09000012';
                         document.querySelector('form.app-filters button').click()""")
        page.loaded(mark)
        assert "scope=E09000012" in page.url
        shown = shown_table(page)
        assert len(shown) == 1 + 21 and {row[1] for row in shown[1:]} == {"E09000012"}

        chromium.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path),
                                                      "eventsEnabled": True, "browserContextId": page.context})
        mark = len(chromium.events)
        page.evaluate("[...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'CSV').click()")
        began = chromium.wait_for("Browser.downloadWillBegin", None, after=mark)["params"]
        chromium.wait_for("Browser.downloadProgress", None, after=mark,
                          where=lambda event: event["params"]["state"] == "completed")
        downloaded = tmp_path / began["suggestedFilename"]
        for _ in range(50):  # the file is renamed into place as the download completes
            if downloaded.exists():
                break
            time.sleep(0.1)
        assert began["suggestedFilename"] == "theme_ranking-2027-28-E09000012.csv"
        assert list(csv.reader(io.StringIO(downloaded.read_text(encoding="utf-8")))) == shown

        click(page, "form[action='/sign-out'] button")
        page.navigate(address(demo_site, "/panel/tables/theme_ranking"))
        assert "/sign-in?next=" in page.url, "signed out: the Panel's page asks for a sign-in again"
        assert page.console_errors() == []
    finally:
        page.close()


@pytest.mark.parametrize("width", [DESKTOP, PHONE])
def test_every_page_type_is_accessible_and_readable_at_this_width(demo_site: Site, chromium: Chromium, screens: Path,
                                                                  width: int) -> None:
    pages: dict[str | None, Page] = {}
    try:
        for role in (None, "panel", "data_team"):
            pages[role] = chromium.open(address(demo_site, "/sign-in"), width, mobile=width == PHONE)
            if role:
                sign_in(pages[role], role)
        problems = {}
        for name, path, role in PAGE_TYPES:
            page = pages[role]
            mark = page.loading()
            page.navigate(address(demo_site, path))
            if name == "sql":
                mark = page.loading()
                page.evaluate("""document.getElementById('query').value = 'SELECT scope, theme, rank FROM theme_ranking WHERE rank <= 2 ORDER BY scope, rank LIMIT 8';
                                 document.querySelector('form[action="/panel/sql"] button').click()""")
                page.loaded(mark)
            page.screenshot(screens / f"{name}-{width}.png")
            seen = page.evaluate("""({width: document.documentElement.scrollWidth, title: document.title,
                                      regions: [...document.querySelectorAll('.app-table-scroll')].map(r => r.tabIndex)})""")
            errors = page.console_errors(since=mark)
            if name == "not-found":  # the page's own status, which Chromium logs as an error
                errors.remove(next(e for e in errors if "status of 404" in e))
            found = {"axe": axe_violations(page), "errors": errors}
            if seen["width"] > width:
                found["wider than the screen"] = seen["width"]
            if any(index != 0 for index in seen["regions"]):
                found["a table's scroll region cannot take the focus"] = seen["regions"]
            if any(found.values()):
                problems[name] = found
        assert problems == {}, json.dumps(problems, indent=1)
    finally:
        for page in pages.values():
            page.close()
    print(f"screenshots in {screens}")


def test_a_keyboard_alone_signs_in_and_filters_a_table(demo_site: Site, chromium: Chromium) -> None:
    page = chromium.open(address(demo_site, "/panel/tables/survey_indicators"), DESKTOP)
    try:
        assert "/sign-in?next=" in page.url

        def tab_to(wanted: str, most: int = 40) -> None:
            for _ in range(most):
                page.press("Tab")
                if page.focused().startswith(wanted):
                    return
            raise AssertionError(f"Tab never reached {wanted}; focus is on {page.focused()}")

        tab_to("input|name")
        page.type(ACCOUNTS["panel"])
        tab_to("input|password")
        page.type(PASSWORD)
        tab_to("button||Sign in")
        mark = page.loading()
        page.press("Enter")
        page.loaded(mark)
        assert page.url == address(demo_site, "/panel/tables/survey_indicators")

        tab_to("select|filter-scope")
        page.press("ArrowDown")
        page.press("ArrowDown")
        chosen = page.evaluate("document.getElementById('filter-scope').value")
        assert chosen, "the arrow keys chose a scope"
        tab_to("button||Apply filters")
        mark = page.loading()
        page.press("Enter")
        page.loaded(mark)
        assert f"scope={chosen}" in page.url
        assert {row[2] for row in shown_table(page)[1:]} == {chosen}
    finally:
        page.close()


def test_pages_are_set_in_a_system_typeface_not_gds_transport(demo_site: Site, chromium: Chromium, screens: Path) -> None:
    """GDS Transport is for GOV.UK services only: no element's computed font names it, the browser loads no
    font file and asks for none, and the pages are screenshotted for a person to look at."""
    page = chromium.open(address(demo_site, "/sign-in"), DESKTOP)
    try:
        sign_in(page, "panel")
        for name, path in (("start", "/"), ("borough", "/boroughs/hackney"), ("table", "/panel/tables/inclusion"),
                           ("sql", "/panel/sql")):
            mark = page.loading()
            page.navigate(address(demo_site, path))
            families = page.evaluate("""[...new Set([...document.querySelectorAll('body, body *')].flatMap(e =>
                [null, '::before', '::after'].map(p => getComputedStyle(e, p).fontFamily)))]""")
            assert families and not [f for f in families if "gds transport" in f.lower()], (path, families)
            assert "arial, sans-serif" in families, (path, families)
            assert page.evaluate("[...document.fonts].filter(f => f.status !== 'unloaded').map(f => f.family)") == []
            assert page.console_errors(since=mark) == [], path
            page.screenshot(screens / f"typeface-{name}.png")
        assert [url for url in page.requests() if "/fonts/" in url or url.endswith((".woff", ".woff2"))] == []
        assert page.evaluate("getComputedStyle(document.getElementById('query')).fontFamily") == "monospace"
    finally:
        page.close()
    print(f"screenshots in {screens}")


def test_sign_in_through_the_identity_provider_from_a_page_that_asked_for_it(
        demo_home: PlanningHome, chromium: Chromium, screens: Path) -> None:
    """Chromium follows the whole flow itself: the site, the provider (tests.support.identity_provider), and back."""
    with running_provider() as provider, running_site(demo_home, provider=provider.for_site("the Authority's account")) as site:
        if site.accounts.get("o.member") is None:
            site.account("o.member", "panel", PASSWORD)
        identities.link(site.accounts, "o.member", provider.issuer, provider.signs_in_as)
        page = chromium.open(address(site, "/panel/tables/theme_ranking"), DESKTOP)
        try:
            assert "/sign-in?next=" in page.url
            page.screenshot(screens / "sign-in-with-provider-1024.png")
            assert axe_violations(page) == []
            click(page, "a[href^='/sign-in/oidc']")
            assert page.url == address(site, "/panel/tables/theme_ranking")
            header = page.evaluate("document.querySelector('header').innerText")
            assert "Signed in as o.member" in header and "Change password" not in header  # it has no password here
            assert [s["endpoint"] for s in provider.seen] == ["authorize", "token"]
            assert page.console_errors() == []
        finally:
            page.close()
