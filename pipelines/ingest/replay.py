"""Dead letters judged again: `planning deadletters replay`.

A line rejected under a rule since relaxed, or at a schema_version an upcaster added since
now understands, need not be resent by hand: replay judges each chosen dead letter against
the contract as it is now (``verdict``, upcasters included) and the grant its sender has now,
and appends those that pass, through the same ``EventStore.append`` as every other way in.

- ``recorded_at`` of a replayed event is the replay's time: that is when the pipeline came to
  know it, so a build ``--as-of`` before the replay still shows it missing, as it was.
- The event keeps the sender that delivered the dead letter (its grant checked as it is now; a
  dead letter of no known sender is replayed by the data team's authority, and stays of unknown
  origin).
- A replayed dead letter is marked with the position of the event it became (or, if the event
  was stored meanwhile, say resent by hand, the position it has), and is not replayed again;
  appends are idempotent by ``event_id`` besides, so a replay cut short and run again stores
  nothing twice.
- A dead letter whose bytes an erasure redacted is never replayed: there is nothing left to
  replay, and the personal data must not come back. One kept only in part (the first 64 KiB
  of an oversized line) cannot be replayed whole: its sender must send it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from events.contract.validation import Accepted, Rejected, verdict
from events.senders.grants import within_grants
from events.senders.registry import Sender, SenderRegistry, is_operator, operator
from events.storage.backends import Store
from events.storage.store import MAX_DEAD_LETTER_BYTES, UNKNOWN_SENDER, Received

REPLAYED, STORED_ALREADY, STILL_FAILS, NOT_REPLAYABLE = "replayed", "stored already", "still fails", "cannot be replayed"


@dataclass(frozen=True)
class Choice:
    """Which dead letters to replay: every one not replayed yet, narrowed by each filter given."""

    sender: str | None = None  # who delivered it ("unknown": stored before senders were recorded)
    reason_contains: str | None = None  # case-insensitive, in any of its reasons
    since: datetime | None = None  # received at or after

    def takes(self, letter: dict[str, Any]) -> bool:
        if letter["replayed_position"] is not None:
            return False
        if self.reason_contains and not any(self.reason_contains.casefold() in r.casefold() for r in letter["reasons"]):
            return False
        return self.since is None or _instant(letter["received_at"]) >= self.since


@dataclass
class Replayed:
    """What became of one dead letter."""

    letter_id: int
    origin: str
    sender: str | None
    outcome: str
    event_id: str | None = None
    position: int | None = None
    reasons: tuple[str, ...] = ()


@dataclass
class ReplayReport:
    items: list[Replayed] = field(default_factory=list)
    dry_run: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)


def replay(
    store: Store, registry: SenderRegistry, choice: Choice, *, replayed_at: datetime | None = None, dry_run: bool = False
) -> ReplayReport:
    """Judge the chosen dead letters again and, unless ``dry_run``, append those that pass and mark them."""
    replayed_at = replayed_at or datetime.now(timezone.utc)
    letters = [letter for letter in store.dead_letters(sender=choice.sender) if choice.takes(letter)]
    report = ReplayReport(dry_run=dry_run)
    passing: list[tuple[Replayed, Received]] = []
    senders: dict[str | None, Sender | None] = {}
    for letter in letters:
        item = Replayed(letter["id"], letter["origin"], letter["sender"], NOT_REPLAYABLE)
        report.items.append(item)
        raw = letter["raw"]
        if raw is None:
            item.reasons = ("its bytes were redacted by an erasure; it is never replayed",)
            continue
        if len(raw) >= MAX_DEAD_LETTER_BYTES:
            item.reasons = (f"only its first {MAX_DEAD_LETTER_BYTES:,} bytes were kept; ask its sender to send it again",)
            continue
        if letter["sender"] not in senders:
            senders[letter["sender"]] = _sender(registry, letter["sender"])
        judged = verdict(raw, replayed_at)
        sender = senders[letter["sender"]]
        judged = within_grants(judged, sender) if sender is not None else judged
        if isinstance(judged, Rejected):
            item.outcome, item.reasons = STILL_FAILS, judged.reasons
            continue
        item.outcome, item.event_id = REPLAYED, judged.event_id
        passing.append((item, Received(raw, letter["origin"], judged, letter["sender"])))
    stored = store.positions_of([item.event_id for item, _ in passing])
    if dry_run or not passing:
        for item, _ in passing:
            _already(item, stored)
        return report
    _append(store, passing, stored, replayed_at)
    return report


def _append(store: Store, passing: list[tuple[Replayed, Received]], stored: dict[str, int], replayed_at: datetime) -> None:
    """One append of every dead letter that now passes, then each marked with its event's position."""
    outcome = store.append([received for _, received in passing], replayed_at, other_kind="dead_letter")
    first = outcome.high_water_mark - len(outcome.accepted) + 1
    positions = {**stored, **{event_id: first + i for i, event_id in enumerate(outcome.accepted)}}
    fresh = set(outcome.accepted)
    positions.update(store.positions_of([e for e in outcome.duplicates if e not in positions]))
    refused = dict(outcome.rejected)  # by origin: a conflict with a stored event, another kind of data, …
    marks: dict[int, int] = {}
    for item, received in passing:
        if item.event_id in fresh:
            item.position = positions[item.event_id]
            fresh.discard(item.event_id)  # a second dead letter of the same event is a duplicate of the first
        elif item.event_id in positions:
            _already(item, positions)
        else:
            item.outcome, item.reasons = STILL_FAILS, tuple(refused.get(received.origin, ("refused by the store",)))
            continue
        marks[item.letter_id] = item.position
    store.mark_replayed(marks, replayed_at)


def _already(item: Replayed, stored: dict[str, int]) -> None:
    if item.event_id in stored:
        item.outcome, item.position = STORED_ALREADY, stored[item.event_id]


def _sender(registry: SenderRegistry, name: str | None) -> Sender | None:
    """The sender whose grant a replay of its dead letter is checked against, as it is now."""
    if name is None:
        return None  # of unknown origin: replayed on the data team's authority
    if is_operator(name):
        return operator(name.split(":", 1)[1])
    found = registry.get(name)
    return found if found is not None else Sender(name, frozenset(), frozenset(), False)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def describe(letters: Sequence[Replayed]) -> list[str]:
    """One line per dead letter, for people."""
    lines = []
    for item in letters:
        who = item.sender or UNKNOWN_SENDER
        where = f"#{item.letter_id} {item.origin} from {who}"
        if item.outcome in (REPLAYED, STORED_ALREADY):
            at = f" at position {item.position}" if item.position is not None else ""
            lines.append(f"{where}: {item.outcome if item.position is not None else 'would pass'} as {item.event_id}{at}")
        else:
            lines.append(f"{where}: {item.outcome}: {'; '.join(item.reasons)}")
    return lines
