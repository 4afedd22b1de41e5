"""Which dead letters carry a respondent's reference, read by what their JSON means.

A dead letter keeps the bytes of a line the contract refused: often not valid
JSON (that is why it is dead), perhaps cut at 64 KiB, perhaps not UTF-8. An
erasure must still find the respondent in it however the sender spelled the
reference: as UTF-8 (``"r-Zoë"``), with JSON escapes (``"r\\u002dZo\\u00eb"``,
surrogate pairs for astral characters), or in another Unicode normal form.

So a dead letter is read as the strings it holds, not as bytes: every JSON
string literal in it is decoded, wherever it stands and whatever surrounds it.
Literals are read between every two consecutive quotes (both ways of pairing
them, so a stray quote in broken JSON cannot hide the next string), plus the
unterminated literal a truncation leaves at the end. A string that equals the reference
under Unicode NFC carries it: two spellings of one text are one reference
(see docs/decisions.md, "Erasure finds a reference by its meaning").

Redacting a dead letter drops its bytes and the values its reasons echo
(``'Zoë at 12 Acacia Road' is not an age_band`` becomes ``'…' is not an
age_band``): the field path and the rule stay, for the data team.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable

_QUOTE_OR_ESCAPE = re.compile(r'\\.|"', re.DOTALL)  # an escape is skipped whole, so \" is no quote
_PARTIAL_ESCAPE = re.compile(r'\\(?:u[0-9a-fA-F]{0,3})?$')  # what a truncation can leave at the end
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_DECODER = json.JSONDecoder(strict=False)  # control characters inside a string do not hide it
MAX_REFERENCE_CHARS = 256  # a reference is at most 64 characters; its NFD form can be longer
REDACTED_VALUE = "'…'"


def nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def spellings(respondent_ref: str) -> tuple[str, ...]:
    """The reference as sent and in the normal forms that spell the same text (each once)."""
    return tuple(dict.fromkeys((respondent_ref, nfc(respondent_ref), unicodedata.normalize("NFD", respondent_ref))))


def texts(raw: bytes) -> list[str]:
    """The dead letter's bytes as text: UTF-8 (invalid bytes replaced) and, when they are not
    UTF-8, Latin-1 too; and the UTF-16/32 the json module would detect when they hold NULs."""
    found = [raw.decode("utf-8", "replace")]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        found.append(raw.decode("latin-1"))
    if b"\x00" in raw:
        encoding = json.detect_encoding(raw)
        if encoding != "utf-8":
            found.append(raw.decode(encoding, "replace"))
    return found


def json_strings(raw: bytes) -> set[str]:
    """Every string the bytes can hold as a JSON string literal, decoded, keys and values alike.

    The text between every two consecutive (unescaped) quotes is read as a literal, so both ways
    of pairing the quotes are tried and one stray quote cannot hide the strings after it; what
    follows the last quote is read as a literal cut short. Linear in the length of the bytes."""
    strings: set[str] = set()
    for text in texts(raw):
        quotes = [m.start() for m in _QUOTE_OR_ESCAPE.finditer(text) if m.group() == '"']
        for start, end in zip(quotes, quotes[1:]):
            strings.add(_decode(text[start : end + 1]))
        if quotes:
            strings.add(_decode('"' + _PARTIAL_ESCAPE.sub("", text[quotes[-1] + 1 :]) + '"'))
    strings.discard("")
    return strings


def _decode(literal: str) -> str:
    try:
        value = _DECODER.decode(literal)
    except ValueError:  # a bad escape: keep the characters between the quotes as they are
        return literal[1:-1]
    return value if isinstance(value, str) else ""


def candidate_references(raw: bytes) -> set[str]:
    """The strings of ``raw`` that could be a reference, each as it is and in NFC."""
    found = set()
    for string in json_strings(raw):
        if len(string) <= MAX_REFERENCE_CHARS:
            found.update((string, nfc(string)))
    return found


def carries(raw: bytes, respondent_ref: str) -> bool:
    """Whether any JSON string in ``raw`` is ``respondent_ref``, under NFC."""
    wanted = nfc(respondent_ref)
    if raw.isascii() and b"\\" not in raw and b"\x00" not in raw:  # plain ASCII UTF-8: the bytes must be there
        return wanted.isascii() and wanted.encode() in raw and wanted in json_strings(raw)
    return any(string == wanted or nfc(string) == wanted for string in json_strings(raw))


def redact_reasons(reasons: Iterable[str]) -> list[str]:
    """The reasons with every quoted value they echo replaced by ``'…'``."""
    return [_QUOTED.sub(REDACTED_VALUE, reason) for reason in reasons]
