"""The data team's pages over HTTP: dead letters as `planning deadletters` shows them (an erased
respondent's line shows nothing of itself), builds linked into Dagster's UI, senders without secrets."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.ingest.files import ingest_files
from projections.reading.snapshots import published
from tests.pipelines.web.conftest import WHAT_IF, signed_in, site_of
from tests.support.events import make_event, write_jsonl
from tests.support.web import Site

RECORDED = datetime(2026, 7, 15, 9, tzinfo=timezone.utc)


def ingest(home: PlanningHome, tmp_path: Path, name: str, events: list) -> None:
    with EventStore(home.store, writer=True) as store:
        ingest_files(store, [str(write_jsonl(tmp_path / name, events))], recorded_at=RECORDED, progress=None)


def test_dead_letters_show_their_reasons_and_nothing_of_an_erased_respondent(home: PlanningHome, tmp_path: Path) -> None:
    respondent = dict(make_event("consultation.response_received")["payload"]["respondent"], respondent_ref="r-erase-me")
    bad = make_event("consultation.response_received", {"borough": "E09999999", "comment": "call me on 07700 900123",
                                                        "respondent": respondent})
    bad = {"payload": {"respondent": respondent, **bad["payload"]}, **bad}  # what the page shows of a line is its start
    ingest(home, tmp_path, "bad.jsonl", [
        bad,
        b'{"not": "an event", "marker": "plainly-broken"}',
    ])
    with site_of(home) as site:
        before = signed_in(site, "data_team").get("/data/dead-letters")
    assert before.status == 200 and "r-erase-me" in before.text and "plainly-broken" in before.text
    assert "borough" in before.text  # the reason names the field
    ingest(home, tmp_path, "erase.jsonl", [make_event("respondent.erasure_requested", {"respondent_ref": "r-erase-me"})])
    with site_of(home) as site:
        after = signed_in(site, "data_team").get("/data/dead-letters")
    assert after.status == 200
    assert "r-erase-me" not in after.text and "07700" not in after.text
    assert "(redacted by an erasure)" in after.text and "plainly-broken" in after.text
    assert "2 in all" in after.text


def test_dead_letters_filter_by_sender_and_refuse_a_bad_limit(home: PlanningHome, tmp_path: Path) -> None:
    ingest(home, tmp_path, "bad.jsonl", [b'{"broken": true}'])
    with site_of(home) as site:
        web = signed_in(site, "data_team")
        assert "1 in all" in web.get("/data/dead-letters").text
        assert "0 in all from someone-else" in web.get("/data/dead-letters?sender=someone-else").text
        refused = web.get("/data/dead-letters?limit=lots")
        assert refused.status == 400 and "limit: a whole number from 1 to 10,000" in refused.text


def test_builds_link_each_published_run_into_dagster_when_its_address_is_known(demo_home: PlanningHome, demo_site: Site,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pointer = published(demo_home.projections)
    run_ids = [Path(e["file"]).parent.name for e in [*pointer["cycles"].values(), *pointer["named"][WHAT_IF].values(),
                                                     pointer["operations"]]]
    monkeypatch.delenv("PLANNING_DAGSTER_URL", raising=False)
    unlinked = signed_in(demo_site, "data_team").get("/data/builds")
    assert unlinked.status == 200 and all(f"<code>{run}</code>" in unlinked.text for run in run_ids)
    assert "PLANNING_DAGSTER_URL" in unlinked.text and WHAT_IF in unlinked.text and "dead letters" in unlinked.text
    monkeypatch.setenv("PLANNING_DAGSTER_URL", "http://dagster.example:3000/")
    linked = signed_in(demo_site, "data_team").get("/data/builds")
    assert all(f'href="http://dagster.example:3000/runs/{run}"' in linked.text for run in run_ids)
    assert len(run_ids) == 4


def test_senders_show_names_grants_and_state_never_a_secret(home: PlanningHome) -> None:
    with SenderRegistry.of(home) as registry:
        secret = registry.add("harrow-cdrp", ["cdrp.audit_submitted"], ["E09000015"])
        other = registry.add("mopac-survey", ["survey.response_recorded"], None)
        registry.revoke("mopac-survey")
        digests = [row[0] for row in registry._db.execute("SELECT secret_sha256 FROM senders")]
    with site_of(home) as site:
        page = signed_in(site, "data_team").get("/data/senders")
    assert page.status == 200
    assert "harrow-cdrp" in page.text and "Harrow" in page.text and "cdrp.audit_submitted" in page.text
    assert "mopac-survey" in page.text and "revoked" in page.text and "every borough" in page.text
    for hidden in (secret, other, *digests):
        assert hidden not in page.text
