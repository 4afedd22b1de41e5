"""The event store: the append-only system of record, and the dead letters beside it.

Layout under the store directory::

    store.sqlite          the index: committed segments, every event_id with its
                          body digest (in runs: ``events.storage.event_index``),
                          per-respondent keys, dead letters
    segments/*.jsonl      immutable segments, one per appended batch
    quarantine/           segment files no commit refers to, moved aside by the next writer
    writer.lock           held (flock) by the one process allowed to append

One append is one transaction:

1. duplicates and conflicts are found through the index (``event_id`` is the
   idempotency key; the same id with another body is a conflict);
2. the new events become records, their personal data sealed (``events.storage.conversion``);
3. the segment is written to a temporary file, fsynced and renamed;
4. the segment row, the new ids, the dead letters and any key shredding are
   committed in one SQLite transaction. That commit is the moment the batch
   exists.

A store holds one kind of data: real events, or synthetic ones (``"synthetic": true``,
the demo's). The first event stored sets the kind (``meta`` key ``data``); an event
of the other kind is refused (:class:`MixedData`, or a dead letter when the
appender asks for that), so no output built from the store can mix them, and
every output built from a synthetic store can say so (``EventStore.synthetic``).

The index records each segment's SHA-256 and size when it is written, so a
changed, truncated or missing segment is found (``events.storage.integrity``).
A crash before step 4 leaves an orphan segment file that the next writer moves
to ``quarantine/`` (never deletes: after a crash that also lost SQLite's WAL, an
"orphan" is a committed batch the index forgot; ``planning recover`` appends its
events again); a crash after it leaves a complete batch. Readers never see half a
batch. Segments are never rewritten: retractions are events, and erasure
deletes keys, not bytes of segments (and records the erasure in the erasure ledger
beside the store, ``events.storage.erasure_ledger``, which a restore re-applies). Reading a record back as an event
(unsealed, upcast) is ``events.storage.conversion.to_event``, here and in builds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from events.senders.grants import may_retract
from events.storage.conversion import is_synthetic, record_line, to_event, to_record
from events.storage.digests import file_digest
from events.storage.event_index import SCHEMA as EVENT_INDEX_SCHEMA, EventIndex
from events.storage.erasure_ledger import Erasure, ErasureLedger, fsync_dir, ledger_path
from events.storage.personal_data import PERSONAL_FIELDS, Vault, respondent_ref_of, unseal_with
from events.storage.redaction import candidate_references, carries, redact_reasons
from events.contract.validation import Accepted, Rejected

WRITER_LOCK = "writer.lock"  # under the store: flock'd by its one writer (``take_writer_lock``)
QUARANTINE = "quarantine"  # under the store: segment files no commit refers to (``_quarantine_orphan_segments``)
MAX_DEAD_LETTER_BYTES = 64 * 1024  # of an oversized line, the dead letter keeps the first 64 KiB

SCHEMA = EVENT_INDEX_SCHEMA + """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    file           TEXT PRIMARY KEY,
    first_position INTEGER NOT NULL,
    last_position  INTEGER NOT NULL,
    events         INTEGER NOT NULL,
    committed_at   TEXT NOT NULL,
    sha256         TEXT,     -- of the file's bytes as written; NULL: written before digests were recorded
    bytes          INTEGER   -- the file's size as written
);
CREATE TABLE IF NOT EXISTS segment_cycles (   -- which cycles each segment touches
    first_position INTEGER NOT NULL,
    cycle          TEXT NOT NULL,
    PRIMARY KEY (first_position, cycle)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segment_kinds (    -- per segment: how many retractions it holds
    first_position INTEGER PRIMARY KEY,          -- (a segment without a row predates this table)
    retractions    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_senders (  -- per segment: how many of its events each sender delivered
    first_position INTEGER NOT NULL,             -- (a segment without a row predates this table)
    sender         TEXT NOT NULL,                -- "unknown": stored before senders were recorded
    events         INTEGER NOT NULL,
    PRIMARY KEY (first_position, sender)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segment_digests (  -- per segment: each event's body_sha256, in position order
    first_position INTEGER PRIMARY KEY,          -- (a segment without a row predates this table)
    body_sha256s   BLOB NOT NULL                 -- 32 bytes per event: lets an incremental backup copy no event_ids row
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    origin      TEXT NOT NULL,   -- file:line, or topic/partition@offset
    reasons     TEXT NOT NULL,   -- JSON array, one reason per broken rule
    raw         BLOB,            -- the bytes as received; NULL once redacted by an erasure
    sender      TEXT,            -- who delivered it; NULL: unknown (stored before senders were recorded)
    replayed_position INTEGER,   -- once a replay found it valid: the position of the event it became
    replayed_at TEXT             -- and when
);
CREATE INDEX IF NOT EXISTS dead_letters_by_origin ON dead_letters (origin);
"""


ADDED_COLUMNS = (  # (table, column, type) added to the schema after stores were made without them
    ("event_ids", "sender", "TEXT"),
    ("dead_letters", "sender", "TEXT"),
    ("dead_letters", "replayed_position", "INTEGER"),
    ("dead_letters", "replayed_at", "TEXT"),
    ("segments", "sha256", "TEXT"),  # then filled by ``_record_missing_digests``
    ("segments", "bytes", "INTEGER"),
)
RETRACTED = "event.retracted"  # the event type that withdraws another event
UNKNOWN_SENDER = "unknown"  # how a store shows who delivered an event stored before senders were recorded
DeadLetter = tuple[str, tuple[str, ...], bytes | None, str | None]  # origin, reasons, bytes (None: redacted), sender

SYNTHETIC, REAL = "synthetic", "real"  # the kinds of data a store can hold (meta key "data")
LEGACY_SYNTHETIC_SOURCE = "synthetic:"  # how the demo marked its events before the label was a field


class MixedData(RuntimeError):
    """An event of the other kind than the store's (synthetic into real, or real into synthetic): nothing of
    the batch was stored. ``origin`` is the first such event's, ``refused`` how many the batch held."""

    def __init__(self, reason: str, origin: str, refused: int) -> None:
        super().__init__(f"{origin}: {reason}" + (f" ({refused - 1:,} more such event(s) in the batch)" if refused > 1 else ""))
        self.reason, self.origin, self.refused = reason, origin, refused


def kind_of(body: dict[str, Any]) -> str:
    return SYNTHETIC if is_synthetic(body) else REAL


def mixing_reason(event_kind: str, store: str) -> str:
    """Why an event of ``event_kind`` is refused by ``store`` (which "holds" events of the other kind), and what to do instead."""
    if event_kind == SYNTHETIC:
        return (f'synthetic: the event is synthetic ("synthetic": true) but {store} real events; '
                "synthetic and real events never share a store: use another PLANNING_HOME for synthetic data")
    return (f'synthetic: the event is real (no "synthetic": true) but {store} synthetic events (demo data); '
            "synthetic and real events never share a store: use another PLANNING_HOME for real data, "
            'or, if the event is synthetic too, send it with "synthetic": true')


def of_one_kind(batch: Sequence[Received], kind: str | None, store: str,
                other_kind: str) -> tuple[Sequence[Received], str | None]:
    """The batch with events of the other kind than the store's turned into rejects (``other_kind`` "dead_letter")
    or ``MixedData`` raised ("refuse"), and the kind of data the store holds once it is appended (None: still no
    event). ``kind`` is what the store holds now; ``store`` names it in the reason. Both backends append through it."""
    if other_kind not in ("refuse", "dead_letter"):
        raise ValueError(f"other_kind must be 'refuse' or 'dead_letter', not {other_kind!r}")
    store = f"{store} {'holds' if kind else 'is empty and this batch begins with'}"
    kept: list[Received] = []
    refused: list[tuple[Received, str]] = []
    for item in batch:
        if isinstance(item.verdict, Accepted):
            event_kind = kind_of(item.verdict.body)
            kind = kind or event_kind
            if event_kind != kind:
                reason = mixing_reason(event_kind, store)
                refused.append((item, reason))
                item = Received(item.raw, item.origin, Rejected((reason,)), item.sender)
        kept.append(item)
    if refused and other_kind == "refuse":
        first, reason = refused[0]
        raise MixedData(reason, first.origin, len(refused))
    return kept, kind


def redacted_if_erased(vault: Vault | None, dead: Sequence[DeadLetter]) -> list[DeadLetter]:
    """The dead letters, each naming an erased respondent kept without its bytes and with its reasons redacted."""
    if vault is None or not vault.any_erased():
        return list(dead)
    return [
        (origin, tuple(redact_reasons(reasons)), None, sender) if vault.erased_among(candidate_references(raw))
        else (origin, reasons, raw, sender)
        for origin, reasons, raw, sender in dead
    ]


def not_yet_dead_lettered(dead: Sequence[DeadLetter], stored: dict[str, list[tuple[bytes | None, list[str]]]],
                          outcome: BatchOutcome) -> list[DeadLetter]:
    """The dead letters still to store, in batch order, given those ``stored`` under each origin already (grown
    as the batch goes, so a reject twice in one batch is stored once); each reject is reported in ``outcome``.
    Both backends append through it."""
    new = []
    for origin, reasons, raw, sender in dead:
        outcome.rejected.append((origin, reasons))
        if _already_dead_lettered(stored.get(origin, []), raw, reasons):
            outcome.already_dead_lettered.append(origin)
        else:
            new.append((origin, reasons, raw, sender))
            stored.setdefault(origin, []).append((None if raw is None else _truncate(raw), list(reasons)))
    return new


class StoreLocked(RuntimeError):
    """Another process holds the writer lock; ``holder`` is what it wrote there, e.g. ``planning ingest (pid 12)``."""

    def __init__(self, message: str, holder: str = "another process") -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Received:
    """One raw event as it arrived, with the validator's verdict and who delivered it: the
    authenticated sender's name (``events.senders``), never the ``source`` the event names itself;
    None when unknown."""

    raw: bytes
    origin: str
    verdict: Accepted | Rejected
    sender: str | None = None


@dataclass
class BatchOutcome:
    accepted: list[str] = field(default_factory=list)  # event ids
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (origin, reasons) of every reject
    already_dead_lettered: list[str] = field(default_factory=list)  # origins of rejects an earlier append stored
    high_water_mark: int = 0
    erasures: int = 0  # respondent.erasure_requested events stored
    redacted: int = 0  # stored dead letters whose bytes an erasure in this batch redacted


@dataclass(frozen=True)
class Segment:
    path: Path
    first_position: int
    last_position: int
    events: int
    sha256: str | None = None  # as recorded when written; None: written before digests were recorded
    size: int | None = None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class EventStore:
    """Open with ``writer=True`` to append (exclusive), or without to read (any number)."""

    def __init__(self, root: Path, *, writer: bool = False, holder: str = "planning", erasure_ledger: Path | None = None) -> None:
        self.root = Path(root)
        self.erasure_ledger = ledger_path(self.root) if erasure_ledger is None else Path(erasure_ledger)
        self.segments_dir = self.root / "segments"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = None
        self.reapplied_at_open = (0, 0)  # (keys shredded, dead letters redacted) by _reconcile_erasure_ledger
        if writer:  # the lock first: a refused writer leaves nothing behind (a restore renames onto the folder)
            self._lock_file = self._take_writer_lock(holder)
        self.segments_dir.mkdir(exist_ok=True)
        self._db = sqlite3.connect(self.root / "store.sqlite", isolation_level=None, timeout=30)
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA secure_delete = ON")  # shredded keys and redacted dead letters are zeroed
        if writer:
            # The index's keys (event ids, respondent digests) are random, so every append reads and
            # writes pages all over a B-tree that grows with the store; SQLite's default 2 MiB page
            # cache made a 10M-event ingest spend most of its time re-reading them. 256 MiB at most.
            self._db.execute("PRAGMA cache_size = -262144")
            self._db.execute("PRAGMA journal_mode = WAL")  # not allowed inside a transaction
            # One transaction, so a reader never sees the index without the vault's pepper.
            self._db.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}{Vault.setup_sql()}COMMIT;")
            self._add_columns_once()
            self._index = EventIndex(self._db, writer=True)
            self._index.sort_into_runs_once()
            self.vault = Vault.open(self._db)
            self._quarantine_orphan_segments()
            self._record_missing_digests()
            self._count_senders_of_old_segments()
            self._redact_dead_letters_of_erased_once()
            self._record_data_kind_once()
            self._reconcile_erasure_ledger()
        else:
            self._index = EventIndex(self._db)
            self.vault = Vault.open(self._db) if self._has_schema() else None

    # --- locking ---------------------------------------------------------------

    def _take_writer_lock(self, holder: str):
        return take_writer_lock(self.root, holder)

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _add_columns_once(self) -> None:
        """Give a store made by an earlier version the columns it lacks (NULL in its old rows): the
        ``sender`` of events and dead letters (unknown), the replay of dead letters (never), and the
        digest of segments (recorded next, ``_record_missing_digests``)."""
        for table, column, kind in ADDED_COLUMNS:
            if column not in self._columns(table):
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def _has_schema(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'segments'").fetchone() is not None

    def _record_missing_digests(self) -> None:
        """Record the digest of each committed segment that has none (written before digests were
        recorded), trusting the bytes as found: nothing older can tell whether they changed. A
        segment whose file is missing keeps none (``planning verify`` reports it)."""
        for (name,) in self._db.execute("SELECT file FROM segments WHERE sha256 IS NULL").fetchall():
            path = self.segments_dir / name
            if path.is_file():
                sha256, size = file_digest(path)
                self._db.execute("UPDATE segments SET sha256 = ?, bytes = ? WHERE file = ?", (sha256, size, name))

    def _count_senders_of_old_segments(self) -> None:
        """Fill ``segment_senders`` for the segments committed before it existed, once, from the index's own
        rows: then ``counts_by_sender`` adds up a few rows per segment instead of grouping every event id.
        One transaction, so a segment is counted whole or not at all; a segment none of whose ids the index
        holds gets a row of 0, so it is not looked for again at every open."""
        uncounted = self._db.execute(
            "SELECT first_position, last_position FROM segments AS s"
            " WHERE NOT EXISTS (SELECT 1 FROM segment_senders AS t WHERE t.first_position = s.first_position)"
            " ORDER BY first_position"
        ).fetchall()
        if not uncounted:
            return
        firsts = [first for first, _ in uncounted]
        counted: Counter[tuple[int, str]] = Counter()
        for position, sender in self._db.execute("SELECT position, sender FROM event_ids"):
            at = bisect_right(firsts, position) - 1
            if at >= 0 and position <= uncounted[at][1]:
                counted[firsts[at], sender or UNKNOWN_SENDER] += 1
        rows = [(first, sender, n) for (first, sender), n in counted.items()]
        rows += [(first, UNKNOWN_SENDER, 0) for first in set(firsts) - {first for first, _ in counted}]
        with self._write_transaction():
            self._db.executemany("INSERT INTO segment_senders (first_position, sender, events) VALUES (?, ?, ?)", sorted(rows))

    def _quarantine_orphan_segments(self) -> None:
        """Move segment files that no commit refers to into ``quarantine/``, never deleting them.

        Most are left by a crash mid-append (never committed, so their sender was never told
        they were stored). But after a crash that also lost SQLite's WAL the index forgets
        committed batches, and their complete segments look the same: ``planning recover``
        appends the events of quarantined segments again, idempotently."""
        committed = {row[0] for row in self._db.execute("SELECT file FROM segments")}
        orphans = [path for path in self.segments_dir.iterdir() if path.name not in committed]
        if not orphans:
            return
        quarantine = self.root / QUARANTINE
        quarantine.mkdir(exist_ok=True)
        for path in orphans:
            target, copy = quarantine / path.name, 1
            while target.exists():  # a second crash left a file of the same name: keep both
                copy += 1
                target = quarantine / f"{path.name}.{copy}"
            os.replace(path, target)
        fsync_dir(quarantine)
        fsync_dir(self.segments_dir)

    @contextmanager
    def _write_transaction(self) -> Iterator[None]:
        """One SQLite write transaction: committed whole, or rolled back whole on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._index.forget_open_run()
            raise

    def _checkpoint_zeroed_pages(self) -> None:
        """Push the pages an erasure zeroed out of the WAL into the main file."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- appending -------------------------------------------------------------

    def append(self, batch: Sequence[Received], recorded_at: datetime | None = None, *, other_kind: str = "refuse") -> BatchOutcome:
        """Append a batch: accepted events, duplicates dropped, rejects and conflicts dead-lettered.

        Appending the same batch again (a file ingested twice, a batch Kafka redelivers) stores
        nothing more: an event is known by its ``event_id`` (a duplicate), a dead letter by its
        origin and bytes, or by its origin and reasons once an erasure redacted its bytes
        (``_already_dead_lettered``). Every reject is still in ``rejected``; those stored by an
        earlier append are also in ``already_dead_lettered``.

        An event of the other kind than the store's (synthetic or real; an empty store takes the
        kind of the batch's first event) raises :class:`MixedData` before anything is stored, or,
        with ``other_kind="dead_letter"`` (the stream worker, which cannot hand a message back), is
        dead-lettered with the reason.
        """
        if self._lock_file is None:
            raise RuntimeError("this EventStore was opened read-only")
        batch, kind = self._of_one_kind(batch, other_kind)
        recorded_at_text = iso(recorded_at or utc_now())
        outcome = BatchOutcome()
        dead: list[DeadLetter] = []
        fresh: list[tuple[Accepted, str | None]] = []  # with who delivered it

        known = self._known_digests([r.verdict.event_id for r in batch if isinstance(r.verdict, Accepted)])
        senders = self._senders_of_targets(batch)
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
            # the canonical digest, or (an event stored before digests were canonical) the sent body's
            if stored_digest is not None and (stored_digest == verdict.body_sha256 or stored_digest == verdict.sent_body_sha256):
                outcome.duplicates.append(verdict.event_id)
            elif stored_digest is not None:
                reason = f"event_id: {verdict.event_id} is already stored with a different body (the original is kept)"
                dead.append((item.origin, (reason,), item.raw, item.sender))
            else:
                known[verdict.event_id] = verdict.body_sha256
                senders[verdict.event_id] = item.sender
                fresh.append((verdict, item.sender))
        dead = self._without_earlier_dead_letters(self._redacted_if_erased(dead), outcome)

        with self._write_transaction():
            position = self.high_water_mark()
            records, ids = [], []
            for event, sender in fresh:
                position += 1
                records.append(to_record(event, position, recorded_at_text, self.vault, sender))
                ids.append((event.event_id, event.body_sha256, position, sender))
            self._index.insert(ids)
            if records:
                self._write_segment(records, [digest for _, digest, _, _ in ids])
                self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('data', ?)", (kind,))
            for origin, reasons, raw, sender in dead:
                self._db.execute(
                    "INSERT INTO dead_letters (received_at, origin, reasons, raw, sender) VALUES (?, ?, ?, ?, ?)",
                    (recorded_at_text, origin, json.dumps(list(reasons)), None if raw is None else _truncate(raw), sender),
                )
            erased = [e for e, _ in fresh if e.event_type == "respondent.erasure_requested"]
            for event in erased:
                outcome.redacted += self._erase(event.body["payload"]["respondent_ref"], recorded_at_text)
            if erased:  # ledgered before the store commits: an erasure stored is one ledgered (see _reconcile_erasure_ledger)
                digests = [d for e in erased for d in self.vault.digests_of(e.body["payload"]["respondent_ref"])]
                with ErasureLedger(self.erasure_ledger) as ledger:
                    ledger.record(self.vault.store_id, digests, recorded_at_text)
        if erased:
            self._checkpoint_zeroed_pages()
        outcome.accepted = [e.event_id for e, _ in fresh]
        outcome.erasures = len(erased)
        outcome.high_water_mark = position
        return outcome

    def append_recovered(self, records: list[dict[str, Any]], digests: dict[str, str]) -> tuple[int, int]:
        """Append records read back from a quarantined segment as one new segment, as they were
        stored (sealed fields, ``recorded_at`` and ``sender`` kept), at new positions; ``digests``
        gives each one's body digest for the index. The caller leaves out those the index holds.
        An erasure among them is applied again: its key shredding was lost with the index's
        copy of it. The positions they went to (first, last)."""
        if self._lock_file is None:
            raise RuntimeError("this EventStore was opened read-only")
        with self._write_transaction():
            first = self.high_water_mark() + 1
            moved = [{**record, "position": first + i} for i, record in enumerate(records)]
            self._index.insert([(r["event_id"], digests[r["event_id"]], r["position"], r.get("sender")) for r in moved])
            self._write_segment(moved, [digests[r["event_id"]] for r in moved])
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('data', ?)", (kind_of(moved[0]),))
            keys = self.live_keys([r["subject"] for r in moved if r["event_type"] == "respondent.erasure_requested"])
            for record in moved:
                if record["event_type"] == "respondent.erasure_requested":
                    ref = (unseal_with(keys, record["subject"], record["sealed"]) or {}).get("respondent_ref")
                    if ref is not None:
                        self._erase(ref, record["recorded_at"])
        self._checkpoint_zeroed_pages()
        return first, first + len(moved) - 1

    def subjects_known(self, subjects: Sequence[str]) -> set[str]:
        """Those of these respondent surrogates the vault knows (with a key, or erased)."""
        if self.vault is None:
            return set()
        return {row[0] for row in self._rows_for("SELECT subject FROM respondent_keys WHERE subject IN ({})", subjects)}

    def _of_one_kind(self, batch: Sequence[Received], other_kind: str) -> tuple[Sequence[Received], str | None]:
        return of_one_kind(batch, self.data_kind(), f"the event store at {self.root}", other_kind)

    def _senders_of_targets(self, batch: Sequence[Received]) -> dict[str, str | None]:
        """Who sent each stored event that a retraction in the batch names (by canonical id)."""
        return self.senders_of([target for item in batch if (target := retraction_target(item.verdict)) is not None])

    def _redacted_if_erased(self, dead: list[DeadLetter]) -> list[DeadLetter]:
        """The dead letters, those carrying an erased respondent's reference already redacted
        (bytes None, echoed values out of the reasons): a bad line of someone erased earlier,
        arriving now, is never stored with their data."""
        return redacted_if_erased(self.vault, dead)

    def _without_earlier_dead_letters(self, dead: list[DeadLetter], outcome: BatchOutcome) -> list[DeadLetter]:
        """The dead letters still to store, in batch order; each reject is reported in ``outcome``,
        and those already stored (by an earlier append, or earlier in this batch) marked so."""
        stored: dict[str, list[tuple[bytes | None, list[str]]]] = {}
        query = "SELECT origin, raw, reasons FROM dead_letters WHERE origin IN ({})"
        for origin, raw, reasons in self._rows_for(query, [origin for origin, *_ in dead]):
            stored.setdefault(origin, []).append((raw, json.loads(reasons)))
        return not_yet_dead_lettered(dead, stored, outcome)

    def _known_digests(self, event_ids: list[str]) -> dict[str, str]:
        return dict(self._index.rows("body_sha256", event_ids))

    def _rows_for(self, query: str, keys: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``query``, whose ``IN ({})`` takes the distinct ``keys``, 500 at a time (well
        under SQLite's limit on bound parameters); within each 500, in the query's own order."""
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            yield from self._db.execute(query.format(",".join("?" * len(chunk))), chunk)

    def _write_segment(self, records: list[dict[str, Any]], body_digests: Sequence[str]) -> None:
        first, last = records[0]["position"], records[-1]["position"]
        name = f"{first:012d}-{last:012d}.jsonl"
        temporary = self.segments_dir / f".{name}.tmp"
        digest, size = hashlib.sha256(), 0
        with open(temporary, "wb") as out:
            for record in records:
                written = record_line(record) + b"\n"
                digest.update(written)
                size += out.write(written)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.segments_dir / name)
        fsync_dir(self.segments_dir)
        self._db.execute(
            "INSERT INTO segments (file, first_position, last_position, events, committed_at, sha256, bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, first, last, len(records), iso(utc_now()), digest.hexdigest(), size),
        )
        self._db.executemany(
            "INSERT INTO segment_cycles (first_position, cycle) VALUES (?, ?)",
            [(first, cycle) for cycle in sorted({r["cycle"] for r in records})],
        )
        self._db.execute(
            "INSERT INTO segment_kinds (first_position, retractions) VALUES (?, ?)",
            (first, sum(1 for r in records if r["event_type"] == "event.retracted")),
        )
        self._db.execute("INSERT INTO segment_digests (first_position, body_sha256s) VALUES (?, ?)",
                         (first, b"".join(bytes.fromhex(digest) for digest in body_digests)))
        self._db.executemany("INSERT INTO segment_senders (first_position, sender, events) VALUES (?, ?, ?)",
                             [(first, sender, n) for sender, n in sorted(Counter(r.get("sender") or UNKNOWN_SENDER for r in records).items())])

    def _erase(self, respondent_ref: str, erased_at: str) -> int:
        """Shred the respondent's key and redact the dead letters that carry the reference, however
        it is spelled (``events.storage.redaction``); how many dead letters were redacted."""
        self.vault.erase(respondent_ref, erased_at)
        rows = self._db.execute("SELECT id, reasons, raw FROM dead_letters WHERE raw IS NOT NULL").fetchall()
        return self._redact([(id_, reasons) for id_, reasons, raw in rows if carries(raw, respondent_ref)])

    def _redact(self, letters: list[tuple[int, str]]) -> int:
        """Drop the bytes of these dead letters (id, reasons as stored) and the values their reasons
        echo; count them in the store's redaction mark, which tells a copy of the dead letters made
        before (``redaction_mark``) that it is out of date."""
        self._db.executemany(
            "UPDATE dead_letters SET raw = NULL, reasons = ? WHERE id = ?",
            [(json.dumps(redact_reasons(json.loads(reasons))), id_) for id_, reasons in letters],
        )
        if letters:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('redactions', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                (len(letters),),
            )
        return len(letters)

    def _redact_dead_letters_of_erased_once(self) -> None:
        """Redact, once per store, dead letters carrying the reference of someone erased before
        erasure read references by their meaning: an earlier version matched only one spelling,
        and stored a later bad line of someone already erased with its bytes."""
        if self._db.execute("SELECT 1 FROM meta WHERE key = 'dead_letters_checked_for_erased'").fetchone():
            return
        with self._write_transaction():
            # Dead letters an earlier version redacted count too: a copy made before them has no mark.
            self._db.execute("INSERT OR IGNORE INTO meta (key, value)"
                             " SELECT 'redactions', count(*) FROM dead_letters WHERE raw IS NULL HAVING count(*) > 0")
            redacted = 0
            if self.vault is not None and self.vault.any_erased():
                rows = self._db.execute("SELECT id, reasons, raw FROM dead_letters WHERE raw IS NOT NULL")
                redacted = self._redact([(id_, reasons) for id_, reasons, raw in rows.fetchall()
                                         if self.vault.erased_among(candidate_references(raw))])
            self._db.execute("INSERT INTO meta (key, value) VALUES ('dead_letters_checked_for_erased', '1')")
        if redacted:
            self._checkpoint_zeroed_pages()

    def _reconcile_erasure_ledger(self) -> None:
        """Make the store and its erasure ledger name the same erasures; every writer does it as it opens.

        An append writes the ledger before the store commits (``append``), so the store never holds an
        erasure its ledger lacks. Two things can still part them, and both are repaired here:

        * an entry for an erasure the store never committed (a crash between the two commits): the
          respondent is erased now, as ``restore`` would (key shredded, or a tombstone for one not met
          yet; dead letters redacted). They asked for it; the request, delivered again, changes nothing;
        * an erasure the ledger lacks because the ledger was lost, or put back from an older copy, or
          the store is older than ledgers: its tombstone is copied into the ledger.
        """
        if self.vault is None or (not self.erasure_ledger.is_file() and not self.vault.any_erased()):
            return  # nothing erased and no ledger: none is made
        store_id = self.vault.store_id
        tombstones = dict(self.vault.tombstones())
        with ErasureLedger(self.erasure_ledger) as ledger:
            ledgered = ledger.erasures(store_id)
            known = {e.ref_digest for e in ledgered}
            unledgered = [Erasure(digest, at) for digest, at in tombstones.items() if digest not in known]
            if unledgered:
                ledger.merge(store_id, unledgered)
        uncommitted = [e for e in ledgered if e.ref_digest not in tombstones]
        if uncommitted:
            self.reapplied_at_open = self.reapply_erasures(uncommitted)

    def reapply_erasures(self, erasures: Sequence[Erasure]) -> tuple[int, int]:
        """Erase again, by digest, respondents an erasure ledger names (a restored backup may predate
        their erasure): keys shredded and dead letters carrying their reference redacted, as an
        erasure event does. (keys shredded, dead letters redacted)."""
        if self._lock_file is None or self.vault is None:
            raise RuntimeError("reapplying erasures needs a writer on a store that holds events")
        with self._write_transaction():
            shredded = self.vault.shred([(e.ref_digest, e.erased_at) for e in erasures])
            rows = self._db.execute("SELECT id, reasons, raw FROM dead_letters WHERE raw IS NOT NULL").fetchall()
            redacted = self._redact([(id_, reasons) for id_, reasons, raw in rows
                                     if self.vault.erased_among(candidate_references(raw))]) if erasures else 0
        self._checkpoint_zeroed_pages()
        return shredded, redacted

    def _record_data_kind_once(self) -> None:
        """Write the kind of a store whose events predate the ``data`` mark (a writer opened it)."""
        kind = self.data_kind()
        if kind is not None:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('data', ?)", (kind,))

    def data_kind(self) -> str | None:
        """``"synthetic"`` or ``"real"``: the kind of every event in the store; None while it holds none.

        The first event stored sets it. A store whose events predate the mark takes the kind of its first
        event, which is synthetic if it says so or if its source starts ``synthetic:`` (the demo's events
        said so that way before the label was a field)."""
        if not self._has_schema():
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key = 'data'").fetchone()
        if row is not None:
            return row[0]
        for segment in self.segments():
            with open(segment.path, encoding="utf-8") as lines:
                first = json.loads(lines.readline())
            legacy = str(first.get("source", "")).startswith(LEGACY_SYNTHETIC_SOURCE)
            return SYNTHETIC if is_synthetic(first) or legacy else REAL
        return None

    @property
    def synthetic(self) -> bool:
        """Whether the store holds synthetic events (and so every output built from it must say so)."""
        return self.data_kind() == SYNTHETIC

    def redaction_mark(self) -> int:
        """How many dead letters erasures have redacted in this store, ever: a copy of the dead
        letters made when the mark was lower may still hold bytes an erasure removed."""
        if not self._has_schema():
            return 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'redactions'").fetchone()
        return 0 if row is None else int(row[0])

    # --- reading ---------------------------------------------------------------

    def high_water_mark(self) -> int:
        """The position of the last committed event (0 for an empty store)."""
        if not self._has_schema():
            return 0
        return self._db.execute("SELECT coalesce(max(last_position), 0) FROM segments").fetchone()[0]

    def segments(self, after: int = 0, upto: int | None = None) -> list[Segment]:
        """Committed segments holding positions in (after, upto]."""
        if not self._has_schema():
            return []
        upto = self.high_water_mark() if upto is None else upto
        rows = self._db.execute(
            f"SELECT file, first_position, last_position, events, {self._digest_columns()} FROM segments"
            " WHERE last_position > ? AND first_position <= ? ORDER BY first_position",
            (after, upto),
        )
        return [Segment(self.segments_dir / f, a, b, n, d, size) for f, a, b, n, d, size in rows]

    def segments_for_cycles(self, cycles: Iterable[str], upto: int | None = None) -> list[Segment]:
        """Committed segments up to ``upto`` that can hold an event of one of ``cycles`` or a retraction
        (which may name an event of any cycle): those the index says touch one of the cycles or hold a
        retraction, and every segment written before the index counted retractions. Each once, in
        position order, from one question to the index however many cycles a run builds. Reading these
        instead of every segment gives the same events of the cycles and the same retractions, at a cost
        that grows with the cycles rather than with the whole history."""
        if not self._has_schema():
            return []
        indexed = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'segment_kinds'").fetchone()
        if indexed is None:  # a store no writer of this version has opened yet
            return self.segments(upto=upto)
        upto = self.high_water_mark() if upto is None else upto
        wanted = list(dict.fromkeys(cycles))  # a run builds a few dozen cycles at most: well within SQLite's parameters
        in_wanted = ", ".join("?" * len(wanted))
        rows = self._db.execute(
            f"SELECT s.file, s.first_position, s.last_position, s.events, {self._digest_columns('s.')} FROM segments AS s"
            " LEFT JOIN segment_kinds AS k USING (first_position)"
            " WHERE s.first_position <= ? AND (k.first_position IS NULL OR k.retractions > 0 OR EXISTS"
            f" (SELECT 1 FROM segment_cycles AS c WHERE c.first_position = s.first_position AND c.cycle IN ({in_wanted})))"
            " ORDER BY s.first_position",
            (upto, *wanted),
        )
        return [Segment(self.segments_dir / f, a, b, n, d, size) for f, a, b, n, d, size in rows]

    def _digest_columns(self, table: str = "") -> str:
        """The segments' digest and size columns, or NULLs in a store no writer of this version has opened yet."""
        return f"{table}sha256, {table}bytes" if "sha256" in self._columns("segments") else "NULL, NULL"

    def live_keys(self, subjects: list[str]) -> dict[str, bytes]:
        """The live (not erased) keys of these subjects: what unsealing them needs, without loading
        every respondent's key (``Vault.keys_by_subject``) when a build needs one cycle's."""
        if self.vault is None:
            return {}
        query = "SELECT subject, key FROM respondent_keys WHERE key IS NOT NULL AND subject IN ({})"
        return dict(self._rows_for(query, subjects))

    def cycles(self, after: int = 0) -> list[str]:
        """Cycles named by events at positions after ``after`` (all cycles by default), oldest first."""
        if not self._has_schema():
            return []
        rows = self._db.execute(
            "SELECT DISTINCT c.cycle FROM segment_cycles AS c JOIN segments AS s USING (first_position)"
            " WHERE s.last_position > ? ORDER BY c.cycle",
            (after,),
        )
        return [cycle for (cycle,) in rows]

    def has_retraction_after(self, after: int) -> bool:
        """Whether any event at a position after ``after`` is a retraction (reads only the newer segments)."""
        needle = json.dumps(RETRACTED).encode()
        for segment in self.segments(after):
            with open(segment.path, "rb") as lines:
                for line in lines:
                    if needle in line:  # cheap filter; the parse below decides
                        record = json.loads(line)
                        if record["position"] > after and record["event_type"] == RETRACTED:
                            return True
        return False

    def records(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Stored records as written (personal data sealed), in position order."""
        for segment in self.segments(after):
            with open(segment.path, encoding="utf-8") as lines:
                for line in lines:
                    record = json.loads(line)
                    if record["position"] > after:
                        yield record

    def events(self, after: int = 0) -> Iterator[dict[str, Any]]:
        """Events as their senders sent them (upcast to the current version), plus
        ``position`` and ``recorded_at`` (``events.storage.conversion.to_event``).
        Personal fields of erased respondents are absent."""
        keys = self.vault.keys_by_subject() if self.vault else {}
        for record in self.records(after):
            yield to_event(record, keys)

    def dead_letters(self, sender: str | None = None) -> list[dict[str, Any]]:
        """The dead letters in the order they were stored, each with ``sender`` (None: unknown);
        only those ``sender`` delivered when it is given ("unknown" for those from no known sender)."""
        if not self._has_schema():
            return []
        present = self._columns("dead_letters")  # a column no writer has added yet reads as NULL
        who, position, at = (name if name in present else "NULL" for name in ("sender", "replayed_position", "replayed_at"))
        query = f"SELECT id, received_at, origin, reasons, raw, {who}, {position}, {at} FROM dead_letters"
        if sender is None:
            rows = self._db.execute(query + " ORDER BY id")
        elif sender == UNKNOWN_SENDER:
            rows = self._db.execute(query + f" WHERE {who} IS NULL ORDER BY id")
        else:
            rows = self._db.execute(query + f" WHERE {who} = ? ORDER BY id", (sender,))
        return [
            {"id": id_, "received_at": received, "origin": origin, "reasons": json.loads(reasons), "raw": raw,
             "sender": by, "replayed_position": replayed, "replayed_at": replayed_at}
            for id_, received, origin, reasons, raw, by, replayed, replayed_at in rows
        ]

    def mark_replayed(self, positions: dict[int, int], replayed_at: datetime) -> None:
        """Mark dead letters (by id) replayed into the events at these positions."""
        if self._lock_file is None:
            raise RuntimeError("this EventStore was opened read-only")
        with self._write_transaction():
            self._db.executemany(
                "UPDATE dead_letters SET replayed_position = ?, replayed_at = ? WHERE id = ? AND replayed_position IS NULL",
                [(position, iso(replayed_at), id_) for id_, position in positions.items()],
            )

    def positions_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        """The position of each of these events that is stored (canonical ids)."""
        if not self._has_schema():
            return {}
        return dict(self._index.rows("position", event_ids))

    def senders_of(self, event_ids: Sequence[str]) -> dict[str, str | None]:
        """Who delivered each of these stored events (canonical ids as the index keeps them; None: unknown)."""
        if not self._has_schema() or "sender" not in self._columns("event_ids"):
            return {}
        return dict(self._index.rows("sender", event_ids))

    def counts_by_sender(self) -> dict[str, dict[str, int]]:
        """How many events and dead letters each sender delivered ("unknown": stored before senders were recorded).
        The events are added up from ``segment_senders`` (a row per segment and sender, written with the segment):
        a cost that follows the segments, not the events. Only in a store whose older segments no writer of this
        version has counted yet (``_count_senders_of_old_segments``) are the event ids grouped one by one."""
        if not self._has_schema():
            return {"events": {}, "dead_letters": {}}
        if self._every_segment_counted_by_sender():
            rows = self._db.execute("SELECT sender, sum(events) FROM segment_senders GROUP BY sender"
                                    " HAVING sum(events) > 0 ORDER BY sender")
            events = dict(rows.fetchall())
        else:
            events = self._count_by_sender_in("event_ids")
        return {"events": events, "dead_letters": self._count_by_sender_in("dead_letters")}

    def sender_tallies(self) -> tuple[dict[str, int], dict[str, int]] | None:
        """Events per sender two ways, read at one instant: as the segments' kept counts add up (``segment_senders``,
        what ``counts_by_sender`` shows), and as the index's event ids group. None while a segment is not counted
        yet: ``counts_by_sender`` then groups the ids itself, so there is nothing to compare."""
        if not self._has_schema() or not self._every_segment_counted_by_sender():
            return None
        who = "sender" if "sender" in self._columns("event_ids") else "NULL"
        rows = self._db.execute("SELECT 'kept', sender, sum(events) FROM segment_senders"
                                " GROUP BY sender HAVING sum(events) > 0"
                                f" UNION ALL SELECT 'index', coalesce({who}, ?), count(*) FROM event_ids GROUP BY 2",
                                (UNKNOWN_SENDER,))
        kept: dict[str, int] = {}
        grouped: dict[str, int] = {}
        for side, sender, events in rows:
            (kept if side == "kept" else grouped)[sender] = events
        return kept, grouped

    def _count_by_sender_in(self, table: str) -> dict[str, int]:
        who = "sender" if "sender" in self._columns(table) else "NULL"
        rows = self._db.execute(f"SELECT coalesce({who}, ?), count(*) FROM {table} GROUP BY 1 ORDER BY 1", (UNKNOWN_SENDER,))
        return dict(rows.fetchall())

    def _every_segment_counted_by_sender(self) -> bool:
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'segment_senders'").fetchone() is None:
            return False  # a store no writer of this version has opened yet
        uncounted = self._db.execute("SELECT 1 FROM segments AS s WHERE NOT EXISTS"
                                     " (SELECT 1 FROM segment_senders AS t WHERE t.first_position = s.first_position)")
        return uncounted.fetchone() is None

    def event_ids_between(self, first: int, last: int) -> list[tuple[int, str]]:
        """(position, event_id) of the committed events at positions first..last, in position order."""
        if not self._has_schema():
            return []
        query = "SELECT position, event_id FROM event_ids WHERE position BETWEEN ? AND ? ORDER BY position"
        return self._db.execute(query, (first, last)).fetchall()

    def known_event_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Those of these event ids (as records hold them) that the index holds."""
        if not self._has_schema():
            return set()
        return {row[0] for row in self._index.rows("position", event_ids)}

    def committed_counts(self) -> tuple[int, int]:
        """(event ids the index holds, events its committed segments hold), read at one instant."""
        if not self._has_schema():
            return 0, 0
        query = "SELECT (SELECT count(*) FROM event_ids), (SELECT coalesce(sum(events), 0) FROM segments)"
        return self._db.execute(query).fetchone()

    def counts(self) -> dict[str, int]:
        if not self._has_schema():
            return {"events": 0, "dead_letters": 0}
        # The committed segments' own counts: one row per segment, where count(*) over event_ids read every id
        # (seconds at 10M events, paid by the sensor and by every build). ``committed_counts`` compares the two.
        events = self._db.execute("SELECT coalesce(sum(events), 0) FROM segments").fetchone()[0]
        dead = self._db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        return {"events": events, "dead_letters": dead}


def take_writer_lock(root: Path, holder: str):
    """The store's writer lock (flock on ``writer.lock``), held until the returned file is closed, with
    ``holder`` and this process's id written in it so a refused writer can name who holds it; or
    :class:`StoreLocked` naming the process that holds it (as it wrote itself there)."""
    lock_file = open(root / WRITER_LOCK, "a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        current = lock_file.read().strip() or "another process"
        lock_file.close()
        raise StoreLocked(f"the event store at {root} is being written by {current}", current) from None
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(f"{holder} (pid {os.getpid()})\n")
    lock_file.flush()
    return lock_file


def retraction_target(verdict: Accepted | Rejected) -> str | None:
    """The canonical id of the event an accepted retraction names (as the index keeps ids), else None."""
    if not isinstance(verdict, Accepted) or verdict.event_type != "event.retracted":
        return None
    try:
        return str(uuid.UUID(str(verdict.body["payload"]["target_event_id"])))
    except (ValueError, KeyError, TypeError):
        return None


def retraction_refusal(verdict: Accepted | Rejected, sender: str | None, senders: dict[str, str | None]) -> str | None:
    """Why this sender may not make this retraction, or None.

    A registered sender may retract only events it sent itself; the data team (an operator)
    may retract any event, and an appender that names no sender is not checked. A target the
    store does not hold yet cannot be checked here; the builds check it (``projections.building``).
    """
    target = retraction_target(verdict)
    if target is None or target not in senders or may_retract(sender, senders[target]):
        return None
    by = senders[target]
    return (f"payload.target_event_id: sender {sender} may retract only events it sent itself"
            f" ({target} was sent by {by or UNKNOWN_SENDER}); ask its sender or the data team to retract it")


def _already_dead_lettered(stored: list[tuple[bytes | None, list[str]]], raw: bytes | None, reasons: tuple[str, ...]) -> bool:
    """Whether a reject is a dead letter already stored, given the (bytes, reasons) stored from its origin.

    A dead letter is known by its origin and its bytes together. The origin alone is not
    enough: ``file:line`` names another line once the file is edited, and
    ``topic/partition@offset`` another message once the topic is recreated. The bytes alone
    are not enough either: two lines of a file may be the same broken bytes, and each is a
    dead letter of its own. Bytes are compared as a dead letter keeps them (the first 64 KiB).

    A dead letter whose bytes an erasure redacted (``None``) is matched by its origin and its
    reasons instead: keeping a fingerprint of the bytes would keep something of the personal
    data the respondent asked us to erase, while the reasons stay. So the same bad file ingested
    again after an erasure adds nothing, and a different broken line at that origin, which
    breaks other rules, is still stored. (Two different lines breaking exactly the same rules
    at one origin, one of them erased, count as one.) The reasons of a redacted dead letter are
    kept redacted (``events.storage.redaction.redact_reasons``), so they are compared redacted;
    a reject that is itself redacted on arrival (``raw`` None) is known by its reasons alone.
    """
    kept = None if raw is None else _truncate(raw)
    redacted = redact_reasons(reasons)
    return any(earlier == kept if earlier is not None else earlier_reasons in (list(reasons), redacted)
               for earlier, earlier_reasons in stored)


def _truncate(raw: bytes) -> bytes:
    return raw if len(raw) <= MAX_DEAD_LETTER_BYTES else raw[:MAX_DEAD_LETTER_BYTES]


__all__ = [
    "EventStore", "Received", "BatchOutcome", "UNKNOWN_SENDER", "StoreLocked", "MixedData", "Segment", "SYNTHETIC", "REAL",
    "PERSONAL_FIELDS", "respondent_ref_of",
]
