"""`planning senders` and the data team's ways in: secrets printed once as the last line, grants
applied by `planning ingest --as`, the operator recorded otherwise, dead letters filtered by sender."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest

from events.home import PlanningHome
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.cli.main import main
from tests.support.events import make_event, write_jsonl

HARROW, BARNET = "E09000015", "E09000003"


def planning(*args: str) -> int:
    return main(list(args))


def add(capsys: pytest.CaptureFixture, name: str, types: str, boroughs: str) -> str:
    assert planning("senders", "add", name, "--event-types", types, "--boroughs", boroughs) == 0
    return capsys.readouterr().out.splitlines()[-1]


def test_add_prints_the_secret_once_as_the_last_line_and_keeps_only_its_hash(
    home: PlanningHome, capsys: pytest.CaptureFixture
) -> None:
    secret = add(capsys, "cdrp-harrow", "cdrp.audit_submitted", HARROW)
    with SenderRegistry.of(home) as registry:
        assert registry.identify(secret).name == "cdrp-harrow"
    on_disk = b"".join(p.read_bytes() for p in home.store.rglob("*") if p.is_file())
    assert secret.encode() not in on_disk
    assert planning("senders", "list") == 0
    listing = capsys.readouterr().out
    assert "cdrp-harrow" in listing and HARROW in listing and secret not in listing


def test_rotate_prints_a_new_secret_and_revoke_stops_the_sender(home: PlanningHome, capsys: pytest.CaptureFixture) -> None:
    old = add(capsys, "pas-vendor", "survey.response_recorded", "all")
    assert planning("senders", "rotate", "pas-vendor") == 0
    new = capsys.readouterr().out.splitlines()[-1]
    assert new != old and new.startswith("pps_")
    assert planning("senders", "revoke", "pas-vendor") == 0
    assert "revoked sender pas-vendor" in capsys.readouterr().out
    assert planning("senders", "list", "--format", "json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "pas-vendor" and row["state"] == "revoked" and row["boroughs"] == "all"
    assert "secret" not in json.dumps(row)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "Bad Name", "--event-types", "cdrp.audit_submitted", "--boroughs", "all"), "name: 'Bad Name' is not a sender name"),
        (("add", "cdrp-x", "--event-types", "nope", "--boroughs", "all"), "event types: nope is not an event type"),
        (("add", "cdrp-x", "--event-types", "cdrp.audit_submitted", "--boroughs", "E09000099"), "boroughs: E09000099"),
        (("rotate", "nobody"), "sender nobody is not registered"),
        (("revoke", "nobody"), "sender nobody is not registered"),
    ],
)
def test_refusals_name_the_field_and_exit_2(home: PlanningHome, capsys: pytest.CaptureFixture, args, message) -> None:
    assert planning("senders", *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "pps_" not in captured.out


def test_ingest_records_the_operator_and_as_applies_a_senders_grant(
    home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    add(capsys, "cdrp-harrow", "cdrp.audit_submitted", HARROW)
    mine = make_event("cdrp.audit_submitted", {"borough": HARROW})
    other = make_event("cdrp.audit_submitted", {"borough": BARNET})
    path = write_jsonl(tmp_path / "audits.jsonl", [mine, other])
    assert planning("ingest", "--as", "cdrp-harrow", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "accepted 1  duplicate 0  rejected 1"
    assert f"sender cdrp-harrow may not send cdrp.audit_submitted for {BARNET}" in captured.err
    decision = make_event("stage.signed_off")
    assert planning("ingest", str(write_jsonl(tmp_path / "decision.jsonl", [decision]))) == 0
    with EventStore(home.store) as store:
        senders = {r["event_id"]: r.get("sender") for r in store.records()}
        (letter,) = store.dead_letters()
    assert senders == {mine["event_id"]: "cdrp-harrow", decision["event_id"]: f"operator:{getpass.getuser()}"}
    assert letter["sender"] == "cdrp-harrow"


def test_ingest_as_an_unknown_or_revoked_sender_is_refused(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", [make_event("stage.signed_off")])
    assert planning("ingest", "--as", "nobody", str(path)) == 2
    assert "--as: sender nobody is not registered" in capsys.readouterr().err
    add(capsys, "gone", "stage.signed_off", "all")
    planning("senders", "revoke", "gone")
    capsys.readouterr()
    assert planning("ingest", "--as", "gone", str(path)) == 2
    assert "sender gone is revoked" in capsys.readouterr().err
    with EventStore(home.store) as store:
        assert store.counts() == {"events": 0, "dead_letters": 0}


def test_deadletters_filter_by_sender(home: PlanningHome, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    add(capsys, "cdrp-harrow", "cdrp.audit_submitted", HARROW)
    planning("ingest", "--as", "cdrp-harrow", str(write_jsonl(tmp_path / "a.jsonl", [b"not json"])))
    planning("ingest", str(write_jsonl(tmp_path / "b.jsonl", [b"[1]", b"{}"])))
    capsys.readouterr()
    assert planning("deadletters", "--sender", "cdrp-harrow") == 0
    out = capsys.readouterr().out
    assert "1 dead letter(s) from cdrp-harrow" in out and "a.jsonl:1  from cdrp-harrow" in out and "b.jsonl" not in out
    assert planning("deadletters") == 0
    assert "3 dead letter(s) in" in capsys.readouterr().out
