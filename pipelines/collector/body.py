"""A request's body as the events it carries: JSON Lines, or one JSON array.

Each event keeps the bytes it was sent as, because the contract judges bytes
(``events.contract.validation.verdict``) and a dead letter keeps them:

- ``application/x-ndjson``: one event per line (``\\n``, a ``\\r`` before it
  is dropped); the newline after the last line is optional. A line that is
  not an event (broken JSON, a blank line between events) is a rejected line
  like any other, as in `planning ingest`.
- ``application/json``: one array of events; each item's own text is its
  bytes. The array must be well-formed JSON to find where each item ends,
  so a broken array refuses the whole request (400), and nothing is stored.

A ``charset`` parameter, if given, must be UTF-8. Refusals are
:class:`BodyRefused`, carrying the HTTP status and a reason naming what to change.
"""

from __future__ import annotations

import json

NDJSON = "application/x-ndjson"
JSON = "application/json"
MEDIA_TYPES = (NDJSON, JSON)
_WHITESPACE = " \t\n\r"


class BodyRefused(ValueError):
    """The request is refused as a whole: ``status`` (400, 413 or 415) and a reason that says what to do."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def media_type(header: str | None) -> str:
    """``application/x-ndjson`` or ``application/json`` from a Content-Type header, else a 415 refusal."""
    name, *parameters = (header or "").split(";")
    name = name.strip().lower()
    if name not in MEDIA_TYPES:
        shown = f"Content-Type {name!r}" if name else "no Content-Type"
        raise BodyRefused(415, f"{shown}: send {NDJSON} (one event per line) or {JSON} (an array of events)")
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyRefused(415, f"Content-Type charset {value.strip()!r}: events are UTF-8; send charset=utf-8 or none")
    return name


def events_of(body: bytes, kind: str, max_events: int) -> list[bytes]:
    """The raw bytes of each event in ``body``; refused when it holds none, or more than ``max_events``."""
    events = [] if not body.strip() else _lines(body, max_events) if kind == NDJSON else _items(body, max_events)
    if not events:
        raise BodyRefused(400, "body: holds no events; send at least one")
    return events


def _too_many(max_events: int) -> BodyRefused:
    return BodyRefused(413, f"body: more than {max_events:,} events; split it into requests of at most {max_events:,}")


def _lines(body: bytes, max_events: int) -> list[bytes]:
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline after the last line
    if len(lines) > max_events:
        raise _too_many(max_events)
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _items(body: bytes, max_events: int) -> list[bytes]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BodyRefused(400, f"body: not UTF-8 ({error})") from None
    decoder = json.JSONDecoder()
    at = _skip(text, 0)
    if not text.startswith("[", at):
        raise BodyRefused(400, f"body: a body of {JSON} must be one array of events; send {NDJSON} for one event per line")
    at = _skip(text, at + 1)
    items: list[bytes] = []
    if text.startswith("]", at):
        return _after_array(text, at + 1, items)
    while True:
        try:
            _, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as error:
            raise BodyRefused(400, f"body: not a well-formed JSON array ({error}); nothing was stored") from None
        except RecursionError:
            raise BodyRefused(400, f"body: item {len(items) + 1} is nested too deeply to be an event; nothing was stored") from None
        items.append(text[at:end].encode())
        if len(items) > max_events:
            raise _too_many(max_events)
        at = _skip(text, end)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("]", at):
            return _after_array(text, at + 1, items)
        else:
            raise BodyRefused(400, f"body: expected ',' or ']' after item {len(items)} of the array (character {at}); "
                                   "nothing was stored")


def _after_array(text: str, at: int, items: list[bytes]) -> list[bytes]:
    if _skip(text, at) != len(text):
        raise BodyRefused(400, "body: text after the array's closing ']'; send one array; nothing was stored")
    return items


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at
