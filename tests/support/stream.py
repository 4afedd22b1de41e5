"""Helpers for the streaming tests: a worker subprocess, raw producers, topic readers, a fast event corpus.

Each test gets its own topic prefix (``$PLANNING_TOPIC_PREFIX``) and its own
``$PLANNING_HOME``, so tests share the session's broker without seeing each
other's messages or offsets. Readers and admin helpers log in as ``admin``
(``service_login``: the session broker's credentials file); producers log in
as whoever they are given, usually a sender from ``tests.support.kafka.register_sender``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from events.routing import collector_topics, partition_key, sender_of_topic, sender_topic
from events.storage.backends import open_store
from pipelines.streaming.credentials import KafkaLogin, service_login
from pipelines.streaming.topics import ensure_topics
from tests.support.events import PAYLOADS, make_event
from tests.support.kafka import TEST_SENDER
from tests.support.paths import REPO_ROOT


def admin() -> dict[str, Any]:
    """kafka-python settings of the admin login (a super user: reads every topic)."""
    return service_login("admin").kafka_python()



def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- the worker as a subprocess ---------------------------------------------------


@dataclass
class WorkerProcess:
    """`python -m pipelines.cli worker` with its own PLANNING_HOME and topic prefix."""

    home: Path
    bootstrap: str
    prefix: str
    batch: int = 500
    command: tuple[str, ...] = (sys.executable, "-m", "pipelines.cli")  # then `worker --bootstrap ...`
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)
    name: str = "worker"  # its logs' names: several workers may share one home (a PostgreSQL store)

    def env(self) -> dict[str, str]:
        return {**os.environ, "PLANNING_HOME": str(self.home), "PLANNING_TOPIC_PREFIX": self.prefix,
                "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}

    def start(self) -> WorkerProcess:
        assert self.process is None or self.process.poll() is not None, "worker already running"
        self.starts += 1
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.home / f"{self.name}-{self.starts}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*self.command, "worker", "--bootstrap", self.bootstrap, "--batch", str(self.batch)],
                cwd=REPO_ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; the worker's validator processes must not outlive it."""
        assert self.process is not None
        left_behind = descendants(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        wait_for(lambda: not any(alive(pid) for pid in left_behind), 15,
                 f"the killed worker's child processes {sorted(left_behind)} to exit")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the worker shuts down cleanly (exit 0)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"worker ignored SIGTERM for {timeout:.0f} s; log:\n{self.log_text()}")
        return self.process.returncode

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in self.logs if p.exists())

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, ...), by parent pid read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (dead) parent to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def store_counts(store_root: Path) -> dict[str, int]:
    with open_store(store_root) as store:
        return store.counts()


def stored_event_ids(store_root: Path) -> list[str]:
    with open_store(store_root) as store:
        return [event["event_id"] for event in store.events()]


def dead_letters(store_root: Path) -> list[dict[str, Any]]:
    with open_store(store_root) as store:
        return store.dead_letters()


# --- Kafka, raw ----------------------------------------------------------------------


def raw_producer(bootstrap: str, login: KafkaLogin, **config: Any) -> KafkaProducer:
    """A plain producer, logged in as ``login``, that sends whatever bytes it is given (poison, bulk)."""
    settings = {"linger_ms": 20, "batch_size": 512 * 1024, "max_request_size": 8 * 1024 * 1024,
                **login.kafka_python(), **config}
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **settings)


def send_all(producer: KafkaProducer, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
    """Send (topic, key, value) triples and wait until the broker acknowledged every one."""
    futures = [producer.send(topic, value=value, key=key) for topic, key, value in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=120)  # raises if any was not delivered
    return len(futures)


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) on every partition of ``topic``, up to the end offsets of now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024, **admin())
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend((record.key, record.value) for record in batch)
        return records
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    client = KafkaAdminClient(bootstrap_servers=bootstrap, **admin())
    try:
        return {tp: meta.offset for tp, meta in client.list_group_offsets(group)[group].items()}
    finally:
        client.close()


def worker_topics(consumer: KafkaConsumer, prefix: str) -> list[str]:
    """The topics a worker on ``prefix`` reads: every sender's, and the collector's."""
    collector = set(collector_topics(prefix))
    return sorted(t for t in consumer.topics() if t in collector or sender_of_topic(t, prefix))


def end_offsets(bootstrap: str, prefix: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **admin())
    try:
        partitions = [TopicPartition(t, p) for t in worker_topics(consumer, prefix)
                      for p in consumer.partitions_for_topic(t)]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def committed_lag(bootstrap: str, prefix: str, group: str) -> int | None:
    """Messages on the worker's topics beyond the group's committed offsets; None while the broker
    cannot say yet (after a restart the group's coordinator answers NotCoordinator until it has loaded
    the offsets topic), so a ``wait_for`` on it asks again instead of failing."""
    try:
        committed = committed_offsets(bootstrap, group)
    except KafkaError as error:
        if not error.retriable:
            raise
        return None
    return sum(end - max(committed.get(tp, 0), 0) for tp, end in end_offsets(bootstrap, prefix).items())


def prepare_topics(bootstrap: str, prefix: str) -> None:
    ensure_topics(bootstrap, prefix)


# --- a corpus of events, fast ----------------------------------------------------------

# erasure requests shred keys and would make the corpus depend on order; the rest mix freely
CORPUS_TYPES = [t for t in PAYLOADS if t != "respondent.erasure_requested"]
WEIGHTS = {"consultation.response_received": 40, "survey.response_recorded": 40}


@dataclass
class Corpus:
    """Pre-serialized messages, and the truth about them."""

    messages: list[tuple[str, bytes, bytes]]  # (topic, key, value), in send order
    valid_ids: set[str]
    invalid_values: list[bytes]
    resent: int


def build_corpus(prefix: str, total: int, invalid_share: float = 0.01, resend: int = 0, seed: int = 4,
                 sender: str = TEST_SENDER) -> Corpus:
    """``total`` unique events (about ``invalid_share`` of them invalid, each invalid in its own way),
    followed, interleaved, by ``resend`` byte-identical re-sends of valid ones, all on ``sender``'s topics.

    One template per event type is serialized once; each event then only gets its own id spliced in,
    so 50,000 events take well under a second.
    """
    rng = random.Random(seed)
    templates: dict[str, tuple[str, bytes, bytes]] = {}
    for event_type in CORPUS_TYPES:
        event = make_event(event_type, event_id="00000000-0000-4000-8000-00000000feed")
        body = json.dumps(event, separators=(",", ":")).encode()
        templates[event_type] = (sender_topic(sender, event_type, prefix), partition_key(event).encode(), body)
    types = [t for t in CORPUS_TYPES for _ in range(WEIGHTS.get(t, 4))]
    invalid_every = round(1 / invalid_share) if invalid_share else 0

    valid: list[int] = []  # positions of valid messages
    messages: list[tuple[str, bytes, bytes]] = []
    valid_ids: set[str] = set()
    invalid_values: list[bytes] = []
    consultation_topic = sender_topic(sender, "consultation.response_received", prefix)
    for n in range(total):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if invalid_every and n % invalid_every == invalid_every // 2:
            value = _invalid(len(invalid_values), event_id)
            invalid_values.append(value)
            messages.append((consultation_topic, b"2027-28", value))
            continue
        topic, key, body = templates[rng.choice(types)]
        valid_ids.add(event_id)
        valid.append(len(messages))
        messages.append((topic, key, body.replace(b"00000000-0000-4000-8000-00000000feed", event_id.encode())))
    later: dict[int, list[tuple[str, bytes, bytes]]] = {}
    for position in rng.sample(valid, resend):  # each re-send lands somewhere after its original
        later.setdefault(rng.randrange(position + 1, len(messages) + 1), []).append(messages[position])
    messages = [m for i in range(len(messages) + 1) for m in later.get(i, []) + messages[i : i + 1]]
    return Corpus(messages, valid_ids, invalid_values, resend)


def _invalid(n: int, event_id: str) -> bytes:
    """A different contract violation each time (every one distinct in bytes)."""
    kind = n % 6
    event = make_event("consultation.response_received", event_id=event_id)
    if kind == 0:
        event["payload"]["themes"] = [{"theme": "knife", "rank": 1}]
    elif kind == 1:
        event["payload"]["borough"] = "E09000001"
    elif kind == 2:
        event["payload"]["shoe_size"] = 9
    elif kind == 3:
        event["cycle"] = "2027-29"
    elif kind == 4:
        return f"not json {n} {event_id}".encode()
    else:
        return json.dumps([event_id, n]).encode()
    return json.dumps(event).encode()
