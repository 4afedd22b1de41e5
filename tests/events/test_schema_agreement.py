"""The published JSON Schemas say what the pipeline does: a standard validator that is not ours agrees with it.

A sender in another language validates against ``events/contract/schemas/``. Here
``jsonschema`` (draft 2020-12, with its format checker, so ``date-time``, ``date`` and
``uuid`` are checked) reads each line of the contract's corpus as a strict JSON parser
would (no NaN or Infinity), and its verdict must be the pipeline's, except on lines that
break only a rule the pipeline alone checks, each listed in docs/events.md.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from events.contract.json_schema import schema_for
from events.contract.models import EVENT_TYPES
from events.contract.validation import Accepted, verdict
from tests.support.contract_corpus import PIPELINE_ONLY, READ_PAST, SCHEMA, Case, corpus
from tests.support.paths import REPO_ROOT

RECEIVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
VALIDATORS = {
    t: Draft202012Validator(schema_for(t), format_checker=Draft202012Validator.FORMAT_CHECKER) for t in EVENT_TYPES
}
CASES = corpus()


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def schema_accepts(raw: bytes) -> bool:
    """A foreign sender's check: strict JSON, then the schema of the event's type."""
    try:  # as a browser's JSON.parse: UTF-8 text, no byte order mark, no NaN
        document = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
    except ValueError:
        return False
    if not isinstance(document, dict) or document.get("event_type") not in VALIDATORS:
        return False
    return VALIDATORS[document["event_type"]].is_valid(document)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_schemas_and_the_pipeline_agree(case: Case) -> None:
    by_schema = schema_accepts(case.raw)
    checked = verdict(case.raw, RECEIVED_AT)
    by_pipeline = isinstance(checked, Accepted)
    reasons = getattr(checked, "reasons", ())
    if case.tag == SCHEMA:
        assert by_schema == by_pipeline, (by_schema, reasons)
    elif case.tag == READ_PAST:
        assert by_pipeline and not by_schema
    else:
        assert case.tag in PIPELINE_ONLY
        assert by_schema and not by_pipeline, (by_schema, reasons)


def test_the_corpus_has_both_verdicts_and_every_pipeline_only_rule() -> None:
    outcomes = {(c.tag == SCHEMA, isinstance(verdict(c.raw, RECEIVED_AT), Accepted)) for c in CASES}
    assert outcomes == {(True, True), (True, False), (False, False), (False, True)}
    assert {c.tag for c in CASES} - {SCHEMA, READ_PAST} == set(PIPELINE_ONLY)


def test_the_format_checker_really_checks_formats() -> None:
    """Without rfc3339-validator installed, ``date-time`` would pass anything; the patterns alone let 30 February by."""
    validator = VALIDATORS["stage.signed_off"]
    event = json.loads(next(c.raw for c in CASES if c.name == "valid stage.signed_off"))
    assert validator.is_valid(event)
    assert not validator.is_valid({**event, "occurred_at": "2026-02-30T10:00:00Z"})
    assert not Draft202012Validator.FORMAT_CHECKER.conforms("2026-07-14T18:30:00", "date-time")
    assert not Draft202012Validator.FORMAT_CHECKER.conforms("2025-02-30", "date")


def test_the_contract_docs_list_every_rule_only_the_pipeline_checks() -> None:
    text = (REPO_ROOT / "docs" / "events.md").read_text()
    section = " ".join(text.split("## Rules only the pipeline checks", 1)[1].split("\n## ", 1)[0].split())
    missing = [rule for rule, words in PIPELINE_ONLY.items() if words not in section]
    assert not missing, missing
