"""A factory of valid events, one sample payload per event type, JSON Lines files of them, and the
store's ``Received`` records of them."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

from events.contract.validation import verdict
from events.storage.store import Received

_ids = itertools.count(1)

# One valid payload per event type, as the contract's examples (docs/events.md).
PAYLOADS: dict[str, dict[str, Any]] = {
    "consultation.response_received": {
        "borough": "E09000012", "channel": "online_survey",
        "respondent": {"respondent_ref": "r-8812", "age_band": "16-24", "gender": "female",
                       "ethnic_group": "black", "disability": "no"},
        "on_behalf_of": None,
        "themes": [{"theme": "knife_crime", "rank": 1}, {"theme": "youth_crime", "rank": 2}],
        "comment": "free text, may contain personal data",
    },
    "survey.response_recorded": {
        "survey": "PAS", "wave": "2026Q2", "borough": "E09000020", "interview_ref": "pas-2026q2-004411",
        "weight": 1.37, "respondent": {"age_band": "45-54", "gender": "male", "ethnic_group": "white"},
        "indicators": {"good_job": True, "trust": True, "listens": False}, "priorities": ["burglary", "police_visibility"],
    },
    "cdrp.audit_submitted": {
        "borough": "E09000008", "audit_ref": "croydon-2026", "period_start": "2023-04-01", "period_end": "2026-03-31",
        "crime_counts": [{"category": "burglary", "count": 4120, "previous_count": 4390}],
        "priorities": [{"theme": "violence", "rank": 1}, {"theme": "drugs", "rank": 2}],
    },
    "borough.profile_recorded": {
        "borough": "E09000012", "source": "Census 2021", "population": 259200,
        "groups": {"age_band": {"16-24": 31000, "25-34": 62000}, "ethnic_group": {"white": 120000, "black": 55000}},
    },
    "group.meeting_held": {
        "group_id": "cpcg-hackney", "group_kind": "consultative_group", "borough": "E09000012",
        "attendance": 41, "cost_gbp": 350.0, "themes": ["knife_crime"],
    },
    "cycle.opened": {"timetable": [{"stage": "fieldwork", "opens_on": "2026-06-01", "due_on": "2026-08-31"}]},
    "programme.approved": {"default_min_responses": 50, "targets": [{"borough": "E09000012", "min_responses": 120}],
                           "priority_groups": ["16-24"]},
    "stage.signed_off": {"stage": "analysis", "body": "csmb", "decision_ref": "CSMB-2026-07"},
    "feedback.published": {"round": 1, "boroughs": ["E09000012"], "themes": ["knife_crime"], "summary": "what we heard",
                           "url": "https://example.org/feedback"},
    "priorities.adopted": {"priorities": [{"rank": 1, "theme": "violence", "scope": "LONDON"}]},
    "plan.published": {"title": "Policing Plan 2027/28", "url": "https://example.org/plan"},
    "event.retracted": {"target_event_id": "6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11", "reason": "entered twice"},
    "respondent.erasure_requested": {"respondent_ref": "r-8812"},
}


def make_event(event_type: str, payload: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    """A valid event of ``event_type``; ``payload`` replaces keys of the sample payload."""
    body = copy.deepcopy(PAYLOADS[event_type])
    body.update(payload or {})
    event = {
        "event_id": str(uuid.UUID(int=next(_ids), version=4)),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2026-07-14T18:30:00Z",
        "source": "tests",
        "cycle": "2027-28",
        "payload": body,
    }
    event.update(envelope)
    return event


def line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def received(events: list[dict[str, Any]], sender: str = "tests") -> list[Received]:
    """The events as ``EventStore.append`` takes them, each with the contract's verdict, its event_id as origin."""
    return [Received(line(e), e["event_id"], verdict(line(e)), sender) for e in events]


def write_jsonl(path: Path, events: list[dict[str, Any] | bytes | str]) -> Path:
    with open(path, "wb") as out:
        for event in events:
            raw = event if isinstance(event, bytes) else event.encode() if isinstance(event, str) else line(event)
            out.write(raw + b"\n")
    return path
