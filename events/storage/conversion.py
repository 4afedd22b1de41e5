"""The one conversion path between an event and the record the store keeps of it.

Going in (``to_record``): the event's personal fields are sealed with its
respondent's key (``events.storage.personal_data``) and the envelope is written
beside its position and the time it was recorded (``synthetic`` only when true). The store keeps the event
at the schema_version it was sent at; nothing is upcast on the way in.

Coming out (``to_event``): the personal fields are unsealed, then the body is
upcast to the current schema_version (``events.contract.upcasting``). The store's
reads and the builds' staging both turn a record into an event here and
nowhere else. Validation upcasts an incoming body before checking it, with
the same ``upcast``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from events.contract.models import CURRENT_SCHEMA_VERSION
from events.storage.personal_data import Vault, unseal_with
from events.contract.upcasting import upcast
from events.contract.validation import Accepted

Record = dict[str, Any]  # one line of a segment, parsed
ENVELOPE = ("event_id", "event_type", "schema_version", "occurred_at", "source", "cycle")


class NoUpcaster(RuntimeError):
    """A stored record is at a schema_version no chain of upcasters brings to the current one."""


def to_record(event: Accepted, position: int, recorded_at: str, vault: Vault, sender: str | None = None) -> Record:
    """What the store writes for an accepted event: personal fields sealed, as sent otherwise, and
    who delivered it (``sender``; written only when known, so a record without one is from an unknown sender).
    Its fields in this order: position, recorded_at, sender, the envelope, synthetic, payload, subject, sealed.

    Must run inside the store's transaction: sealing may create the respondent's key.
    """
    body = event.body
    record: Record = {"position": position, "recorded_at": recorded_at}
    if sender is not None:
        record["sender"] = sender
    for name in ENVELOPE:
        record[name] = body[name]
    if is_synthetic(body):
        record["synthetic"] = True
    record["payload"], record["subject"], record["sealed"] = vault.seal_fields(event.event_type, body["payload"])
    return record


def record_line(record: Record) -> bytes:
    """A record as one line of a segment (without its newline), and as the PostgreSQL store's ``record``: compact
    JSON in UTF-8, fields in the record's order. msgspec writes it (~1.5 µs a record, against ~7 µs for the json
    module, which was a third of an append's own CPU). Text comes out byte for byte as
    ``json.dumps(ensure_ascii=False, separators=(",", ":"))`` wrote it; a float the json module wrote in exponent
    form may be spelled otherwise (``1e16`` for ``1e+16``, ``0.000025`` for ``2.5e-05``): the same number to any
    JSON reader."""
    return msgspec.json.encode(record)


def is_synthetic(body: Mapping[str, Any]) -> bool:
    """Whether an event (or a record of one) is labelled synthetic: ``"synthetic": true``; absent is real."""
    return body.get("synthetic") is True


def to_event(record: Record, keys: Mapping[str, bytes]) -> dict[str, Any]:
    """The event a stored record holds, as its sender sent it, read at the current schema_version.

    ``keys`` are live respondent keys by subject (``EventStore.live_keys``, or ``Vault.keys_by_subject``): a record whose
    key is not among them (its respondent was erased) comes back without its personal fields.
    Upcasters see the whole body, personal fields included, as validation showed them.
    The result is the body plus the record's ``position``, ``recorded_at`` and ``sender`` (None: unknown).
    """
    body = {name: record[name] for name in ENVELOPE}
    if is_synthetic(record):
        body["synthetic"] = True
    personal = unseal_with(keys, record["subject"], record["sealed"])
    body["payload"] = {**record["payload"], **personal} if personal else dict(record["payload"])
    event = upcast(body)
    if event["schema_version"] != CURRENT_SCHEMA_VERSION:
        raise NoUpcaster(
            f"no upcaster takes {event['event_type']} from version {event['schema_version']} to {CURRENT_SCHEMA_VERSION}"
            f" (the record at position {record['position']})"
        )
    event["position"], event["recorded_at"] = record["position"], record["recorded_at"]
    event["sender"] = record.get("sender")
    return event
