"""The collector on the streaming stack, against the real broker (SASL/SCRAM, ACLs on): it hands every line to
the collector's topics as the ``collector`` principal, and the worker stores them with the sender it named.

The sender's name survives the hand-over because only the collector may write the collector's topics: a
registered sender that writes one, with a header naming another sender, is refused by the broker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.errors import TopicAuthorizationFailedError

from events.home import PlanningHome
from events.routing import SENDER_HEADER, collector_topic
from pipelines.collector.handing_over import KafkaIntake
from pipelines.streaming.broker import Broker
from pipelines.streaming.credentials import service_login
from pipelines.streaming.topics import admin_client
from tests.support.collector import add_sender, ndjson, running_collector
from tests.support.events import make_event
from tests.support.kafka import register_sender, sender_login
from tests.support.stream import WorkerProcess, new_prefix, prepare_topics, raw_producer, store_counts, wait_for

pytestmark = pytest.mark.kafka

HARROW, HACKNEY = "E09000015", "E09000012"
AUDIT = "cdrp.audit_submitted"


@pytest.fixture
def prefix(kafka_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> str:
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    monkeypatch.setenv("PLANNING_TOPIC_PREFIX", prefix)
    wait_for(lambda: _collector_may_write(kafka_broker.bootstrap, prefix), 30, "the broker to apply the collector's ACLs")
    return prefix


def _collector_may_write(bootstrap: str, prefix: str) -> bool:
    """Whether the broker's authorizer shows the collector's ACL on the prefix (the controller commits an ACL
    before the broker applies it)."""
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter
    from kafka.admin import ResourceType

    admin = admin_client(bootstrap)
    try:
        found, _ = admin.describe_acls(ACLFilter(
            principal="User:collector", host="*", operation=ACLOperation.WRITE, permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, f"{prefix}.collector.",
                                                   ACLResourcePatternType.PREFIXED)))
        return bool(found)
    finally:
        admin.close()


def test_the_worker_stores_what_the_collector_handed_over_with_its_sender(
    kafka_broker: Broker, prefix: str, tmp_path: Path
) -> None:
    home = PlanningHome(tmp_path / "home")
    secret = add_sender(home, "cdrp-harrow", [AUDIT], [HARROW])
    good, outside = make_event(AUDIT, {"borough": HARROW}), make_event(AUDIT, {"borough": HACKNEY})
    broken = b'{"event_type": "cdrp.audit_submitted", "event_id": "not json'
    intake = KafkaIntake(home, kafka_broker.bootstrap, service_login("collector"), prefix)
    with running_collector(home, intake=intake) as collector:
        reply = collector.post(ndjson(good, outside, broken, good), secret)
        health = collector.get("/v1/health")
    assert health.body["mode"] == "kafka"
    assert reply.status == 207
    assert (reply.body["received"], reply.body["accepted"], reply.body["rejected"]) == (4, 2, 2)
    outside_reason = f"sender cdrp-harrow may not send {AUDIT} for {HACKNEY}"
    assert [(r["line"], r["reasons"][0][:40]) for r in reply.body["rejections"]] == [
        (2, outside_reason[:40]), (3, "line: not valid JSON (Unterminated strin")]
    assert not (home.store / "store.sqlite").exists()  # the collector never wrote the store

    with WorkerProcess(home.root, kafka_broker.bootstrap, prefix) as worker:
        wait_for(lambda: store_counts(home.store) == {"events": 1, "dead_letters": 2}, 120,
                 "the worker to store the handed-over lines")
        assert worker.stop() == 0
    from events.storage.store import EventStore

    with EventStore(home.store) as store:
        records, dead = list(store.records()), store.dead_letters()
    assert [(r["event_id"], r["sender"]) for r in records] == [(good["event_id"], "cdrp-harrow")]  # the resend: once
    assert sorted((d["sender"], d["reasons"][0][:40]) for d in dead) == sorted(
        ("cdrp-harrow", r["reasons"][0][:40]) for r in reply.body["rejections"])
    # the event outside the grant on its family's collector topic; the unreadable line on the corrections one
    assert sorted(d["origin"].split("/")[0] for d in dead) == [f"{prefix}.collector.corrections",
                                                               collector_topic(AUDIT, prefix)]


def test_a_sender_cannot_write_the_collectors_topics_to_forge_a_name(
    kafka_broker: Broker, prefix: str, tmp_path: Path
) -> None:
    mallory = register_sender(kafka_broker, tmp_path / "home", prefix, "mallory", [AUDIT], [HACKNEY])
    producer = raw_producer(kafka_broker.bootstrap, sender_login(mallory), max_block_ms=30_000)
    try:
        sent = producer.send(collector_topic(AUDIT, prefix), value=json.dumps(make_event(AUDIT)).encode(),
                             headers=[(SENDER_HEADER, b"cdrp-harrow")])
        with pytest.raises(TopicAuthorizationFailedError):
            sent.get(timeout=60)
    finally:
        producer.close(timeout=10)
