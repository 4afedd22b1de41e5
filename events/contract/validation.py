"""The verdict on one raw event (a JSON Lines line or a Kafka message value).

``verdict`` serves `planning ingest`, the stream worker and the emitter, so a
sender, a file and a topic meet exactly the same contract. It is total: any
bytes at all (empty, oversized, not JSON, nested past the parser's limits)
get a verdict, never an exception. A rejection carries one reason per broken
rule, each naming the field, and stays small whatever was sent: at most
``MAX_REASONS`` reasons, each repeating at most ``forms.MAX_ECHO`` characters
of a sent value (a 789 KB line once left 3.2 MB of reasons).

Two events that mean the same are the same event: ``body_sha256`` is the digest
of the validated, canonical form (key order, whitespace, escapes, ``Z`` or
``+00:00``, ``1.0`` or ``1e0``, a UUID's case: none of them count), while the
store keeps the body as it was sent. A UTF-8 byte order mark before an event is
read past (some editors write one at the start of a file).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from events.contract.forms import MAX_ECHO, shown
from events.contract.json_text import parse_json
from events.contract.models import CURRENT_SCHEMA_VERSION, EVENT_TYPES, AnyEvent, Envelope
from events.contract.upcasting import upcast

MAX_EVENT_BYTES = 1024 * 1024  # an event is a few KB; a comment is at most 10,000 characters
MAX_REASONS = 20  # of one rejection; the rest are counted
MAX_REASON_CHARS = 300
BOM = b"\xef\xbb\xbf"
PYTHON_INT_DIGITS = 4300  # the json module refuses longer integers (sys.get_int_max_str_digits)

_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(AnyEvent, config=ConfigDict(defer_build=True))  # built at first use
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Not part of what an event means: the label says where the data came from, and the store, which holds
# one kind of data only, refuses the other kind before it compares digests (and digests stay as before).
_NOT_MEANING = {"synthetic"}


@dataclass(frozen=True)
class Accepted:
    """A valid event: the parsed body as sent (after upcasting), its model, and the digest
    of its canonical form (``canonical_digest``), which says whether a resent event is the same.

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

    @property
    def sent_body_sha256(self) -> str:
        """The digest stores kept before digests were canonical: of the body as sent (``body_digest``).
        An event stored then and resent exactly is still a duplicate by this one."""
        return body_digest(self.body)


@dataclass(frozen=True)
class Rejected:
    reasons: tuple[str, ...]


def body_digest(body: dict[str, Any]) -> str:
    """Digest of a JSON body with its keys sorted: key order and whitespace do not make a different body."""
    return hashlib.sha256(_CANONICAL.encode(body).encode()).hexdigest()


def canonical_digest(model: Envelope) -> str:
    """Digest of what an event means: the validated model as JSON, its instant in UTC.

    Dates, UUIDs, numbers, absent optional fields and the keys of a mapping (sorted by the model)
    each have one spelling there, so an event resent with ``Z`` for ``+00:00``, an upper-case
    id or ``1e0`` for ``1.0`` is a duplicate. pydantic writes the JSON (fields in model order),
    which costs less than the json module's sorting encoder. The ``synthetic`` label is left out
    (``_NOT_MEANING``): the store refuses an event of the other kind before digests are compared.
    """
    if model.occurred_at.utcoffset():
        model = model.model_copy(update={"occurred_at": model.occurred_at.astimezone(timezone.utc)})
    return hashlib.sha256(model.model_dump_json(exclude=_NOT_MEANING).encode()).hexdigest()


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
        checked = _check(raw.removeprefix(BOM), received_at or datetime.now(timezone.utc))
    except Exception as error:  # no known input gets here; a poison message must still become a reject
        return Rejected((f"line: could not be read as an event ({type(error).__name__}: {str(error)[:200]})",))
    return checked if isinstance(checked, Accepted) else _bounded(checked.reasons)


def _bounded(reasons: tuple[str, ...] | list[str]) -> Rejected:
    """At most ``MAX_REASONS`` reasons of at most ``MAX_REASON_CHARS`` characters each."""
    kept = [r if len(r) <= MAX_REASON_CHARS else r[: MAX_REASON_CHARS - 1] + "…" for r in reasons[:MAX_REASONS]]
    if len(reasons) > MAX_REASONS:
        kept.append(f"… and {len(reasons) - MAX_REASONS:,} more")
    return Rejected(tuple(kept))


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
    except ValueError as error:  # the json module refuses integers of over 4,300 digits
        return Rejected(tuple(_overlong_integers(raw)) or (f"line: not valid JSON ({error})",))
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
    return Accepted(event_id=event_id, body={**body, "event_id": event_id}, body_sha256=canonical_digest(model), model=model)


class _Overlong:
    """An integer too long to read, by its number of digits."""

    def __init__(self, digits: str) -> None:
        self.digits = len(digits.lstrip("-"))


def _overlong_integers(raw: bytes) -> list[str]:
    """A reason naming each integer too long to read, read again with long integers left as text."""
    try:
        body = json.loads(raw, parse_int=lambda d: _Overlong(d) if len(d) > PYTHON_INT_DIGITS else int(d))
    except (ValueError, RecursionError):
        return []
    reasons, stack = [], [(body, [])]
    while stack:  # not recursive: the document may be nested as deep as the json module allows
        value, loc = stack.pop()
        if isinstance(value, _Overlong):
            reasons.append(f"{field_path(loc)}: an integer of {value.digits:,} digits is too large")
        elif isinstance(value, dict):
            stack.extend((item, [*loc, key]) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((item, [*loc, i]) for i, item in reversed(list(enumerate(value))))
    return reasons


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
            reasons.append(f"event_type: {shown(body.get('event_type'))} is not an event type")
        elif kind == "union_tag_not_found":
            reasons.append("event_type: is required")
        elif kind == "missing":
            reasons.append(f"{field_path(loc)}: is required")
        elif kind == "extra_forbidden":
            reasons.append(f"{field_path(loc)}: is not a field of {str(body.get('event_type'))[:MAX_ECHO]} (unknown fields are rejected)")
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
            name = str(part) if len(str(part)) <= MAX_ECHO else str(part)[: MAX_ECHO - 1] + "…"
            path += f".{name}" if path else name
    return path or "event"
