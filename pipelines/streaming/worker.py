"""`planning worker`: the stream worker (faust-streaming) from the senders' topics into the event store.

It consumes every sender's own topics, ``{prefix}.from.{sender}.{family}``,
and the collector's, ``{prefix}.collector.{family}`` (``events.routing``), as
the ``worker`` principal (SASL/SCRAM, ``pipelines.streaming.credentials``).

Who sent a message. On a sender topic, the sender is the topic's name: only
that sender's Kafka user may write it (``pipelines.streaming.access``). On a
collector topic, which only the collector principal may write, it is the
``planning-sender`` header the collector set after checking the bearer
secret; a header is believed nowhere else. Each event is then checked against
that sender's grants as the registry says *now* (``events.senders``, read for
every batch): an unknown or revoked sender, or an event outside the grants
(another borough, a type not granted), is a dead letter with the reason, and
every stored event and dead letter records its sender.

New senders. faust cannot subscribe by pattern (its aiokafka driver passes
only topic names), so the worker lists the broker's topics every
``TOPIC_REFRESH`` seconds and adds a new sender's topics to its subscription:
a sender added while the worker runs is read within seconds.

What it does with each message:

1. messages are taken in batches (``--batch``, default 2,000, or whatever
   arrived within ``BATCH_WITHIN`` seconds), handed over whole by faust's
   consumer (``pipelines.streaming.batches``: no per-message ``Event``);
2. each batch's values are judged by ``events.contract.validation.verdict``, the same contract
   check as ``planning ingest`` and the emitter, in a validator process
   (``pipelines.ingest.pool``: one when the machine has a core to spare, else
   on the store thread), and each message becomes
   ``Received(raw, origin="{topic}/{partition}@{offset}", verdict)``;
3. each batch is ONE store append (``events.storage.backends.open_store``): accepted events stored,
   duplicates (by ``event_id``) dropped, rejects and conflicts dead-lettered,
   and so is an event of the other kind than the store holds (a synthetic
   event into a store of real ones, or the reverse), all in one transaction;
4. the batch's rejects are forwarded to ``planning.deadletters`` with their
   reasons (the broker has acknowledged them before we go on);
5. only then are the batch's messages acknowledged to faust's consumer
   (``Consumer.ack``), which commits acknowledged offsets to Kafka (every
   ``COMMIT_INTERVAL`` seconds).

Batches overlap: while batch n is being stored, batch n+1 is taken from
Kafka and validated (at most ``BATCHES_IN_FLIGHT`` waiting, so memory stays
bounded and a slow store slows the consumer). The store thread appends them
in the order they were taken and a settler task acknowledges them in that
order. (Measured on 2 cores: about 1.5x the events/s of validating on the
store thread one batch at a time; see bench/README.md.)

Why batches, and not a faust agent over a stream: faust's stream delivers one
message at a time (a task race in its consumer, an ``Event``, the conductor,
the stream's processors and sensors, an ack), and at drain that held the GIL for
most of the worker's main thread, capping it near 0.4x the raw consume
(bench/README.md, "Stream ingest"). ``BatchConsumer`` keeps everything else of
faust's consumer -- the group, rebalances, seeking to committed offsets, the
commits -- and replaces only its per-message drain loop
(docs/decisions.md, "The stream worker takes batches from faust's consumer").

Offsets after durability. Nothing is acknowledged when it is taken: the
settler acknowledges a batch's messages only after its append has committed
(and the dead letters were forwarded). (faust's own ``take`` would acknowledge
a batch in a ``finally`` block, even when the body raised or was cancelled,
committing offsets of events never stored.) A crash anywhere before
that -- SIGKILL, broker loss, a failed append -- leaves the offsets where
they were, so Kafka redelivers the batch: at-least-once delivery into the
store. Exactly-once *in* the store comes from the store, not from faust
(``processing_guarantee="exactly_once"`` needs three brokers and has open
duplicate reports): a redelivered accepted event is a duplicate by
``event_id`` and dropped; a redelivered reject is recognised by the store
as a dead letter it already holds (same origin, topic/partition@offset, and
same bytes: ``EventStore.append``) and not stored twice, though it *is*
forwarded to the dead-letter topic again -- that topic is at-least-once,
keyed by origin so readers can dedupe. An error in the append is never
swallowed: the worker exits at once (exit code 3) without acknowledging, and
the next start takes the batch again. A batch taken before a rebalance is
stored but not acknowledged: faust seeks the partitions back to their committed
offsets, so it is read again, and its events are duplicates.
The settler never raises: it exits the worker instead, since faust would
carry on past the unacknowledged messages (faust-streaming/faust#604,
robinhood/faust#604).

Poison messages never stop the worker: not JSON, a JSON array, a null
(tombstone) value, bytes larger than the contract's 1 MiB (the raw topics
accept up to 4 MiB so such a message arrives here; see ``pipelines.streaming.topics``),
JSON nested deep enough to break the parser -- each becomes a dead letter
with its reason, like any other invalid event.

Ownership. On the embedded store the worker holds the writer lock for its
lifetime (holder ``planning worker --bootstrap <the Kafka it consumes>``); the store is
used from one dedicated thread so the asyncio loop (heartbeats, fetches) never
waits on an fsync. While the worker runs, ``planning ingest`` refuses with a
clear message -- the store is being written by the planning worker; send the
file with ``planning emit FILE --bootstrap <the worker's>`` instead, or stop
the worker first -- and exits 3. Readers (``planning
deadletters``, Dagster's sensor and builds) are unaffected.
On the PostgreSQL store (``PLANNING_STORE``) there is no writer lock: any
number of workers in the group append concurrently, kept apart by the
database (``events.storage.postgres.store``). A lost connection (a database
restart) does not end the worker: the batch is appended again on a new
connection, idempotently, for up to ``STORE_RETRY_DEADLINE`` seconds.

The consumer group is bound to the store (``$PLANNING_HOME/worker/group``,
created on first start, and never replaced, so workers starting together
join one group): a new, empty store starts from the earliest
retained offsets instead of inheriting another store's position. On the
embedded store the worker uses static membership (one member per group, since one worker per store),
so a restarted worker gets its partitions back at once instead of waiting
for the killed member's session to time out; with PostgreSQL each worker is
a dynamic member, and a killed one's partitions move to the others after the
session timeout (10 s).

faust settings that matter here: ``value_serializer='raw'`` (the worker sees
bytes, never a decode error), ``web_enabled=False``, ``store='memory://'``
(no tables), ``stream_wait_empty=False`` (a rebalance does not wait on the
buffer: unacknowledged messages are simply redelivered),
``consumer_auto_offset_reset='earliest'``.

Until the broker has a coordinator for the group (a fresh broker, a new group)
aiokafka logs each retry of its lookup, ``GroupCoordinatorNotAvailableError``,
as an error; ``CoordinatorSearch`` logs those at INFO, as what they are.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import secrets
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from events.home import PlanningHome
from events.routing import (
    SENDER_HEADER,
    collector_topics,
    dead_letter_topic,
    is_collector_topic,
    sender_of_topic,
    topic_prefix,
)
from events.senders.grants import within_grants
from events.senders.registry import SenderRegistry
from events.storage.backends import Store, describe_store, is_embedded, lost_connection, open_store
from events.storage.store import MAX_DEAD_LETTER_BYTES, BatchOutcome, Received, iso
from events.contract.validation import Accepted, Rejected
from pipelines.exit_codes import ExitCode
from pipelines.ingest.pool import cores, start_pool, verdicts
from pipelines.streaming.credentials import KafkaLogin, service_login
from pipelines.streaming.topics import admin_client

log = logging.getLogger("planning.worker")

HOLDER = "planning worker"
DEFAULT_BATCH = 2000
BATCHES_IN_FLIGHT = 2  # taken from Kafka but not yet stored and acknowledged
BATCH_WITHIN = 0.5  # seconds: a quiet stream is still stored promptly
COMMIT_INTERVAL = 1.0  # seconds between offset commits of acknowledged messages
DEAD_LETTER_SEND_DEADLINE = 120.0  # seconds of broker trouble before giving up (and exiting, unacknowledged)
STORE_RETRY_DEADLINE = 120.0  # seconds of a lost PostgreSQL store (a restart, a failover) before giving up likewise
STORE_RETRY_PAUSE = 0.5  # seconds between attempts to reach it again
PROGRESS_EVERY = 5.0  # seconds between progress lines
FETCH_BYTES = 4 * 1024 * 1024 + 64 * 1024  # a whole message of the largest the raw topics accept
TOPIC_REFRESH = 2.0  # seconds between looks for a new sender's topics
RESUBSCRIBE_AFTER = 0.5  # seconds faust waits to gather subscription changes (its default is 45)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    sender: str | None = None  # who sent it, from the topic (or the collector's header); None: unknown

    @property
    def origin(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


def sender_of(topic: str, headers: object, prefix: str | None = None) -> str | None:
    """The sender of a message: its topic's owner, or on a collector topic (only) the collector's header."""
    owner = sender_of_topic(topic, prefix)
    if owner is not None or not is_collector_topic(topic, prefix):
        return owner
    pairs = headers.items() if isinstance(headers, dict) else (headers or ())
    for key, value in pairs:
        if key == SENDER_HEADER and value:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return None


def sender_refusal(message: Message, prefix: str | None = None) -> str | None:
    """Why a message with no usable sender cannot be stored (None when it has one)."""
    if message.sender is not None:
        return None
    if is_collector_topic(message.topic, prefix):
        return (f"{SENDER_HEADER}: a message on the collector topic {message.topic} without the header naming "
                f"its sender; only `planning serve` may write there")
    return f"sender: {message.topic} is neither a sender's own topic nor the collector's, so its sender is unknown"


@dataclass
class DeadLetter:
    origin: str
    reasons: tuple[str, ...]
    raw: bytes
    redelivered: bool  # already in the dead-letter store from an earlier delivery
    sender: str | None = None

    def to_json(self, rejected_at: str) -> bytes:
        topic, _, position = self.origin.rpartition("/")
        partition, _, offset = position.partition("@")
        kept = self.raw[:MAX_DEAD_LETTER_BYTES]
        return json.dumps({
            "origin": self.origin, "topic": topic, "partition": int(partition), "offset": int(offset),
            "sender": self.sender or "unknown",
            "reasons": list(self.reasons), "rejected_at": rejected_at,
            "raw_bytes": len(self.raw), "raw_truncated": len(kept) < len(self.raw),
            "raw_base64": base64.b64encode(kept).decode(),
        }).encode()


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    high_water_mark: int = 0


@dataclass
class Totals:
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    redelivered_dead_letters: int = 0
    high_water_mark: int = 0


class StoreSink:
    """The event store, owned by one dedicated thread for the worker's lifetime.

    ``submit(messages)`` hands the batch's values to the validator processes
    (``pipelines.ingest.pool``; inline when there are none) and the batch to the
    store thread, which waits for the verdicts and appends; it returns the
    append's future. Batches are stored in the order they were submitted.
    """

    def __init__(self, root: Path, holder: str = HOLDER, validators: int = 0, prefix: str | None = None) -> None:
        self.prefix = prefix
        self.root, self.holder = root, holder
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-store")
        self.store: Store | None = None
        self.registry: SenderRegistry | None = None
        self.executor.submit(self._open).result()  # StoreLocked (embedded) or StoreUnavailable surfaces here
        self.pool = start_pool(validators) if validators > 0 else None

    def _open(self) -> None:
        self.store = open_store(self.root, writer=True, holder=self.holder)
        self.registry = SenderRegistry(self.root)

    def _append(self, batch: list[Received], received_at: datetime) -> BatchOutcome:
        """One append; with PostgreSQL, through a lost connection too: the store is opened again and the
        batch appended again (an append is idempotent: what the lost attempt committed comes back as
        duplicates and dead letters already held), until ``STORE_RETRY_DEADLINE`` has passed."""
        return self._through_lost_connection(
            lambda store: store.append(batch, received_at, other_kind="dead_letter"))  # a message cannot be handed back

    def _through_lost_connection(self, operation):
        """``operation(store)``, opening the store again after a lost PostgreSQL connection, until
        ``STORE_RETRY_DEADLINE`` has passed; any other error is raised at once."""
        deadline = time.monotonic() + STORE_RETRY_DEADLINE
        while True:
            try:
                if self.store is None:
                    self.store = open_store(self.root, writer=True, holder=self.holder)
                return operation(self.store)
            except Exception as error:
                if not lost_connection(error) or time.monotonic() > deadline:
                    raise
                log.warning("the event store cannot be reached (%s); trying again", str(error).strip())
                self._drop_store()
                time.sleep(STORE_RETRY_PAUSE)

    def _drop_store(self) -> None:
        store, self.store = self.store, None
        if store is not None:
            try:
                store.close()
            except Exception as error:
                if not lost_connection(error):
                    raise

    def high_water_mark(self) -> int:
        """The store's mark; like an append, through a database restart (one at the worker's start ended it)."""
        return self.executor.submit(self._through_lost_connection, lambda store: store.high_water_mark()).result()

    def submit(self, messages: list[Message]) -> Future[BatchResult]:
        received_at = datetime.now(timezone.utc)
        pending = None
        if self.pool is not None:
            pending = self.pool.submit(verdicts, [m.value for m in messages], received_at)
        return self.executor.submit(self.write, messages, received_at, pending)

    def write(self, messages: list[Message], received_at: datetime | None = None,
              pending: Future[list[Accepted | Rejected]] | None = None) -> BatchResult:
        received_at = received_at or datetime.now(timezone.utc)
        checked = pending.result() if pending is not None else verdicts([m.value for m in messages], received_at)
        checked = self.judge_senders(messages, checked)
        batch = [Received(m.value, m.origin, judged, sender=m.sender)
                 for m, judged in zip(messages, checked, strict=True)]
        senders = {m.origin: m.sender for m in messages}
        outcome = self._append(batch, received_at)
        raws = {item.origin: item.raw for item in batch}
        redelivered = set(outcome.already_dead_lettered)
        result = BatchResult()
        for origin, reasons in outcome.rejected:
            result.dead.append(DeadLetter(origin, tuple(reasons), raws[origin], redelivered=origin in redelivered,
                                          sender=senders[origin]))
        result.accepted = len(outcome.accepted)
        result.duplicates = len(outcome.duplicates)
        result.high_water_mark = outcome.high_water_mark
        return result

    def judge_senders(self, messages: list[Message],
                      checked: list[Accepted | Rejected]) -> list[Accepted | Rejected]:
        """Each verdict within its sender's grants, as the registry has them now (read once per batch)."""
        grants = {name: self.registry.get(name) for name in {m.sender for m in messages} if name is not None}
        judged: list[Accepted | Rejected] = []
        for message, verdict in zip(messages, checked, strict=True):
            sender = grants.get(message.sender) if message.sender is not None else None
            if sender is None:
                missing = sender_refusal(message, self.prefix) or (
                    f"sender {message.sender} is not registered: ask the data team to add it "
                    f"(`planning senders add {message.sender} …`)")
                reasons = verdict.reasons if isinstance(verdict, Rejected) else ()
                judged.append(Rejected((missing, *reasons)))
            else:
                judged.append(within_grants(verdict, sender))
        return judged

    def close(self) -> None:
        if self.registry is not None:
            self.executor.submit(self.registry.close).result()
            self.registry = None
        self.executor.submit(self._drop_store).result()
        self.executor.shutdown(wait=True)
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def validator_processes() -> int:
    """One validator process when there is a core to spare, else validate on the store thread."""
    return 1 if cores() >= 2 else 0


def worker_group(home: PlanningHome, prefix: str | None = None) -> str:
    """The consumer group of this store's worker, created on first use and kept in $PLANNING_HOME/worker/group."""
    path = home.root / "worker" / "group"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    group = f"{topic_prefix(prefix)}-worker-{secrets.token_hex(4)}"
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(group + "\n")
    try:
        os.link(temporary, path)  # never replaces: of workers starting together, one group wins and all join it
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()


def _faust_app(group: str, bootstrap: str, batch_size: int, datadir: Path | None, login: KafkaLogin,
               static_member: bool = True):
    """The faust app's settings: raw bytes in and out, earliest offsets, commits only of what was acknowledged."""
    from pipelines.streaming.batches import BatchApp

    return BatchApp(
        group,
        broker=f"kafka://{bootstrap}",
        broker_credentials=login.faust(),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        store="memory://",
        **({"datadir": str(datadir)} if datadir else {}),
        topic_replication_factor=1,
        topic_allow_declare=False,  # the worker may not create topics: the admin does (`planning topics`)
        topic_disable_leader=True,  # no leader-election topic: nothing here runs "on leader"
        consumer_auto_offset_reset="earliest",
        # static membership where there is one worker per store (the embedded one); with PostgreSQL any number
        # join the group, each a member of its own, and a killed one's partitions move after the session timeout
        **({"consumer_group_instance_id": f"{group}-1"} if static_member else {}),
        consumer_max_fetch_size=FETCH_BYTES,
        broker_commit_interval=COMMIT_INTERVAL,
        broker_commit_every=batch_size,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=30.0,
        stream_wait_empty=False,
        stream_buffer_maxsize=max(4 * batch_size, 1000),
        producer_acks=-1,
        producer_max_request_size=1024 * 1024,
    )


async def _forward(dead_topic, dead: list[DeadLetter]) -> None:
    """Send the dead letters and wait for the broker's acknowledgement, retrying through an outage."""
    rejected_at = iso(datetime.now(timezone.utc))
    deadline = time.monotonic() + DEAD_LETTER_SEND_DEADLINE
    while True:
        try:
            pending = [
                await dead_topic.send(key=letter.origin.encode(), value=letter.to_json(rejected_at),
                                      headers=[("origin", letter.origin.encode())], force=True)
                for letter in dead
            ]
            await asyncio.gather(*pending)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if time.monotonic() > deadline:
                raise
            log.warning("dead-letter topic unavailable (%r); retrying", error)
            await asyncio.sleep(1.0)


class SenderTopics:
    """The topics the worker reads: the collector's, and every sender's that exists on the broker.

    ``topics`` is the very list the faust topic subscribes
    to; ``refresh`` appends a new sender's topics to it and asks faust's conductor to resubscribe."""

    def __init__(self, bootstrap: str, login: KafkaLogin, prefix: str | None = None) -> None:
        self.prefix = topic_prefix(prefix)
        self.admin = admin_client(bootstrap, login, client_id="planning-worker-topics")
        self.topics: list[str] = list(collector_topics(prefix))
        self.topics += self.new_topics()

    def existing(self) -> set[str]:
        return set(self.admin.list_topics())

    def new_topics(self) -> list[str]:
        return sorted(t for t in self.existing() if sender_of_topic(t, self.prefix) and t not in self.topics)

    def close(self) -> None:
        self.admin.close()


def build_app(bootstrap: str, sink: StoreSink, *, group: str, login: KafkaLogin, prefix: str | None = None,
              batch_size: int = DEFAULT_BATCH, datadir: Path | None = None,
              progress=sys.stderr, topics: SenderTopics | None = None):
    """The faust app: batches of the sender and collector topics, stored before they are acknowledged."""
    app = _faust_app(group, bootstrap, batch_size, datadir, login, static_member=is_embedded())
    topics = topics or SenderTopics(bootstrap, login, prefix)
    raw = app.topic(*topics.topics, value_type=bytes, value_serializer="raw", key_serializer="raw")
    raw.topics = topics.topics  # one list, grown by watch_topics
    dead_topic = app.topic(dead_letter_topic(prefix), value_type=bytes, value_serializer="raw", key_serializer="raw")
    totals = Totals(high_water_mark=sink.high_water_mark())
    last_progress = [time.monotonic()]

    slots = asyncio.Semaphore(BATCHES_IN_FLIGHT)  # batches taken from Kafka but not yet stored and acknowledged
    pending: asyncio.Queue = asyncio.Queue()  # (faust messages, the append's future), in the order taken
    settler: list[asyncio.Future] = []

    async def deliver(batch: list) -> None:
        """A batch from the consumer (``BatchConsumer``): to the validators and the store thread, in order.
        Waits while ``BATCHES_IN_FLIGHT`` batches are in flight (so a slow store slows the consumer); a
        rebalance cancels the wait, and the batch, never submitted, is read again."""
        if not settler:  # with the first batch, not with faust's app tasks, which wait for its table recovery
            settler.append(app.add_future(settle()))  # the app cancels it when it stops
        await slots.acquire()
        messages = [Message(m.topic, m.partition, m.offset, m.value or b"", sender_of(m.topic, m.headers, prefix))
                    for m in batch]
        pending.put_nowait((batch, asyncio.wrap_future(sink.submit(messages))))

    async def settle() -> None:
        """Take stored batches in the order they were submitted: forward their rejects, then ack them.
        Ends only when cancelled (shutdown); any failure ends the worker, unacknowledged."""
        consumer = app.consumer
        while True:
            batch, stored = await pending.get()
            try:
                result = await stored
                if result.dead:
                    await _forward(dead_topic, result.dead)
                if batch[0].generation_id == app.consumer_generation_id:  # not across a rebalance: read again
                    for message in batch:
                        consumer.ack(message)
            except asyncio.CancelledError:
                raise  # shutting down: the batch stays unacknowledged and is redelivered
            except BaseException as error:
                _die(f"could not store a batch of {len(batch)} message(s) ({error!r}); "
                     "exiting without acknowledging them, so they are redelivered on the next start")
            finally:
                slots.release()
            _count(totals, len(batch), result)
            now = time.monotonic()
            if progress is not None and now - last_progress[0] >= PROGRESS_EVERY:
                last_progress[0] = now
                _report(totals, progress)

    app.planning_deliver = deliver
    app.planning_batch = (batch_size, BATCH_WITHIN)
    app.topics.add(raw)  # subscribed and acknowledged through faust; its messages come to ``deliver``

    @app.timer(TOPIC_REFRESH)
    async def watch_topics() -> None:
        """Subscribe to a new sender's topics within seconds of their creation."""
        conductor = app.topics
        conductor._resubscribe_sleep_lock_seconds = RESUBSCRIBE_AFTER
        try:
            new = await asyncio.get_running_loop().run_in_executor(None, topics.new_topics)
        except Exception as error:  # the broker is restarting, say: look again next time
            log.warning("cannot list the broker's topics (%r); trying again in %.0f s", error, TOPIC_REFRESH)
            return
        if new:
            log.warning("reading new sender topics: %s", ", ".join(new))
            topics.topics.extend(new)
        if new or not set(topics.topics) <= set(conductor._topic_name_index):
            conductor._flag_changes()  # also when a resubscription was skipped during a rebalance

    app.planning_totals = totals  # for the shutdown line
    app.planning_topics = topics
    return app


def _count(totals: Totals, messages: int, result: BatchResult) -> None:
    totals.messages += messages
    totals.accepted += result.accepted
    totals.duplicates += result.duplicates
    totals.dead_letters += sum(1 for d in result.dead if not d.redelivered)
    totals.redelivered_dead_letters += sum(1 for d in result.dead if d.redelivered)
    totals.high_water_mark = max(totals.high_water_mark, result.high_water_mark)


def _report(totals: Totals, out) -> None:
    print(f"planning worker: {totals.messages:,} messages: stored {totals.accepted:,}, "
          f"duplicate {totals.duplicates:,}, dead-lettered {totals.dead_letters:,} "
          f"(+{totals.redelivered_dead_letters:,} redelivered); store at position {totals.high_water_mark:,}",
          file=out, flush=True)


def worker_holder(bootstrap: str) -> str:
    """What the worker writes in the store's writer.lock: who it is and the Kafka it consumes, so that a
    refused `planning ingest` can print the `planning emit` line that reaches this worker."""
    return f"{HOLDER} --bootstrap {bootstrap}"


def holder_bootstrap(holder: str) -> str | None:
    """The Kafka bootstrap a lock holder line names (``worker_holder``), if it is the worker's."""
    found = re.match(rf"{re.escape(HOLDER)} --bootstrap (\S+)", holder)
    return found.group(1) if found else None


class MissingTopics(RuntimeError):
    """The topics the worker reads or writes do not exist; the message says how to create them."""


class CoordinatorSearch(logging.Filter):
    """aiokafka logs ``GroupCoordinatorNotAvailableError`` as an error each time it asks for the group's
    coordinator before the broker has one: expected while the group forms (a fresh broker, a new group,
    a broker restart), and retried. Such a record is logged at INFO, saying so; every other record passes."""

    EXPECTED = "waiting for the consumer group's coordinator (expected while the group forms; retrying): %s"

    def filter(self, record: logging.LogRecord) -> bool:
        from aiokafka.errors import GroupCoordinatorNotAvailableError

        if record.levelno >= logging.ERROR and any(isinstance(a, GroupCoordinatorNotAvailableError) for a in _args(record)):
            record.msg, record.args = self.EXPECTED, tuple(a for a in _args(record) if isinstance(a, Exception))[:1]
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    return record.args if isinstance(record.args, tuple) else ()


COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"


def expect_coordinator_search() -> None:
    """Install ``CoordinatorSearch`` on aiokafka's group-coordinator logger (once)."""
    logger = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, CoordinatorSearch) for f in logger.filters):
        logger.addFilter(CoordinatorSearch())


def _die(message: str) -> None:
    log.critical(message)
    print(f"planning worker: {message}", file=sys.stderr, flush=True)
    os._exit(ExitCode.FAILED)  # no finally, no faust shutdown: nothing more is acknowledged or committed


def run_worker(home: PlanningHome, bootstrap: str, *, batch_size: int = DEFAULT_BATCH,
               prefix: str | None = None, group: str | None = None, loglevel: str = "WARNING") -> int:
    """Run until SIGTERM/SIGINT. Raises ``StoreLocked`` when another process writes the embedded store
    (PostgreSQL takes any number of workers)."""
    import faust


    # the embedded store's writer lock first: a second worker fails fast
    sink = StoreSink(home.store, holder=worker_holder(bootstrap), validators=validator_processes(), prefix=prefix)
    topics = None
    try:
        login = service_login("worker", home.kafka)
        topics = SenderTopics(bootstrap, login, prefix)
        missing = [t for t in (dead_letter_topic(prefix), *collector_topics(prefix)) if t not in topics.existing()]
        if missing:
            raise MissingTopics(f"the topics {', '.join(missing)} do not exist on {bootstrap}: create them with "
                                f"`planning topics --bootstrap {bootstrap}` (as the Kafka admin), then start the worker")
        group = group or worker_group(home, prefix)
        app = build_app(bootstrap, sink, group=group, login=login, prefix=prefix, batch_size=batch_size,
                        datadir=home.root / "worker", topics=topics)
        print(f"planning worker: consuming {len(topics.topics)} topics ({', '.join(topics.topics)}) from "
              f"{bootstrap} as {login.user}, group {group}; writing {describe_store(home.store)} "
              f"(batches of up to {batch_size})", file=sys.stderr, flush=True)
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                              override_logging=True)
        expect_coordinator_search()
        worker.spinner = None  # a terminal spinner means nothing in a service's log
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 0
        else:
            code = 0
        _report(app.planning_totals, sys.stderr)
        return code
    finally:
        if topics is not None:
            topics.close()
        sink.close()
