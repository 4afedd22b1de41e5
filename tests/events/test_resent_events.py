"""An event resent with another spelling of the same meaning is a duplicate, not a conflict.

The store knows an event by its ``event_id`` and compares the digest of its validated,
canonical form, so ``Z`` for ``+00:00``, key order, escapes, ``1e0`` for ``1.0`` or an
upper-case id do not make a different event; a different value does.

Tests taking ``open_store`` run on both store backends (tests/support/stores.py); the one
about digests written before they were canonical edits the embedded store's SQLite index.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from events.contract.validation import Accepted, body_digest, verdict
from events.storage.store import EventStore, Received
from tests.support.events import line, make_event
from tests.support.stores import OpenStore

RECEIVED_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _append(store: EventStore, raw: bytes, origin: str = "test:1") -> Any:
    return store.append([Received(raw, origin, verdict(raw, RECEIVED_AT))], RECEIVED_AT)


def _survey() -> dict[str, Any]:
    """A survey response without its optional priorities (whose default is [])."""
    event = make_event("survey.response_recorded", {"weight": 1.0}, occurred_at="2026-07-14T18:30:00+00:00",
                      event_id="0b5d7c1e-3f0a-4a51-8c1d-7e2f9a60b0ff")
    del event["payload"]["priorities"]
    return event


def _respelt(raw: bytes, *replacements: tuple[bytes, bytes]) -> bytes:
    for old, new in replacements:
        assert old in raw, old
        raw = raw.replace(old, new)
    return raw


SAME_MEANING = {
    "Z for +00:00": lambda e, raw: _respelt(raw, (b"+00:00", b"Z")),
    "another offset, the same instant": lambda e, raw: _respelt(raw, (b"18:30:00+00:00", b"19:30:00+01:00")),
    "key order": lambda e, raw: json.dumps(dict(reversed(list(e.items())))).encode(),
    "the keys of a mapping in another order": lambda e, raw: json.dumps({**e, "payload": {
        **e["payload"], "indicators": dict(reversed(list(e["payload"]["indicators"].items())))}}).encode(),
    "escapes": lambda e, raw: json.dumps(e, ensure_ascii=True).replace('"PAS"', '"\\u0050AS"').encode(),
    "1e0 for 1.0": lambda e, raw: _respelt(raw, (b'"weight": 1.0', b'"weight": 1e0')),
    "an upper-case id": lambda e, raw: _respelt(raw, (e["event_id"].encode(), e["event_id"].upper().encode())),
    "an optional field sent as its default": lambda e, raw: _respelt(raw, (b'"weight": 1.0', b'"weight": 1.0, "priorities": []')),
    "a BOM": lambda e, raw: b"\xef\xbb\xbf" + raw,
}


@pytest.mark.parametrize("spelling", sorted(SAME_MEANING))
def test_the_same_event_spelt_otherwise_is_a_duplicate(open_store: OpenStore, spelling: str) -> None:
    event = _survey()
    first = line(event)
    again = SAME_MEANING[spelling](event, first)
    assert again != first
    with open_store(writer=True) as store:
        assert _append(store, first).accepted == [event["event_id"]]
        outcome = _append(store, again, "test:2")
        assert outcome.duplicates == [event["event_id"]], outcome.rejected
        assert store.counts() == {"events": 1, "dead_letters": 0}
        (stored,) = store.events()
    assert stored["occurred_at"] == "2026-07-14T18:30:00+00:00"  # the body is kept as first sent


@pytest.mark.parametrize(
    "change", [{"weight": 1.5}, {"borough": "E09000021"}], ids=["another weight", "another borough"]
)
def test_another_value_under_the_same_id_is_a_conflict(open_store: OpenStore, change: dict[str, Any]) -> None:
    event = _survey()
    with open_store(writer=True) as store:
        _append(store, line(event))
        changed = {**event, "payload": {**event["payload"], **change}}
        outcome = _append(store, line(changed), "test:2")
        assert outcome.duplicates == [] and len(outcome.rejected) == 1
        assert "already stored with a different body" in outcome.rejected[0][1][0]


def test_an_instant_one_microsecond_apart_is_a_conflict(open_store: OpenStore) -> None:
    event = _survey()
    with open_store(writer=True) as store:
        _append(store, line(event))
        outcome = _append(store, line({**event, "occurred_at": "2026-07-14T18:30:00.000001Z"}), "test:2")
        assert len(outcome.rejected) == 1


def test_an_event_stored_before_digests_were_canonical_is_still_a_duplicate_when_resent(tmp_path: Path) -> None:
    """A store written by an earlier version holds the digest of the body as sent (``body_digest``)."""
    event = _survey()
    raw = line(event)
    with EventStore(tmp_path / "store", writer=True) as store:
        _append(store, raw)
    checked = verdict(raw, RECEIVED_AT)
    assert isinstance(checked, Accepted) and checked.body_sha256 != body_digest(checked.body)
    with sqlite3.connect(tmp_path / "store" / "store.sqlite") as db:  # as the earlier version wrote it
        db.execute("UPDATE event_ids SET body_sha256 = ?", (body_digest(checked.body),))
    with EventStore(tmp_path / "store", writer=True) as store:
        outcome = _append(store, raw, "test:2")
        assert outcome.duplicates == [event["event_id"]]
        assert store.counts() == {"events": 1, "dead_letters": 0}
