"""A record's line (``events.storage.conversion.record_line``): the same value back, in the json module's bytes.

The store wrote its lines with the json module before msgspec; lines written since sit beside them in the
same segments, and a reader (DuckDB, ``json.loads``, a backup's verify) must not be able to tell them apart.
"""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from events.storage.conversion import record_line

# What a record holds: what JSON parses to. Text without lone surrogates, which no encoder can write as UTF-8.
SCALARS = st.none() | st.booleans() | st.integers() | st.text()
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def values(scalars: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                        max_leaves=12)


def json_module_line(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@given(values(SCALARS))
def test_without_floats_a_line_is_byte_for_byte_the_json_modules(value: object) -> None:
    assert record_line(value) == json_module_line(value)


@given(values(SCALARS | FLOATS))
def test_every_line_reads_back_as_the_same_value(value: object) -> None:
    assert json.loads(record_line(value)) == value


def test_a_float_in_exponent_form_differs_only_in_its_spelling() -> None:
    assert record_line({"score": 1e16, "share": 2.5e-05}) == b'{"score":1e16,"share":0.000025}'
    assert json_module_line({"score": 1e16, "share": 2.5e-05}) == b'{"score":1e+16,"share":2.5e-05}'


def test_control_characters_and_non_ascii_text_are_written_as_before() -> None:
    text = "".join(map(chr, range(0x20))) + '"\\/\x7f é 中 😀 \u2028'
    assert record_line({"comment": text}) == json_module_line({"comment": text})
