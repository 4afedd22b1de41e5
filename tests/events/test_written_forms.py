"""Each value has one written form and bounds a build can hold; a refusal names the field and the form."""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import UUID

import pytest

from events.contract.models import ENVELOPES, PAYLOADS
from events.contract.validation import Accepted, Rejected, verdict
from tests.support.events import line, make_event

RECEIVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def reasons(event: dict) -> tuple[str, ...]:
    checked = verdict(line(event), RECEIVED_AT)
    assert isinstance(checked, Rejected), checked
    return checked.reasons


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"occurred_at": "1700000000"},
         "occurred_at: '1700000000' is not an RFC 3339 date-time in the years 2000 to 2099 (e.g. 2027-01-15T10:00:00Z)"),
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at: '0001-01-01T00:00:00+14:00' is not an RFC 3339"),
        ({"occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at: '2026-02-30T10:00:00Z' is not a valid date-time (day is out of range"),
        ({"occurred_at": "2026-07-14T18:30:00"}, "occurred_at: '2026-07-14T18:30:00' has no timezone offset"),
        ({"cycle": "0001-02"}, "cycle: '0001-02' is outside the cycles the contract covers (2001-02 to 2099-00)"),
        ({"cycle": "\uff12\uff10\uff12\uff17-\uff12\uff18"}, "cycle: '\uff12\uff10\uff12\uff17-\uff12\uff18' is not a cycle"),
        ({"event_id": "{6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11}"}, "event_id: '{6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11}' is not a UUID written 8-4-4-4-12"),
        ({"event_id": "urn:uuid:6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"}, "event_id: 'urn:uuid:"),
        ({"event_id": "6f1c2e0a8d3b4c1e9f520b7a1d3c9e11"}, "event_id: '6f1c2e0a8d3b4c1e9f520b7a1d3c9e11' is not a UUID"),
    ],
)
def test_an_envelope_value_in_another_form_is_refused_naming_the_field(change: dict, reason: str) -> None:
    assert any(r.startswith(reason) for r in reasons({**make_event("stage.signed_off"), **change}))


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        ("cdrp.audit_submitted", {"crime_counts": [{"category": "x", "count": 10**30}]}, "payload.crime_counts[0].count"),
        ("cdrp.audit_submitted", {"period_start": "2025-4-1"}, "payload.period_start"),
        ("cdrp.audit_submitted", {"period_end": "1999-12-31"}, "payload.period_end"),
        ("cycle.opened", {"timetable": [{"stage": "brief", "opens_on": "2026-03-01T00:00:00Z", "due_on": "2026-03-31"}]},
         "payload.timetable[0].opens_on"),
        ("borough.profile_recorded", {"population": 2**31}, "payload.population"),
        ("group.meeting_held", {"attendance": 2**31}, "payload.attendance"),
        ("group.meeting_held", {"cost_gbp": 1e12}, "payload.cost_gbp"),
        ("survey.response_recorded", {"weight": 1e6}, "payload.weight"),
        ("programme.approved", {"default_min_responses": 10**10}, "payload.default_min_responses"),
        ("priorities.adopted", {"priorities": [{"rank": 22, "theme": "drugs", "scope": "LONDON"}]}, "payload.priorities[0].rank"),
        ("event.retracted", {"target_event_id": "urn:uuid:6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"}, "payload.target_event_id"),
        ("feedback.published", {"url": "https://ex\u00e4mple.org"}, "payload.url"),
    ],
)
def test_a_payload_value_out_of_bounds_is_refused_naming_the_field(event_type: str, payload: dict, field: str) -> None:
    assert any(r.startswith(f"{field}:") for r in reasons(make_event(event_type, payload)))


@pytest.mark.parametrize(
    "change",
    [{"occurred_at": "2000-01-01T00:00:00Z"}, {"occurred_at": "2026-07-14T18:30:00.123456-23:59"},
     {"cycle": "2001-02"}, {"cycle": "2099-00"}, {"event_id": "6F1C2E0A-8D3B-4C1E-9F52-0B7A1D3C9E11"}],
)
def test_the_edges_of_the_forms_are_accepted(change: dict) -> None:
    assert isinstance(verdict(line({**make_event("stage.signed_off"), **change}), RECEIVED_AT), Accepted)


def test_an_upper_case_id_is_stored_in_lower_case() -> None:
    checked = verdict(line(make_event("stage.signed_off", event_id="6F1C2E0A-8D3B-4C1E-9F52-0B7A1D3C9E11")), RECEIVED_AT)
    assert checked.event_id == checked.body["event_id"] == "6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"


def test_a_model_built_in_python_takes_python_values() -> None:
    """The emitter sends models built in Python; their values are judged again as text when sent."""
    model = ENVELOPES["cdrp.audit_submitted"](
        event_id=UUID("6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"), event_type="cdrp.audit_submitted", schema_version=1,
        occurred_at=datetime(2026, 7, 1, tzinfo=timezone.utc), source="tests", cycle="2027-28",
        payload=PAYLOADS["cdrp.audit_submitted"](
            borough="E09000002", audit_ref="a", period_start=date(2025, 4, 1), period_end=date(2026, 3, 31),
            priorities=[{"theme": "drugs", "rank": 1}],
        ),
    )
    assert isinstance(verdict(model.model_dump_json().encode(), RECEIVED_AT), Accepted)
