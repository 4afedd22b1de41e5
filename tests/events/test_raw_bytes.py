"""Validation is total over raw bytes: whatever arrives becomes an acceptance or a small rejection.

One line of more than 4,300 digits once escaped the parser as a ValueError. The fuzzers
here feed ``verdict`` arbitrary bytes and valid events broken the ways senders and
attackers break them (cut short, a byte flipped, a huge integer, a BOM, a lone surrogate,
deep nesting, NaN and Infinity, stray bytes), with a fixed set of examples and a short random run.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contract.forms import MAX_ECHO
from events.contract.validation import BOM, MAX_REASON_CHARS, MAX_REASONS, Accepted, Rejected, verdict
from tests.support.events import PAYLOADS, line, make_event

RECEIVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)
FIXED = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
RANDOM = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def valid_lines() -> st.SearchStrategy[bytes]:
    return st.sampled_from(sorted(PAYLOADS)).map(lambda t: line(make_event(t)))


def _at(raw: bytes, fraction: float) -> int:
    return int(len(raw) * fraction)


MUTATIONS = {
    "truncated": lambda raw, f, junk: raw[: _at(raw, f)],
    "byte flipped": lambda raw, f, junk: raw[: _at(raw, f)] + bytes([raw[_at(raw, f)] ^ 0xFF]) + raw[_at(raw, f) + 1 :]
    if raw else raw,
    "bytes inserted": lambda raw, f, junk: raw[: _at(raw, f)] + junk + raw[_at(raw, f) :],
    "huge integer": lambda raw, f, junk: raw.replace(b'"schema_version": 1', b'"schema_version": ' + b"7" * (4301 + len(junk))),
    "huge integer in the payload": lambda raw, f, junk: raw[:-2] + b', "x": -' + b"9" * 5000 + b"}}",
    "BOM": lambda raw, f, junk: BOM + raw,
    "BOM twice": lambda raw, f, junk: BOM + BOM + raw,
    "lone surrogate": lambda raw, f, junk: raw.replace(b'"source": "tests"', b'"source": "\\udc80"'),
    "raw surrogate bytes": lambda raw, f, junk: raw.replace(b'"source": "tests"', b'"source": "\xed\xb2\x80"'),
    "deep nesting": lambda raw, f, junk: b'{"a":' * 50_000 + raw + b"}" * 50_000,
    "deep list": lambda raw, f, junk: b"[" * (1000 + len(junk) * 1000) + b"]" * 1000,
    "NaN": lambda raw, f, junk: raw.replace(b'"schema_version": 1', b'"schema_version": NaN'),
    "Infinity": lambda raw, f, junk: raw[:-2] + b', "weight": -Infinity}}',
    "huge exponent": lambda raw, f, junk: raw.replace(b'"schema_version": 1', b'"schema_version": 1e999999'),
    "many bad values": lambda raw, f, junk: raw[:-2] + b", " + b", ".join(b'"k%d": "%s"' % (i, b"x" * 500) for i in range(400)) + b"}}",
    "UTF-16": lambda raw, f, junk: raw.decode().encode("utf-16"),
    "NUL": lambda raw, f, junk: raw.replace(b"tests", b"te\x00sts"),
}


def mutated_lines() -> st.SearchStrategy[tuple[str, bytes]]:
    return st.tuples(st.sampled_from(sorted(MUTATIONS)), valid_lines(), st.floats(0, 0.999), st.binary(max_size=20)).map(
        lambda drawn: (drawn[0], MUTATIONS[drawn[0]](drawn[1], drawn[2], drawn[3]))
    )


def hostile_lines() -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutated_lines().map(lambda m: m[1]))


def assert_a_small_verdict(raw: bytes) -> Accepted | Rejected:
    checked = verdict(raw, RECEIVED_AT)
    assert isinstance(checked, (Accepted, Rejected))
    if isinstance(checked, Rejected):
        assert 1 <= len(checked.reasons) <= MAX_REASONS + 1
        assert all(0 < len(reason) <= MAX_REASON_CHARS for reason in checked.reasons)
        assert not any(reason.startswith("line: could not be read as an event") for reason in checked.reasons), checked
    return checked


@FIXED
@given(hostile_lines())
def test_any_bytes_get_a_small_verdict_fixed_examples(raw: bytes) -> None:
    assert_a_small_verdict(raw)


@RANDOM
@given(hostile_lines())
def test_any_bytes_get_a_small_verdict_random_examples(raw: bytes) -> None:
    assert_a_small_verdict(raw)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_is_judged(name: str) -> None:
    assert_a_small_verdict(MUTATIONS[name](line(make_event("stage.signed_off")), 0.5, b"\x00"))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (line(make_event("stage.signed_off")).replace(b'"schema_version": 1', b'"schema_version": ' + b"7" * 5000),
         "schema_version: an integer of 5,000 digits is too large"),
        (line(make_event("cdrp.audit_submitted")).replace(b'"count": 4120', b'"count": -' + b"1" * 4301),
         "payload.crime_counts[0].count: an integer of 4,301 digits is too large"),
    ],
)
def test_an_integer_too_long_to_read_is_named_by_its_field(raw: bytes, reason: str) -> None:
    assert verdict(raw, RECEIVED_AT).reasons == (reason,)


def test_reasons_are_bounded_in_number_and_length() -> None:
    """One 789 KB line once left 3.2 MB of reasons."""
    event = make_event("feedback.published", {"boroughs": ["x" * 5000] * 30, "themes": ["y" * 5000] * 10})
    event["payload"].update({f"z{i}" * 1000: 1 for i in range(30)})
    checked = verdict(line(event), RECEIVED_AT)
    assert len(checked.reasons) == MAX_REASONS + 1
    assert checked.reasons[-1].startswith("… and ") and checked.reasons[-1].endswith(" more")
    assert all(len(reason) <= MAX_ECHO * 2 + 60 for reason in checked.reasons), checked.reasons
    assert sum(map(len, checked.reasons)) < 4000


@pytest.mark.parametrize("prefix", [BOM, b""])
def test_a_byte_order_mark_before_an_event_is_read_past(prefix: bytes) -> None:
    assert isinstance(verdict(prefix + line(make_event("stage.signed_off")), RECEIVED_AT), Accepted)
