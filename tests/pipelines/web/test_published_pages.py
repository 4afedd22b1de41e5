"""The public pages under many readers: each rendered once per published snapshot, and every reader answered.

A public page is the same for everyone not signed in until the next publish, so it is rendered once
and kept (``pipelines.web.pages.published``); a publish through the normal build makes the next reader
get the new page. More keep-alive readers than the collector takes bodies at once are all answered.
"""

from __future__ import annotations

import http.client
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from events.home import PlanningHome
from pipelines.collector.limits import MAX_BODIES_AT_ONCE
from pipelines.orchestration.runs import build
from pipelines.web.pages import public
from tests.pipelines.web.conftest import ACCOUNTS, in_fieldwork, signed_in, site_of
from tests.support.web import Site

READERS = 50
assert READERS > MAX_BODIES_AT_ONCE  # more readers than the server once took connections, of any kind
SOURCE = re.compile(r"as_of = <time datetime=\"([^\"]+)\"")


def test_a_public_page_is_rendered_once_per_snapshot_and_anew_after_a_publish(home: PlanningHome,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    in_fieldwork(home)
    build(home, on="2026-07-15", as_of="2026-07-15T12:00:00Z")
    rendered: list[str] = []
    original = public.borough_page

    def counted(*args: Any) -> dict[str, Any]:
        rendered.append(args[2])
        return original(*args)

    monkeypatch.setattr(public, "borough_page", counted)
    with site_of(home) as site:
        reader = site.browser()
        first, again = reader.get("/boroughs/hackney"), reader.get("/boroughs/hackney")
        kept = len(rendered)
        build(home, on="2026-07-16", as_of="2026-07-16T12:00:00Z")  # a new snapshot is published
        after, after_again = reader.get("/boroughs/hackney"), reader.get("/boroughs/hackney")
        published = len(rendered)
        member = signed_in(site, "panel")
        own = [member.get("/boroughs/hackney") for _ in range(2)]
    assert [r.status for r in (first, again, after, after_again, *own)] == [200] * 6
    assert kept == 1 and first.text == again.text, "rendered once, then answered as kept"
    assert set(SOURCE.findall(first.text)) == {"2026-07-15T12:00:00Z"}
    assert published == 2 and after.text == after_again.text, "rendered once more for the new snapshot"
    assert set(SOURCE.findall(after.text)) == {"2026-07-16T12:00:00Z"}
    assert len(rendered) == 4, "a signed-in reader's page is rendered for them each time"
    assert all(f"Signed in as <strong>{ACCOUNTS['panel']}</strong>" in r.text for r in own)
    assert "Signed in as" not in first.text


def test_more_keep_alive_readers_than_the_collectors_bound_are_all_answered(demo_site: Site) -> None:
    connections = [http.client.HTTPConnection("127.0.0.1", demo_site.port, timeout=120) for _ in range(READERS)]
    try:
        def read(connection: http.client.HTTPConnection, path: str) -> int:
            try:
                connection.request("GET", path, headers={"Host": f"127.0.0.1:{demo_site.port}"})
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closes a connection idle for 5 s (uvicorn's keep-alive): a browser opens it again
                connection.close()
                connection.request("GET", path, headers={"Host": f"127.0.0.1:{demo_site.port}"})
                response = connection.getresponse()
            response.read()
            return response.status

        # every connection opened and kept open first: all of them are held by the server at once
        opened = [read(connection, "/assets/site/site.css") for connection in connections]
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            pages = list(pool.map(read, connections, ["/boroughs/hackney"] * READERS))
            again = list(pool.map(read, connections, ["/boroughs/hackney/2026-27"] * READERS))
    finally:
        for connection in connections:
            connection.close()
    assert opened == [200] * READERS
    assert pages == [200] * READERS and again == [200] * READERS
