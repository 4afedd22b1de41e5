"""Homes the site's tests read, built once per session: the demo's, and a real cycle still in fieldwork.

Knowledge time is pinned: the demo's events are recorded at ``KNOWN`` and built at (``ON``, ``AS_OF``);
a what-if snapshot of it, ``WHAT_IF``, is built at an earlier date, so the snapshot picker has one to offer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pytest

from events.home import PlanningHome
from events.storage.store import EventStore
from pipelines.demo.generator import generate_demo_lines
from pipelines.ingest.files import ingest_files
from pipelines.orchestration.runs import build
from tests.support.events import make_event, write_jsonl
from tests.support.home import use_home
from tests.support.web import Browser, Site, running_site

CYCLE = "2027-28"
ON = "2026-11-23"
KNOWN = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
AS_OF = "2026-11-23T12:00:00Z"
WHAT_IF = "before-priorities"
FIELDWORK_KNOWN = datetime(2026, 7, 15, 9, tzinfo=timezone.utc)
PASSWORD = "correct horse battery staple"
ACCOUNTS = {"panel": "p.member", "data_team": "d.analyst"}


def signed_in(site: Site, role: str | None = None) -> Browser:
    """A browser of the site: signed in with an account of ``role``, or anonymous."""
    browser = site.browser()
    if role is not None:
        assert browser.sign_in(ACCOUNTS[role], PASSWORD).status == 303
    return browser


@contextmanager
def site_of(home: PlanningHome) -> Iterator[Site]:
    """The real site over ``home``, with a Panel account and a data-team account."""
    with running_site(home) as site:
        for role, name in ACCOUNTS.items():
            if site.accounts.get(name) is None:  # a second site over the same home finds them there
                site.account(name, role, PASSWORD)
        yield site


@pytest.fixture(scope="session")
def demo_site(demo_home: PlanningHome) -> Iterator[Site]:
    with site_of(demo_home) as site:
        yield site


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    root = tmp_path_factory.mktemp("web-demo") / "planning-home"
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        lines = [l for l in generate_demo_lines(date(2026, 11, 23), not_after=KNOWN) if l.strip()]
        with EventStore(home.store, writer=True) as store:
            ingest_files(store, [str(write_jsonl(root.parent / "demo.jsonl", lines))], recorded_at=KNOWN, progress=None)
        build(home, on=ON, as_of=AS_OF)
        build(home, cycle=CYCLE, on="2026-10-15", as_of="2026-10-15T12:00:00Z", snapshot=WHAT_IF)
        yield home


@pytest.fixture(scope="session")
def fieldwork_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanningHome]:
    """Real (not synthetic) events of a cycle whose fieldwork is open: responses are still arriving."""
    root = tmp_path_factory.mktemp("web-fieldwork") / "planning-home"
    with pytest.MonkeyPatch.context() as patch:
        home = use_home(patch, root)
        in_fieldwork(home)
        build(home, on="2026-07-15", as_of="2026-07-15T12:00:00Z")
        yield home


def in_fieldwork(home: PlanningHome) -> None:
    """Store in ``home`` the real events of a cycle whose fieldwork is open (12 responses so far); not built."""
    events = [
        make_event("cycle.opened", occurred_at="2026-03-01T09:00:00Z"),
        make_event("programme.approved", occurred_at="2026-04-20T09:00:00Z"),
        *[make_event("consultation.response_received",
                     {"respondent": {**make_event("consultation.response_received")["payload"]["respondent"],
                                     "respondent_ref": f"r-{n}"}},
                     occurred_at="2026-07-10T09:00:00Z") for n in range(12)],
    ]
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(home.root.parent / "fieldwork.jsonl", events))],
                     recorded_at=FIELDWORK_KNOWN, progress=None)
