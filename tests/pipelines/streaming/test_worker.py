"""The stream worker against the real broker: topics -> event store, exactly once; rejects dead-lettered
in the store and on the dead-letter topic; poison never stops it; offsets committed after the append."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from events.emitter import Emitter
from events.emitter import SenderCredentials
from events.routing import collector_topics, dead_letter_topic, sender_topic
from events.senders.registry import SenderRegistry
from pipelines.streaming.broker import Broker
from pipelines.streaming.topics import describe_topics, ensure_topics
from tests.support.events import make_event, write_jsonl
from tests.support.kafka import ALL_TYPES, TEST_SENDER, register_sender, sender_login
from tests.support.stream import (
    REPO_ROOT,
    WorkerProcess,
    committed_lag,
    dead_letters,
    new_prefix,
    prepare_topics,
    raw_producer,
    read_topic,
    send_all,
    store_counts,
    stored_event_ids,
    wait_for,
)

pytestmark = pytest.mark.kafka

TYPES = ["consultation.response_received", "survey.response_recorded", "cdrp.audit_submitted",
         "borough.profile_recorded", "group.meeting_held", "cycle.opened", "programme.approved",
         "stage.signed_off", "feedback.published", "priorities.adopted", "plan.published", "event.retracted"]


@pytest.fixture
def prefix(kafka_broker: Broker) -> str:
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    return prefix


@pytest.fixture
def sender(kafka_broker: Broker, prefix: str, tmp_path: Path) -> SenderCredentials:
    """A sender of every type for every borough, registered in the worker's home (tmp_path / "home")."""
    return register_sender(kafka_broker, tmp_path / "home", prefix)


def _by_sender(store: Path) -> dict[str, dict[str, int]]:
    from events.storage.store import EventStore

    with EventStore(store) as opened:
        return opened.counts_by_sender()


def test_topics_are_created_idempotently_with_the_designed_retention(kafka_broker: Broker) -> None:
    prefix = new_prefix()
    first = ensure_topics(kafka_broker.bootstrap, prefix)
    again = ensure_topics(kafka_broker.bootstrap, prefix)
    assert all(s.created for s in first) and not any(s.created for s in again)
    rows = {row["name"]: row for row in describe_topics(kafka_broker.bootstrap, prefix)}
    assert set(rows) == {*collector_topics(prefix), dead_letter_topic(prefix)}
    assert {row["partitions"] for row in rows.values()} == {3}
    day = 24 * 3600 * 1000
    assert rows[f"{prefix}.collector.consultation"]["retention.ms"] == str(7 * day)
    assert rows[f"{prefix}.collector.corrections"]["retention.ms"] == str(7 * day)
    assert rows[f"{prefix}.collector.partnership"]["retention.ms"] == str(90 * day)
    assert rows[f"{prefix}.deadletters"]["retention.ms"] == str(30 * day)
    assert rows[f"{prefix}.collector.consultation"]["max.message.bytes"] == str(4 * 1024 * 1024)


def test_planning_topics_lists_the_topics(kafka_broker: Broker, tmp_path: Path) -> None:
    prefix = new_prefix()
    env = {"PLANNING_HOME": str(tmp_path), "PLANNING_TOPIC_PREFIX": prefix, "PYTHONPATH": str(REPO_ROOT),
           "PLANNING_KAFKA": kafka_broker.bootstrap, "PATH": "/usr/bin:/bin",
           "PLANNING_KAFKA_CREDENTIALS": str(kafka_broker.config.credentials_file)}
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "topics"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{prefix}.collector.consultation" in result.stdout and "created" in result.stdout
    assert "7 days" in result.stdout and "consultation.response_received" in result.stdout
    again = subprocess.run([sys.executable, "-m", "pipelines.cli", "topics"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "created" not in again.stdout and again.stdout.count("exists") == 6


def test_end_to_end_stored_once_rejects_dead_lettered_in_store_and_on_topic(
        kafka_broker: Broker, prefix: str, sender: SenderCredentials, tmp_path: Path) -> None:
    bootstrap = kafka_broker.bootstrap
    events = [make_event(TYPES[n % len(TYPES)]) for n in range(40)]
    with Emitter(bootstrap, credentials=sender, topic_prefix=prefix) as emitter:
        for event in events + events[:5]:  # five deliberate resends
            emitter.emit(event)
    consultation = sender_topic(sender.sender, "consultation.response_received", prefix)
    conflicting = {**events[0], "source": "a different body under the same event_id"}
    invalid = [
        json.dumps(make_event("consultation.response_received", {"themes": [{"theme": "knife", "rank": 1}]})).encode(),
        json.dumps(make_event("consultation.response_received", {"borough": "E09000001"})).encode(),
        json.dumps(make_event("consultation.response_received", {"shoe_size": 9})).encode(),
    ]
    producer = raw_producer(bootstrap, sender_login(sender))
    send_all(producer, [(consultation, b"2027-28", value) for value in invalid]
             + [(sender_topic(sender.sender, conflicting["event_type"], prefix), b"2027-28",
                 json.dumps(conflicting).encode())])
    producer.close()

    worker = WorkerProcess(tmp_path / "home", bootstrap, prefix)
    with worker:
        store = worker.home / "store"
        wait_for(lambda: store_counts(store) == {"events": 40, "dead_letters": 4}, 90,
                 "40 events and 4 dead letters")

        # While the worker runs it is the store's only writer.
        jsonl = write_jsonl(tmp_path / "more.jsonl", [make_event("plan.published")])
        ingest = subprocess.run([sys.executable, "-m", "pipelines.cli", "ingest", str(jsonl)], cwd=REPO_ROOT,
                                env=worker.env(), capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 3, ingest.stderr
        assert "planning worker" in ingest.stderr and f"`planning emit {jsonl} --bootstrap {bootstrap}`" in ingest.stderr
        second = subprocess.run([sys.executable, "-m", "pipelines.cli", "worker", "--bootstrap", bootstrap],
                                cwd=REPO_ROOT, env=worker.env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert "being written by planning worker" in second.stderr

        assert worker.stop() == 0, worker.log_text()

    ids = stored_event_ids(store)
    assert sorted(ids) == sorted(e["event_id"] for e in events)  # each exactly once
    letters = dead_letters(store)
    assert sorted(letter["raw"] for letter in letters) == sorted(invalid + [json.dumps(conflicting).encode()])
    assert all(letter["origin"].startswith(f"{prefix}.from.{TEST_SENDER}.") and "@" in letter["origin"]
               for letter in letters)
    assert {letter["sender"] for letter in letters} == {TEST_SENDER}
    assert _by_sender(store) == {"events": {TEST_SENDER: 40}, "dead_letters": {TEST_SENDER: 4}}
    reasons = [r for letter in letters for r in letter["reasons"]]
    assert any(r.startswith("payload.themes[0].theme:") for r in reasons)
    assert any(r.startswith("payload.borough:") for r in reasons)
    assert any(r.startswith("payload.shoe_size:") for r in reasons)
    assert any(r.startswith(f"event_id: {events[0]['event_id']} is already stored with a different body")
               for r in reasons)

    forwarded = [json.loads(value) for _, value in read_topic(bootstrap, dead_letter_topic(prefix))]
    assert {d["origin"]: d["reasons"] for d in forwarded} == {l["origin"]: l["reasons"] for l in letters}
    assert {d["sender"] for d in forwarded} == {TEST_SENDER}
    assert {base64.b64decode(d["raw_base64"]) for d in forwarded} == {l["raw"] for l in letters}

    group = (worker.home / "worker" / "group").read_text().strip()
    assert committed_lag(bootstrap, prefix, group) == 0  # everything stored was committed, nothing more


def test_poison_messages_never_stop_the_worker(kafka_broker: Broker, prefix: str, sender: SenderCredentials,
                                               tmp_path: Path) -> None:
    """Not JSON, invalid UTF-8, a JSON array, null, an empty value, a tombstone, JSON nested past the
    parser's limit, and a 2 MiB value (the raw topics accept up to 4 MiB, so it reaches the worker;
    the contract's limit is 1 MiB) -- then a valid event, which must still be stored."""
    bootstrap = kafka_broker.bootstrap
    own = f"{prefix}.from.{sender.sender}"
    consultation = f"{own}.consultation"
    huge = make_event("consultation.response_received")
    huge["payload"]["comment"] = "x" * (2 * 1024 * 1024)  # 2 MiB: oversized by contract
    poison: list[tuple[str, bytes | None]] = [
        (consultation, b"not json at all"),
        (f"{own}.survey", b"\xff\xfe\x00garbage"),
        (f"{own}.timetable", b"[1, 2, 3]"),
        (f"{own}.partnership", b"null"),
        (f"{own}.corrections", b""),
        (f"{own}.corrections", None),  # a tombstone
        (f"{own}.survey", b"[" * 200_000),  # RecursionError in json.loads
        (consultation, json.dumps(huge).encode()),
    ]
    valid = make_event("survey.response_recorded")
    producer = raw_producer(bootstrap, sender_login(sender))
    send_all(producer, [(topic, b"k", value) for topic, value in poison])
    send_all(producer, [(f"{own}.survey", b"k", json.dumps(valid).encode())])
    producer.close()

    with WorkerProcess(tmp_path / "home", bootstrap, prefix, batch=3) as worker:
        store = worker.home / "store"
        wait_for(lambda: store_counts(store) == {"events": 1, "dead_letters": len(poison)}, 90,
                 "the valid event and every poison message dead-lettered")
        # forwarded after the store has them: a stop in between leaves them to the next start
        wait_for(lambda: len({key for key, _ in read_topic(bootstrap, dead_letter_topic(prefix))}) == len(poison), 60,
                 "every poison message forwarded to the dead-letter topic")
        assert worker.alive(), worker.log_text()
        assert worker.stop() == 0, worker.log_text()

    assert stored_event_ids(store) == [valid["event_id"]]
    letters = dead_letters(store)
    reasons = {letter["origin"].split("/")[0] + ":" + "; ".join(letter["reasons"]) for letter in letters}
    joined = "\n".join(sorted(reasons))
    assert "not valid JSON" in joined
    assert "expected a JSON object, got an array" in joined
    assert "expected a JSON object, got null" in joined
    assert "empty line" in joined
    nested = next(letter for letter in letters if letter["raw"].startswith(b"[[[["))
    assert nested["reasons"] and nested["reasons"][0].startswith("line:")  # json.loads raises RecursionError here
    assert "2,097," in joined and "larger than the 1,048,576-byte limit" in joined
    oversized = next(letter for letter in letters if "larger than" in letter["reasons"][0])
    assert len(oversized["raw"]) == 64 * 1024  # kept truncated
    forwarded = read_topic(bootstrap, dead_letter_topic(prefix))
    assert len({key for key, _ in forwarded}) == len(poison)


def test_a_redelivered_reject_is_not_dead_lettered_twice_even_after_a_restart(tmp_path: Path) -> None:
    """What the worker does when Kafka redelivers a batch it had already stored (no broker needed)."""
    from pipelines.streaming.worker import Message, StoreSink

    _register(tmp_path / "store")
    own = f"planning.from.{TEST_SENDER}.timetable"
    valid = json.dumps(make_event("plan.published")).encode()
    batch = [Message(own, 0, 7, valid, TEST_SENDER), Message(own, 0, 8, b"[]", TEST_SENDER)]
    sink = StoreSink(tmp_path / "store")
    try:
        first = sink.submit(batch).result()
        again = sink.submit(batch).result()
    finally:
        sink.close()
    restarted = StoreSink(tmp_path / "store")  # the dead letters already stored are recognised by origin
    try:
        after_restart = restarted.submit(batch).result()
        recycled = restarted.submit([Message(own, 0, 8, b"{}", TEST_SENDER)]).result()  # same origin, other bytes
    finally:
        restarted.close()
    assert (first.accepted, [d.redelivered for d in first.dead]) == (1, [False])
    assert (again.accepted, again.duplicates, [d.redelivered for d in again.dead]) == (0, 1, [True])
    assert (after_restart.duplicates, [d.redelivered for d in after_restart.dead]) == (1, [True])
    assert after_restart.dead[0].reasons == first.dead[0].reasons  # forwarded again with the same reasons
    assert [d.redelivered for d in recycled.dead] == [False]  # a recreated topic's new message is not skipped
    assert store_counts(tmp_path / "store") == {"events": 1, "dead_letters": 2}


def test_a_redelivered_reject_redacted_by_an_erasure_is_still_recognised(tmp_path: Path) -> None:
    from events.storage.redaction import redact_reasons
    from pipelines.streaming.worker import Message, StoreSink

    broken = json.dumps(make_event("consultation.response_received", occurred_at="not a time")).encode()
    assert b'"r-8812"' in broken  # the sample respondent, whose erasure redacts this dead letter
    erasure = json.dumps(make_event("respondent.erasure_requested", {"respondent_ref": "r-8812"})).encode()
    _register(tmp_path / "store")
    reject = [Message(f"planning.from.{TEST_SENDER}.consultation", 0, 3, broken, TEST_SENDER)]
    sink = StoreSink(tmp_path / "store")
    try:
        first = sink.submit(reject).result()
        sink.submit([Message(f"planning.from.{TEST_SENDER}.corrections", 0, 0, erasure, TEST_SENDER)]).result()
        assert [letter["raw"] for letter in dead_letters(tmp_path / "store")] == [None]
        again = sink.submit(reject).result()
    finally:
        sink.close()
    assert [d.redelivered for d in first.dead] == [False]
    assert [d.redelivered for d in again.dead] == [True]
    # the redelivery is reported as the store now keeps it: the values its reasons echoed are redacted
    assert again.dead[0].reasons == tuple(redact_reasons(first.dead[0].reasons)) != first.dead[0].reasons
    assert store_counts(tmp_path / "store")["dead_letters"] == 1


def _register(store: Path, name: str = TEST_SENDER, **grant: object) -> str:
    with SenderRegistry(store) as registry:
        return registry.add(name, grant.get("event_types", ALL_TYPES), grant.get("boroughs"))
