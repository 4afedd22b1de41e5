"""The verdict on one raw event (a JSON Lines line or a Kafka message value).

``verdict`` serves `planning ingest`, the stream worker and the emitter, so a
sender, a file and a topic meet exactly the same contract. It is total: any
bytes at all (empty, oversized, not JSON, nested past the parser's limits)
get a verdict, never an exception. A rejection carries one reason per broken
rule, each naming the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError

from events.contract.json_text import parse_json
from events.contract.models import CURRENT_SCHEMA_VERSION, EVENT_TYPES, AnyEvent, Envelope
from events.contract.upcasting import upcast

MAX_EVENT_BYTES = 1024 * 1024  # an event is a few KB; a comment is at most 10,000 characters

_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(AnyEvent)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Accepted:
    """A valid event: the parsed body as sent (after upcasting) and its model.

    ``model`` is None on a verdict that crossed a process boundary (``without_model``:
    ingest validates in a process pool, and the store needs only the body, the
    digest and the event type); ``event_type`` is then the one the model had.
    """

    event_id: str
    body: dict[str, Any]
    body_sha256: str
    model: Envelope | None
    model_event_type: str | None = None

    @property
    def event_type(self) -> str:
        return self.model.event_type if self.model is not None else self.model_event_type

    def without_model(self) -> Accepted:
        """The same verdict, cheap to pickle: the validated model is dropped, its event type kept."""
        return Accepted(self.event_id, self.body, self.body_sha256, None, self.event_type)


@dataclass(frozen=True)
class Rejected:
    reasons: tuple[str, ...]


def body_digest(body: dict[str, Any]) -> str:
    """Digest of the canonical form: key order and whitespace do not make a different body."""
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


def verdict(raw: bytes, received_at: datetime | None = None, *, size: int | None = None) -> Accepted | Rejected:
    """The contract's verdict on one raw event, whatever its bytes: this never raises.

    ``received_at`` is the receiving clock used for the "not in the future" rule.
    ``size`` is the line's full size when ``raw`` holds only its head (a file line
    too long to hold whole: see ``events.contract.lines``); by default, ``len(raw)``.
    """
    size = len(raw) if size is None else size
    if size > MAX_EVENT_BYTES:
        return Rejected((f"line: {size:,} bytes is larger than the {MAX_EVENT_BYTES:,}-byte limit for one event",))
    try:
        return _check(raw, received_at or datetime.now(timezone.utc))
    except Exception as error:  # no known input gets here; a poison message must still become a reject
        return Rejected((f"line: could not be read as an event ({type(error).__name__}: {str(error)[:200]})",))


def _check(raw: bytes, received_at: datetime) -> Accepted | Rejected:
    """The contract's rules, in order, on a line within the size limit."""
    if not raw.strip():
        return Rejected(("line: empty line, expected a JSON object",))
    try:
        body = parse_json(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return Rejected((f"line: not valid JSON ({error})",))
    except RecursionError:  # e.g. 200,000 nested brackets: no event is shaped like that
        return Rejected(("line: JSON nested too deeply to be an event",))
    if not isinstance(body, dict):
        return Rejected((f"line: expected a JSON object, got {_json_kind(body)}",))

    version = body.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > CURRENT_SCHEMA_VERSION:
        return Rejected((f"schema_version: {version} is newer than this pipeline understands ({CURRENT_SCHEMA_VERSION})",))
    upcast_body = upcast(body)
    document = raw if upcast_body is body else json.dumps(upcast_body).encode()
    try:
        model = _ADAPTER.validate_json(document, strict=True, context={"received_at": received_at})
    except ValidationError as error:
        return Rejected(tuple(_reasons(error, body)))

    event_id = str(model.event_id)
    canonical_body = {**body, "event_id": event_id}
    return Accepted(event_id=event_id, body=canonical_body, body_sha256=body_digest(canonical_body), model=model)


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _reasons(error: ValidationError, body: dict[str, Any]) -> list[str]:
    reasons = []
    for detail in error.errors(include_url=False):
        loc = list(detail["loc"])
        if loc and loc[0] in EVENT_TYPES:  # the discriminated union's tag is not a field
            loc = loc[1:]
        kind = detail["type"]
        if kind == "union_tag_invalid":
            reasons.append(f"event_type: {body.get('event_type')!r} is not an event type")
        elif kind == "union_tag_not_found":
            reasons.append("event_type: is required")
        elif kind == "missing":
            reasons.append(f"{field_path(loc)}: is required")
        elif kind == "extra_forbidden":
            reasons.append(f"{field_path(loc)}: is not a field of {body.get('event_type')} (unknown fields are rejected)")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            reasons.append(f"{field_path(loc)}: {message}")
    return reasons


def field_path(loc: list[Any]) -> str:
    """('payload', 'themes', 2, 'theme') -> 'payload.themes[2].theme'."""
    path = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("<"):  # a tagged union branch, not a field
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        else:
            path += f".{part}" if path else str(part)
    return path or "event"
