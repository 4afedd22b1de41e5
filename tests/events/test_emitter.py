"""The emitter SDK against the real broker: invalid events never leave the sender; valid ones are stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.emitter import Emitter, InvalidEvent
from events.contract.models import ENVELOPES
from events.routing import dead_letter_topic, raw_topics, topic_for
from pipelines.streaming.broker import Broker
from pipelines.cli.main import main
from tests.support.events import make_event, write_jsonl
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
def prefix(kafka_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> str:
    prefix = new_prefix()
    monkeypatch.setenv("PLANNING_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("PLANNING_KAFKA", kafka_broker.bootstrap)
    prepare_topics(kafka_broker.bootstrap, prefix)
    return prefix


def _all_raw_messages(bootstrap: str, prefix: str) -> list[bytes]:
    return [value for topic in raw_topics(prefix) for _, value in read_topic(bootstrap, topic)]


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
    assert first.topic == topic_for("consultation.response_received", prefix)
    consultations = read_topic(kafka_broker.bootstrap, f"{prefix}.consultation")
    assert [(k, json.loads(v)["event_id"]) for k, v in consultations] == [(b"2027-28/E09000012", consultation["event_id"])]
    timetable = read_topic(kafka_broker.bootstrap, f"{prefix}.timetable")
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
    sent = read_topic(kafka_broker.bootstrap, f"{prefix}.survey")
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
    assert len(read_topic(kafka_broker.bootstrap, f"{prefix}.partnership")) == 3

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


