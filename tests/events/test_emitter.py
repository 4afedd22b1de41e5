"""The emitter SDK against the real broker: invalid events never leave the sender; valid ones are stored.

The emitter logs in as a registered sender (SASL/SCRAM) taken from the environment or a file, and
sends to that sender's own topics; the command line never carries the secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.emitter import Emitter, InvalidEvent, MissingCredentials, SenderCredentials
from events.contract.models import ENVELOPES
from events.routing import FAMILIES, dead_letter_topic, sender_topic
from pipelines.streaming.broker import Broker
from pipelines.cli.main import main
from tests.support.events import make_event, write_jsonl
from tests.support.kafka import TEST_SENDER, register_sender
from tests.support.stream import (
    WorkerProcess,
    new_prefix,
    prepare_topics,
    read_topic,
    stored_event_ids,
    store_counts,
    wait_for,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def sender(kafka_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SenderCredentials:
    """A sender of every type, registered in the worker's home; its credentials in the environment."""
    prefix = new_prefix()
    monkeypatch.setenv("PLANNING_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("PLANNING_KAFKA", kafka_broker.bootstrap)
    prepare_topics(kafka_broker.bootstrap, prefix)
    credentials = register_sender(kafka_broker, tmp_path / "home", prefix)
    monkeypatch.setenv("PLANNING_SENDER", credentials.sender)
    monkeypatch.setenv("PLANNING_SENDER_SECRET", credentials.secret)
    return credentials


@pytest.fixture
def prefix(sender: SenderCredentials) -> str:
    import os

    return os.environ["PLANNING_TOPIC_PREFIX"]


def _own(prefix: str, event_type: str) -> str:
    return sender_topic(TEST_SENDER, event_type, prefix)


def _all_raw_messages(bootstrap: str, prefix: str) -> list[bytes]:
    return [value for family in FAMILIES for _, value in read_topic(bootstrap, f"{prefix}.from.{TEST_SENDER}.{family}")]


def test_producer_is_idempotent_with_acks_all_set_explicitly(kafka_broker: Broker, prefix: str) -> None:
    with Emitter(kafka_broker.bootstrap, acks=1, enable_idempotence=False) as emitter:  # overrides are refused
        config = emitter._producer.config
        assert config["enable_idempotence"] is True
        assert config["acks"] == -1  # 'all'


def test_invalid_event_is_refused_before_sending_with_every_field_named(kafka_broker: Broker, prefix: str) -> None:
    bad = make_event("consultation.response_received",
                     {"borough": "E09000001", "themes": [{"theme": "knife", "rank": 1}]})
    with Emitter(kafka_broker.bootstrap) as emitter:
        with pytest.raises(InvalidEvent) as refused:
            emitter.emit(bad)
    reasons = refused.value.reasons
    assert any(r.startswith("payload.borough:") and "City of London" in r for r in reasons), reasons
    assert any(r.startswith("payload.themes[0].theme:") and "'knife' is not a theme" in r for r in reasons), reasons
    assert "payload.borough" in str(refused.value) and "payload.themes[0].theme" in str(refused.value)
    assert bad["event_id"] in str(refused.value)
    assert _all_raw_messages(kafka_broker.bootstrap, prefix) == []


def test_unknown_event_type_and_not_an_object_are_refused(kafka_broker: Broker, prefix: str) -> None:
    with Emitter(kafka_broker.bootstrap) as emitter:
        with pytest.raises(InvalidEvent, match="event_type: 'consultation.reply' is not an event type"):
            emitter.emit({**make_event("consultation.response_received"), "event_type": "consultation.reply"})
        with pytest.raises(InvalidEvent, match="expected a JSON object"):
            emitter.emit(b"[1, 2]")
    assert _all_raw_messages(kafka_broker.bootstrap, prefix) == []


def test_valid_events_go_to_their_topic_under_their_key(kafka_broker: Broker, prefix: str) -> None:
    consultation = make_event("consultation.response_received")
    opened = make_event("cycle.opened")
    model = ENVELOPES["plan.published"].model_validate_json(json.dumps(make_event("plan.published")))
    with Emitter(kafka_broker.bootstrap) as emitter:
        first = emitter.emit(consultation).get(timeout=30)
        emitter.emit(opened)
        emitter.emit(model)
    assert first.topic == _own(prefix, "consultation.response_received") == f"{prefix}.from.{TEST_SENDER}.consultation"
    consultations = read_topic(kafka_broker.bootstrap, _own(prefix, "consultation.response_received"))
    assert [(k, json.loads(v)["event_id"]) for k, v in consultations] == [(b"2027-28/E09000012", consultation["event_id"])]
    timetable = read_topic(kafka_broker.bootstrap, _own(prefix, "cycle.opened"))
    assert sorted(json.loads(v)["event_id"] for _, v in timetable) == sorted([opened["event_id"], str(model.event_id)])
    assert {k for k, _ in timetable} == {b"2027-28"}


def test_emit_lines_sends_valid_lines_and_reports_invalid_ones_by_number(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    good = [make_event("survey.response_recorded") for _ in range(3)]
    path = write_jsonl(tmp_path / "events.jsonl", [
        good[0],
        b"{not json",
        good[1],
        make_event("survey.response_recorded", {"weight": 0}),
        good[2],
    ])
    with Emitter(kafka_broker.bootstrap) as emitter:
        report = emitter.emit_lines(path)
    assert report.sent == 3
    assert [p.number for p in report.invalid] == [2, 4]
    assert "not valid JSON" in report.invalid[0].reasons[0]
    assert report.invalid[1].reasons[0].startswith("payload.weight:")
    sent = read_topic(kafka_broker.bootstrap, _own(prefix, "survey.response_recorded"))
    assert sorted(json.loads(v)["event_id"] for _, v in sent) == sorted(e["event_id"] for e in good)


def test_planning_emit_exit_codes(kafka_broker: Broker, prefix: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], home) -> None:
    clean = write_jsonl(tmp_path / "clean.jsonl", [make_event("group.meeting_held") for _ in range(2)])
    assert main(["emit", str(clean)]) == 0
    assert "sent 2" in capsys.readouterr().out

    dirty = write_jsonl(tmp_path / "dirty.jsonl", [make_event("group.meeting_held"), b"[]"])
    assert main(["emit", str(dirty), "--bootstrap", kafka_broker.bootstrap]) == 1
    captured = capsys.readouterr()
    assert "sent 1  invalid (not sent) 1" in captured.out
    assert f"{dirty}:2: line: expected a JSON object, got an array" in captured.err
    assert len(read_topic(kafka_broker.bootstrap, _own(prefix, "group.meeting_held"))) == 3

    assert main(["emit", str(tmp_path / "missing.jsonl")]) == 2


def test_a_valid_emitted_event_is_stored_by_the_worker(kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    event = make_event("consultation.response_received")
    with Emitter(kafka_broker.bootstrap) as emitter:
        emitter.emit(event)
        emitter.emit(event)  # a resend is stored once
        with pytest.raises(InvalidEvent):
            emitter.emit(make_event("consultation.response_received", {"channel": "carrier_pigeon"}))
    with WorkerProcess(tmp_path / "home", kafka_broker.bootstrap, prefix) as worker:
        wait_for(lambda: store_counts(worker.home / "store")["events"] >= 1, 60, "the event to be stored")
        assert worker.stop() == 0, worker.log_text()
    assert stored_event_ids(worker.home / "store") == [event["event_id"]]
    assert store_counts(worker.home / "store") == {"events": 1, "dead_letters": 0}
    assert read_topic(kafka_broker.bootstrap, dead_letter_topic(prefix)) == []


# --- credentials: the environment or a file, never the command line --------------------------------


def test_planning_emit_takes_the_credentials_from_a_file(
        kafka_broker: Broker, sender: SenderCredentials, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PLANNING_SENDER")
    monkeypatch.delenv("PLANNING_SENDER_SECRET")
    secrets_file = tmp_path / "sender.env"
    secrets_file.write_text(f"# issued by the data team\nPLANNING_SENDER={sender.sender}\n"
                            f"PLANNING_SENDER_SECRET={sender.secret}\n")
    events = write_jsonl(tmp_path / "events.jsonl", [make_event("group.meeting_held")])
    assert main(["emit", str(events), "--credentials", str(secrets_file)]) == 0, capsys.readouterr().err
    monkeypatch.setenv("PLANNING_SENDER_CREDENTIALS", str(secrets_file))
    assert main(["emit", str(events)]) == 0, capsys.readouterr().err
    assert len(read_topic(kafka_broker.bootstrap, _own(prefix, "group.meeting_held"))) == 2


def test_planning_emit_without_credentials_says_where_to_put_them(
        sender: SenderCredentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PLANNING_SENDER_SECRET")
    events = write_jsonl(tmp_path / "events.jsonl", [make_event("group.meeting_held")])
    assert main(["emit", str(events)]) == 2
    err = capsys.readouterr().err
    assert "PLANNING_SENDER and PLANNING_SENDER_SECRET" in err and "--credentials FILE" in err
    assert main(["emit", str(events), "--secret", "pps_example"]) == 2  # no option takes a secret
    assert "unrecognized arguments: --secret" in capsys.readouterr().err


def test_planning_emit_with_a_wrong_secret_fails_and_sends_nothing(
        kafka_broker: Broker, sender: SenderCredentials, prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PLANNING_SENDER_SECRET", "pps_not-the-secret")
    events = write_jsonl(tmp_path / "events.jsonl", [make_event("group.meeting_held")])
    assert main(["emit", str(events)]) == 3
    assert f"as sender {TEST_SENDER}" in capsys.readouterr().err
    assert _all_raw_messages(kafka_broker.bootstrap, prefix) == []


def test_a_credentials_file_without_the_secret_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "sender.env"
    path.write_text("PLANNING_SENDER=cdrp-harrow\n")
    with pytest.raises(MissingCredentials, match="lacks PLANNING_SENDER_SECRET"):
        SenderCredentials.from_file(path)
    assert "pps_x" not in repr(SenderCredentials("cdrp-harrow", "pps_x"))  # never echoed in a log line


