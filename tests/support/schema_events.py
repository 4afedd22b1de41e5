"""Events drawn from the published JSON Schemas, biased to the edges of every bound they state.

``hypothesis-jsonschema`` would do this, but its release of the time (0.23.1) fails on
Hypothesis 6.170 and on draft 2020-12 ``$defs`` references, so the strategies here read the
few keywords our schemas use: ``$ref``, ``anyOf``/``oneOf``, ``const``, ``enum``,
``type`` with its bounds (``minimum``, ``exclusiveMinimum``, ``maximum``, ``minLength``,
``maxLength``, ``minItems``, ``maxItems``), ``format`` (date-time, date, uuid),
``pattern`` (the cycle's and a URL's), ``properties``/``required`` and
``propertyNames``/``additionalProperties``. Each bound is hit exactly as often as it
is hit in between: the extreme years and offsets, the longest strings, the largest counts.

A schema cannot state the rules only the pipeline checks (docs/events.md, "Rules only the
pipeline checks"); ``obeying_pipeline_rules`` mends a drawn event so that it obeys them
too, so that most drawn events are ones the pipeline accepts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import strategies as st

from events.contract import forms
from events.contract.cycle import Cycle
from events.contract.json_schema import schema_for
from events.contract.models import EVENT_TYPES

Schema = dict[str, Any]
UNICODE = st.characters(exclude_categories=("Cs",))  # any character JSON Schema can say (no lone surrogates)
URL_CHARACTERS = st.characters(min_codepoint=ord("!"), max_codepoint=ord("~"))


def _edgy_integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({low, high, min(low + 1, high), max(high - 1, low)})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _edgy_size(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(sorted({low, high})), st.integers(low, min(high, low + 5)))


def instants() -> st.SearchStrategy[str]:
    """RFC 3339 date-times in the contract's years: the first and last years, every offset, fractions."""
    def text(day: date, hour: int, minute: int, second: int, fraction: str, offset: str) -> str:
        return f"{day.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"

    offsets = st.one_of(st.sampled_from(["Z", "+00:00", "-00:00", "+23:59", "-23:59", "+01:00"]),
                        st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"),
                                  st.integers(0, 23), st.integers(0, 59)))
    fractions = st.one_of(st.just(""), st.integers(1, 6).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda f: "." + f)))
    return st.builds(text, days(), _edgy_integers(0, 23), _edgy_integers(0, 59), _edgy_integers(0, 59), fractions, offsets)


def days() -> st.SearchStrategy[date]:
    first, last = date(forms.FIRST_YEAR, 1, 1), date(forms.LAST_YEAR, 12, 31)
    return st.one_of(st.sampled_from([first, last, date(2024, 2, 29)]), st.dates(first, last))


def from_schema(schema: Schema, root: Schema) -> st.SearchStrategy[Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of(*(from_schema(option, root) for option in schema.get("anyOf") or schema["oneOf"]))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**63)) + ("exclusiveMinimum" in schema))
        return _edgy_integers(low, schema.get("maximum", 2**63 - 1))
    if kind == "number":
        low, high = schema.get("minimum", schema.get("exclusiveMinimum", 0.0)), schema["maximum"]
        exclusive = "exclusiveMinimum" in schema
        edges = [high, 5e-324 if exclusive else low]
        return st.one_of(st.sampled_from(edges), st.floats(low, high, exclude_min=exclusive, allow_nan=False, allow_infinity=False))
    if kind == "string":
        return _strings(schema)
    if kind == "array":
        items = from_schema(schema["items"], root)
        return _edgy_size(schema.get("minItems", 0), schema.get("maxItems", 10)).flatmap(
            lambda n: st.lists(items, min_size=n, max_size=n)
        )
    if kind == "object" and "propertyNames" in schema:
        keys = schema["propertyNames"]["enum"]
        return st.dictionaries(st.sampled_from(keys), from_schema(schema["additionalProperties"], root), max_size=len(keys))
    if kind == "object":
        return _objects(schema, root)
    raise NotImplementedError(f"no strategy for {schema}")


def _strings(schema: Schema) -> st.SearchStrategy[str]:
    form = schema.get("format")
    if form == "date-time":
        return instants()
    if form == "date":
        return days().map(date.isoformat)
    if form == "uuid":
        return st.uuids().flatmap(lambda u: st.sampled_from([str(u), str(u).upper()]))
    pattern = schema.get("pattern")
    if pattern == forms.CYCLE_PATTERN:
        return _edgy_integers(forms.FIRST_PLAN_YEAR, forms.LAST_PLAN_YEAR).map(lambda p: str(Cycle(p)))
    low, high = schema.get("minLength", 0), schema.get("maxLength", 50)
    if pattern is not None:
        assert pattern == "^https?://[!-~]+$", f"no strategy for the pattern {pattern}"
        return st.tuples(st.sampled_from(["http://", "https://"]), st.integers(1, 20)).flatmap(
            lambda p: st.text(URL_CHARACTERS, min_size=1, max_size=min(p[1], high - len(p[0]))).map(lambda rest: p[0] + rest)
        )
    return _edgy_size(low, high).flatmap(_text_of_length)


def _text_of_length(length: int) -> st.SearchStrategy[str]:
    """Text of exactly ``length`` characters; a long one repeats a drawn stretch (Hypothesis draws at most a few thousand)."""
    stretch = min(length, 40)
    return st.text(UNICODE, min_size=stretch, max_size=stretch).map(lambda t: (t * (length // max(len(t), 1) + 1))[:length])


def _objects(schema: Schema, root: Schema) -> st.SearchStrategy[dict[str, Any]]:
    required = set(schema.get("required", ()))
    fields = {
        name: from_schema(field, root) if name in required else st.one_of(st.just(_ABSENT), from_schema(field, root))
        for name, field in schema.get("properties", {}).items()
    }
    return st.fixed_dictionaries(fields).map(lambda drawn: {k: v for k, v in drawn.items() if v is not _ABSENT})


_ABSENT = object()


def events(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Events of one type as its JSON Schema describes them, at the edges of its bounds."""
    schema = schema_for(event_type)
    return from_schema(schema, schema)


def any_events() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(*(events(t) for t in EVENT_TYPES))


# --- the rules a schema cannot state ---------------------------------------------------------


def obeying_pipeline_rules(event: dict[str, Any]) -> dict[str, Any]:
    """The event mended to obey the rules only the pipeline checks (distinct themes, ranks 1..n,
    periods and windows in order, one window per stage and one target per borough)."""
    payload = dict(event["payload"])
    kind = event["event_type"]
    if kind == "consultation.response_received":
        payload["themes"] = _ranked(payload["themes"])
    elif kind == "cdrp.audit_submitted":
        payload["priorities"] = _ranked(payload["priorities"])
        start, end = sorted([payload["period_start"], payload["period_end"]])
        payload["period_start"], payload["period_end"] = start, end
    elif kind in ("survey.response_recorded", "group.meeting_held"):
        key = "priorities" if kind.startswith("survey") else "themes"
        if key in payload:
            payload[key] = list(dict.fromkeys(payload[key]))
    elif kind == "cycle.opened" and "timetable" in payload:
        windows = {w["stage"]: w for w in payload["timetable"]}.values()
        payload["timetable"] = [{**w, "opens_on": min(w["opens_on"], w["due_on"]), "due_on": max(w["opens_on"], w["due_on"])}
                                for w in windows]
    elif kind == "programme.approved" and "targets" in payload:
        payload["targets"] = list({t["borough"]: t for t in payload["targets"]}.values())
    elif kind == "priorities.adopted":
        pairs = list({(p["scope"], p["theme"]): p for p in payload["priorities"]}.values())
        per_scope: dict[str, int] = {}
        payload["priorities"] = []
        for priority in pairs:  # ranks 1, 2, ... within each scope
            per_scope[priority["scope"]] = per_scope.get(priority["scope"], 0) + 1
            payload["priorities"].append({**priority, "rank": per_scope[priority["scope"]]})
    return {**event, "payload": payload}


def _ranked(themes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    distinct = list({t["theme"]: t for t in themes}.values())
    return [{**t, "rank": i} for i, t in enumerate(distinct, start=1)]

