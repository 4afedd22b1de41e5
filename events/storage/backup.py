"""Online, consistent, incremental backups of the event store (``planning backup DIR``).

A backup never takes the writer lock: the stream worker or an ingest goes on appending while
it runs. It is consistent because of how the store commits (``events.storage.store``): a
batch exists once its segment row is committed in ``store.sqlite``, and a committed segment
is never rewritten. So a backup is

1. a copy of ``store.sqlite`` made with SQLite's online backup API in one step: one read
   transaction, a snapshot of the index at one commit, which in WAL mode never blocks the
   writer (its position is the copy's high-water mark);
2. exactly the segments that copied index commits, copied whole (a segment already in DIR
   under its name and size is not copied again: that is what makes a second backup into the
   same DIR incremental); segments the writer commits meanwhile are left for the next backup;

   A second backup into the same DIR brings the index copy forward instead of copying it
   again (``_bring_index_forward``), in one read transaction on the store, without writing into
   the copy's big random-key tables (every row would rewrite a page of a B-tree): the rows of
   the segment tables for the new segments (keyed by position: appended), one row per new
   segment in ``since_base_segments`` standing for its ``event_ids`` rows (its records give ids,
   positions and senders; its ``segment_digests`` row the body digests), the keys created since
   appended to ``since_base_respondent_keys`` (by the store's rowid), and only the ``meta`` and
   ``dead_letters`` rows that changed (an erasure redacts, a replay marks). ``restore`` merges
   them (``merge_since_base``) before anything else reads the copy. Every key the erasure ledger
   names is shredded in the base copy and in the rows kept since (``secure_delete``: the bytes
   are zeroed, not left in free pages). So its cost follows what is new, not the size of the
   store. Any table or column it does not know, a ledger it cannot trust, or rows kept since the
   base that outgrow ``SINCE_BASE_LIMIT`` make it copy the whole index instead (which folds them
   in). The new segments are copied meanwhile by another thread (both wait on the disk, not on
   Python), which then checks that DIR still holds the earlier ones whole.
3. the sender registry (``senders.sqlite``) and the erasure ledger, each with the backup API,
   unless the copy in DIR already holds the same rows;
4. the quarantined segments (``store/quarantine/``): not committed, so not in the index, but
   they hold events ``planning recover`` can bring back (a batch the index forgot when SQLite's
   WAL was lost), and a lost store loses them too. A file is moved there whole and never
   changes, so one already in DIR with its name and size is not copied again;
5. the home's other SQLite databases the caller names (``SiteDatabase``: the web site's accounts and
   audit log), each with the backup API in one read transaction, unless the copy holds the same rows,
   in a directory only its owner may read (password hashes, who saw what);
6. everything fsynced, and ``manifest.json`` renamed into place last (written and fsynced under a
   temporary name while the last segments are copied). A backup starts by removing the
   manifest, so a backup cut short is never taken for a whole one (``check_backup``), and the
   next backup into that DIR starts afresh.

Layout of DIR::

    manifest.json            position, events and segments (name and size) of the copy
    store/store.sqlite       the index at the backup's position (journal mode DELETE: one file),
                             with the rows kept since its base (``since_base_*``)
    store/senders.sqlite     the sender registry
    store/segments/*.jsonl   the committed segments up to the position
    store/quarantine/*       the store's quarantined segments, as they were when the backup was taken
    erasures/ledger.sqlite   the erasure ledger, as it was when the backup was taken
    web/*.sqlite             the site databases named (``SiteDatabase.name``), as they were when copied
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from events.storage.erasure_ledger import LEDGER_DIR, LEDGER_FILE, ErasureLedger, copy_sqlite, fsync_dir, fsync_file, ledger_path

REGISTRY_FILE = "senders.sqlite"  # events.senders.registry's, named here so a backup need not load the contract
QUARANTINE = "quarantine"  # events.storage.store's, named here for the same reason
MANIFEST = "manifest.json"
INDEX = "store.sqlite"
FORMAT = 1


class BackupRefused(RuntimeError):
    """DIR cannot take this backup (it holds another store's, or something that is not a backup)."""


class NothingToBackUp(RuntimeError):
    pass


class IncompleteBackup(RuntimeError):
    """DIR is not a whole backup; the message says what is missing."""


@dataclass(frozen=True)
class Manifest:
    store_id: str  # sha256 of the store's pepper ("" for a store that never held an event)
    position: int  # the high-water mark the backup is consistent at
    events: int
    dead_letters: int
    segments: dict[str, int]  # file name -> size in bytes
    taken_at: str
    quarantine: dict[str, int] = field(default_factory=dict)  # quarantined file name -> size in bytes
    databases: list[str] = field(default_factory=list)  # the site databases copied (``SiteDatabase.name``)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "store_id": self.store_id, "position": self.position, "events": self.events,
                           "dead_letters": self.dead_letters, "taken_at": self.taken_at, "segments": self.segments,
                           "quarantine": self.quarantine, "databases": self.databases}, indent=1)

    @classmethod
    def read(cls, backup: Path) -> Manifest | None:
        path = Path(backup) / MANIFEST
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise IncompleteBackup(f"{path}: format {data.get('format')!r} is not one this version reads ({FORMAT})")
        return cls(data["store_id"], data["position"], data["events"], data["dead_letters"], data["segments"], data["taken_at"],
                   data.get("quarantine", {}), data.get("databases", []))  # older backups have neither


@dataclass(frozen=True)
class SiteDatabase:
    """A SQLite database of the home, outside the store, that a backup copies and a restore puts back."""

    name: str  # its path in the backup directory, e.g. ``web/audit.sqlite``
    path: Path  # where it lives in the home
    append_only: bool = False  # rows are only ever added (an audit log): a restore adds to it what it lacks


@dataclass
class BackupReport:
    manifest: Manifest
    copied: list[str] = field(default_factory=list)  # segments copied by this backup
    copied_bytes: int = 0
    kept: int = 0  # segments DIR held already
    copied_files: list[str] = field(default_factory=list)  # the other files: index, registry, ledger
    found_whole: set[str] = field(default_factory=set, repr=False)  # segments the copier thread left whole in DIR


def store_id_of(index: sqlite3.Connection) -> str:
    """The store's identity as the erasure ledger names it: sha256 of its pepper ("" with none yet)."""
    try:
        row = index.execute("SELECT value FROM meta WHERE key = 'pepper'").fetchone()
    except sqlite3.OperationalError:  # no meta table: a store no writer has set up
        return ""
    return "" if row is None else hashlib.sha256(bytes.fromhex(row[0])).hexdigest()


def backup(store_root: Path, target: Path, *, now: datetime | None = None, site: Sequence[SiteDatabase] = ()) -> BackupReport:
    """Back up the store at ``store_root`` into ``target`` (incrementally if it holds a backup of the same store),
    and the ``site`` databases that exist."""
    store_root, target = Path(store_root), Path(target)
    index_file = store_root / INDEX
    if not index_file.is_file():
        raise NothingToBackUp(f"there is no event store at {store_root}: nothing to back up")
    _refuse_unfit_target(store_root, target, {Path(database.name).parts[0] for database in site})
    with ThreadPoolExecutor(1) as copier:  # copies the new segments while the index is brought forward
        source = sqlite3.connect(index_file, timeout=30)
        try:
            source.execute(f"PRAGMA main.mmap_size = {MAPPED_INDEX}")  # the index's pages read without a system call each
            previous = Manifest.read(target)
            store_id = store_id_of(source)
            if previous is not None and previous.store_id not in ("", store_id):
                raise BackupRefused(f"{target} holds a backup of another event store; back up into an empty directory")
            if previous is None and (target / "store").is_dir():
                shutil.rmtree(target / "store")  # a backup cut short, of this store or another: nothing in it is trusted
            target.mkdir(parents=True, exist_ok=True)
            (target / MANIFEST).unlink(missing_ok=True)  # from here until the new manifest, DIR is not a whole backup
            fsync_dir(target)
            index_copy = target / "store" / INDEX
            # the consistent moment: one read transaction on the store, for either way of copying its index
            brought = None if previous is None else _bring_index_forward(source, index_copy, previous, store_root,
                                                                            target / "store" / "segments", copier)
            copied = _copy_whole(source, index_copy, store_root, target) if brought is None else None
        finally:
            source.close()
        report = BackupReport(_manifest_of(target / "store" / INDEX, store_root, now))
        report.copied_files.append(f"{INDEX} ({'whole' if brought is None else 'brought forward'})")
        registry = store_root / REGISTRY_FILE
        if registry.is_file():  # after the index's snapshot: it names every sender that snapshot knows
            copied_now = _copy_database(registry, target / "store" / REGISTRY_FILE)
            report.copied_files.append(REGISTRY_FILE + ("" if copied_now else " (unchanged)"))
        ledger = ledger_path(store_root)
        if ledger.is_file():
            copied_now = _copy_database(ledger, target / LEDGER_DIR / LEDGER_FILE)
            report.copied_files.append(f"{LEDGER_DIR}/{LEDGER_FILE}" + ("" if copied_now else " (unchanged)"))
        _copy_quarantine(store_root / QUARANTINE, target / "store" / QUARANTINE, report)
        _copy_site(site, target, report)
        _prepare_manifest(target, report.manifest)  # on the disk under a temporary name while the segments copy
        if copied is None and brought is not None:
            copied, report.found_whole = brought.result()  # the new segments, then every earlier one DIR had lost
            copied = copied, sum(report.manifest.segments[name] for name in copied)
    if copied is not None:
        report.copied, report.copied_bytes = copied
    _copy_segments(store_root / "segments", target / "store" / "segments", report)  # those not copied yet
    _publish_manifest(target)
    return report


KNOWN_TABLES = {  # the index's tables, and how a second backup brings each forward
    "meta": "whole", "dead_letters": "whole", "segments": "new segments", "segment_cycles": "new segments",
    "segment_kinds": "new segments", "segment_digests": "new segments", "event_ids": "kept since the base",
    "respondent_keys": "kept since the base, and erased",
}
SINCE_BASE = {  # the tables an incremental backup keeps beside its base copy, merged by restore
    "segments": "since_base_segments",  # segments whose event_ids rows are not in the copy: their records and digests give them
    "event_ids": "since_base_event_ids",  # event_ids rows of new segments without digests (written by an earlier version)
    "respondent_keys": "since_base_respondent_keys",
}
STORE_ROWID = "store_rowid"  # in since_base_respondent_keys: the row's rowid in the store, kept as it is by the merge
SINCE_BASE_LIMIT = 100_000  # events kept since the base beyond which (and beyond a quarter of the base) the index is copied whole
DIGEST_BYTES = 32
MAPPED_INDEX = 1 << 32  # bytes of the store's index read through a memory map (a third less CPU copying it)
SYNCERS = 4  # fsyncs under way at once while segments are copied: each only waits on the disk
EVENT_ID = b'"event_id":"'  # a record's envelope comes before its payload: the first on its line is its own id


def _bring_index_forward(source: sqlite3.Connection, index_copy: Path, previous: Manifest, store_root: Path,
                         segments_copy: Path, copier: ThreadPoolExecutor) -> Future[tuple[list[str], set[str]]] | None:
    """Apply to the backup's index copy what the store committed since it was made, and start copying
    the new segments (``copier``: the segments it copied); None (and nothing changed in the index or
    left copying) when that cannot be done safely, and the whole index must be copied."""
    if not index_copy.is_file():
        return None
    source.execute("ATTACH DATABASE ? AS b", (str(index_copy),))
    try:
        source.execute("PRAGMA b.secure_delete = ON")  # redacted and shredded bytes do not stay in the copy
        # No rollback journal and no fsync while it is brought forward: until the new manifest is written
        # DIR is not a backup, and a backup cut short is copied whole next time (no manifest to build on);
        # the file is fsynced once, at the end.
        source.execute("PRAGMA b.journal_mode = OFF")
        source.execute("PRAGMA b.synchronous = OFF")
        source.execute("BEGIN")
        try:
            copying = _apply_changes(source, previous, store_root, segments_copy, copier)
            source.execute("COMMIT" if copying is not None else "ROLLBACK")
        except BaseException:
            source.execute("ROLLBACK")
            raise
    finally:
        source.execute("DETACH DATABASE b")
    if copying is not None:
        fsync_file(index_copy)
    return copying


def _schema(db: sqlite3.Connection, schema: str) -> list[tuple]:
    return db.execute(f"SELECT type, name, sql FROM {schema}.sqlite_master WHERE name NOT LIKE 'since_base_%'"
                      " ORDER BY type, name").fetchall()


def _apply_changes(db: sqlite3.Connection, previous: Manifest, store_root: Path, segments_copy: Path,
                   copier: ThreadPoolExecutor) -> Future[tuple[list[str], set[str]]] | None:
    schema = _schema(db, "main")  # the first read: the snapshot everything below is read from
    tables = {name for kind, name, _ in schema if kind == "table"}
    if schema != _schema(db, "b") or tables != set(KNOWN_TABLES):
        return None  # a migration since, or a table this version does not know how to bring forward
    old = db.execute("SELECT coalesce(max(last_position), 0) FROM b.segments").fetchone()[0]
    new = db.execute("SELECT coalesce(max(last_position), 0) FROM main.segments").fetchone()[0]
    if old != previous.position or new < old:
        return None
    new_sizes = _sizes(db.execute("SELECT file, bytes FROM main.segments WHERE first_position > ?", (old,)).fetchall(), store_root)
    old_sizes = _sizes(db.execute("SELECT file, bytes FROM main.segments WHERE first_position <= ?", (old,)).fetchall(), store_root)
    copying = copier.submit(_copy_new_then_check, store_root / "segments", segments_copy, new_sizes, old_sizes)
    erased = _ledgered_erasures(db, store_root)
    columns = {table: [row[1] for row in db.execute(f"PRAGMA main.table_info({table})")] for table in tables}
    kept = _keep_since_base(db, columns)
    if (erased is not None and kept + new - old <= max(SINCE_BASE_LIMIT, (old - kept) // 4)  # else a restore would merge long
            and _copy_new_rows(db, columns, store_root, old, new) and _erase_in_copy(db, columns, erased)):
        return copying
    copying.result()  # a whole copy follows, which must not copy the same segments at the same time
    return None


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)


def _keep_since_base(db: sqlite3.Connection, columns: dict[str, list[str]]) -> int:
    """Create the tables kept since the base if they are not there; how many events they hold."""
    db.execute(f"CREATE TABLE IF NOT EXISTS b.{SINCE_BASE['segments']} (first_position INTEGER PRIMARY KEY)")
    db.execute(f"CREATE TABLE IF NOT EXISTS b.{SINCE_BASE['event_ids']} ({_listed(columns['event_ids'])})")
    db.execute(f"CREATE TABLE IF NOT EXISTS b.{SINCE_BASE['respondent_keys']}"
               f" ({STORE_ROWID} INTEGER PRIMARY KEY, {_listed(columns['respondent_keys'])})")
    return db.execute(f"SELECT (SELECT coalesce(sum(events), 0) FROM b.segments WHERE first_position IN"
                      f" (SELECT first_position FROM b.{SINCE_BASE['segments']}))"
                      f" + (SELECT coalesce(max(rowid), 0) FROM b.{SINCE_BASE['event_ids']})").fetchone()[0]  # appended, never deleted


def _copy_new_rows(db: sqlite3.Connection, columns: dict[str, list[str]], store_root: Path, old: int, new: int) -> bool:
    """Append what the new segments committed; False when they do not account for every new position."""
    for table in ("segments", "segment_cycles", "segment_kinds", "segment_digests"):  # keyed by position: appended at the end
        listed = _listed(columns[table])
        db.execute(f"INSERT OR REPLACE INTO b.{table} ({listed}) SELECT {listed} FROM main.{table} WHERE first_position > ?", (old,))
    # A new segment's event_ids rows are its records' ids, positions and senders and its digests: kept as one row
    # naming it. Only a segment written before digests were recorded has its rows looked up by id, one by one.
    db.execute(f"INSERT INTO b.{SINCE_BASE['segments']} (first_position) SELECT s.first_position FROM main.segments AS s"
               " JOIN main.segment_digests AS d USING (first_position)"
               f" WHERE s.first_position > ? AND length(d.body_sha256s) = {DIGEST_BYTES} * s.events", (old,))
    events = db.execute(f"SELECT coalesce(sum(events), 0) FROM main.segments WHERE first_position IN"
                        f" (SELECT first_position FROM b.{SINCE_BASE['segments']}) AND first_position > ?", (old,)).fetchone()[0]
    undigested = [f for (f,) in db.execute(f"SELECT file FROM main.segments WHERE first_position > ? AND first_position NOT IN"
                                           f" (SELECT first_position FROM b.{SINCE_BASE['segments']})", (old,))]
    ids = sorted(_own_id(line) for f in undigested for line in (store_root / "segments" / f).read_bytes().splitlines())
    listed, copied = _listed(columns["event_ids"]), 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        copied += db.execute(f"INSERT INTO b.{SINCE_BASE['event_ids']} ({listed}) SELECT {listed} FROM main.event_ids"
                             f" WHERE event_id IN ({','.join('?' * len(chunk))}) AND position > ?", [*chunk, old]).rowcount
    if events + copied != new - old:
        return False  # the new segments do not account for every new position: copy the whole index
    listed = _listed(columns["respondent_keys"])
    db.execute(f"INSERT INTO b.{SINCE_BASE['respondent_keys']} ({STORE_ROWID}, {listed}) SELECT rowid, {listed} FROM main.respondent_keys"
               f" WHERE rowid > max((SELECT coalesce(max(rowid), 0) FROM b.respondent_keys),"
               f" (SELECT coalesce(max({STORE_ROWID}), 0) FROM b.{SINCE_BASE['respondent_keys']}))")
    _copy_changed(db, "meta", "key", columns["meta"])
    _copy_changed(db, "dead_letters", "id", columns["dead_letters"])  # new, redacted or replayed; id is the rowid, kept
    return True


def _copy_changed(db: sqlite3.Connection, table: str, key: str, columns: list[str]) -> None:
    """Make the copy's ``table`` equal the store's by writing only the rows that differ (new or changed)
    and deleting those the store no longer has: a row replaced is zeroed (``secure_delete``)."""
    listed, same = _listed(columns), " AND ".join(f"m.{c} IS d.{c}" for c in columns)
    db.execute(f"DELETE FROM b.{table} WHERE {key} NOT IN (SELECT {key} FROM main.{table})")
    db.execute(f"INSERT OR REPLACE INTO b.{table} ({listed}) SELECT {listed} FROM main.{table} AS m"
               f" WHERE NOT EXISTS (SELECT 1 FROM b.{table} AS d WHERE d.{key} = m.{key} AND {same})")


def _erase_in_copy(db: sqlite3.Connection, columns: dict[str, list[str]], erased: list[bytes]) -> bool:
    """Shred in the copy, base and rows kept since, the key of every respondent the ledger names whose
    copy still holds one: the row is replaced by the store's (key NULL, ``erased_at``)."""
    listed, kept = _listed(columns["respondent_keys"]), SINCE_BASE["respondent_keys"]
    for start in range(0, len(erased), 500):
        chunk = erased[start:start + 500]
        marks = ",".join("?" * len(chunk))
        db.execute(f"INSERT OR REPLACE INTO b.respondent_keys (rowid, {listed}) SELECT rowid, {listed} FROM main.respondent_keys"
                   " WHERE ref_digest IN (SELECT ref_digest FROM b.respondent_keys"
                   f" WHERE ref_digest IN ({marks}) AND key IS NOT NULL)", chunk)
        db.execute(f"INSERT OR REPLACE INTO b.{kept} ({STORE_ROWID}, {listed}) SELECT rowid, {listed} FROM main.respondent_keys"
                   f" WHERE rowid IN (SELECT {STORE_ROWID} FROM b.{kept} WHERE key IS NOT NULL AND ref_digest IN ({marks}))", chunk)
    return True


def merge_since_base(index: Path) -> None:
    """Fold the rows a backup kept since its base copy (``_bring_index_forward``) into the index's own
    tables, and drop their tables (zeroed): the index is then what a whole copy would have been. The
    segments named are read from ``segments/`` beside the index (checked against their digests first)."""
    db = sqlite3.connect(index)
    try:
        db.execute("PRAGMA secure_delete = ON")
        names = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not set(SINCE_BASE.values()) & names:
            return
        columns = {table: [row[1] for row in db.execute(f"PRAGMA table_info({table})")] for table in ("event_ids", "respondent_keys")}
        with db:
            listed = _listed(columns["event_ids"])
            db.executemany("INSERT INTO event_ids (event_id, body_sha256, position, sender) VALUES (?, ?, ?, ?)",
                           _rows_of_segments(db, Path(index).parent / "segments"))
            db.execute(f"INSERT INTO event_ids ({listed}) SELECT {listed} FROM {SINCE_BASE['event_ids']}")
            listed = _listed(columns["respondent_keys"])
            db.execute(f"INSERT INTO respondent_keys (rowid, {listed}) SELECT {STORE_ROWID}, {listed} FROM {SINCE_BASE['respondent_keys']}"
                       f" ORDER BY {STORE_ROWID}")
            for table in SINCE_BASE.values():
                db.execute(f"DROP TABLE {table}")
    finally:
        db.close()


def _rows_of_segments(db: sqlite3.Connection, segments: Path) -> Iterator[tuple[str, str, int, str | None]]:
    """The event_ids rows of the segments kept since the base: each record's id, position and sender, and its digest."""
    kept = db.execute(f"SELECT s.file, s.first_position, s.events, d.body_sha256s FROM {SINCE_BASE['segments']}"
                      " JOIN segments AS s USING (first_position) JOIN segment_digests AS d USING (first_position)"
                      " ORDER BY first_position").fetchall()
    named = db.execute(f"SELECT count(*) FROM {SINCE_BASE['segments']}").fetchone()[0]
    if len(kept) != named:
        raise IncompleteBackup(f"{named - len(kept):,} segment(s) the backup's index names have no row or digests in it;"
                               " restore another backup")
    for file, first, events, digests in kept:
        records = [json.loads(line) for line in (segments / file).read_bytes().splitlines()]
        if (len(records) != events or len(digests) != DIGEST_BYTES * events
                or any(record["position"] != first + i for i, record in enumerate(records))):
            raise IncompleteBackup(f"{segments / file} does not hold the {events:,} events its index row names; restore another backup")
        for i, record in enumerate(records):
            yield record["event_id"], digests[DIGEST_BYTES * i:DIGEST_BYTES * (i + 1)].hex(), record["position"], record.get("sender")


def _own_id(record: bytes) -> str:
    """The ``event_id`` of one stored record, without parsing the rest of it."""
    start = record.find(EVENT_ID) + len(EVENT_ID)
    return record[start:record.index(b'"', start)].decode()


def _ledgered_erasures(db: sqlite3.Connection, store_root: Path) -> list[bytes] | None:
    """The digests of every respondent the store erased, from its ledger (read after the snapshot was
    taken, and written before each erasure commits, so it names every erasure the snapshot holds);
    None when there were erasures but there is no ledger to name them."""
    ledger = ErasureLedger.existing(ledger_path(store_root))
    if ledger is None:
        any_erased = db.execute("SELECT 1 FROM main.respondent_keys WHERE key IS NULL LIMIT 1").fetchone()
        return None if any_erased else []
    with ledger:
        return [e.ref_digest for e in ledger.erasures(store_id_of(db))]


def _refuse_unfit_target(store_root: Path, target: Path, site_dirs: set[str]) -> None:
    resolved = target.resolve()
    if resolved == store_root.resolve() or store_root.resolve() in resolved.parents:
        raise BackupRefused(f"{target} is inside the event store it would back up; choose a directory outside {store_root}")
    if target.exists() and not target.is_dir():
        raise BackupRefused(f"{target} is not a directory")
    if target.is_dir() and Manifest.read(target) is None:
        foreign = sorted(p.name for p in target.iterdir() if p.name not in {"store", LEDGER_DIR, f".{MANIFEST}.tmp", *site_dirs})
        if foreign:
            raise BackupRefused(f"{target} is not empty and holds no backup ({', '.join(foreign[:3])} …);"
                                " back up into an empty directory or into an earlier backup of this store")


def _manifest_of(index_file: Path, store_root: Path, now: datetime | None) -> Manifest:
    copy = sqlite3.connect(index_file)
    try:
        rows = copy.execute("SELECT file, bytes FROM segments ORDER BY first_position").fetchall()
        position = copy.execute("SELECT coalesce(max(last_position), 0) FROM segments").fetchone()[0]
        events = position  # one position per stored event, none skipped (a count(*) would read the whole index)
        dead = copy.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        store_id = store_id_of(copy)
    finally:
        copy.close()
    sizes = _sizes(rows, store_root)
    taken = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Manifest(store_id, position, events, dead, sizes, taken)


def _sizes(rows: list[tuple[str, int | None]], store_root: Path) -> dict[str, int]:
    """Each segment's size as its index row recorded it when it was written (the file's, for a row from before)."""
    return {name: size if size is not None else (store_root / "segments" / name).stat().st_size for name, size in rows}


def _copy_whole(source: sqlite3.Connection, index_copy: Path, store_root: Path, target: Path) -> tuple[list[str], int]:
    """Copy the whole index and, at the same time (another thread: both wait on the disk, not on
    Python), the segments it commits, all inside one read transaction so both see one commit. The
    segments copied and their bytes."""
    source.execute("BEGIN")
    try:
        has_index = source.execute("SELECT 1 FROM sqlite_master WHERE name = 'segments'").fetchone() is not None
        names = [name for (name,) in source.execute("SELECT file FROM segments")] if has_index else []
        sizes = {name: (store_root / "segments" / name).stat().st_size for name in names}
        with ThreadPoolExecutor(1) as pool:
            copying = pool.submit(_copy_named, store_root / "segments", target / "store" / "segments", sizes)
            copy_sqlite(source, index_copy)
            copied, _ = copying.result()
    finally:
        source.execute("COMMIT")
    return copied, sum(sizes[name] for name in copied)


def _copy_new_then_check(source: Path, target: Path, new: dict[str, int], old: dict[str, int]) -> tuple[list[str], set[str]]:
    """Copy the new segments, then any earlier one ``target`` no longer holds whole (segments copied, segments
    now whole in ``target``)."""
    copied, _ = _copy_named(source, target, new)
    again, _ = _copy_named(source, target, old)
    return copied + again, {*new, *old}


def _copy_segments(source: Path, target: Path, report: BackupReport) -> None:
    """Copy the manifest's segments that ``target`` lacks (segments never change once committed)."""
    remaining = {name: size for name, size in report.manifest.segments.items() if name not in report.found_whole}
    copied, _ = _copy_named(source, target, remaining)
    report.copied += copied
    report.copied_bytes += sum(report.manifest.segments[name] for name in copied)
    report.kept = len(report.manifest.segments) - len(report.copied)  # those copied by an earlier backup


def _copy_quarantine(source: Path, target: Path, report: BackupReport) -> None:
    """Copy the quarantined files ``target`` lacks, and name every one in the manifest."""
    if not source.is_dir():
        return
    with os.scandir(source) as entries:
        sizes = {entry.name: entry.stat().st_size for entry in entries if entry.is_file()}
    if not sizes:
        return
    copied, _ = _copy_named(source, target, sizes)
    report.manifest = replace(report.manifest, quarantine=sizes)
    report.copied_files.append(f"{QUARANTINE}/ ({len(sizes):,} quarantined file(s), {len(copied):,} new)")


def _copy_site(site: Sequence[SiteDatabase], target: Path, report: BackupReport) -> None:
    """Copy the site databases that exist, each into a directory only its owner may enter, and name them in the manifest."""
    copied = []
    for database in site:
        if not database.path.is_file():
            continue
        copy = target / database.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.parent.chmod(0o700)  # before the copy is made: nobody else may read it while it is written
        copied_now = _copy_database(database.path, copy)
        copy.chmod(0o600)
        copied.append(database.name)
        report.copied_files.append(database.name + ("" if copied_now else " (unchanged)"))
    report.manifest = replace(report.manifest, databases=copied)


def _copy_named(source: Path, target: Path, sizes: dict[str, int]) -> tuple[list[str], int]:
    """Copy the segments named (with their sizes) that ``target`` lacks: each to a temporary name first,
    fsynced by other threads as soon as it is copied (the disk writes one back while the next is copied,
    and the fsyncs waiting together share the filesystem's journal commits), then, once every one is on
    the disk, each renamed and the directory fsynced, so a name in ``target`` is always a whole segment.
    (segments copied, segments already there)."""
    if not sizes:
        return [], 0
    target.mkdir(parents=True, exist_ok=True)
    with os.scandir(target) as entries:  # one listing, not two path lookups per segment
        present = {entry.name: entry.stat().st_size for entry in entries if entry.name in sizes and entry.is_file()}
    missing = [name for name, size in sizes.items() if present.get(name) != size]
    with ThreadPoolExecutor(SYNCERS) as syncer:
        synced = []
        for name in missing:
            shutil.copyfile(source / name, target / f".{name}.tmp")  # sendfile: the bytes never pass through Python
            synced.append(syncer.submit(fsync_file, target / f".{name}.tmp"))  # written back while the next is copied
        for done in synced:
            done.result()
    for name in missing:
        os.replace(target / f".{name}.tmp", target / name)
    if missing:
        fsync_dir(target)
    return missing, len(sizes) - len(missing)


def copy_file(source: Path, target: Path) -> None:
    """Copy one file through a temporary name, fsynced, then renamed (the directory is fsynced by the caller)."""
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    fsync_file(temporary)
    os.replace(temporary, target)


def _copy_database(path: Path, target: Path) -> bool:
    """Copy a small SQLite database (the sender registry, the erasure ledger) unless the copy already
    holds the same tables with the same rows: most backups find neither changed, and a copy costs
    two fsyncs. Whether it was copied."""
    db = sqlite3.connect(path, timeout=30)
    try:
        if _same_rows(db, target):
            return False
        copy_sqlite(db, target)
        return True
    finally:
        db.close()


def _same_rows(db: sqlite3.Connection, copy: Path) -> bool:
    """Whether the database at ``copy`` has ``db``'s schema and exactly its rows (read in one transaction)."""
    if not copy.is_file():
        return False
    db.execute("ATTACH DATABASE ? AS c", (str(copy),))
    try:
        db.execute("BEGIN")
        try:
            schema = db.execute("SELECT type, name, sql FROM main.sqlite_master ORDER BY type, name").fetchall()
            if schema != db.execute("SELECT type, name, sql FROM c.sqlite_master ORDER BY type, name").fetchall():
                return False
            for (table,) in db.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'").fetchall():
                differs = (f'SELECT (SELECT count(*) FROM main."{table}") <> (SELECT count(*) FROM c."{table}")'
                           f' OR EXISTS (SELECT * FROM main."{table}" EXCEPT SELECT * FROM c."{table}")')
                if db.execute(differs).fetchone()[0]:
                    return False
            return True
        finally:
            db.execute("COMMIT")
    finally:
        db.execute("DETACH DATABASE c")


def _prepare_manifest(target: Path, manifest: Manifest) -> None:
    """Write the manifest under a temporary name, fsynced: what it says is known before the last segments are
    on the disk, so only its rename waits for them (``_publish_manifest``)."""
    temporary = target / f".{MANIFEST}.tmp"
    temporary.write_text(manifest.to_json(), encoding="utf-8")
    fsync_file(temporary)


def _publish_manifest(target: Path) -> None:
    """Make the prepared manifest DIR's, once everything it names is on the disk: DIR is a whole backup from here."""
    os.replace(target / f".{MANIFEST}.tmp", target / MANIFEST)
    fsync_dir(target)


def check_backup(backup_dir: Path) -> Manifest:
    """The backup's manifest, once DIR is checked to be a whole backup: the manifest was written
    (the backup finished), the index is at the manifest's position, and every segment it commits
    is there with its size. Else ``IncompleteBackup`` naming what is wrong."""
    backup_dir = Path(backup_dir)
    manifest = Manifest.read(backup_dir)
    if manifest is None:
        raise IncompleteBackup(f"{backup_dir} holds no {MANIFEST}: it is not a backup, or its backup did not finish;"
                               " run `planning backup` into it again, or restore another backup")
    index = backup_dir / "store" / INDEX
    if not index.is_file():
        raise IncompleteBackup(f"{index} is missing")
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        position = db.execute("SELECT coalesce(max(last_position), 0) FROM segments").fetchone()[0]
        names = [name for (name,) in db.execute("SELECT file FROM segments")]
    finally:
        db.close()
    if position != manifest.position or set(names) != set(manifest.segments):
        raise IncompleteBackup(f"{index} is at position {position:,}, its manifest says {manifest.position:,}:"
                               " the backup was changed after it was taken; restore another backup")
    broken = [name for name, size in manifest.segments.items()
              if not (backup_dir / "store" / "segments" / name).is_file()
              or (backup_dir / "store" / "segments" / name).stat().st_size != size]
    broken += [f"{QUARANTINE}/{name}" for name, size in manifest.quarantine.items()
               if not (backup_dir / "store" / QUARANTINE / name).is_file()
               or (backup_dir / "store" / QUARANTINE / name).stat().st_size != size]
    lost = [name for name in manifest.databases if not (backup_dir / name).is_file()]
    if lost:
        raise IncompleteBackup(f"{', '.join(lost)}: named by the manifest but missing from {backup_dir}; restore another backup")
    if broken:
        raise IncompleteBackup(f"{len(broken):,} segment(s) of the backup are missing or of the wrong size: "
                               f"{', '.join(broken[:5])}{' …' if len(broken) > 5 else ''}")
    return manifest
