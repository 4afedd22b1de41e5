"""The stream worker dead-letters an event of the other kind than the store's, with the reason (no broker needed).

A message cannot be handed back to Kafka, so where `planning ingest` stops, the
worker stores the rest of the batch and dead-letters (and forwards) the event
that would have mixed synthetic and real data.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from events.senders.registry import SenderRegistry
from events.storage.store import EventStore
from pipelines.streaming.worker import BatchResult, Message, StoreSink
from tests.support.events import make_event
from tests.support.kafka import ALL_TYPES, TEST_SENDER

TOPIC = f"planning.from.{TEST_SENDER}.timetable"  # a registered sender's own topic

RECEIVED = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)  # the receiving clock, pinned


def write(root: Path, messages: list[Message]) -> BatchResult:
    with SenderRegistry(root) as registry:
        if registry.get(TEST_SENDER) is None:
            registry.add(TEST_SENDER, ALL_TYPES, None)
    sink = StoreSink(root)
    try:  # on the store's own thread, as submit() does, at a pinned time
        return sink.executor.submit(sink.write, messages, RECEIVED).result()
    finally:
        sink.close()


def message(offset: int, **envelope: object) -> Message:
    return Message(TOPIC, 0, offset, json.dumps(make_event("stage.signed_off", **envelope)).encode(), TEST_SENDER)


def test_a_synthetic_message_into_a_store_of_real_events_is_dead_lettered(tmp_path: Path) -> None:
    first = write(tmp_path, [message(0)])
    mixed = write(tmp_path, [message(1), message(2, synthetic=True)])
    assert (first.accepted, mixed.accepted) == (1, 1)
    assert [letter.origin for letter in mixed.dead] == [f"{TOPIC}/0@2"]
    reason = mixed.dead[0].reasons[0]
    assert reason.startswith('synthetic: the event is synthetic ("synthetic": true)') and "holds real events" in reason
    with EventStore(tmp_path) as store:
        assert store.counts() == {"events": 2, "dead_letters": 1} and not store.synthetic


def test_a_real_message_into_a_store_of_synthetic_events_is_dead_lettered(tmp_path: Path) -> None:
    write(tmp_path, [message(0, synthetic=True)])
    mixed = write(tmp_path, [message(1)])
    assert mixed.accepted == 0
    assert mixed.dead[0].reasons[0].startswith('synthetic: the event is real (no "synthetic": true)')
    with EventStore(tmp_path) as store:
        assert store.counts() == {"events": 1, "dead_letters": 1} and store.synthetic
