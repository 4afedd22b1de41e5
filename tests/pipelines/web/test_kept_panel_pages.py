"""The Panel's pages kept per published snapshot: what they show of it made once, the page around it per reader.

A Panel table, the dashboard and a download show every Panel member the same figures until the next publish,
so that part is kept (``pipelines.web.pages.kept``); the header naming the reader and holding the session's
CSRF token, and the audit record, are each request's own.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from events.home import PlanningHome
from pipelines.orchestration.runs import build
from pipelines.web.audit import AuditLog
from pipelines.web.pages import kept, tables
from pipelines.web.pages.kept import KeptContent
from projections.reading.snapshots import POINTER
from tests.pipelines.web.conftest import ACCOUNTS, PASSWORD, in_fieldwork, signed_in, site_of

TABLE = "/panel/tables/consultation_coverage"
XLSX = "/panel/tables/consultation_coverage.xlsx"
DASHBOARD = "/panel"
SOURCE = re.compile(r"as_of = <time datetime=\"([^\"]+)\"")
SIGNED_IN = re.compile(r"Signed in as <strong>([^<]+)</strong>")
TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')
OTHER_MEMBER = "q.member"


def counting_tables(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables read from a snapshot from now on, one entry per read."""
    read: list[str] = []
    original = tables.shown_table

    def counted(request: Any, snapshot: Any, table: Any) -> Any:
        read.append(table.name)
        return original(request, snapshot, table)

    monkeypatch.setattr(tables, "shown_table", counted)
    return read


def built_at(xlsx: bytes) -> str:
    """The first line of a downloaded workbook: the table, its cycle and its build's (on, as_of)."""
    return str(load_workbook(io.BytesIO(xlsx)).active["A1"].value)


def test_a_kept_panel_page_and_download_are_made_anew_after_a_publish(home: PlanningHome,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    in_fieldwork(home)
    build(home, on="2026-07-15", as_of="2026-07-15T12:00:00Z")
    read = counting_tables(monkeypatch)
    with site_of(home) as site:
        member = signed_in(site, "panel")
        before = [member.get(path) for path in (TABLE, TABLE, XLSX, XLSX, DASHBOARD, DASHBOARD)]
        read_before = len(read)
        build(home, on="2026-07-16", as_of="2026-07-16T12:00:00Z")  # a new snapshot is published
        after = [member.get(path) for path in (TABLE, TABLE, XLSX, XLSX, DASHBOARD, DASHBOARD)]
    assert [r.status for r in before + after] == [200] * 12
    assert read_before == 2, "the table page and the download each read once, then answered as kept"
    assert len(read) == 4, "and each read once more for the new snapshot"
    for page in (0, 4):
        assert set(SOURCE.findall(before[page].text)) == {"2026-07-15T12:00:00Z"}
        assert set(SOURCE.findall(after[page].text)) == {"2026-07-16T12:00:00Z"}
        assert before[page].text == before[page + 1].text and after[page].text == after[page + 1].text
    assert "2026-07-15T12:00:00Z" in built_at(before[2].body) and before[2].body == before[3].body
    assert "2026-07-16T12:00:00Z" in built_at(after[2].body) and after[2].body == after[3].body


def test_two_members_on_a_kept_page_each_get_their_own_name_token_and_audit_record(
        home: PlanningHome, monkeypatch: pytest.MonkeyPatch) -> None:
    in_fieldwork(home)
    build(home, on="2026-07-15", as_of="2026-07-15T12:00:00Z")
    read = counting_tables(monkeypatch)
    with site_of(home) as site:
        site.account(OTHER_MEMBER, "panel", PASSWORD)
        one, other = signed_in(site, "panel"), site.browser()
        assert other.sign_in(OTHER_MEMBER, PASSWORD).status == 303
        pages = {ACCOUNTS["panel"]: one.get(TABLE), OTHER_MEMBER: other.get(TABLE)}
        downloads = [one.get(XLSX), other.get(XLSX)]
        own_tokens = {ACCOUNTS["panel"]: one.form_token(), OTHER_MEMBER: other.form_token()}
        signed_out = [browser.post("/sign-out", {"csrf_token": TOKEN.findall(pages[name].text)[0]}).status
                      for name, browser in ((ACCOUNTS["panel"], one), (OTHER_MEMBER, other))]
    assert read == ["consultation_coverage"] * 2, "the page read once and the download once, for both members"
    for name, page in pages.items():
        assert page.status == 200 and SIGNED_IN.findall(page.text) == [name]
        assert TOKEN.findall(page.text) == [own_tokens[name]], "the sign-out form holds the reader's own token"
    assert own_tokens[ACCOUNTS["panel"]] != own_tokens[OTHER_MEMBER]
    assert [d.body for d in downloads][0] == downloads[1].body
    assert signed_out == [303, 303], "each member signs out with the token their kept page gave them"
    recorded = [(e.account, e.action, e.path) for e in reversed(AuditLog.of(home).latest())
                if e.action in ("viewed", "downloaded")]
    assert recorded == [(ACCOUNTS["panel"], "viewed", TABLE), (OTHER_MEMBER, "viewed", TABLE),
                        (ACCOUNTS["panel"], "downloaded", XLSX), (OTHER_MEMBER, "downloaded", XLSX),
                        (ACCOUNTS["panel"], "viewed", "/account/password"),
                        (OTHER_MEMBER, "viewed", "/account/password")], "every view and download recorded, kept or not"


def publish(projections: Path, text: str) -> None:
    """A pointer file replaced as a publish replaces it (a new file renamed over the old one)."""
    projections.mkdir(parents=True, exist_ok=True)
    (projections / "next.json").write_text(text)
    os.replace(projections / "next.json", projections / POINTER)


def test_what_is_kept_is_bounded_and_dropped_at_the_next_publish(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept, "MOST_BYTES", 10)
    monkeypatch.setattr(kept, "MOST_PIECES", 3)
    made: list[str] = []

    def making(piece: str) -> Any:
        return lambda: made.append(piece) or piece

    store: KeptContent[str] = KeptContent(tmp_path, size=len)
    assert store.made("a", making("aa")) == "aa" and len(store) == 0, "nothing published: made, not kept"
    publish(tmp_path, '{"cycles": {}}')
    store.made("a", making("aa")), store.made("a", making("aa"))
    assert made == ["aa", "aa"] and len(store) == 1
    assert store.made("big", making("b" * 11)) == "b" * 11
    assert len(store) == 0, "a piece larger than the bound is given, not kept (and what was kept is dropped)"
    for piece in ("c" * 4, "d" * 4, "e" * 4):
        store.made(piece, making(piece))
    assert len(store) == 1, "past the bound in bytes, what was kept is dropped"
    for piece in ("f", "g", "h"):
        store.made(piece, making(piece))
    assert len(store) == 1, "past the bound in pieces, what was kept is dropped"
    publish(tmp_path, '{"cycles": {}, "named": {}}')
    made.clear()
    assert store.made("h", making("h")) == "h" and made == ["h"], "a new snapshot: made again"
    assert store.made("h", making("h")) == "h" and made == ["h"] and len(store) == 1
