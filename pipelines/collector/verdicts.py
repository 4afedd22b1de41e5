"""One request's events judged, and the answer the sender gets: counts and a verdict per rejected line.

Each event goes through the same three checks, in order, as on every other
way in: the contract (``events.contract.validation.verdict``), the sender's
grants (``events.senders.grants.within_grants``), then the store's own
(duplicates by ``event_id``, a body that conflicts with the stored one, a
retraction of another sender's event, data of the other kind than the
store's). Every event becomes ``Received(raw, origin, verdict, sender=name)``
with origin ``http:<sender>/<request id>#<line>``, so a dead letter names the
request and the line it came from, and the store records who delivered it.

The answer lists each rejected line with its position (1-based), its
``event_id`` when one can be read, and the reasons, in the wording of the dead
letters (they are the same strings). Its status (``Answer.status``):

- 200 when every event was stored or was a duplicate of one stored;
- 207 when some were stored (or duplicates) and some rejected: the stored
  ones stay stored, so the sender fixes and resends only the rejected lines;
- 422 when every event was rejected.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.contract.forms import MAX_ECHO
from events.contract.validation import MAX_EVENT_BYTES, Accepted, verdict
from events.senders.grants import within_grants
from events.senders.registry import Sender
from events.storage.store import BatchOutcome, Received

ALL_STORED, SOME_REJECTED, ALL_REJECTED = 200, 207, 422


def origin(sender: str, request_id: str, line: int) -> str:
    return f"http:{sender}/{request_id}#{line}"


def judged(events: Sequence[bytes], sender: Sender, request_id: str, received_at: datetime) -> list[Received]:
    """Each event with its verdict after the contract and the sender's grants, in the order sent."""
    return [
        Received(raw, origin(sender.name, request_id, line), within_grants(verdict(raw, received_at), sender), sender=sender.name)
        for line, raw in enumerate(events, start=1)
    ]


@dataclass(frozen=True)
class Rejection:
    line: int
    event_id: str | None
    reasons: tuple[str, ...]


@dataclass
class Answer:
    request_id: str
    sender: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def status(self) -> int:
        if not self.rejections:
            return ALL_STORED
        return ALL_REJECTED if self.rejected == self.received else SOME_REJECTED

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "sender": self.sender,
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejections": [{"line": r.line, "event_id": r.event_id, "reasons": list(r.reasons)} for r in self.rejections],
        }


def answer(request_id: str, sender: str, batch: Sequence[Received], outcome: BatchOutcome) -> Answer:
    """The answer to a request, from its judged events and what the store did with them."""
    reasons_of = dict(outcome.rejected)  # origin -> reasons, for the contract's, the grants' and the store's rejects
    done = Answer(request_id, sender, received=len(batch), accepted=len(outcome.accepted), duplicates=len(outcome.duplicates))
    for line, item in enumerate(batch, start=1):
        reasons = reasons_of.get(item.origin)
        if reasons is not None:
            done.rejections.append(Rejection(line, event_id_of(item), tuple(reasons)))
    return done


def event_id_of(item: Received) -> str | None:
    """The ``event_id`` of an event, as validated, or as sent when the event was rejected (a string, cut
    to what a reason may echo); None when none can be read."""
    if isinstance(item.verdict, Accepted):
        return item.verdict.event_id
    if len(item.raw) > MAX_EVENT_BYTES:
        return None
    try:
        body = json.loads(item.raw)
    except (ValueError, RecursionError):
        return None
    value = body.get("event_id") if isinstance(body, dict) else None
    return value[:MAX_ECHO] if isinstance(value, str) else None

