"""Whether a sender may send an event: the grant checked per event, after the contract's own rules.

A grant names event types and boroughs (or every borough). An event must be of a granted
type, and every borough it speaks for must be granted:

- ``payload.borough`` (a consultation response, a survey interview, a CDRP audit, a borough
  profile, a group meeting) names one;
- ``feedback.published`` names a list of boroughs, each of which must be granted, or "all",
  which needs a grant of every borough.

Events without a borough need only their type, granted explicitly: the Authority's timetable
decisions (``cycle.opened``, ``programme.approved``, ``stage.signed_off``, ``priorities.adopted``,
``plan.published``), ``respondent.erasure_requested`` and ``event.retracted``. That a sender
retracts only events it sent itself is checked by the store, which knows who sent the target
(``events.storage.store``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from events.contract.validation import Accepted, Rejected
from events.senders.registry import Sender, is_operator


def refusal(sender: Sender, event_type: str, payload: Mapping[str, Any]) -> str | None:
    """Why ``sender`` may not send this event (one sentence naming sender, type and borough), or None."""
    if not sender.active:
        return f"sender {sender.name} is revoked: ask the data team to register a new sender"
    if event_type not in sender.event_types:
        return f"sender {sender.name} may not send {event_type} (its grant: {', '.join(sorted(sender.event_types))})"
    if sender.boroughs is None:
        return None
    outside = [b for b in _boroughs_named(event_type, payload) if b not in sender.boroughs]
    if outside:
        return f"sender {sender.name} may not send {event_type} for {', '.join(outside)}"
    return None


def _boroughs_named(event_type: str, payload: Mapping[str, Any]) -> list[str]:
    """The boroughs an event speaks for; "all" stands for every borough, which a list grant never covers."""
    if event_type == "feedback.published":
        boroughs = payload.get("boroughs")
        return ["all boroughs"] if boroughs == "all" else list(boroughs or [])
    borough = payload.get("borough")
    return [borough] if isinstance(borough, str) else []


def within_grants(verdict: Accepted | Rejected, sender: Sender) -> Accepted | Rejected:
    """The contract's verdict, turned into a rejection when the event is outside the sender's grant."""
    if isinstance(verdict, Rejected):
        return verdict
    reason = refusal(sender, verdict.event_type, verdict.body.get("payload") or {})
    return verdict if reason is None else Rejected((reason,))


def may_retract(retracting: str | None, target_sender: str | None) -> bool:
    """Whether a retraction delivered by ``retracting`` may take out an event delivered by ``target_sender``.

    A registered sender retracts only its own events (not one of unknown origin either); the data
    team (an operator) may retract any; a retraction of unknown origin (stored before senders were
    recorded) keeps the effect it always had.
    """
    return retracting is None or is_operator(retracting) or retracting == target_sender
