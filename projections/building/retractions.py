"""Which events are retracted, when retractions can themselves be retracted.

A retraction removes its target only while it stands itself: an event is out
when some standing retraction names it, and a retraction stands when no
standing retraction names it. Chains of any length resolve from their
unretracted ends (R3 retracts R2, so R2 falls, so R1 stands and its target is
out). Retractions caught in a loop (A retracts B, B retracts A) have no
unretracted end; none of them stands. Targets are compared as UUIDs, so
``{…}``, ``urn:uuid:…``, capitals or missing hyphens name the same event.

A retraction counts only if its sender may retract its target
(``events.senders.grants.may_retract``: a sender retracts its own events, the
data team any). The store refuses the others when the target is stored
first; a retraction that arrived before its target is checked here, at every build.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping

from events.senders.grants import may_retract


def canonical_id(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None


def retracted_ids(retractions: list[tuple[str, str]]) -> set[str]:
    """(retraction event_id, target_event_id) pairs -> ids of the events that are out."""
    retracting: dict[str, list[str]] = defaultdict(list)  # event id -> the retractions naming it
    for retraction, target in retractions:
        target_id, retraction_id = canonical_id(target), canonical_id(retraction)
        if target_id and retraction_id:
            retracting[target_id].append(retraction_id)

    # Decide what can be decided, from the unretracted ends inwards, until nothing changes;
    # whatever is left undecided sits in a loop, and does not stand.
    retractions_seen = {r for by in retracting.values() for r in by}
    standing: dict[str, bool] = {}
    changed = True
    while changed:
        changed = False
        for retraction in retractions_seen - standing.keys():
            by = retracting.get(retraction, [])
            if any(standing.get(r) is True for r in by):
                standing[retraction], changed = False, True
            elif all(standing.get(r) is False for r in by):
                standing[retraction], changed = True, True
    return {target for target, by in retracting.items() if any(standing.get(r) is True for r in by)}


def permitted(retractions: list[tuple[str, str]], senders: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """The (retraction, target) pairs whose retraction may take out its target, given who delivered
    each stored event (by canonical id; a target not stored is not checked: it is not there to take out)."""
    kept = []
    for retraction, target in retractions:
        target_id, retraction_id = canonical_id(target), canonical_id(retraction)
        if target_id not in senders or may_retract(senders.get(retraction_id or ""), senders[target_id]):
            kept.append((retraction, target))
    return kept
