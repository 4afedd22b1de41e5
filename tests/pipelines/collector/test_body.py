"""A request's body as events: each keeps the bytes it was sent as, and a refusal says what to send."""

from __future__ import annotations

import pytest

from pipelines.collector.body import JSON, NDJSON, BodyRefused, events_of, media_type


def test_json_lines_keep_each_lines_bytes() -> None:
    body = b'{"a": 1}\r\n\n  {"b":2}\n{"c": 3}'
    assert events_of(body, NDJSON, 10) == [b'{"a": 1}', b"", b'  {"b":2}', b'{"c": 3}']
    assert events_of(b'{"a": 1}\n', NDJSON, 10) == [b'{"a": 1}']  # the last newline ends a line, it adds none


def test_an_array_gives_each_items_own_text() -> None:
    body = '\ufeff [ {"b": "é", "a" : 1.0e0},\n\t"x" ,[1, {"c": [2]}], null ] \n'.encode()
    assert events_of(body, JSON, 10) == ['{"b": "é", "a" : 1.0e0}'.encode(), b'"x"', b'[1, {"c": [2]}]', b"null"]


@pytest.mark.parametrize("body, said", [
    (b"", "holds no events"),
    (b"[]", "holds no events"),
    (b'{"event_id": "x"}', "must be one array"),
    (b'[{"a": 1} {"b": 2}]', "expected ',' or ']' after item 1"),
    (b'[{"a": 1},', "not a well-formed JSON array"),
    (b'[{"a": 1}] [', "text after the array"),
    (b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]", "nested too deeply"),
    (b'["\xff"]', "not UTF-8"),
], ids=["empty", "empty array", "an object", "no comma", "unclosed", "after the array", "deep", "not utf-8"])
def test_a_body_that_is_not_an_array_of_events_is_400(body: bytes, said: str) -> None:
    with pytest.raises(BodyRefused) as refused:
        events_of(body, JSON, 10)
    assert refused.value.status == 400 and said in refused.value.reason


def test_more_events_than_allowed_is_413_either_way() -> None:
    for kind, body in ((NDJSON, b"{}\n" * 4), (JSON, b"[" + b",".join([b"{}"] * 4) + b"]")):
        with pytest.raises(BodyRefused) as refused:
            events_of(body, kind, 3)
        assert refused.value.status == 413 and "at most 3" in refused.value.reason
        assert len(events_of(body, kind, 4)) == 4


@pytest.mark.parametrize("header, kind", [
    ("application/x-ndjson", NDJSON), ("application/json; charset=utf-8", JSON), ('Application/JSON;Charset="UTF8"', JSON),
])
def test_the_two_media_types(header: str, kind: str) -> None:
    assert media_type(header) == kind


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/jsonl", "application/json; charset=utf-16"])
def test_any_other_media_type_is_415(header: str | None) -> None:
    with pytest.raises(BodyRefused) as refused:
        media_type(header)
    assert refused.value.status == 415
