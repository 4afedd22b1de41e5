"""Dead letters read for an erasure by what their JSON means: every spelling of a reference is found,
in broken or cut JSON too, another reference is not; redacted reasons keep the path and the rule.
Tests taking ``open_store`` run on both store backends (tests/support/stores.py); the one about
an erasure an older store missed edits the embedded store's SQLite index."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from events.contract.validation import verdict
from events.storage.redaction import carries, json_strings, redact_reasons
from events.storage.store import EventStore, Received
from tests.support.events import line, make_event
from tests.support.stores import OpenStore

REF = "r-Zoë-\U0001F600-12"


@pytest.mark.parametrize("raw", [
    json.dumps({"ref": REF}, ensure_ascii=False).encode(),  # UTF-8
    json.dumps({"ref": REF}).encode(),  # \u00eb and a surrogate pair
    b'{"ref": "r\\u002dZo\\u00EB\\u002d\\uD83D\\uDE00\\u002d12"}',  # every escape, upper-case hex
    json.dumps({"ref": unicodedata.normalize("NFD", REF)}, ensure_ascii=False).encode(),  # NFD
    b'{"a": "x"y", "ref": "' + REF.encode() + b'", "b": 1',  # a stray quote, not valid JSON
    b'{"comment": "12 Acacia Road", "ref": "' + REF.encode(),  # cut before the closing quote
    b'{"ref": "' + REF.encode() + b'", "bad": "\xff\xfe"}',  # not UTF-8
    json.dumps({"ref": REF}).encode("utf-16"),  # another encoding the json module reads
    b'["' + REF.encode() + b'"]',  # anywhere, not only in the field
], ids=["utf8", "escaped", "escaped-ascii", "nfd", "stray-quote", "truncated", "not-utf8", "utf16", "array"])
def test_every_spelling_of_the_reference_is_found(raw: bytes) -> None:
    assert carries(raw, REF)


@pytest.mark.parametrize("raw", [
    json.dumps({"ref": REF + "0"}, ensure_ascii=False).encode(),  # a longer reference
    json.dumps({"ref": REF[:-1]}).encode(),  # a shorter one
    json.dumps({"note": f"see {REF}"}, ensure_ascii=False).encode(),  # inside other text
    json.dumps({"ref": "r-Zoe-\U0001F600-12"}, ensure_ascii=False).encode(),  # another letter
], ids=["longer", "shorter", "inside-text", "other-letter"])
def test_another_reference_is_not_taken_for_it(raw: bytes) -> None:
    assert not carries(raw, REF)


def test_escaped_quotes_do_not_make_reading_quadratic() -> None:
    assert json_strings(b'"' + b'\\"' * 40_000 + b'"') == {'"' * 40_000}


def test_redacted_reasons_keep_the_path_and_the_rule() -> None:
    reasons = ["payload.respondent.age_band: 'Zoë at 12 Acacia Road' is not an age_band",
               "payload.themes: must be distinct (\"it's\" appears more than once)", "payload.comment: is required"]
    assert redact_reasons(reasons) == ["payload.respondent.age_band: '…' is not an age_band",
                                       "payload.themes: must be distinct ('…' appears more than once)",
                                       "payload.comment: is required"]


def bad_response(ref_text: str, age_band: str) -> bytes:
    event = make_event("consultation.response_received", {"respondent": {"respondent_ref": "PLACEHOLDER", "age_band": age_band}})
    return line(event).replace(b'"PLACEHOLDER"', f'"{ref_text}"'.encode())


def test_a_bad_line_of_someone_already_erased_is_stored_redacted_once(open_store: OpenStore) -> None:
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": REF})
    late = bad_response("r\\u002dZo\\u00eb-\\ud83d\\ude00-12", "Zoë at 12 Acacia Road")
    other = bad_response("r-someone-else", "Zoë at 12 Acacia Road")
    with open_store(writer=True) as store:
        store.append([Received(line(erasure), "a:1", verdict(line(erasure)))])
        first = store.append([Received(late, "b:1", verdict(late)), Received(other, "b:2", verdict(other))])
        again = store.append([Received(late, "b:1", verdict(late))])
        letters = store.dead_letters()
    assert len(first.rejected) == 2 and first.already_dead_lettered == []
    assert again.already_dead_lettered == ["b:1"], "a redelivery is still known, by origin and redacted reasons"
    assert [(d["origin"], d["raw"]) for d in letters] == [("b:1", None), ("b:2", other)]
    assert letters[0]["reasons"] == ["payload.respondent.age_band: '…' is not an age_band"]
    assert "Acacia" in letters[1]["reasons"][0], "someone else's dead letter is left whole"


def test_a_store_redacts_once_what_an_earlier_erasure_missed(tmp_path: Path) -> None:
    """A store whose erasure matched one spelling only: the next writer redacts the rest, and counts it."""
    erasure = make_event("respondent.erasure_requested", {"respondent_ref": REF})
    missed = bad_response(REF, "Zoë at 12 Acacia Road")
    with EventStore(tmp_path, writer=True) as store:
        store.append([Received(line(erasure), "a:1", verdict(line(erasure)))])
        assert store.redaction_mark() == 0
    db = sqlite3.connect(tmp_path / "store.sqlite")  # as the earlier version left it: the bytes kept, unchecked
    db.execute("INSERT INTO dead_letters (received_at, origin, reasons, raw) VALUES ('2026-01-01', 'b:1', '[]', ?)", (missed,))
    db.execute("DELETE FROM meta WHERE key = 'dead_letters_checked_for_erased'")
    db.commit()
    db.close()
    with EventStore(tmp_path, writer=True) as store:
        assert [d["raw"] for d in store.dead_letters()] == [None]
        assert store.redaction_mark() == 1
    assert b"Acacia" not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
