"""Dead letters judged again: what an upcaster now understands comes back once, recorded at the
replay; what still fails says why; erased data never comes back; grants hold as they are now."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.contract import upcasting
from events.home import PlanningHome
from events.senders.registry import SenderRegistry, operator
from events.storage.store import EventStore
from pipelines.cli.main import main
from pipelines.ingest.files import ingest_files
from pipelines.ingest.replay import NOT_REPLAYABLE, REPLAYED, STILL_FAILS, STORED_ALREADY, Choice, replay
from tests.support.events import make_event, write_jsonl

ARRIVED = datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc)
REPLAYED_AT = datetime(2026, 9, 2, 12, 0, tzinfo=timezone.utc)
HARROW, BARNET = "E09000015", "E09000003"


def signed_off_v0_to_v1(body: dict[str, Any]) -> dict[str, Any]:
    """A made-up version 0 named the signing body `signed_off_by`."""
    payload = dict(body["payload"])
    payload["body"] = payload.pop("signed_off_by")
    return {**body, "payload": payload}


def v0_event() -> dict:
    event = make_event("stage.signed_off", {"stage": "brief"}, schema_version=0, occurred_at="2026-03-20T10:00:00Z")
    event["payload"]["signed_off_by"] = event["payload"].pop("body")
    return event


def ingest(store: EventStore, path: Path, lines: list, sender=None) -> None:
    ingest_files(store, [str(write_jsonl(path, lines))], recorded_at=ARRIVED, progress=None, sender=sender or operator("alice"))


def test_what_an_upcaster_now_understands_comes_back_once_recorded_at_the_replay(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, broken = v0_event(), b"not json"
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        ingest(store, tmp_path / "a.jsonl", [old, broken])
        assert store.counts() == {"events": 0, "dead_letters": 2}
        monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)

        first = replay(store, registry, Choice(), replayed_at=REPLAYED_AT)
        assert [(i.outcome, i.event_id) for i in first.items] == [(REPLAYED, old["event_id"]), (STILL_FAILS, None)]
        assert first.items[1].reasons[0].startswith("line: not valid JSON")
        (event,) = store.events()
        assert event["event_id"] == old["event_id"] and event["recorded_at"] == "2026-09-02T12:00:00.000000Z"
        assert event["sender"] == "operator:alice"  # the sender who delivered the dead letter
        assert first.items[0].position == event["position"] == 1
        letters = store.dead_letters()
        assert [l["replayed_position"] for l in letters] == [1, None]
        assert letters[0]["replayed_at"] == "2026-09-02T12:00:00.000000Z"

        again = replay(store, registry, Choice(), replayed_at=REPLAYED_AT)
        assert [i.outcome for i in again.items] == [STILL_FAILS]  # the replayed one is not taken again
        assert store.counts() == {"events": 1, "dead_letters": 2}


def test_a_dry_run_says_what_would_pass_and_stores_nothing(home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        ingest(store, tmp_path / "a.jsonl", [v0_event()])
        monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)
        report = replay(store, registry, Choice(), replayed_at=REPLAYED_AT, dry_run=True)
        assert [(i.outcome, i.position) for i in report.items] == [(REPLAYED, None)]
        assert store.counts()["events"] == 0 and store.dead_letters()[0]["replayed_position"] is None


def test_an_event_resent_by_hand_meanwhile_is_marked_with_its_position(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = v0_event()
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        ingest(store, tmp_path / "a.jsonl", [old])
        monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)
        ingest(store, tmp_path / "b.jsonl", [old])  # now accepted: the sender sent it again
        report = replay(store, registry, Choice(), replayed_at=REPLAYED_AT)
        assert [(i.outcome, i.position) for i in report.items] == [(STORED_ALREADY, 1)]
        assert store.counts()["events"] == 1 and store.dead_letters()[0]["replayed_position"] == 1


def test_grants_hold_as_they_are_now(home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        registry.add("panel-office", ["stage.signed_off"], None)
        ingest(store, tmp_path / "a.jsonl", [v0_event()], sender=registry.get("panel-office"))
        registry.revoke("panel-office")
        monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)
        (item,) = replay(store, registry, Choice(), replayed_at=REPLAYED_AT).items
        assert item.outcome == STILL_FAILS and item.reasons == ("sender panel-office is revoked: ask the data team to register a new sender",)
        assert store.counts()["events"] == 0


def test_an_erased_respondents_dead_letter_is_never_replayed(home: PlanningHome, tmp_path: Path) -> None:
    response = make_event("consultation.response_received", {"borough": HARROW})
    ref = response["payload"]["respondent"]["respondent_ref"]
    late = dict(response, payload={**response["payload"], "borough": "E09000001"})  # rejected: the City
    erase = make_event("respondent.erasure_requested", {"respondent_ref": ref})
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        ingest(store, tmp_path / "a.jsonl", [late])
        ingest(store, tmp_path / "b.jsonl", [erase])
        (item,) = replay(store, registry, Choice(), replayed_at=REPLAYED_AT).items
        assert item.outcome == NOT_REPLAYABLE and "redacted by an erasure" in item.reasons[0]
        assert store.counts()["events"] == 1  # the erasure only


def test_filters_choose_by_sender_reason_and_time(home: PlanningHome, tmp_path: Path) -> None:
    with EventStore(home.store, writer=True) as store, SenderRegistry.of(home) as registry:
        registry.add("cdrp-harrow", ["cdrp.audit_submitted"], [HARROW])
        harrow = registry.get("cdrp-harrow")
        ingest(store, tmp_path / "a.jsonl", [make_event("cdrp.audit_submitted", {"borough": BARNET})], sender=harrow)
        ingest(store, tmp_path / "b.jsonl", [b"[1]"])
        later = datetime(2026, 8, 20, tzinfo=timezone.utc)
        ingest_files(store, [str(write_jsonl(tmp_path / "c.jsonl", [b"{}"]))], recorded_at=later, progress=None)

        def chosen(choice: Choice) -> list[str]:
            return [i.origin.rsplit("/", 1)[-1] for i in replay(store, registry, choice, replayed_at=REPLAYED_AT, dry_run=True).items]

        assert chosen(Choice(sender="cdrp-harrow")) == ["a.jsonl:1"]
        assert chosen(Choice(reason_contains="EXPECTED A JSON OBJECT")) == ["b.jsonl:1"]
        assert chosen(Choice(since=later)) == ["c.jsonl:1"]
        assert chosen(Choice()) == ["a.jsonl:1", "b.jsonl:1", "c.jsonl:1"]


def test_the_command_replays_and_dagster_shows_it(
    home: PlanningHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import dagster as dg

    with EventStore(home.store, writer=True) as store:
        ingest(store, tmp_path / "a.jsonl", [v0_event(), b"nope"])
    monkeypatch.setitem(upcasting.UPCASTERS, ("stage.signed_off", 0), signed_off_v0_to_v1)
    assert main(["deadletters", "replay", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "would pass 1  stored already 0  would still fail 1" in out and "(dry run: nothing stored)" in out
    assert main(["deadletters", "replay", "--recorded-at", "2026-09-02T12:00:00Z"]) == 1
    out = capsys.readouterr().out
    assert "replayed 1  stored already 0  still failing 1" in out and "at position 1" in out
    assert main(["deadletters", "replay", "--reason-contains", "json", "--recorded-at", "2026-09-02T12:00:00Z"]) == 1
    assert "replayed 0" in capsys.readouterr().out
    instance = dg.DagsterInstance.get()
    latest = instance.get_latest_materialization_event(dg.AssetKey("dead_letters")).asset_materialization
    assert latest.metadata["replayed"].value == 1
    with EventStore(home.store) as store:
        assert store.counts() == {"events": 1, "dead_letters": 2}
    assert json.loads(json.dumps(latest.metadata["dagster/row_count"].value)) == 2
