"""Every rule of docs/events.md, each with an event that passes and one that fails naming the field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from events.contract.models import EVENT_TYPES
from events.contract.validation import Accepted, Rejected, verdict
from tests.support.events import PAYLOADS, line, make_event


def reasons_for(event: dict | bytes) -> tuple[str, ...]:
    checked = verdict(event if isinstance(event, bytes) else line(event))
    assert isinstance(checked, Rejected), f"expected a rejection, got {checked}"
    return checked.reasons


def accepted(event: dict) -> Accepted:
    checked = verdict(line(event))
    assert isinstance(checked, Accepted), getattr(checked, "reasons", checked)
    return checked


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_spec_sample_of_every_event_type_is_accepted(event_type: str) -> None:
    assert accepted(make_event(event_type)).event_type == event_type


def test_every_event_type_of_the_spec_has_a_model() -> None:
    assert set(EVENT_TYPES) == set(PAYLOADS)


# --- the envelope --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"event_id": "not-a-uuid"}, "event_id", "UUID"),
        ({"event_type": "consultation.response"}, "event_type", "is not an event type"),
        ({"schema_version": "1"}, "schema_version", "integer"),
        ({"schema_version": 0}, "schema_version", "greater than or equal to 1"),
        ({"occurred_at": "2026-07-14T18:30:00"}, "occurred_at", "timezone"),
        ({"source": ""}, "source", "at least 1"),
        ({"source": "x" * 201}, "source", "at most 200"),
        ({"cycle": "2027-29"}, "cycle", "second year must follow the first"),
        ({"cycle": "2027/28"}, "cycle", "is not a cycle"),
        ({"cycle": "\uff12\uff10\uff12\uff17-\uff12\uff18"}, "cycle", "is not a cycle"),  # full-width digits: the schema's \d is ASCII
        ({"colour": "blue"}, "colour", "unknown fields are rejected"),
    ],
)
def test_envelope_rules(change: dict, field: str, fragment: str) -> None:
    reasons = reasons_for({**make_event("stage.signed_off"), **change})
    assert any(r.startswith(f"{field}:") and fragment in r for r in reasons), reasons


def test_newer_schema_version_is_rejected_with_the_version_named() -> None:
    assert reasons_for(make_event("stage.signed_off", schema_version=2)) == (
        "schema_version: 2 is newer than this pipeline understands (1)",
    )


@pytest.mark.parametrize("missing", ["event_id", "occurred_at", "source", "cycle", "payload", "schema_version"])
def test_every_envelope_field_is_required(missing: str) -> None:
    event = make_event("stage.signed_off")
    del event[missing]
    assert f"{missing}: is required" in reasons_for(event)


def test_occurred_at_up_to_five_minutes_ahead_is_accepted_but_not_more() -> None:
    now = datetime.now(timezone.utc)
    soon = (now + timedelta(minutes=4)).isoformat()
    later = (now + timedelta(minutes=6)).isoformat()
    accepted(make_event("stage.signed_off", occurred_at=soon))
    assert any(r.startswith("occurred_at:") and "in the future" in r for r in reasons_for(make_event("stage.signed_off", occurred_at=later)))


def test_occurred_at_accepts_any_offset() -> None:
    accepted(make_event("stage.signed_off", occurred_at="2026-07-14T19:30:00+01:00"))


def test_same_body_gives_same_digest_whatever_the_key_order() -> None:
    event = make_event("stage.signed_off")
    reordered = json.dumps(dict(reversed(list(event.items())))).encode()
    assert verdict(reordered).body_sha256 == accepted(event).body_sha256


# --- raw lines -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "line: empty line"),
        (b"   ", "line: empty line"),
        (b"[1, 2]", "line: expected a JSON object, got an array"),
        (b'"text"', "line: expected a JSON object, got a string"),
        (b"{not json", "line: not valid JSON"),
        (b"\xff\xfe", "line: not valid JSON"),
        (b"x" * (1024 * 1024 + 1), "line: 1,048,577 bytes is larger than"),
        (b"[" * 200_000, "line: "),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "line: "),
    ],
)
def test_lines_that_are_not_an_event_object(raw: bytes, expected: str) -> None:
    (reason,) = reasons_for(raw)
    assert reason.startswith(expected)


def test_a_line_held_only_by_its_head_is_judged_by_its_full_size() -> None:
    head = line(make_event("stage.signed_off"))  # a valid event's bytes, of a line far longer than them
    (reason,) = verdict(head, size=3 * 1024 * 1024).reasons
    assert reason == "line: 3,145,728 bytes is larger than the 1,048,576-byte limit for one event"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def with_one_field_replaced(event_type: str, payload_field: bool, value: object, data: st.DataObject) -> bytes:
    event = make_event(event_type)
    where = event["payload"] if payload_field and event["payload"] else event
    where[data.draw(st.sampled_from(sorted(where)))] = value
    return json.dumps(event).encode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.builds(with_one_field_replaced, st.sampled_from(sorted(PAYLOADS)), st.booleans(), JSON_VALUES, st.data()),
))
def test_every_line_gets_a_verdict_and_never_an_exception(raw: bytes) -> None:
    checked = verdict(raw)
    assert isinstance(checked, Accepted) or (isinstance(checked, Rejected) and checked.reasons)


# --- payload rules ---------------------------------------------------------------

THEMES_OK = [{"theme": "knife_crime", "rank": 2}, {"theme": "youth_crime", "rank": 1}]


@pytest.mark.parametrize(
    ("event_type", "payload", "field", "fragment"),
    [
        ("consultation.response_received", {"borough": "E09000001"}, "payload.borough", "City of London"),
        ("consultation.response_received", {"borough": "E09000034"}, "payload.borough", "not a London borough"),
        ("consultation.response_received", {"channel": "email"}, "payload.channel", "'email' is not a channel"),
        ("consultation.response_received", {"themes": []}, "payload.themes", "at least 1"),
        ("consultation.response_received",
         {"themes": [{"theme": t, "rank": i + 1} for i, t in enumerate(["burglary", "robbery", "violence", "drugs", "fraud", "other"])]},
         "payload.themes", "at most 5"),
        ("consultation.response_received", {"themes": [{"theme": "knife", "rank": 1}]}, "payload.themes[0].theme", "'knife' is not a theme"),
        ("consultation.response_received",
         {"themes": [{"theme": "drugs", "rank": 1}, {"theme": "drugs", "rank": 2}]}, "payload.themes", "must be distinct"),
        ("consultation.response_received",
         {"themes": [{"theme": "drugs", "rank": 1}, {"theme": "fraud", "rank": 3}]}, "payload.themes", "ranks must be 1..2"),
        ("consultation.response_received",
         {"themes": [{"theme": "drugs", "rank": 1}, {"theme": "fraud", "rank": 1}]}, "payload.themes", "ranks must be 1..2"),
        ("consultation.response_received", {"respondent": {"age_band": "16-24"}}, "payload.respondent.respondent_ref", "is required"),
        ("consultation.response_received", {"respondent": {"respondent_ref": ""}}, "payload.respondent.respondent_ref", "at least 1"),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r" * 65}}, "payload.respondent.respondent_ref", "at most 64"),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r-1", "age_band": "18-24"}}, "payload.respondent.age_band", "is not an age_band"),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r-1", "gender": "f"}}, "payload.respondent.gender", "is not a gender"),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r-1", "ethnic_group": "irish"}}, "payload.respondent.ethnic_group", "is not an ethnic_group"),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r-1", "disability": "maybe"}}, "payload.respondent.disability", "is not a disability"),
        ("consultation.response_received", {"comment": "x" * 10_001}, "payload.comment", "at most 10000"),
        ("consultation.response_received", {"on_behalf_of": {"organisation": "Residents' Association"}}, "payload.on_behalf_of.kind", "is required"),
        ("consultation.response_received", {"mood": "fine"}, "payload.mood", "unknown fields are rejected"),
        ("survey.response_recorded", {"weight": 0}, "payload.weight", "greater than 0"),
        ("survey.response_recorded", {"weight": "1.2"}, "payload.weight", "valid number"),
        ("survey.response_recorded", {"indicators": {"happy": True}}, "payload.indicators.happy (key)", "is not an indicator"),
        ("survey.response_recorded", {"indicators": {"trust": "yes"}}, "payload.indicators.trust", "valid boolean"),
        ("survey.response_recorded", {"priorities": ["drugs", "fraud", "other", "violence"]}, "payload.priorities", "at most 3"),
        ("survey.response_recorded", {"priorities": ["drugs", "drugs"]}, "payload.priorities", "must be distinct"),
        ("cdrp.audit_submitted", {"priorities": []}, "payload.priorities", "at least 1"),
        ("cdrp.audit_submitted", {"priorities": [{"theme": "drugs", "rank": 2}]}, "payload.priorities", "ranks must be 1..1"),
        ("cdrp.audit_submitted", {"period_end": "2022-03-31"}, "payload", "period_end is before period_start"),
        ("cdrp.audit_submitted", {"period_start": "2023-13-01"}, "payload.period_start", "date"),
        ("cdrp.audit_submitted", {"crime_counts": [{"category": "burglary", "count": -1}]}, "payload.crime_counts[0].count", "greater than or equal to 0"),
        ("borough.profile_recorded", {"population": 0}, "payload.population", "greater than 0"),
        ("borough.profile_recorded", {"groups": {"age_band": {"16-25": 10}}}, "payload.groups.age_band.16-25 (key)", "is not an age_band"),
        ("borough.profile_recorded", {"groups": {"religion": {"none": 10}}}, "payload.groups.religion", "unknown fields are rejected"),
        ("group.meeting_held", {"attendance": -3}, "payload.attendance", "greater than or equal to 0"),
        ("group.meeting_held", {"group_kind": "book_club"}, "payload.group_kind", "is not a channel"),
        ("cycle.opened", {"timetable": [{"stage": "drafting", "opens_on": "2026-06-01", "due_on": "2026-08-31"}]}, "payload.timetable[0].stage", "is not a stage"),
        ("cycle.opened", {"timetable": [{"stage": "fieldwork", "opens_on": "2026-09-01", "due_on": "2026-08-31"}]}, "payload.timetable[0]", "due_on is before opens_on"),
        ("programme.approved", {"default_min_responses": -1}, "payload.default_min_responses", "greater than or equal to 0"),
        ("programme.approved", {"targets": [{"borough": "E09000001", "min_responses": 5}]}, "payload.targets[0].borough", "City of London"),
        ("stage.signed_off", {"body": "mayor"}, "payload.body", "'mayor' is not a body"),
        ("stage.signed_off", {"stage": "review"}, "payload.stage", "is not a stage"),
        ("feedback.published", {"round": 3}, "payload.round", "1 or 2"),
        ("feedback.published", {"boroughs": "some"}, "payload.boroughs", "all"),
        ("feedback.published", {"url": "ftp://x"}, "payload.url", "pattern"),
        ("priorities.adopted", {"priorities": [{"rank": 1, "theme": "violence", "scope": "E09000001"}]}, "payload.priorities[0].scope", "City of London"),
        ("priorities.adopted", {"priorities": [{"rank": 1, "theme": "violence", "scope": "LONDON"}, {"rank": 1, "theme": "drugs", "scope": "LONDON"}]}, "payload.priorities", "ranks within a scope must be distinct"),
        ("event.retracted", {"target_event_id": "42"}, "payload.target_event_id", "UUID"),
        ("respondent.erasure_requested", {"respondent_ref": ""}, "payload.respondent_ref", "at least 1"),
    ],
)
def test_payload_rules(event_type: str, payload: dict, field: str, fragment: str) -> None:
    reasons = reasons_for(make_event(event_type, payload))
    assert any(r.startswith(f"{field}:") and fragment in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("consultation.response_received", {"themes": THEMES_OK}),
        ("consultation.response_received", {"respondent": {"respondent_ref": "r-1"}, "comment": None}),
        ("consultation.response_received", {"on_behalf_of": {"organisation": "Hackney Youth Forum", "kind": "voluntary"}}),
        ("consultation.response_received", {"comment": "x" * 10_000}),
        ("survey.response_recorded", {"indicators": {}, "priorities": []}),
        ("survey.response_recorded", {"weight": 2}),
        ("cdrp.audit_submitted", {"priorities": [{"theme": t, "rank": 5 - i} for i, t in enumerate(["drugs", "fraud", "other", "violence", "robbery"])]}),
        ("borough.profile_recorded", {"groups": {}}),
        ("feedback.published", {"boroughs": "all", "round": 2}),
        ("priorities.adopted", {"priorities": [{"rank": 1, "theme": "violence", "scope": "LONDON"}, {"rank": 1, "theme": "drugs", "scope": "E09000012"}]}),
        ("cycle.opened", {"timetable": []}),
    ],
)
def test_payloads_at_the_edges_of_the_rules_are_accepted(event_type: str, payload: dict) -> None:
    accepted(make_event(event_type, payload))


def test_one_reason_per_broken_rule() -> None:
    event = make_event("consultation.response_received", {"borough": "E09000001", "channel": "email", "colour": 1}, cycle="2027-29")
    reasons = reasons_for(event)
    assert len(reasons) == 4, reasons
    assert {r.split(":")[0] for r in reasons} == {"cycle", "payload.borough", "payload.channel", "payload.colour"}


def test_spec_example_reason_reads_as_the_spec_says() -> None:
    themes = [{"theme": "drugs", "rank": 1}, {"theme": "fraud", "rank": 2}, {"theme": "knife", "rank": 3}]
    assert "payload.themes[2].theme: 'knife' is not a theme" in reasons_for(make_event("consultation.response_received", {"themes": themes}))
