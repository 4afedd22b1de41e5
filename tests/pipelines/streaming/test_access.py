"""Who may send what, on the real broker with SCRAM and ACLs on.

The broker refuses a sender outside its own topics and a revoked sender; the worker dead-letters an
event on a sender's own topic that its grants do not cover, with the reason, and records who sent
every event and dead letter; a header proves a sender only on the collector's topics, which only
the collector principal may write. Nothing accepted is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError

from events.emitter import Emitter, SenderCredentials
from events.routing import SENDER_HEADER, collector_topic, dead_letter_topic, sender_topic
from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.streaming.access import BrokerAccess, provision, sync, withdraw
from pipelines.streaming.broker import Broker
from pipelines.streaming.credentials import KafkaLogin, service_login
from tests.support.events import make_event
from tests.support.kafka import register_sender, sender_login
from tests.support.stream import (
    WorkerProcess,
    new_prefix,
    prepare_topics,
    raw_producer,
    read_topic,
    send_all,
    store_counts,
    wait_for,
)

pytestmark = pytest.mark.kafka

HARROW, BARNET = "E09000015", "E09000003"
AUDIT = "cdrp.audit_submitted"


@pytest.fixture
def prefix(kafka_broker: Broker) -> str:
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    return prefix


def _access(broker: Broker, prefix: str) -> BrokerAccess:
    return BrokerAccess(broker.bootstrap, broker.config.login(), prefix)


def _audit(borough: str) -> dict:
    return make_event(AUDIT, {"borough": borough})


def _by_sender(store: Path) -> dict[str, dict[str, int]]:
    with EventStore(store) as opened:
        return opened.counts_by_sender()


def _send(bootstrap: str, login: KafkaLogin, topic: str, value: bytes, headers=None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             max_block_ms=10_000, **login.kafka_python())
    try:
        producer.send(topic, value=value, headers=headers).get(timeout=30)
    finally:
        producer.close(timeout=5)


def test_a_sender_may_write_only_its_own_topics_of_its_granted_families(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    harrow = register_sender(kafka_broker, tmp_path / "home", prefix, "cdrp-harrow", [AUDIT], [HARROW])
    register_sender(kafka_broker, tmp_path / "home", prefix, "cdrp-barnet", [AUDIT], [BARNET])
    login = sender_login(harrow)
    value = json.dumps(_audit(HARROW)).encode()
    _send(kafka_broker.bootstrap, login, sender_topic("cdrp-harrow", AUDIT, prefix), value)  # its own: accepted
    for elsewhere in (sender_topic("cdrp-barnet", AUDIT, prefix),   # another sender's topic
                      collector_topic(AUDIT, prefix),                # the collector's
                      dead_letter_topic(prefix),                     # the worker's
                      sender_topic("cdrp-harrow", "survey.response_recorded", prefix)):  # a family not granted
        with pytest.raises(TopicAuthorizationFailedError):
            _send(kafka_broker.bootstrap, login, elsewhere, value)
    assert [v for _, v in read_topic(kafka_broker.bootstrap, sender_topic("cdrp-harrow", AUDIT, prefix))] == [value]
    assert read_topic(kafka_broker.bootstrap, sender_topic("cdrp-barnet", AUDIT, prefix)) == []
    assert read_topic(kafka_broker.bootstrap, collector_topic(AUDIT, prefix)) == []


def test_an_event_outside_the_grant_is_dead_lettered_with_the_sender_and_the_reason(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    """The topic carries a whole family, so a borough (or a type of the family) outside the grant
    reaches the worker, which dead-letters it; a header naming another sender changes nothing."""
    home = tmp_path / "home"
    harrow = register_sender(kafka_broker, home, prefix, "cdrp-harrow", [AUDIT], [HARROW])
    register_sender(kafka_broker, home, prefix, "cdrp-barnet", [AUDIT], [BARNET])
    own, outside = _audit(HARROW), _audit(BARNET)
    profile = make_event("borough.profile_recorded", {"borough": HARROW})  # same family, type not granted
    with Emitter(kafka_broker.bootstrap, credentials=harrow, topic_prefix=prefix) as emitter:
        emitter.emit(own)
        emitter.emit(outside)
        emitter.emit(profile)
    forged = _audit(HARROW)  # on its own topic, claiming in a header to be cdrp-barnet
    _send(kafka_broker.bootstrap, sender_login(harrow), sender_topic("cdrp-harrow", AUDIT, prefix),
          json.dumps(forged).encode(), headers=[(SENDER_HEADER, b"cdrp-barnet")])

    with WorkerProcess(home, kafka_broker.bootstrap, prefix) as worker:
        wait_for(lambda: store_counts(home / "store") == {"events": 2, "dead_letters": 2}, 90,
                 "2 events stored and 2 dead-lettered")
        # the rejects go to the dead-letter topic after the store has them: a stop in between leaves them
        # to the next start (at least once), so wait for them there too before stopping
        wait_for(lambda: len(read_topic(kafka_broker.bootstrap, dead_letter_topic(prefix))) == 2, 60,
                 "2 dead letters forwarded")
        assert worker.stop() == 0, worker.log_text()

    assert _by_sender(home / "store") == {"events": {"cdrp-harrow": 2}, "dead_letters": {"cdrp-harrow": 2}}
    with EventStore(home / "store") as store:
        letters = {json.loads(letter["raw"])["event_id"]: letter for letter in store.dead_letters()}
        assert {event["event_id"] for event in store.events()} == {own["event_id"], forged["event_id"]}
    assert letters[outside["event_id"]]["reasons"] == [f"sender cdrp-harrow may not send {AUDIT} for {BARNET}"]
    assert letters[profile["event_id"]]["reasons"][0].startswith(
        "sender cdrp-harrow may not send borough.profile_recorded")
    forwarded = [json.loads(v) for _, v in read_topic(kafka_broker.bootstrap, dead_letter_topic(prefix))]
    assert sorted((d["sender"], d["reasons"][0]) for d in forwarded) == sorted(
        ("cdrp-harrow", letter["reasons"][0]) for letter in letters.values())


def test_the_collector_header_names_the_sender_only_on_collector_topics(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_sender(kafka_broker, home, prefix, "survey-vendor", ["survey.response_recorded"], None)
    interview = make_event("survey.response_recorded")
    unnamed = make_event("survey.response_recorded")
    collector = raw_producer(kafka_broker.bootstrap, service_login("collector"))
    topic = collector_topic("survey.response_recorded", prefix)
    futures = [collector.send(topic, value=json.dumps(interview).encode(), headers=[(SENDER_HEADER, b"survey-vendor")]),
               collector.send(topic, value=json.dumps(unnamed).encode())]
    collector.flush()
    for future in futures:
        future.get(timeout=30)
    collector.close()

    with WorkerProcess(home, kafka_broker.bootstrap, prefix) as worker:
        wait_for(lambda: store_counts(home / "store") == {"events": 1, "dead_letters": 1}, 90,
                 "the named event stored, the unnamed one dead-lettered")
        assert worker.stop() == 0, worker.log_text()
    with EventStore(home / "store") as store:
        assert [e["event_id"] for e in store.events()] == [interview["event_id"]]
        [letter] = store.dead_letters()
    assert _by_sender(home / "store")["events"] == {"survey-vendor": 1}
    assert letter["reasons"][0].startswith(f"{SENDER_HEADER}: a message on the collector topic {topic} without")


def test_a_revoked_sender_is_refused_by_the_broker_and_what_it_sent_before_is_kept(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    harrow = register_sender(kafka_broker, home, prefix, "cdrp-harrow", [AUDIT], [HARROW])
    before = _audit(HARROW)
    topic = sender_topic("cdrp-harrow", AUDIT, prefix)
    producer = raw_producer(kafka_broker.bootstrap, sender_login(harrow))
    send_all(producer, [(topic, b"k", json.dumps(before).encode())])

    with SenderRegistry(home / "store") as registry:
        registry.revoke("cdrp-harrow")
    withdraw(_access(kafka_broker, prefix), "cdrp-harrow")

    # the connection it already has loses its ACLs at once ...
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send(topic, value=json.dumps(_audit(HARROW)).encode()).get(timeout=30)
    producer.close(timeout=5)
    # ... and a new one cannot log in: its SCRAM user is gone
    with pytest.raises(KafkaTimeoutError):
        _send(kafka_broker.bootstrap, sender_login(harrow), topic, json.dumps(_audit(HARROW)).encode())

    with WorkerProcess(home, kafka_broker.bootstrap, prefix) as worker:  # what it sent before revocation
        wait_for(lambda: store_counts(home / "store")["dead_letters"] == 1, 90, "the earlier event judged")
        assert worker.stop() == 0, worker.log_text()
    with EventStore(home / "store") as store:  # judged by the registry of now: revoked, so dead-lettered, not lost
        [letter] = store.dead_letters()
    assert letter["sender"] == "cdrp-harrow" and json.loads(letter["raw"])["event_id"] == before["event_id"]
    assert letter["reasons"][0].startswith("sender cdrp-harrow is revoked")


def test_a_new_sender_is_read_by_a_running_worker_and_a_rotated_secret_replaces_the_old(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with WorkerProcess(home, kafka_broker.bootstrap, prefix) as worker:
        wait_for(lambda: "consuming" in worker.log_text(), 60, "the worker to start")
        harrow = register_sender(kafka_broker, home, prefix, "cdrp-harrow", [AUDIT], [HARROW])
        first = _audit(HARROW)
        with Emitter(kafka_broker.bootstrap, credentials=harrow, topic_prefix=prefix) as emitter:
            emitter.emit(first)
        wait_for(lambda: store_counts(home / "store")["events"] == 1, 60, "the new sender's event stored")

        with SenderRegistry(home / "store") as registry:
            secret = registry.rotate("cdrp-harrow")
            rotated = registry.get("cdrp-harrow")
        provision(_access(kafka_broker, prefix), rotated, secret)
        with pytest.raises(KafkaTimeoutError):  # the old secret no longer logs in
            _send(kafka_broker.bootstrap, sender_login(harrow), sender_topic("cdrp-harrow", AUDIT, prefix), b"{}")
        second = _audit(HARROW)
        with Emitter(kafka_broker.bootstrap, credentials=SenderCredentials("cdrp-harrow", secret),
                     topic_prefix=prefix) as emitter:
            emitter.emit(second)
        wait_for(lambda: store_counts(home / "store")["events"] == 2, 60, "the rotated sender's event stored")
        assert worker.stop() == 0, worker.log_text()
    assert _by_sender(home / "store") == {"events": {"cdrp-harrow": 2}, "dead_letters": {}}


def test_sync_removes_the_kafka_users_of_senders_no_longer_active(
        kafka_broker: Broker, prefix: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    kept = register_sender(kafka_broker, home, prefix, "cdrp-harrow", [AUDIT], [HARROW])
    gone = register_sender(kafka_broker, home, prefix, "cdrp-barnet", [AUDIT], [BARNET])
    with SenderRegistry(home / "store") as registry:
        registry.revoke("cdrp-barnet")  # revoked while no broker ran: the broker still has its user
        senders = registry.all()
    report = sync(_access(kafka_broker, prefix), senders)
    assert report.removed == ["cdrp-barnet"] and report.without_user == []
    with pytest.raises(KafkaTimeoutError):
        _send(kafka_broker.bootstrap, sender_login(gone), sender_topic("cdrp-barnet", AUDIT, prefix), b"{}")
    _send(kafka_broker.bootstrap, sender_login(kept), sender_topic("cdrp-harrow", AUDIT, prefix), b"{}")


def test_planning_senders_add_and_revoke_act_on_the_broker(
        kafka_broker: Broker, prefix: str, home, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The data team's commands, with the admin's login in the environment as compose's kafka-init has it."""
    from pipelines.cli.main import main

    monkeypatch.setenv("PLANNING_TOPIC_PREFIX", prefix)
    monkeypatch.setenv("PLANNING_KAFKA", kafka_broker.bootstrap)
    monkeypatch.setenv("PLANNING_KAFKA_USER", "admin")
    monkeypatch.setenv("PLANNING_KAFKA_PASSWORD", kafka_broker.config.login().password)
    assert main(["senders", "add", "cdrp-harrow", "--event-types", AUDIT, "--boroughs", HARROW]) == 0
    captured = capsys.readouterr()
    secret = captured.out.splitlines()[-1]
    assert f"applied to the Kafka broker at {kafka_broker.bootstrap}" in captured.err
    login = KafkaLogin("cdrp-harrow", secret)
    topic = sender_topic("cdrp-harrow", AUDIT, prefix)
    _send(kafka_broker.bootstrap, login, topic, json.dumps(_audit(HARROW)).encode())

    assert main(["senders", "revoke", "cdrp-harrow"]) == 0
    with pytest.raises(KafkaTimeoutError):
        _send(kafka_broker.bootstrap, login, topic, json.dumps(_audit(HARROW)).encode())
    assert len(read_topic(kafka_broker.bootstrap, topic)) == 1
