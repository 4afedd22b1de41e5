"""The event store in PostgreSQL: the same store as ``events.storage.store``, for many writers.

Selected by ``PLANNING_STORE=postgresql://…``; the schema is made by ``planning store
init`` (``events.storage.postgres.migrations``). What an append means is the embedded
store's, to the byte: the same records (``events.storage.conversion``), the same sealing
and keys (``events.storage.personal_data.Vault``, here over PostgreSQL), the same rules
for duplicates, conflicts, retractions, dead letters and erasure.

What differs is how several writers are kept apart (docs/decisions.md, "The PostgreSQL
store"):

* ``event_id`` is UNIQUE in the database: no race can store an event twice. Each append
  decides duplicate or conflict under the store's append lock, so a race gives the same
  verdicts as the same appends one after the other.
* Positions are assigned under that lock, a transaction-scoped advisory lock released by
  the commit, as ``max(position) + 1`` onwards: a transaction cannot assign 11 until the
  one holding 10 has committed (or rolled back, and then 10 is assigned again). So
  positions are gap-free, and the high-water mark never stands past a position that is
  still in flight.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.string import BytesBinaryDumper, TextLoader
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.contract.validation import Accepted, Rejected
from events.storage.conversion import record_line, to_event, to_record
from events.storage.erasure_ledger import Erasure, ErasureLedger
from events.storage.personal_data import Vault, new_subject, respondent_ref_of
from events.storage.postgres.migrations import SCHEMA, require_current
from events.storage.redaction import candidate_references, carries, redact_reasons
from events.storage.store import (
    BatchOutcome, DeadLetter, Received, UNKNOWN_SENDER, _truncate,
    iso, not_yet_dead_lettered, of_one_kind, redacted_if_erased, retraction_refusal, retraction_target, utc_now,
)

APPEND_LOCK = f"SELECT pg_advisory_xact_lock(hashtext('{SCHEMA}.append'))"
# A record's JSON never holds a raw control character (the encoder escapes them), so with these as delimiter
# and quote, CSV COPY writes each record unquoted and unescaped: the very bytes of a segment line.
COPY_RAW = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"
# The append's rows go in binary: the server reads each field as it is (no text to parse, no escapes to undo in the
# records). A uuid's binary form is its 16 bytes, so the ids are sent as those bytes; a text's is its UTF-8, so the
# record goes as the bytes ``record_line`` wrote (the server checks they are UTF-8).
COPY_EVENTS = ("COPY events (position, event_id, body_sha256, sender, event_type, cycle, recorded_at, record)"
               " FROM STDIN (FORMAT binary)")
COPY_EVENTS_TYPES = ("int8", "bytea", "bytea", "text", "text", "text", "text", "bytea")
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def uuid_bytes(event_id: str) -> bytes:
    """The 16 bytes of a UUID written 8-4-4-4-12 (every stored id is: the contract accepts nothing else)."""
    return bytes.fromhex(event_id.replace("-", ""))


def uuid_array(event_ids: Iterable[str]) -> str:
    """The ids as one ``uuid[]`` literal, one parameter instead of a list adapted element by element (which cost
    an append ~10 ms a batch). A string that is not a UUID cannot be a stored id, so it is left out, not an error."""
    return "{" + ",".join(i for i in event_ids if _UUID_TEXT.fullmatch(i)) + "}"


class _QuestionMarks:
    """A PostgreSQL connection that takes SQLite's ``?`` placeholders, so the embedded store's
    ``Vault`` runs unchanged over it (its SQL is plain SQL otherwise)."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def execute(self, query: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._connection.execute(query.replace("?", "%s"), tuple(parameters))

    def copy_rows(self, table_and_columns: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._connection.cursor() as cursor, cursor.copy(f"COPY {table_and_columns} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class _BatchVault(Vault):
    """The embedded store's ``Vault``, with the keys one append needs read in one query and its new
    keys written in one COPY. Over SQLite a key lookup per respondent costs microseconds; over
    a connection each is a round trip, and they were most of an append's time (bench/README.md)."""

    _db: _QuestionMarks  # type: ignore[assignment]

    def __init__(self, db: Any, pepper: bytes) -> None:
        super().__init__(db, pepper)
        self._keys: dict[str, tuple[str, bytes | None]] | None = None  # by respondent reference
        self._digests: dict[str, bytes] = {}
        self._new: list[tuple[bytes, str, bytes]] = []

    @contextmanager
    def keys_of(self, respondent_refs: Iterable[str]) -> Iterator[None]:
        """Inside the append's transaction and lock: seal with these respondents' keys, read at once;
        the keys made meanwhile are written when the block ends. Inside the block the vault sends no
        query (the append streams its rows by COPY meanwhile)."""
        self._digests = {ref: self._digest(ref) for ref in dict.fromkeys(respondent_refs)}  # each HMAC once
        by_digest = {digest: ref for ref, digest in self._digests.items()}
        self._keys = {ref: _UNKNOWN for ref in self._digests}
        if by_digest:
            # one text parameter: psycopg adapts a list of bytes element by element, ~10 ms for a batch's keys
            query = ("SELECT ref_digest, subject, key FROM respondent_keys"
                     " WHERE ref_digest = ANY(ARRAY(SELECT decode(d, 'hex') FROM unnest(string_to_array(?, ',')) AS d))")
            for digest, subject, key in self._db.execute(query, (",".join(d.hex() for d in by_digest),)):
                self._keys[by_digest[bytes(digest)]] = (subject, None if key is None else bytes(key))
        self._new = []
        try:
            yield
            if self._new:
                self._db.copy_rows("respondent_keys (ref_digest, subject, key)", self._new)
        finally:
            self._keys, self._digests, self._new = None, {}, []

    def _key_for(self, respondent_ref: str) -> tuple[str, bytes | None]:
        known = None if self._keys is None else self._keys.get(respondent_ref)
        if known is None:  # outside keys_of, or a respondent it was not given: one query, as the Vault does
            return super()._key_for(respondent_ref)
        if known is _UNKNOWN:
            known = (new_subject(), AESGCM.generate_key(bit_length=256))
            self._keys[respondent_ref] = known  # type: ignore[index]
            self._new.append((self._digests[respondent_ref], *known))  # type: ignore[arg-type]
        return known


_UNKNOWN: tuple[str, bytes | None] = ("", None)  # a respondent keys_of found no key for (compared by identity)


class PostgresStore:
    """Open with ``writer=True`` to append (any number of writers), or without to read."""

    def __init__(self, url: str, *, writer: bool = False, erasure_ledger: Path | None = None) -> None:
        self.url = url
        self.writer = writer
        self.erasure_ledger = erasure_ledger
        self._db = psycopg.connect(url, autocommit=True, options=f"-c search_path={SCHEMA}")
        self._db.adapters.register_loader("uuid", TextLoader)  # event ids come back as the str the store was given
        # bytes to bytea in binary COPY by psycopg's compiled dumper, not the DB-API wrapper's Python one it picks
        # by type oid otherwise (~5 % of an append's CPU)
        self._db.adapters.register_dumper(bytes, BytesBinaryDumper)
        try:
            require_current(self._db, url)
        except BaseException:
            self._db.close()
            raise
        self.vault = _BatchVault.open(_QuestionMarks(self._db))  # type: ignore[arg-type]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _require_writer(self) -> None:
        if not self.writer:
            raise RuntimeError("this PostgresStore was opened read-only")

    # --- appending -------------------------------------------------------------

    def append(self, batch: Sequence[Received], recorded_at: datetime | None = None, *, other_kind: str = "refuse") -> BatchOutcome:
        """Append a batch, as ``EventStore.append`` does (see there), safely beside other writers."""
        self._require_writer()
        recorded_at_text = iso(recorded_at or utc_now())
        outcome = BatchOutcome()
        with self._db.transaction():
            self._db.execute(APPEND_LOCK)  # from here to the commit, this append is the only one
            batch, kind = self._of_one_kind(batch, other_kind)
            dead: list[DeadLetter] = []
            fresh: list[tuple[Accepted, str | None]] = []
            known = self._known_digests([r.verdict.event_id for r in batch if isinstance(r.verdict, Accepted)])
            senders = self.senders_of([t for item in batch if (t := retraction_target(item.verdict)) is not None])
            for item in batch:
                verdict = item.verdict
                if isinstance(verdict, Rejected):
                    dead.append((item.origin, verdict.reasons, item.raw, item.sender))
                    continue
                refusal = retraction_refusal(verdict, item.sender, senders)
                if refusal is not None:
                    dead.append((item.origin, (refusal,), item.raw, item.sender))
                    continue
                stored_digest = known.get(verdict.event_id)
                if stored_digest is not None and stored_digest in (verdict.body_sha256, verdict.sent_body_sha256):
                    outcome.duplicates.append(verdict.event_id)
                elif stored_digest is not None:
                    reason = f"event_id: {verdict.event_id} is already stored with a different body (the original is kept)"
                    dead.append((item.origin, (reason,), item.raw, item.sender))
                else:
                    known[verdict.event_id] = verdict.body_sha256
                    senders[verdict.event_id] = item.sender
                    fresh.append((verdict, item.sender))
            dead = self._without_earlier_dead_letters(self._redacted_if_erased(dead), outcome)

            position = self.high_water_mark()
            respondents = [ref for e, _ in fresh if (ref := respondent_ref_of(e.event_type, e.body["payload"])) is not None]
            with self.vault.keys_of(respondents):
                with self._db.cursor() as cursor:
                    # COPY, not INSERT … ON CONFLICT: were an id stored meanwhile after all, the UNIQUE constraint fails
                    # the whole append. Each row is built while the server takes in the rows before it (psycopg sends
                    # every 32 KiB), so the server's work runs beside ours rather than after it.
                    with cursor.copy(COPY_EVENTS) as copy:
                        copy.set_types(COPY_EVENTS_TYPES)
                        for event, sender in fresh:
                            position += 1
                            record = to_record(event, position, recorded_at_text, self.vault, sender)
                            copy.write_row((position, uuid_bytes(event.event_id), bytes.fromhex(event.body_sha256), sender,
                                            event.event_type, record["cycle"], recorded_at_text, record_line(record)))
            with self._db.cursor() as cursor:
                cursor.executemany("INSERT INTO sender_events (sender, events) VALUES (%s, %s) ON CONFLICT (sender)"
                                   " DO UPDATE SET events = sender_events.events + excluded.events",
                                   sorted(Counter(sender or UNKNOWN_SENDER for _, sender in fresh).items()))
                cursor.executemany("INSERT INTO dead_letters (received_at, origin, reasons, raw, sender)"
                                   " VALUES (%s, %s, %s, %s, %s)",
                                   [(recorded_at_text, origin, json.dumps(list(reasons)),
                                     None if raw is None else _truncate(raw), sender) for origin, reasons, raw, sender in dead])
            if fresh and kind is not None:
                self._db.execute("INSERT INTO meta (key, value) VALUES ('data', %s) ON CONFLICT (key) DO NOTHING", (kind,))
            erased = [e for e, _ in fresh if e.event_type == "respondent.erasure_requested"]
            for event in erased:
                outcome.redacted += self._erase(event.body["payload"]["respondent_ref"], recorded_at_text)
            if erased and self.erasure_ledger is not None:
                digests = [d for e in erased for d in self.vault.digests_of(e.body["payload"]["respondent_ref"])]
                with ErasureLedger(self.erasure_ledger) as ledger:
                    ledger.record(self.vault.store_id, digests, recorded_at_text)
        if erased:
            self._rewrite_keys()
        outcome.accepted = [e.event_id for e, _ in fresh]
        outcome.erasures = len(erased)
        outcome.high_water_mark = position
        return outcome

    def _of_one_kind(self, batch: Sequence[Received], other_kind: str) -> tuple[Sequence[Received], str | None]:
        """Run under the append lock, so two writers cannot start an empty store with two kinds."""
        return of_one_kind(batch, self.data_kind(), "the event store in PostgreSQL", other_kind)

    def _redacted_if_erased(self, dead: list[DeadLetter]) -> list[DeadLetter]:
        return redacted_if_erased(self.vault, dead)

    def _without_earlier_dead_letters(self, dead: list[DeadLetter], outcome: BatchOutcome) -> list[DeadLetter]:
        stored: dict[str, list[tuple[bytes | None, list[str]]]] = {}
        origins = list(dict.fromkeys(origin for origin, *_ in dead))
        if origins:
            rows = self._db.execute("SELECT origin, raw, reasons FROM dead_letters WHERE origin = ANY(%s) ORDER BY id", (origins,))
            for origin, raw, reasons in rows:
                stored.setdefault(origin, []).append((None if raw is None else bytes(raw), json.loads(reasons)))
        return not_yet_dead_lettered(dead, stored, outcome)

    def _known_digests(self, event_ids: list[str]) -> dict[str, str]:
        if not event_ids:
            return {}
        query = "SELECT event_id, encode(body_sha256, 'hex') FROM events WHERE event_id = ANY(%s::uuid[])"
        return dict(self._db.execute(query, (uuid_array(event_ids),)))

    # --- erasure ---------------------------------------------------------------

    def _erase(self, respondent_ref: str, erased_at: str) -> int:
        """Shred the respondent's key and redact the dead letters that carry the reference."""
        self.vault.erase(respondent_ref, erased_at)
        rows = self._db.execute("SELECT id, reasons, raw FROM dead_letters WHERE raw IS NOT NULL").fetchall()
        return self._redact([(id_, reasons) for id_, reasons, raw in rows if carries(bytes(raw), respondent_ref)])

    def _redact(self, letters: list[tuple[int, str]]) -> int:
        with self._db.cursor() as cursor:
            cursor.executemany("UPDATE dead_letters SET raw = NULL, reasons = %s WHERE id = %s",
                               [(json.dumps(redact_reasons(json.loads(reasons))), id_) for id_, reasons in letters])
        if letters:
            self._db.execute("INSERT INTO meta (key, value) VALUES ('redactions', %s) ON CONFLICT (key)"
                             " DO UPDATE SET value = (CAST(meta.value AS integer) + CAST(excluded.value AS integer))::text",
                             (str(len(letters)),))
        return len(letters)

    def _rewrite_keys(self) -> None:
        """After an erasure: write the keys and dead letters tables anew, so the old row versions (the
        shredded key, the redacted bytes) leave the tables' files, and checkpoint. WAL and backups keep
        them for their own retention (docs/decisions.md, "The PostgreSQL store")."""
        self._db.execute("VACUUM FULL respondent_keys")
        self._db.execute("VACUUM FULL dead_letters")

    def reapply_erasures(self, erasures: Sequence[Erasure]) -> tuple[int, int]:
        """As ``EventStore.reapply_erasures``: erase again, by digest, respondents an erasure ledger names."""
        self._require_writer()
        with self._db.transaction():
            self._db.execute(APPEND_LOCK)
            shredded = self.vault.shred([(e.ref_digest, e.erased_at) for e in erasures])
            rows = self._db.execute("SELECT id, reasons, raw FROM dead_letters WHERE raw IS NOT NULL").fetchall()
            redacted = self._redact([(id_, reasons) for id_, reasons, raw in rows
                                     if self.vault.erased_among(candidate_references(bytes(raw)))]) if erasures else 0
        self._rewrite_keys()
        return shredded, redacted

    def mark_replayed(self, positions: dict[int, int], replayed_at: datetime) -> None:
        """Mark dead letters (by id) replayed into the events at these positions."""
        self._require_writer()
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(
                "UPDATE dead_letters SET replayed_position = %s, replayed_at = %s WHERE id = %s AND replayed_position IS NULL",
                [(position, iso(replayed_at), id_) for id_, position in positions.items()],
            )

    # --- reading ---------------------------------------------------------------

    def high_water_mark(self) -> int:
        """The position of the last committed event (0 for an empty store); every position up to it is committed."""
        return self._db.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]

    def data_kind(self) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'data'").fetchone()
        return None if row is None else row[0]

    @property
    def synthetic(self) -> bool:
        return self.data_kind() == "synthetic"

    def redaction_mark(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'redactions'").fetchone()
        return 0 if row is None else int(row[0])

    def records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Stored records as written (personal data sealed), in position order, read through a server-side cursor."""
        with self._db.transaction(), self._db.cursor(name="records") as cursor:
            cursor.execute("SELECT record FROM events WHERE position > %s ORDER BY position", (after,))
            for (record,) in cursor:
                yield json.loads(record)

    def events(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Events as their senders sent them (unsealed, upcast), plus ``position``, ``recorded_at`` and ``sender``."""
        keys = self.vault.keys_by_subject()
        for record in self.records(after):
            yield to_event(record, keys)

    def copy_records(self, target: Path, after: int = 0, upto: int | None = None, cycle: str | None = None) -> int:
        """Write the records at positions in (after, upto] to ``target`` as JSON Lines, byte for byte the
        lines a segment would hold, in bulk (COPY): with ``cycle``, only that cycle's, those of no cycle (an
        older contract's) and every retraction (which may name an event of any cycle), as the segments
        ``EventStore.segments_for_cycles`` gives hold them. The bytes written."""
        upto = self.high_water_mark() if upto is None else upto
        where = "position > %s AND position <= %s" + (" AND (cycle = %s OR cycle IS NULL OR event_type = 'event.retracted')" if cycle else "")
        parameters = (after, upto, cycle) if cycle else (after, upto)
        query = psycopg.sql.SQL(f"COPY (SELECT record FROM events WHERE {where} ORDER BY position) TO STDOUT ({COPY_RAW})")
        written = 0
        with self._db.cursor() as cursor, open(target, "wb") as out:
            with cursor.copy(query, parameters) as copy:
                for chunk in copy:
                    written += out.write(chunk)
        return written

    def live_keys(self, subjects: list[str]) -> dict[str, bytes]:
        if not subjects:
            return {}
        rows = self._db.execute("SELECT subject, key FROM respondent_keys WHERE key IS NOT NULL AND subject = ANY(%s)",
                                (list(dict.fromkeys(subjects)),))
        return {subject: bytes(key) for subject, key in rows}

    def subjects_known(self, subjects: Sequence[str]) -> set[str]:
        rows = self._db.execute("SELECT subject FROM respondent_keys WHERE subject = ANY(%s)", (list(subjects),))
        return {subject for (subject,) in rows}

    def cycles(self, after: int = 0) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT cycle FROM events WHERE position > %s ORDER BY cycle", (after,))
        return [cycle for (cycle,) in rows]

    def has_retraction_after(self, after: int) -> bool:
        """Whether any event at a position after ``after`` is a retraction (the index of retractions answers)."""
        query = "SELECT EXISTS (SELECT 1 FROM events WHERE event_type = 'event.retracted' AND position > %s)"
        return self._db.execute(query, (after,)).fetchone()[0]

    def dead_letters(self, sender: str | None = None) -> list[dict[str, Any]]:
        """The dead letters in the order they were stored, as ``EventStore.dead_letters`` gives them."""
        query = "SELECT id, received_at, origin, reasons, raw, sender, replayed_position, replayed_at FROM dead_letters"
        if sender is None:
            rows = self._db.execute(query + " ORDER BY id")
        elif sender == UNKNOWN_SENDER:
            rows = self._db.execute(query + " WHERE sender IS NULL ORDER BY id")
        else:
            rows = self._db.execute(query + " WHERE sender = %s ORDER BY id", (sender,))
        return [
            {"id": id_, "received_at": received, "origin": origin, "reasons": json.loads(reasons),
             "raw": None if raw is None else bytes(raw), "sender": by, "replayed_position": replayed, "replayed_at": at}
            for id_, received, origin, reasons, raw, by, replayed, at in rows
        ]

    def positions_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        return dict(self._db.execute("SELECT event_id, position FROM events WHERE event_id = ANY(%s::uuid[])",
                                     (uuid_array(event_ids),)))

    def senders_of(self, event_ids: Sequence[str]) -> dict[str, str | None]:
        if not event_ids:
            return {}
        return dict(self._db.execute("SELECT event_id, sender FROM events WHERE event_id = ANY(%s::uuid[])",
                                     (uuid_array(event_ids),)))

    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        return set(self.positions_of(event_ids))

    def counts_by_sender(self) -> dict[str, dict[str, int]]:
        """As the embedded store's; the events from ``sender_events``, which each append keeps up to date."""
        events = self._db.execute("SELECT sender, events FROM sender_events WHERE events > 0 ORDER BY sender")
        dead = self._db.execute("SELECT coalesce(sender, %s), count(*) FROM dead_letters GROUP BY 1 ORDER BY 1", (UNKNOWN_SENDER,))
        return {"events": dict(events.fetchall()), "dead_letters": dict(dead.fetchall())}

    def event_ids_between(self, first: int, last: int) -> list[tuple[int, str]]:
        query = "SELECT position, event_id FROM events WHERE position BETWEEN %s AND %s ORDER BY position"
        return [tuple(row) for row in self._db.execute(query, (first, last))]

    def counts(self) -> dict[str, int]:
        events, dead = self._db.execute("SELECT (SELECT coalesce(sum(events), 0)::bigint FROM sender_events),"
                                        " (SELECT count(*) FROM dead_letters)").fetchone()
        return {"events": events, "dead_letters": dead}


__all__ = ["PostgresStore", "APPEND_LOCK"]
