"""`planning verify` on the PostgreSQL store: what can be checked there, and is it so.

The embedded store's verify checks segment files against their recorded digests;
PostgreSQL has no segment files (its pages carry their own checksums, and its
backups and point-in-time recovery are its own). What our code promises on top
of the database, and what verify checks, is:

* every record is the event it was stored as: its body, unsealed with the live
  keys and read as the contract reads an event, has the ``body_sha256`` stored
  beside it (or, for an event stored before digests were canonical, the digest
  of the body as sent). A record whose respondent was erased cannot be unsealed
  and is counted, not judged; nor is one today's contract no longer reads;
* the record names the position and ``event_id`` of its row;
* positions are gap-free from 1 to the high-water mark (the append lock's
  promise, which the sensor relies on);
* every key row is well formed: a 32-byte digest, a subject, and either a
  32-byte key and no erasure time, or no key and the time it was erased;
* the counts by sender that each append keeps (``sender_events``, which the
  sensor, the builds and the Panel's provenance show) are those of the events.

It only reads, in one repeatable-read transaction, so it sees one committed
state while workers go on appending.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from events.contract.validation import Accepted, body_digest, verdict
from events.storage.conversion import ENVELOPE, is_synthetic
from events.storage.integrity import differing_counts
from events.storage.personal_data import unseal_with
from events.storage.store import UNKNOWN_SENDER

BATCH = 5_000  # records fetched at a time
NO_FUTURE = datetime(9000, 1, 1, tzinfo=timezone.utc)  # re-reading a stored event, "not in the future" is moot
KEY_BYTES = 32


@dataclass
class PostgresVerification:
    events: int = 0
    high_water_mark: int = 0
    digests_checked: int = 0
    not_checkable: int = 0  # erased respondents' records, or records today's contract no longer reads
    wrong_records: list[str] = field(default_factory=list)  # one line per record that is not what was stored
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (first, last) missing positions
    bad_keys: list[str] = field(default_factory=list)
    wrong_counts: list[str] = field(default_factory=list)  # one line per sender whose kept count is not its events'

    @property
    def intact(self) -> bool:
        return not (self.wrong_records or self.gaps or self.bad_keys or self.wrong_counts)


def verify_postgres(store: Any) -> PostgresVerification:
    """Check a ``PostgresStore`` (read-only; see the module's docstring for what is checked)."""
    db = store._db
    result = PostgresVerification()
    with db.transaction():
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        result.events, result.high_water_mark = db.execute(
            "SELECT count(*), coalesce(max(position), 0) FROM events").fetchone()
        result.gaps = _gaps(db) if result.events != result.high_water_mark else []
        result.bad_keys = _bad_keys(db)
        result.wrong_counts = _wrong_counts(db)
        keys = {subject: bytes(key) for subject, key in db.execute(
            "SELECT subject, key FROM respondent_keys WHERE key IS NOT NULL")}
        with db.cursor(name="verify_records") as cursor:
            cursor.itersize = BATCH
            cursor.execute("SELECT position, event_id, encode(body_sha256, 'hex'), record FROM events ORDER BY position")
            for position, event_id, digest, record in cursor:
                _check_record(result, keys, position, event_id, digest, record)
    return result


def _wrong_counts(db: Any) -> list[str]:
    kept = dict(db.execute("SELECT sender, events FROM sender_events WHERE events <> 0"))
    stored = dict(db.execute("SELECT coalesce(sender, %s), count(*) FROM events GROUP BY 1", (UNKNOWN_SENDER,)))
    return [f"sender {sender}: the kept count says {count:,} events, the store holds {held:,}"
            for sender, count, held in differing_counts(kept, stored)]


def _gaps(db: Any) -> list[tuple[int, int]]:
    """Runs of positions missing between 1 and the high-water mark."""
    rows = db.execute(
        "SELECT previous + 1 AS first_missing, position - 1 AS last_missing"
        " FROM (SELECT position, coalesce(lag(position) OVER (ORDER BY position), 0) AS previous FROM events) AS steps"
        " WHERE position > previous + 1 ORDER BY position")
    return [(first, last) for first, last in rows]


def _bad_keys(db: Any) -> list[str]:
    rows = db.execute(
        "SELECT subject, length(ref_digest), length(key), erased_at FROM respondent_keys"
        " WHERE length(ref_digest) <> %s OR subject = '' OR (key IS NULL) <> (erased_at IS NOT NULL)"
        " OR (key IS NOT NULL AND length(key) <> %s) ORDER BY subject", (KEY_BYTES, KEY_BYTES))
    problems = []
    for subject, digest_bytes, key_bytes, erased_at in rows:
        if digest_bytes != KEY_BYTES:
            problems.append(f"subject {subject!r}: its reference digest is {digest_bytes} bytes, not {KEY_BYTES}")
        elif key_bytes is None and erased_at is None:
            problems.append(f"subject {subject!r}: no key and no erasure time (a key lost without an erasure)")
        elif key_bytes is not None and erased_at is not None:
            problems.append(f"subject {subject!r}: erased at {erased_at} but its key is still there")
        elif key_bytes is not None:
            problems.append(f"subject {subject!r}: its key is {key_bytes} bytes, not {KEY_BYTES}")
        else:
            problems.append(f"a key row with an empty subject (digest of {digest_bytes} bytes)")
    return problems


def _check_record(result: PostgresVerification, keys: dict[str, bytes], position: int, event_id: str,
                  digest: str, text: str) -> None:
    where = f"position {position:,} (event_id {event_id})"
    try:
        record = json.loads(text)
        if record["position"] != position or record["event_id"] != event_id:
            result.wrong_records.append(f"{where}: the record names position {record['position']}"
                                        f" and event_id {record['event_id']}")
            return
        body = {name: record[name] for name in ENVELOPE}
        if is_synthetic(record):
            body["synthetic"] = True
    except (ValueError, KeyError, TypeError) as error:
        result.wrong_records.append(f"{where}: the record cannot be read ({type(error).__name__}: {error})")
        return
    try:
        personal = unseal_with(keys, record.get("subject"), record.get("sealed"))
    except Exception as error:  # a tampered ciphertext fails its authentication tag
        result.wrong_records.append(f"{where}: its sealed personal data cannot be unsealed ({type(error).__name__})")
        return
    if record.get("sealed") is not None and personal is None:
        result.not_checkable += 1  # its respondent was erased: the body as sent is gone, by design
        return
    body["payload"] = {**record["payload"], **(personal or {})}
    judged = verdict(json.dumps(body).encode(), NO_FUTURE)
    if not isinstance(judged, Accepted):
        result.not_checkable += 1  # stored under an older contract than today's
        return
    result.digests_checked += 1
    if digest not in (judged.body_sha256, body_digest(judged.body)):
        result.wrong_records.append(f"{where}: its body's digest is {judged.body_sha256}, not the {digest} stored with it")
