"""The contract's test corpus: a valid event of every type, and hostile lines each tagged with the rule it breaks.

A tag is ``SCHEMA`` when the JSON Schemas state the rule (a foreign validator and the pipeline
must then agree), or the name of a rule only the pipeline checks (docs/events.md, "Rules only
the pipeline checks"): a schema-valid line the pipeline rejects. ``READ_PAST`` marks what the
pipeline reads past although it is no JSON document (a byte order mark before the event).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from tests.support.events import PAYLOADS, line, make_event

SCHEMA = "stated by the schema"
READ_PAST = "a byte order mark before the event"
# rule -> the words docs/events.md uses for it in "Rules only the pipeline checks"
PIPELINE_ONLY: dict[str, str] = {
    "future": "not in the future",
    "consecutive years": "the second year of a cycle follows the first",
    "distinct": "distinct",
    "ranks 1..n": "ranks exactly 1..n",
    "in order": "not before",
    "integer spelling": "1.0",
    "JSON text": "lone surrogate",
}


@dataclass(frozen=True)
class Case:
    name: str
    tag: str
    raw: bytes


def _event(event_type: str, payload: dict[str, Any] | None = None, drop: tuple[str, ...] = (), **envelope: Any) -> dict[str, Any]:
    event = make_event(event_type, payload, **envelope)
    for field in drop:
        event["payload"].pop(field, None) if field not in event else event.pop(field)
    return event


def _with(event_type: str, path: str, value: Any) -> dict[str, Any]:
    """A valid event with the value at a dotted path (``payload.themes.0.rank``) replaced."""
    event = make_event(event_type)
    *parents, last = path.split(".")
    node: Any = event
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = copy.deepcopy(value)
    return event


def corpus() -> list[Case]:
    cases = [Case(f"valid {t}", SCHEMA, line(make_event(t))) for t in PAYLOADS]

    def add(name: str, tag: str, event: dict[str, Any] | bytes) -> None:
        cases.append(Case(name, tag, event if isinstance(event, bytes) else line(event)))

    signed = "stage.signed_off"
    # the envelope: written forms and bounds
    for text in ["1700000000", "2027-01-01", "2026-07-14 18:30:00Z", "2026-07-14T24:00:00Z", "2016-12-31T23:59:60Z",
                 "0001-01-01T00:00:00+14:00", "2026-07-14t18:30:00z", "2026-07-14T18:30Z", "2026-02-30T10:00:00Z",
                 "2026-07-14T18:30:00.1234567Z", "2026-07-14T18:30:00+24:00", "1999-12-31T23:59:59Z", "2026-07-14T18:30:00",
                 "\uff12\uff10\uff12\uff16-07-14T18:30:00Z", "2026-07-14T18:30:00+0100"]:
        add(f"occurred_at {text!r}", SCHEMA, make_event(signed, occurred_at=text))
    add("occurred_at a number", SCHEMA, make_event(signed, occurred_at=1700000000))
    for text in ["2000-01-01T00:00:00Z", "2026-07-14T18:30:00.123456-23:59", "2026-07-14T18:30:00.5+01:00"]:
        add(f"occurred_at {text!r} (valid)", SCHEMA, make_event(signed, occurred_at=text))
    add("occurred_at in the future", "future", make_event(signed, occurred_at="2099-01-01T00:00:00Z"))
    for text in ["\uff12\uff10\uff12\uff17-\uff12\uff18", "0001-02", "2000-01", "2100-01", "27-28", "2027/28", "\u0662\u0660\u0662\u0667-28"]:
        add(f"cycle {text!r}", SCHEMA, make_event(signed, cycle=text))
    add("cycle 2099-00 (valid)", SCHEMA, make_event(signed, cycle="2099-00"))
    add("cycle 2001-02 (valid)", SCHEMA, make_event(signed, cycle="2001-02"))
    add("cycle 2027-29", "consecutive years", make_event(signed, cycle="2027-29"))
    uuid = "6f1c2e0a-8d3b-4c1e-9f52-0b7a1d3c9e11"
    for text in [f"{{{uuid}}}", f"urn:uuid:{uuid}", uuid.replace("-", ""), "not-a-uuid", f" {uuid}", uuid[:-1] + "g"]:
        add(f"event_id {text!r}", SCHEMA, make_event(signed, event_id=text))
    add("event_id upper case (valid)", SCHEMA, make_event(signed, event_id=uuid.upper()))
    for value in ["1", 2, 0, True, None]:
        add(f"schema_version {value!r}", SCHEMA, make_event(signed, schema_version=value))
    add("schema_version 1.0", "integer spelling", make_event(signed, schema_version=1.0))
    for value in ["", "x" * 201, 5]:
        add(f"source {str(value)[:10]!r}", SCHEMA, make_event(signed, source=value))
    add("source 200 characters (valid)", SCHEMA, make_event(signed, source="é" * 200))
    add("an unknown field", SCHEMA, make_event(signed, colour="blue"))
    add("event_type unknown", SCHEMA, {**make_event(signed), "event_type": "stage.signed"})
    for field in ["event_id", "occurred_at", "cycle", "payload"]:
        add(f"{field} missing", SCHEMA, _event(signed, drop=(field,)))

    # payloads: bounds a schema states
    response = "consultation.response_received"
    add("rank 6", SCHEMA, _with(response, "payload.themes.1.rank", 6))
    add("six themes", SCHEMA, make_event(response, {"themes": [{"theme": t, "rank": i} for i, t in enumerate(
        ["burglary", "robbery", "violence", "drugs", "fraud", "other"], 1)]}))
    add("comment of 10,001 characters", SCHEMA, make_event(response, {"comment": "x" * 10_001}))
    add("comment of 10,000 characters (valid)", SCHEMA, make_event(response, {"comment": "x" * 10_000}))
    add("respondent_ref of 65 characters", SCHEMA, _with(response, "payload.respondent.respondent_ref", "r" * 65))
    add("City of London", SCHEMA, make_event(response, {"borough": "E09000001"}))
    add("a theme not in the vocabulary", SCHEMA, _with(response, "payload.themes.0.theme", "knife"))
    survey = "survey.response_recorded"
    for weight in [0, -1, 10_000.5, "1.0"]:
        add(f"weight {weight!r}", SCHEMA, make_event(survey, {"weight": weight}))
    for weight in [10_000, 5e-324, 1]:
        add(f"weight {weight!r} (valid)", SCHEMA, make_event(survey, {"weight": weight}))
    add("four priorities", SCHEMA, make_event(survey, {"priorities": ["burglary", "robbery", "violence", "drugs"]}))
    add("an unknown indicator", SCHEMA, make_event(survey, {"indicators": {"happy": True}}))
    add("an indicator not a boolean", SCHEMA, make_event(survey, {"indicators": {"trust": 1}}))
    audit = "cdrp.audit_submitted"
    for count in [10**30, 1_000_000_001, -1, 1.5, "5"]:
        add(f"count {count!r}", SCHEMA, _with(audit, "payload.crime_counts.0.count", count))
    add("count 1,000,000,000 (valid)", SCHEMA, _with(audit, "payload.crime_counts.0.count", 1_000_000_000))
    for day in ["2025-13-01", "2025-02-30", "25-04-01", "2025-4-1", "1999-12-31", "2025-04-01T00:00:00Z"]:
        add(f"period_start {day!r}", SCHEMA, make_event(audit, {"period_start": day}))
    add("101 crime counts", SCHEMA, make_event(audit, {"crime_counts": [{"category": "x", "count": 1}] * 101}))
    profile = "borough.profile_recorded"
    for population in [0, 10**10, 2**31]:
        add(f"population {population}", SCHEMA, make_event(profile, {"population": population}))
    add("a group count over the bound", SCHEMA, make_event(profile, {"groups": {"gender": {"female": 10**12}}}))
    meeting = "group.meeting_held"
    for field, value in [("cost_gbp", 1e10), ("cost_gbp", -0.01), ("attendance", 2**31)]:
        add(f"{field} {value!r}", SCHEMA, make_event(meeting, {field: value}))
    add("cost_gbp -0.0 (valid)", SCHEMA, make_event(meeting, {"cost_gbp": -0.0}))
    feedback = "feedback.published"
    for field, value in [("round", 3), ("round", "1"), ("boroughs", []), ("boroughs", "some"), ("url", "ftp://x.org"),
                         ("url", "https://ex ample.org"), ("url", "https://ex\u00e4mple.org"), ("url", "https://"),
                         ("themes", ["robbery"] * 22)]:
        add(f"{field} {str(value)[:20]!r}", SCHEMA, make_event(feedback, {field: value}))
    add("priority rank 22", SCHEMA, make_event("priorities.adopted", {"priorities": [{"rank": 22, "theme": "violence", "scope": "LONDON"}]}))
    add("target_event_id in braces", SCHEMA, make_event("event.retracted", {"target_event_id": f"{{{uuid}}}"}))
    add("target_event_id upper case (valid)", SCHEMA, make_event("event.retracted", {"target_event_id": uuid.upper()}))

    # rules only the pipeline checks
    add("a theme ranked twice", "distinct", make_event(response, {"themes": [{"theme": "drugs", "rank": 1}, {"theme": "drugs", "rank": 2}]}))
    add("ranks with a gap", "ranks 1..n", _with(response, "payload.themes.1.rank", 3))
    add("survey priorities repeated", "distinct", make_event(survey, {"priorities": ["drugs", "drugs"]}))
    add("period_end before period_start", "in order", make_event(audit, {"period_start": "2026-04-01", "period_end": "2025-03-31"}))
    add("due_on before opens_on", "in order", make_event("cycle.opened", {"timetable": [{"stage": "brief", "opens_on": "2026-03-02", "due_on": "2026-03-01"}]}))
    add("a stage with two windows", "distinct", make_event("cycle.opened", {"timetable": [
        {"stage": "brief", "opens_on": "2026-03-01", "due_on": "2026-03-31"}] * 2}))
    add("a borough with two targets", "distinct", make_event("programme.approved", {"targets": [{"borough": "E09000012", "min_responses": 1}] * 2}))
    add("a scope's theme adopted twice", "distinct", make_event("priorities.adopted", {"priorities": [
        {"rank": 1, "theme": "violence", "scope": "LONDON"}, {"rank": 2, "theme": "violence", "scope": "LONDON"}]}))
    add("meeting themes repeated", "distinct", make_event(meeting, {"themes": ["drugs", "drugs"]}))
    add("round 1.0 (valid: JSON Schema and the pipeline both read it as 1)", SCHEMA, make_event(feedback, {"round": 1.0}))
    add("count 1e3", "integer spelling", line(make_event(audit)).replace(b'"count": 4120', b'"count": 1e3'))
    add("a lone surrogate", "JSON text", line(make_event(signed)).replace(b'"source": "tests"', b'"source": "\\ud800"'))

    # JSON text that is no event, for anyone
    add("NaN", SCHEMA, line(make_event(survey)).replace(b'"weight": 1.37', b'"weight": NaN'))
    add("Infinity", SCHEMA, line(make_event(meeting)).replace(b'"cost_gbp": 350.0', b'"cost_gbp": Infinity'))
    add("1e999", SCHEMA, line(make_event(meeting)).replace(b'"cost_gbp": 350.0', b'"cost_gbp": 1e999'))
    add("a huge integer", SCHEMA, line(make_event(meeting)).replace(b'"attendance": 41', b'"attendance": ' + b"9" * 5000))
    add("cut short", SCHEMA, line(make_event(signed))[:-5])
    add("not UTF-8", SCHEMA, line(make_event(signed)).replace(b"tests", b"t\xffsts"))
    add("a JSON array", SCHEMA, json.dumps([make_event(signed)]).encode())
    add("a key twice, last one valid", SCHEMA, line(make_event(signed))[:-1] + b', "source": "other"}')
    add("a BOM", READ_PAST, b"\xef\xbb\xbf" + line(make_event(signed)))
    return cases
