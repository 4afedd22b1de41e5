"""Fault tests of the streaming path: the store holds every accepted event exactly once, and every
rejected one among the dead letters exactly once, whatever happens to the worker or the broker.

A: 50,000 events (1% invalid, unique event_ids) plus 1,000 byte-identical re-sends, streamed while the
   worker is SIGKILLed at three random points and restarted each time.
B: 20,000 events (1% invalid) plus 400 re-sends, streamed while the broker is restarted mid-stream.

The proof in both: distinct stored event_ids == stored records == valid unique events sent; dead
letters == invalid messages sent, each once (by origin and by bytes); nothing else dead-lettered;
and, after a clean stop, the group's committed offsets reach the end of every topic the worker reads;
every event and dead letter is recorded as from the sender whose topics carried it. The broker takes
SASL/SCRAM and enforces ACLs throughout: the corpus is sent by a registered sender on its own topics.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from events.routing import dead_letter_topic
from events.storage.backends import open_store
from pipelines.streaming.broker import Broker
from pipelines.streaming.credentials import KafkaLogin
from pipelines.streaming.worker import validator_processes
from tests.support.kafka import TEST_SENDER, register_sender, sender_login
from tests.support.stream import (
    Corpus,
    WorkerProcess,
    build_corpus,
    committed_lag,
    committed_offsets,
    descendants,
    new_prefix,
    prepare_topics,
    raw_producer,
    read_topic,
    send_all,
    store_counts,
    wait_for,
)

pytestmark = pytest.mark.kafka

CHUNK = 2_500


class Streamer(threading.Thread):
    """Sends the corpus in chunks, in the background, and waits for every acknowledgement."""

    def __init__(self, bootstrap: str, login: KafkaLogin, corpus: Corpus, pause: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.login, self.corpus, self.pause = bootstrap, login, corpus, pause
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            producer = raw_producer(self.bootstrap, self.login)
            futures = []
            for start in range(0, len(self.corpus.messages), CHUNK):
                for topic, key, value in self.corpus.messages[start : start + CHUNK]:
                    futures.append(producer.send(topic, value=value, key=key))
                time.sleep(self.pause)
            producer.flush()
            for future in futures:
                future.get(timeout=180)  # every message acknowledged by the broker
            self.sent = len(futures)
            producer.close()
        except BaseException as error:  # reported by the test
            self.error = error


def prove_exactly_once(store_root: Path, corpus: Corpus, label: str) -> dict[str, int]:
    """On the store PLANNING_STORE chooses (the embedded one at ``store_root`` unless it names PostgreSQL)."""
    with open_store(store_root) as store:
        records = sum(1 for _ in store.records())
        ids = [event["event_id"] for event in store.events()]
        letters = store.dead_letters()
        counted = store.counts()
        by_sender = store.counts_by_sender()
    copies = Counter(ids)
    sent_invalid = Counter(corpus.invalid_values)
    lettered = Counter(letter["raw"] for letter in letters)
    numbers = {
        "valid unique sent": len(corpus.valid_ids),
        "re-sends": corpus.resent,
        "invalid sent": len(corpus.invalid_values),
        "stored records": records,
        "distinct stored event_ids": len(copies),
        "lost": len(corpus.valid_ids - set(copies)),
        "duplicated": sum(n - 1 for n in copies.values()),
        "dead letters": len(letters),
        "invalid lost": sum((sent_invalid - lettered).values()),
        "invalid duplicated": sum((lettered - sent_invalid).values()),
    }
    print(f"\n{label}: " + ", ".join(f"{k} {v:,}" for k, v in numbers.items()))
    assert set(copies) == corpus.valid_ids
    assert len(copies) == records == counted["events"] == len(corpus.valid_ids)
    assert numbers["lost"] == numbers["duplicated"] == 0
    assert lettered == sent_invalid  # every invalid message once, nothing else
    assert len({letter["origin"] for letter in letters}) == len(letters)
    assert by_sender == {"events": {TEST_SENDER: len(corpus.valid_ids)},
                         "dead_letters": {TEST_SENDER: len(corpus.invalid_values)}}
    return numbers


def wait_until_all_stored(store: Path, corpus: Corpus, worker: WorkerProcess, timeout: float) -> None:
    expected = {"events": len(corpus.valid_ids), "dead_letters": len(corpus.invalid_values)}

    def done() -> bool:
        if not worker.alive():
            raise AssertionError(f"worker exited ({worker.process.returncode}); log:\n{worker.log_text()}")
        counts = store_counts(store)
        assert counts["events"] <= expected["events"] and counts["dead_letters"] <= expected["dead_letters"], counts
        return counts == expected

    wait_for(done, timeout, f"{expected} in the store", interval=0.25)


def test_worker_sigkilled_three_times_while_streaming_50000_events(kafka_broker: Broker, tmp_path: Path) -> None:
    started = time.monotonic()
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    login = sender_login(register_sender(kafka_broker, tmp_path / "home", prefix))
    corpus = build_corpus(prefix, 50_000, invalid_share=0.01, resend=1_000, seed=50_000)
    rng = random.Random(2027)
    kill_at = sorted(rng.sample(range(4_000, 46_000), 3))  # stored-event counts at which to SIGKILL

    worker = WorkerProcess(tmp_path / "home", kafka_broker.bootstrap, prefix, batch=500)
    store = worker.home / "store"
    streamer = Streamer(kafka_broker.bootstrap, login, corpus)
    with worker:
        streamer.start()
        for threshold in kill_at:
            wait_for(lambda: store_counts(store)["events"] >= threshold, 120,
                     f"{threshold:,} stored before a SIGKILL", interval=0.02)
            time.sleep(rng.uniform(0, 1.0))  # a random phase against the worker's 1 s commit interval
            if validator_processes():  # its pool starts with its first batch: a restarted worker that drains
                # faster than the kills' spacing may not have taken one yet
                wait_for(lambda: bool(descendants(worker.process.pid)), 60,
                         "the worker's validator processes (it validates in a pool)", interval=0.02)
            worker.kill()  # and waits for its validator processes to leave too
            counts = store_counts(store)
            committed = sum(o for o in committed_offsets(kafka_broker.bootstrap, _group(worker)).values() if o > 0)
            beyond = counts["events"] + counts["dead_letters"] - committed
            print(f"\nSIGKILL at {counts['events']:,} stored (aimed at {threshold:,}); "
                  f"at least {max(beyond, 0):,} stored beyond the committed offsets, to be redelivered", end="")
            worker.start()
        streamer.join(timeout=180)
        assert streamer.error is None, repr(streamer.error)
        assert streamer.sent == len(corpus.messages)
        wait_until_all_stored(store, corpus, worker, 180)
        wait_for(lambda: committed_lag(kafka_broker.bootstrap, prefix, _group(worker)) == 0, 30,
                 "every offset committed")
        assert worker.stop() == 0, worker.log_text()

    prove_exactly_once(store, corpus, "fault A (3 x SIGKILL of the worker)")
    forwarded = {key for key, _ in read_topic(kafka_broker.bootstrap, dead_letter_topic(prefix))}
    assert len(forwarded) == len(corpus.invalid_values)  # at-least-once on the topic: every origin there
    print(f"fault A took {time.monotonic() - started:.1f} s, {worker.starts} worker starts")


def test_broker_restarted_mid_stream(kafka_broker: Broker, tmp_path: Path) -> None:
    started = time.monotonic()
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    login = sender_login(register_sender(kafka_broker, tmp_path / "home", prefix))
    corpus = build_corpus(prefix, 20_000, invalid_share=0.01, resend=400, seed=20_000)
    threshold = random.Random(2028).randrange(3_000, 9_000)

    worker = WorkerProcess(tmp_path / "home", kafka_broker.bootstrap, prefix, batch=500)
    store = worker.home / "store"
    streamer = Streamer(kafka_broker.bootstrap, login, corpus, pause=0.2)
    with worker:
        streamer.start()
        wait_for(lambda: store_counts(store)["events"] >= threshold, 120, f"{threshold:,} stored", interval=0.02)
        at = store_counts(store)["events"]
        restart_began = time.monotonic()
        kafka_broker.restart()
        print(f"\nbroker restarted at {at:,} stored, down for {time.monotonic() - restart_began:.1f} s", end="")
        streamer.join(timeout=240)
        assert streamer.error is None, repr(streamer.error)
        assert streamer.sent == len(corpus.messages)
        wait_until_all_stored(store, corpus, worker, 180)
        assert worker.starts == 1  # the worker rode out the broker's restart
        wait_for(lambda: committed_lag(kafka_broker.bootstrap, prefix, _group(worker)) == 0, 30,
                 "every offset committed")
        assert worker.stop() == 0, worker.log_text()

    prove_exactly_once(store, corpus, "fault B (broker restart)")
    forwarded = {key for key, _ in read_topic(kafka_broker.bootstrap, dead_letter_topic(prefix))}
    assert len(forwarded) == len(corpus.invalid_values)
    print(f"fault B took {time.monotonic() - started:.1f} s")


def _group(worker: WorkerProcess) -> str:
    return (worker.home / "worker" / "group").read_text().strip()


# `planning worker` whose third store append fails as a full disk would.
FAILING_APPEND = """
import sys
from events.storage.store import EventStore
from pipelines.cli.main import main
calls, original = [0], EventStore.append
def append(self, batch, recorded_at=None, **options):
    calls[0] += 1
    if calls[0] == 3:
        raise OSError(28, "No space left on device")
    return original(self, batch, recorded_at, **options)
EventStore.append = append
sys.exit(main(sys.argv[1:]))
"""


def test_a_failed_append_stops_the_worker_without_acknowledging(kafka_broker: Broker, tmp_path: Path) -> None:
    """faust would restart a crashed agent past its unacknowledged messages (faust-streaming/faust#604);
    the worker instead exits at once, and the next start stores the failed batch."""
    prefix = new_prefix()
    prepare_topics(kafka_broker.bootstrap, prefix)
    login = sender_login(register_sender(kafka_broker, tmp_path / "home", prefix))
    corpus = build_corpus(prefix, 2_000, invalid_share=0.01, seed=3)
    producer = raw_producer(kafka_broker.bootstrap, login)
    send_all(producer, corpus.messages)
    producer.close()

    failing = WorkerProcess(tmp_path / "home", kafka_broker.bootstrap, prefix, batch=100,
                            command=(sys.executable, "-c", FAILING_APPEND))
    with failing:
        assert failing.process.wait(timeout=120) == 3, failing.log_text()
    assert "could not store a batch" in failing.log_text()
    assert "No space left on device" in failing.log_text()
    store = failing.home / "store"
    assert store_counts(store)["events"] < len(corpus.valid_ids)

    with WorkerProcess(failing.home, kafka_broker.bootstrap, prefix, batch=100) as worker:
        wait_until_all_stored(store, corpus, worker, 90)
        assert worker.stop() == 0, worker.log_text()
    prove_exactly_once(store, corpus, "append failure")
