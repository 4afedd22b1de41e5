"""The collector on the streaming stack: each request's lines handed to Kafka; the stream worker stores them.

The stream worker is then the store's only writer. The collector judges each
line as on the embedded default, to answer, and hands every line, valid or
not, to the collector's topics with the sender it authenticated in a header
only the collector principal can write (``pipelines.streaming.handover``); the
worker judges each again, stores it or dead-letters it, and records that
sender. The answer counts as accepted what passed the contract and the grants
and was acknowledged by the broker; duplicates, conflicts and retractions of
another sender's events are found by the worker, and show in the dead letters.

Each line goes to the collector topic of its event type's family, under its
partition key (``events.routing``), as a sender's own would; a line whose event
type cannot be read goes to the ``corrections`` family's topic, which keeps
data 7 days, as every topic that may carry personal data does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from events.contract.validation import MAX_EVENT_BYTES, Accepted
from events.home import PlanningHome
from events.routing import COLLECTOR_SEGMENT, FAMILIES, collector_topic, partition_key, topic_prefix
from events.senders.registry import Sender, SenderRegistry
from events.storage.store import BatchOutcome, Received
from pipelines.collector.intake import OwnThread, Unavailable
from pipelines.streaming.credentials import KafkaLogin
from pipelines.streaming.handover import Handover, HandoverFailed, Line

UNREADABLE_FAMILY = "corrections"
HANDOVER_THREADS = 4  # requests handed over at once (each waits for the broker's acknowledgements)


class KafkaIntake:
    """The streaming stack: each request's lines handed to Kafka as the collector principal; the worker stores them."""

    mode = "kafka"

    def __init__(self, home: PlanningHome, bootstrap: str, login: KafkaLogin, prefix: str | None = None) -> None:
        self._prefix = prefix
        self._handover = Handover(bootstrap, login)
        self._sending = ThreadPoolExecutor(max_workers=HANDOVER_THREADS, thread_name_prefix="handover")
        try:
            self._senders = OwnThread("senders", lambda: SenderRegistry.of(home))
        except BaseException:
            self._handover.close()
            raise

    async def identify(self, secret: str) -> Sender | None:
        return await self._senders.call(self._senders.owned.identify, secret)

    async def take(self, batch: Sequence[Received], received_at: datetime) -> BatchOutcome:
        lines = [Line(*self._route(item), item.raw) for item in batch]
        sender = batch[0].sender if batch else None
        try:
            await asyncio.wrap_future(self._sending.submit(self._handover.hand_over, lines, sender or ""))
        except HandoverFailed as failed:
            raise Unavailable(f"{failed}; some events of this request may have reached the pipeline") from failed
        outcome = BatchOutcome()
        for item in batch:
            if isinstance(item.verdict, Accepted):
                outcome.accepted.append(item.verdict.event_id)
            else:
                outcome.rejected.append((item.origin, item.verdict.reasons))
        return outcome

    def _route(self, item: Received) -> tuple[str, str | None]:
        """The collector topic and partition key of a line: by its event type, read from the line when the
        contract refused it; a line with no readable event type goes to the corrections family's topic."""
        body = item.verdict.body if isinstance(item.verdict, Accepted) else _readable(item.raw)
        event_type = body.get("event_type") if body is not None else None
        if isinstance(event_type, str) and any(event_type in types for types in FAMILIES.values()):
            topic = collector_topic(event_type, self._prefix)
        else:
            topic = f"{topic_prefix(self._prefix)}.{COLLECTOR_SEGMENT}.{UNREADABLE_FAMILY}"
        return topic, partition_key(body) if body is not None else None

    def close(self) -> None:
        try:
            self._senders.close(self._senders.owned.close)
        finally:
            self._sending.shutdown(wait=True)
            self._handover.close()


def _readable(raw: bytes) -> dict[str, Any] | None:
    """The JSON object a line holds, when it holds one small enough to be an event; else None."""
    if len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
