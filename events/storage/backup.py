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

   A second backup into the same DIR brings the index copy forward without writing into it: it
   writes one new file, a delta (``_write_delta``), in one read transaction on the store: the rows
   of the segment tables for the new segments (keyed by position: appended), one row per new
   segment in ``since_base_segments`` standing for its ``event_ids`` rows (its records give ids,
   positions and senders; its ``segment_digests`` row the body digests), the respondent keys
   created since (by the store's rowid), the dead letters added since and ``meta``. ``restore``
   appends the deltas to the base copy (``merge_deltas``) and merges the rows kept since the base
   (``merge_since_base``) before anything else reads it. So its cost follows what is new, not the
   size of the store. The manifest keeps what the next delta needs to know of this moment
   (``Since``): the last respondent key's rowid, and fingerprints of the erased respondents, of
   the dead letters and of the schema; the base copy and the deltas are not opened. A respondent erased, or a dead letter redacted or replayed, since the last
   backup changes rows the base copy holds (a key to shred, bytes to zero): the index is then
   copied whole, under the name the previous manifest does not use (``OTHER_INDEX``: the two
   alternate), and the old copy and its deltas are removed once the new manifest names it. So is
   a migration, a table this version does not know, more than ``MAX_DELTAS`` deltas, or rows kept
   since the base that outgrow ``SINCE_BASE_LIMIT``.
3. the sender registry (``senders.sqlite``) and the erasure ledger, each with the backup API,
   unless the copy in DIR already holds the same rows;
4. the quarantined segments (``store/quarantine/``): not committed, so not in the index, but
   they hold events ``planning recover`` can bring back (a batch the index forgot when SQLite's
   WAL was lost), and a lost store loses them too. A file is moved there whole and never
   changes, so one already in DIR with its name and size is not copied again;
5. the home's other SQLite databases the caller names (``SiteDatabase``: the web site's accounts and
   audit log), each with the backup API in one read transaction, unless the copy holds the same rows,
   in a directory only its owner may read (password hashes, who saw what);
6. everything fsynced, and ``manifest.json`` renamed into place last, then DIR fsynced: the one
   step that turns DIR from the previous backup into this one. Nothing the previous manifest names
   is written before it (new segments, the delta and a whole index copy go to names it does not
   use; the registry, ledger and site databases are replaced whole by a rename, and a newer copy
   of them is still right for the older position, the erasures re-applied at restore). So a backup
   cut short at any point leaves DIR the backup it was. On the incremental path every durable
   write happens at once: the new segments (copied by one thread, each fsynced by others as soon
   as it is copied), the delta and the manifest under its temporary name (fsynced by two more);
   then one rename and one directory fsync.

Layout of DIR::

    manifest.json            position, events and segments (name and size) of the copy, the index
                             copy and deltas that make its index, and what the next delta needs
    store/store.sqlite       the index's base copy (journal mode DELETE: one file), or
    store/store.other.sqlite   under this name when a whole copy replaced one named store.sqlite
                             (a backup written before deltas may hold rows kept since its base in it)
    store/since-NNNN.sqlite  the deltas, oldest first: what each later backup added to the index
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from events.storage.event_index import ROW as INDEX_ROW, newest_run
from events.storage.erasure_ledger import LEDGER_DIR, LEDGER_FILE, copy_sqlite, fsync_dir, fsync_file, ledger_path

REGISTRY_FILE = "senders.sqlite"  # events.senders.registry's, named here so a backup need not load the contract
QUARANTINE = "quarantine"  # events.storage.store's, named here for the same reason
MANIFEST = "manifest.json"
INDEX = "store.sqlite"
FORMAT = 2  # 2: the index copy may be followed by deltas (``Manifest.deltas``)
READS = (1, 2)  # 1: one index copy, brought forward in place


class BackupRefused(RuntimeError):
    """DIR cannot take this backup (it holds another store's, or something that is not a backup)."""


class NothingToBackUp(RuntimeError):
    pass


class IncompleteBackup(RuntimeError):
    """DIR is not a whole backup; the message says what is missing."""


@dataclass(frozen=True)
class Since:
    """What an incremental backup needs to know of the one before it, without reading its index copy."""

    keys_rowid: int  # the store's last respondent_keys rowid the copy holds
    kept: int  # events whose event_ids rows the copy keeps apart from its base (merged by restore)
    erased: str  # sha256 of the respondents erased in the store at the copy's moment (key NULL), sorted
    dead_letters: list[int]  # the dead letters at that moment: last id, rows, rows with raw, rows replayed
    schema: str = ""  # sha256 of the index's schema the base copy has (a migration since: the index is copied whole)

    def to_json(self) -> dict:
        return {"keys_rowid": self.keys_rowid, "kept": self.kept, "erased": self.erased, "dead_letters": self.dead_letters,
                "schema": self.schema}


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
    index: str = INDEX  # the base copy of the index, in store/
    deltas: list[str] = field(default_factory=list)  # in store/, oldest first: what each later backup added to it
    since: Since | None = None  # None: written by a version before deltas (the next backup copies the index whole)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "store_id": self.store_id, "position": self.position, "events": self.events,
                           "dead_letters": self.dead_letters, "taken_at": self.taken_at, "segments": self.segments,
                           "quarantine": self.quarantine, "databases": self.databases, "index": self.index,
                           "deltas": self.deltas, "since": None if self.since is None else self.since.to_json()},
                          separators=(",", ":"))  # no indent: json's C encoder (10M events name ~2,000 segments)

    @classmethod
    def read(cls, backup: Path) -> Manifest | None:
        path = Path(backup) / MANIFEST
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") not in READS:
            raise IncompleteBackup(f"{path}: format {data.get('format')!r} is not one this version reads ({', '.join(map(str, READS))})")
        since = data.get("since")  # format 1 has no deltas and no bookkeeping: its index copy is the whole index
        return cls(data["store_id"], data["position"], data["events"], data["dead_letters"], data["segments"], data["taken_at"],
                   data.get("quarantine", {}), data.get("databases", []),  # older backups have neither
                   data.get("index", INDEX), data.get("deltas", []), None if since is None else Since(**since))


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


def store_id_of(index: sqlite3.Connection) -> str:
    """The store's identity as the erasure ledger names it: sha256 of its pepper ("" with none yet)."""
    try:
        row = index.execute("SELECT value FROM meta WHERE key = 'pepper'").fetchone()
    except sqlite3.OperationalError:  # no meta table: a store no writer has set up
        return ""
    return "" if row is None else hashlib.sha256(bytes.fromhex(row[0])).hexdigest()


def backup(store_root: Path, target: Path, *, now: datetime | None = None, site: Sequence[SiteDatabase] = ()) -> BackupReport:
    """Back up the store at ``store_root`` into ``target`` (incrementally if it holds a backup of the same store),
    and the ``site`` databases that exist. Until the new manifest is renamed into place, ``target`` stays the
    backup it was (nothing it names is written), so a backup cut short leaves the previous one whole."""
    store_root, target = Path(store_root), Path(target)
    index_file = store_root / INDEX
    if not index_file.is_file():
        raise NothingToBackUp(f"there is no event store at {store_root}: nothing to back up")
    previous = Manifest.read(target)
    _refuse_unfit_target(store_root, target, previous, {Path(database.name).parts[0] for database in site})
    source = sqlite3.connect(index_file, timeout=30)
    try:
        source.execute(f"PRAGMA main.mmap_size = {MAPPED_INDEX}")  # the index's pages read without a system call each
        store_id = store_id_of(source)
        if previous is not None and previous.store_id not in ("", store_id):
            raise BackupRefused(f"{target} holds a backup of another event store; back up into an empty directory")
        if previous is None and (target / "store").is_dir():
            shutil.rmtree(target / "store")  # a backup cut short, of this store or another: nothing in it is trusted
        target.mkdir(parents=True, exist_ok=True)
        report = None if previous is None else _incremental(source, previous, store_root, target, now, site)
        if report is None:
            report = _whole(source, previous, store_root, target, now, site)
    finally:
        source.close()
    _remove_unnamed(target / "store", report.manifest)
    return report


def _whole(source: sqlite3.Connection, previous: Manifest | None, store_root: Path, target: Path, now: datetime | None,
           site: Sequence[SiteDatabase]) -> BackupReport:
    """A backup with a whole copy of the index, under a name the previous manifest does not use."""
    name = OTHER_INDEX if previous is not None and previous.index == INDEX else INDEX
    index_copy = target / "store" / name
    copied = _copy_whole(source, index_copy, store_root, target)  # the consistent moment: one read transaction
    manifest = _manifest_of(index_copy, store_root, now)
    report = BackupReport(replace(manifest, index=name))
    report.copied_files.append(f"{INDEX} (whole)")
    _copy_others(store_root, target, site, report)
    _prepare_manifest(target, report.manifest)  # on the disk under a temporary name while the segments copy
    report.copied, report.copied_bytes = copied
    _copy_segments(store_root / "segments", target / "store" / "segments", report)  # those not copied yet
    _publish_manifest(target)
    return report


def _copy_others(store_root: Path, target: Path, site: Sequence[SiteDatabase], report: BackupReport) -> None:
    """The sender registry, the erasure ledger, the quarantined segments and the site databases: each
    written under a temporary name and renamed, none named by the previous manifest's index or deltas."""
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


KNOWN_TABLES = {  # the index's tables, and how a second backup brings each forward
    "meta": "whole", "dead_letters": "new rows", "segments": "new segments", "segment_cycles": "new segments",
    "segment_kinds": "new segments", "segment_digests": "new segments", "segment_senders": "new segments",
    "event_ids": "kept since the base",
    "respondent_keys": "kept since the base",
    "event_id_runs": "the base's (the ids kept since the base join its open run at restore)",
}
SEGMENT_TABLES = ("segments", "segment_cycles", "segment_kinds", "segment_digests", "segment_senders")  # keyed by position: appended
SINCE_BASE = {  # the tables an incremental backup keeps beside its base copy, merged by restore
    "segments": "since_base_segments",  # segments whose event_ids rows are not in the copy: their records and digests give them
    "event_ids": "since_base_event_ids",  # event_ids rows of new segments without digests (written by an earlier version)
    "respondent_keys": "since_base_respondent_keys",
}
STORE_ROWID = "store_rowid"  # in since_base_respondent_keys: the row's rowid in the store, kept as it is by the merge
SINCE_BASE_LIMIT = 100_000  # events kept since the base beyond which (and beyond a quarter of the base) the index is copied whole
MAX_DELTAS = 100  # deltas after which the index is copied whole again (a restore applies each)
OTHER_INDEX = "store.other.sqlite"  # a whole copy's name when the previous backup's is INDEX: the two alternate
DELTA = "since-{:04d}.sqlite"  # the n-th delta after the base copy
DIGEST_BYTES = 32
MAPPED_INDEX = 1 << 32  # bytes of the store's index read through a memory map (a third less CPU copying it)
SYNCERS = 4  # fsyncs under way at once while segments are copied: each only waits on the disk
EVENT_ID = b'"event_id":"'  # a record's envelope comes before its payload: the first on its line is its own id


def _incremental(source: sqlite3.Connection, previous: Manifest, store_root: Path, target: Path, now: datetime | None,
                 site: Sequence[SiteDatabase]) -> BackupReport | None:
    """Add to ``target`` what the store committed since its backup: the new segments, and one new file, the
    delta, holding the index rows written since (``_write_delta``). Every durable write happens at once, none
    into a file the previous manifest names: the segments (copier thread, each fsynced as soon as copied),
    the delta (here, then fsynced by another thread), the new manifest under its temporary name; then one
    rename and one fsync of ``target``. None (nothing written that the next backup would trust) when the
    copy cannot be brought forward so, and the index must be copied whole."""
    base = target / "store" / previous.index
    if previous.since is None or len(previous.deltas) >= MAX_DELTAS or not base.is_file():
        return None  # the base copy is not read: what a delta must know of it is in the manifest
    name = DELTA.format(len(previous.deltas) + 1)
    delta = target / "store" / name
    delta.unlink(missing_ok=True)  # left by a backup cut short: named by no manifest
    source.execute("ATTACH DATABASE ? AS d", (str(delta),))
    try:
        # a file no manifest names until it is whole: no journal, one fsync at the end
        source.execute("PRAGMA d.journal_mode = OFF")
        source.execute("PRAGMA d.synchronous = OFF")
        with ThreadPoolExecutor(1) as copier, ThreadPoolExecutor(2) as syncer:
            copier.submit(int)  # its thread started now, so the first segment's copy does not wait for it
            source.execute("BEGIN")  # the consistent moment: every read below is of one commit
            try:
                # the first read, which fixes the snapshot: the segments committed since, copied from here on
                new = source.execute("SELECT file, bytes FROM main.segments WHERE first_position > ? ORDER BY first_position",
                                     (previous.position,)).fetchall()
                segments_copy = target / "store" / "segments"
                # the new segments first (bar any a backup cut short had put in place: a name is a whole segment),
                # then any earlier one DIR has lost, found by one listing of DIR while the new ones are copied
                fresh = {name: size for name, size in _sizes(new, store_root).items() if not (segments_copy / name).exists()}
                copying = [copier.submit(_copy_named, store_root / "segments", segments_copy, fresh, listed=True)]
                lost = _missing(segments_copy, previous.segments)
                if lost:
                    copying.append(copier.submit(_copy_named, store_root / "segments", segments_copy, lost, listed=True))
                try:
                    written = _write_delta(source, previous, store_root, new)
                except BaseException:
                    for copy in copying:
                        copy.result()
                    raise
                source.execute("COMMIT" if written is not None else "ROLLBACK")
            except BaseException:
                source.execute("ROLLBACK")
                raise
            if written is None:
                for copy in copying:  # a whole copy follows, which must not copy the same segments at the same time
                    copy.result()
                return None
            since, dead = written
            delta_synced = syncer.submit(_fsync_new_file, delta)
            sizes = _sizes(new, store_root)
            manifest = replace(previous, position=since.position, events=since.position, dead_letters=dead,
                               segments={**previous.segments, **sizes}, taken_at=_taken_at(now), quarantine={},
                               databases=[], deltas=[*previous.deltas, name], since=since.since)
            report = BackupReport(manifest)
            report.copied_files.append(f"{INDEX} (brought forward)")
            _copy_others(store_root, target, site, report)
            manifest_synced = syncer.submit(_prepare_manifest, target, report.manifest)
            copied = [name for copy in copying for name in copy.result()[0]]
            delta_synced.result()
            manifest_synced.result()
    finally:  # cut short, the delta is left as a power cut would leave it: named by no manifest, removed by the next backup
        source.execute("DETACH DATABASE d")
    report.copied, report.copied_bytes = copied, sum(report.manifest.segments[n] for n in copied)
    report.kept = len(report.manifest.segments) - len(report.copied)
    _publish_manifest(target)
    return report


@dataclass(frozen=True)
class _Moment:
    position: int
    since: Since


def _write_delta(db: sqlite3.Connection, previous: Manifest, store_root: Path,
                 new_rows: list[tuple[str, int | None]]) -> tuple[_Moment, int] | None:
    """Write into ``d`` the index rows the store committed since ``previous`` (``new_rows``: its new segments,
    read first in the same transaction). None when the copy cannot be brought forward by appending rows: a migration, a
    respondent erased or a dead letter redacted or replayed since (their old rows must be shredded or
    rewritten in the base, so the index is copied whole), or too many rows kept apart from the base."""
    since = previous.since
    assert since is not None
    schema = _schema(db, "main")
    tables = {name for kind, name, _ in schema if kind == "table"}
    if _digest_of(schema) != since.schema or tables != set(KNOWN_TABLES):
        return None  # a migration since the base copy, or a table this version does not know how to bring forward
    old = previous.position
    new = db.execute("SELECT coalesce(max(last_position), 0) FROM main.segments").fetchone()[0]
    if new < old:
        return None
    erased, dead = _erased(db), _dead_letters(db, since.dead_letters[0])
    if erased != since.erased or dead[1:] != since.dead_letters[1:]:
        return None  # an erasure, a redaction or a replay since: rows of the base change
    columns = {table: [row[1] for row in db.execute(f"PRAGMA main.table_info({table})")] for table in tables}
    for table in SEGMENT_TABLES:
        listed = _listed(columns[table])
        db.execute(f"CREATE TABLE d.{table} AS SELECT {listed} FROM main.{table} WHERE first_position > ?", (old,))
    # A new segment's event_ids rows are its records' ids, positions and senders and its digests: kept as one row
    # naming it. Only a segment written before digests were recorded has its rows looked up by id, one by one.
    db.execute(f"CREATE TABLE d.{SINCE_BASE['segments']} AS SELECT s.first_position FROM main.segments AS s"
               " JOIN main.segment_digests AS g USING (first_position)"
               f" WHERE s.first_position > ? AND length(g.body_sha256s) = {DIGEST_BYTES} * s.events", (old,))
    events = db.execute(f"SELECT coalesce(sum(s.events), 0) FROM d.segments AS s JOIN d.{SINCE_BASE['segments']}"
                        " USING (first_position)").fetchone()[0]
    undigested = [f for (f,) in db.execute(f"SELECT file FROM d.segments WHERE first_position NOT IN"
                                           f" (SELECT first_position FROM d.{SINCE_BASE['segments']})")]
    ids = sorted(_own_id(line) for f in undigested for line in (store_root / "segments" / f).read_bytes().splitlines())
    listed, copied = _listed(columns["event_ids"]), 0
    db.execute(f"CREATE TABLE d.{SINCE_BASE['event_ids']} AS SELECT {listed} FROM main.event_ids WHERE 0")
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        copied += db.execute(f"INSERT INTO d.{SINCE_BASE['event_ids']} ({listed}) SELECT {listed} FROM main.event_ids"
                             f" WHERE event_id IN ({','.join('?' * len(chunk))}) AND position > ?", [*chunk, old]).rowcount
    kept = since.kept + events + copied
    if (events + copied != new - old  # the new segments do not account for every new position
            or kept > max(SINCE_BASE_LIMIT, (new - kept) // 4)):  # else a restore would merge long
        return None
    listed = _listed(columns["respondent_keys"])
    db.execute(f"CREATE TABLE d.{SINCE_BASE['respondent_keys']} AS SELECT rowid AS {STORE_ROWID}, {listed}"
               " FROM main.respondent_keys WHERE rowid > ?", (since.keys_rowid,))
    keys_rowid = db.execute(f"SELECT coalesce(max({STORE_ROWID}), ?) FROM d.{SINCE_BASE['respondent_keys']}",
                            (since.keys_rowid,)).fetchone()[0]
    db.execute(f"CREATE TABLE d.meta AS SELECT {_listed(columns['meta'])} FROM main.meta")
    listed = _listed(columns["dead_letters"])
    db.execute(f"CREATE TABLE d.dead_letters AS SELECT {listed} FROM main.dead_letters WHERE id > ?", (since.dead_letters[0],))
    added = db.execute("SELECT coalesce(max(id), ?), count(*), count(raw), count(replayed_position) FROM d.dead_letters",
                       (since.dead_letters[0],)).fetchone()
    up_to_last = [before + more for before, more in zip(dead[1:], added[1:])]  # those up to the last one, now copied
    moment = _Moment(new, Since(keys_rowid, kept, erased, [added[0], *up_to_last], since.schema))
    return moment, dead[0]


def _erased(db: sqlite3.Connection, schema: str = "main") -> str:
    """sha256 of the respondents erased in the index (their key NULL), read through its partial index."""
    try:
        rows = db.execute(f"SELECT ref_digest FROM {schema}.respondent_keys WHERE key IS NULL ORDER BY ref_digest").fetchall()
    except sqlite3.OperationalError:  # no respondent_keys table: a store that never held personal data
        return ""
    digest = hashlib.sha256()
    for (ref,) in rows:
        digest.update(ref if isinstance(ref, bytes) else str(ref).encode())
    return digest.hexdigest()


def _dead_letters(db: sqlite3.Connection, last: int, schema: str = "main") -> list[int]:
    """All dead letters, then, of those up to id ``last``: how many, how many still hold their bytes, how many were
    replayed. A dead letter only ever loses its bytes (a redaction) or gains a replay, once: so the three stay
    the same exactly when none of those rows changed."""
    try:
        row = db.execute(f"SELECT count(*), count(*) FILTER (WHERE id <= ?), count(raw) FILTER (WHERE id <= ?),"
                         f" count(replayed_position) FILTER (WHERE id <= ?) FROM {schema}.dead_letters", (last, last, last)).fetchone()
    except sqlite3.OperationalError:  # no dead_letters table: a store no writer has set up
        return [0, 0, 0, 0]
    return list(row)


def _fsync_new_file(path: Path) -> None:
    """Make a new file in a directory durable: its bytes, then its name."""
    fsync_file(path)
    fsync_dir(path.parent)


def _taken_at(now: datetime | None) -> str:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _remove_unnamed(store_copy: Path, manifest: Manifest) -> None:
    """Once the new manifest is in place: the index copies and deltas it does not name (an earlier base, its
    deltas, or those of a backup cut short) are removed, so an erased key in them leaves ``DIR``."""
    if not store_copy.is_dir():
        return
    named = {manifest.index, *manifest.deltas}
    for path in store_copy.iterdir():
        if (path.name in (INDEX, OTHER_INDEX) or (path.name.startswith("since-") and path.name.endswith(".sqlite"))) \
                and path.name not in named:
            path.unlink()


def _schema(db: sqlite3.Connection, schema: str) -> list[tuple]:
    return db.execute(f"SELECT type, name, sql FROM {schema}.sqlite_master WHERE name NOT LIKE 'since_base_%'"
                      " ORDER BY type, name").fetchall()


def _digest_of(schema: list[tuple]) -> str:
    return hashlib.sha256(json.dumps(schema).encode()).hexdigest()


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)


def merge_deltas(index: Path, deltas: Sequence[Path]) -> None:
    """Append to an index copy the rows each delta holds, oldest first (``_write_delta``): the segment tables'
    rows, the rows kept since the base, the dead letters added, and ``meta`` as it was at the delta's moment.
    ``merge_since_base`` then folds the rows kept since the base in."""
    if not deltas:
        return
    db = sqlite3.connect(index)
    try:
        db.execute("PRAGMA secure_delete = ON")
        columns = {table: [row[1] for row in db.execute(f"PRAGMA main.table_info({table})")] for table in KNOWN_TABLES}
        for delta in deltas:
            if not delta.is_file():
                raise IncompleteBackup(f"{delta}: named by the manifest but missing; restore another backup")
            db.execute("ATTACH DATABASE ? AS d", (str(delta),))
            try:
                with db:
                    _keep_since_base(db, columns)
                    for table in SEGMENT_TABLES:
                        if not columns[table]:
                            continue  # a table newer than the base copy (and so than its deltas, which share its schema)
                        listed = _listed(columns[table])
                        db.execute(f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM d.{table}")
                    db.execute(f"INSERT INTO main.{SINCE_BASE['segments']} (first_position)"
                               f" SELECT first_position FROM d.{SINCE_BASE['segments']}")
                    listed = _listed(columns["event_ids"])
                    db.execute(f"INSERT INTO main.{SINCE_BASE['event_ids']} ({listed}) SELECT {listed} FROM d.{SINCE_BASE['event_ids']}")
                    listed = _listed(columns["respondent_keys"])
                    db.execute(f"INSERT INTO main.{SINCE_BASE['respondent_keys']} ({STORE_ROWID}, {listed})"
                               f" SELECT {STORE_ROWID}, {listed} FROM d.{SINCE_BASE['respondent_keys']}")
                    listed = _listed(columns["meta"])
                    db.execute("DELETE FROM main.meta")
                    db.execute(f"INSERT INTO main.meta ({listed}) SELECT {listed} FROM d.meta")
                    listed = _listed(columns["dead_letters"])
                    db.execute(f"INSERT INTO main.dead_letters ({listed}) SELECT {listed} FROM d.dead_letters ORDER BY id")
            finally:
                db.execute("DETACH DATABASE d")
    finally:
        db.close()


def _keep_since_base(db: sqlite3.Connection, columns: dict[str, list[str]]) -> None:
    """Create in the index copy the tables kept since the base if they are not there."""
    db.execute(f"CREATE TABLE IF NOT EXISTS main.{SINCE_BASE['segments']} (first_position INTEGER PRIMARY KEY)")
    db.execute(f"CREATE TABLE IF NOT EXISTS main.{SINCE_BASE['event_ids']} ({_listed(columns['event_ids'])})")
    db.execute(f"CREATE TABLE IF NOT EXISTS main.{SINCE_BASE['respondent_keys']}"
               f" ({STORE_ROWID} INTEGER PRIMARY KEY, {_listed(columns['respondent_keys'])})")


def merge_since_base(index: Path) -> None:
    """Fold the rows a backup kept since its base copy (``_write_delta``, ``merge_deltas``) into the index's own
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
            _merge_event_ids_since_base(db, columns["event_ids"], Path(index).parent / "segments")
            listed = _listed(columns["respondent_keys"])
            db.execute(f"INSERT INTO respondent_keys (rowid, {listed}) SELECT {STORE_ROWID}, {listed} FROM {SINCE_BASE['respondent_keys']}"
                       f" ORDER BY {STORE_ROWID}")
            for table in SINCE_BASE.values():
                db.execute(f"DROP TABLE {table}")
    finally:
        db.close()


def _merge_event_ids_since_base(db: sqlite3.Connection, columns: list[str], segments: Path) -> None:
    """The event ids kept since the base into the index: into the base's open run, where the index has runs
    (``events.storage.event_index``; the open run is closed, with its filter, by the next append once full)."""
    rows = _rows_of_segments(db, segments)
    if "run" not in columns:  # an index made before runs: its first writer sorts it
        db.executemany(f"INSERT INTO event_ids ({INDEX_ROW}) VALUES (?, ?, ?, ?)", rows)
        listed = _listed(columns)
        db.execute(f"INSERT INTO event_ids ({listed}) SELECT {listed} FROM {SINCE_BASE['event_ids']}")
        return
    run = newest_run(db)
    db.executemany(f"INSERT INTO event_ids (run, {INDEX_ROW}) VALUES ({run}, ?, ?, ?, ?)", rows)
    db.execute(f"INSERT INTO event_ids (run, {INDEX_ROW}) SELECT {run}, {INDEX_ROW} FROM {SINCE_BASE['event_ids']}")


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


def _refuse_unfit_target(store_root: Path, target: Path, previous: Manifest | None, site_dirs: set[str]) -> None:
    resolved = target.resolve()
    if resolved == store_root.resolve() or store_root.resolve() in resolved.parents:
        raise BackupRefused(f"{target} is inside the event store it would back up; choose a directory outside {store_root}")
    if target.exists() and not target.is_dir():
        raise BackupRefused(f"{target} is not a directory")
    if target.is_dir() and previous is None:
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
        last_dead = copy.execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()[0]
        dead = _dead_letters(copy, last_dead)
        try:
            keys_rowid = copy.execute("SELECT coalesce(max(rowid), 0) FROM respondent_keys").fetchone()[0]
        except sqlite3.OperationalError:  # a store that never held personal data
            keys_rowid = 0
        since = Since(keys_rowid, 0, _erased(copy), [last_dead, *dead[1:]], _digest_of(_schema(copy, "main")))
        store_id = store_id_of(copy)
    finally:
        copy.close()
    sizes = _sizes(rows, store_root)
    return Manifest(store_id, position, events, dead[0], sizes, _taken_at(now), since=since)


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


def _copy_segments(source: Path, target: Path, report: BackupReport) -> None:
    """Copy the manifest's segments that ``target`` lacks (segments never change once committed)."""
    copied, _ = _copy_named(source, target, report.manifest.segments)
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


def _copy_named(source: Path, target: Path, sizes: dict[str, int], *, listed: bool = False) -> tuple[list[str], int]:
    """Copy the segments named (with their sizes) that ``target`` lacks: each to a temporary name first,
    fsynced by other threads as soon as it is copied (the disk writes one back while the next is copied,
    and the fsyncs waiting together share the filesystem's journal commits), then, once every one is on
    the disk, each renamed and the directory fsynced, so a name in ``target`` is always a whole segment.
    ``listed``: the caller has left out of ``sizes`` what ``target`` has (``_missing``), so it is not listed again.
    (segments copied, segments already there)."""
    if not sizes:
        return [], 0
    target.mkdir(parents=True, exist_ok=True)
    if listed:
        missing = list(sizes)
    else:
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


def _missing(target: Path, sizes: dict[str, int]) -> dict[str, int]:
    """Those of the segments named in ``sizes`` that ``target`` does not have, by one listing of it (for an
    incremental backup, any earlier segment DIR has lost). A name there is always a whole segment
    (``_copy_named``), so its size is not read again: at 10M, a stat of each of ~2,000 segments, in a thread
    beside the copy, cost the incremental backup ~20 ms. A segment whose bytes changed after it was copied
    is found by its digest (`planning restore` refuses such a backup, naming it)."""
    present = set(os.listdir(target)) if target.is_dir() else set()
    return {name: size for name, size in sizes.items() if name not in present}


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


def _position_and_segments(index: Path) -> tuple[int, list[str]]:
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        position = db.execute("SELECT coalesce(max(last_position), 0) FROM segments").fetchone()[0]
        return position, [name for (name,) in db.execute("SELECT file FROM segments")]
    finally:
        db.close()


def check_backup(backup_dir: Path) -> Manifest:
    """The backup's manifest, once DIR is checked to be a whole backup: the manifest was written
    (the backup finished), the index is at the manifest's position, and every segment it commits
    is there with its size. Else ``IncompleteBackup`` naming what is wrong."""
    backup_dir = Path(backup_dir)
    manifest = Manifest.read(backup_dir)
    if manifest is None:
        raise IncompleteBackup(f"{backup_dir} holds no {MANIFEST}: it is not a backup, or its backup did not finish;"
                               " run `planning backup` into it again, or restore another backup")
    index = backup_dir / "store" / manifest.index
    if not index.is_file():
        raise IncompleteBackup(f"{index} is missing")
    position, names = _position_and_segments(index)
    for name in manifest.deltas:  # each adds the segments one incremental backup copied
        delta = backup_dir / "store" / name
        if not delta.is_file():
            raise IncompleteBackup(f"{delta} is missing: the manifest names it; restore another backup")
        at, more = _position_and_segments(delta)
        position, names = max(position, at), names + more
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
