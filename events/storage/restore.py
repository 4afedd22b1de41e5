"""Put a backup in place of a missing, empty or broken store (``planning restore DIR``).

A healthy store is never replaced unless the operator says so (``force``), and even then it
is moved aside, not deleted. The backup is first copied next to the store under a temporary
name, erasures are re-applied to that copy, and only then is it renamed into place, so the
store never appears with a key an erasure shredded. An incremental backup keeps the index rows
committed since its base copy apart (``events.storage.backup``); they are merged into the copy
first, so everything after reads one index as a whole copy would have made it.

Re-applying erasures: a backup taken before an erasure still holds that respondent's key.
The erasure ledger (``events.storage.erasure_ledger``) in ``$PLANNING_HOME/erasures``, the
backup's own copy of it and any other copy the operator names are merged; every respondent
they name is erased again in the restored copy (key shredded, dead letters carrying their
reference redacted, ``EventStore.reapply_erasures``), and the merged entries are written back
to the home's ledger, so it is whole again after the loss of the machine.

The site databases a backup holds (``SiteDatabase``: the web site's accounts and audit log) are put
back where the home has none. Where the home has one already it is kept, since it is newer than any
backup (a password changed, an account disabled since must not come back): an append-only one (the
audit log) gets the backup's rows it lacks added, so a log started afresh after a loss still holds
what the backup recorded; any other is left as it is, the backup's copy put beside it
(``<name>.from-backup-<stamp>``) for the operator to compare.

A store is healthy when its index opens and passes SQLite's ``quick_check``, and every
segment the index commits is intact (``events.storage.integrity.problem_of``: its digest,
size and lines as recorded). The backup's own segments are checked the same way, in the copy
made of it (its deltas and rows kept since the base merged), before anything is replaced.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from events.senders.registry import REGISTRY_FILE
from events.storage.backup import (INDEX, QUARANTINE, IncompleteBackup, Manifest, SiteDatabase, check_backup, copy_file,
                                   merge_deltas, merge_since_base)
from events.storage.erasure_ledger import LEDGER_DIR, LEDGER_FILE, Erasure, ErasureLedger, fsync_dir, ledger_path
from events.storage.integrity import problem_of
from events.storage.store import WRITER_LOCK, EventStore, take_writer_lock

MISSING, EMPTY, BROKEN, HEALTHY = "missing", "empty", "broken", "healthy"


class HealthyStore(RuntimeError):
    """The store is whole: a restore would replace good data."""


class RestoreRefused(RuntimeError):
    """The restored copy could not be put in place; the message says where it is and what to do."""


@dataclass(frozen=True)
class StoreState:
    state: str  # MISSING, EMPTY, BROKEN or HEALTHY
    reason: str = ""  # what is broken


@dataclass(frozen=True)
class RestoreReport:
    manifest: Manifest
    replaced: StoreState
    moved_to: Path | None  # where the store that was there went
    erasures: int  # ledger entries re-applied
    keys_shredded: int  # keys of the backup that an erasure after it had shredded
    dead_letters_redacted: int
    other_stores: int  # ledger entries of other stores (not applicable to this one)
    quarantined: int = 0  # quarantined files the backup held, put back in quarantine/ for `planning recover`
    site: tuple[str, ...] = ()  # what became of each site database the backup held, in words


def store_state(store_root: Path) -> StoreState:
    """Whether the store at ``store_root`` is missing, empty, broken (and why) or healthy."""
    index = Path(store_root) / INDEX
    segments = Path(store_root) / "segments"
    has_segments = segments.is_dir() and any(p.suffix == ".jsonl" for p in segments.iterdir())
    if not index.is_file():
        return StoreState(BROKEN, f"{index} is missing but segments are there") if has_segments else StoreState(MISSING)
    try:
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return StoreState(BROKEN, f"{index} fails SQLite's check: {check}")
            has_schema = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'segments'").fetchone() is not None
            rows = db.execute("SELECT count(*) FROM segments").fetchone()[0] if has_schema else 0
            dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] if has_schema else 0
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        return StoreState(BROKEN, f"{index} cannot be read: {error}")
    if not rows and not dead:
        return StoreState(EMPTY)
    with EventStore(store_root) as store:
        for segment in store.segments():
            problem = problem_of(segment)
            if problem:
                return StoreState(BROKEN, f"segment {segment.path.name} is damaged: {problem}")
    return StoreState(HEALTHY)


def damaged_in(store_copy: Path) -> list[str]:
    """The segments of a store copy whose bytes are not those its index recorded (digest, size, lines), in words."""
    with EventStore(Path(store_copy)) as copy:
        return [f"{segment.path.name}: {problem}" for segment in copy.segments() if (problem := problem_of(segment))]


def restore(backup_dir: Path, store_root: Path, *, force: bool = False, ledgers: tuple[Path, ...] = (),
            now: datetime | None = None, site: Sequence[SiteDatabase] = ()) -> RestoreReport:
    """Restore the backup in ``backup_dir`` as the store at ``store_root``, erasures re-applied, and the
    ``site`` databases the backup holds."""
    backup_dir, store_root = Path(backup_dir), Path(store_root)
    manifest = check_backup(backup_dir)
    state = store_state(store_root)
    if state.state == HEALTHY and not force:
        raise HealthyStore(f"the event store at {store_root} is healthy: restoring would replace it. Restore only a "
                           "missing, empty or broken store; to replace this one anyway, add --force (it is moved aside, not deleted)")
    made_for_lock = not store_root.exists()  # a missing store: its folder is made, only to hold the lock meanwhile
    if made_for_lock:
        store_root.mkdir(parents=True)
    placed = False
    lock = take_writer_lock(store_root, "planning restore")
    try:
        staging = store_root.parent / f".{store_root.name}.restoring"
        shutil.rmtree(staging, ignore_errors=True)  # left by a restore cut short: a copy of a backup, nothing else
        _copy_backup(backup_dir, manifest, staging)
        merge_deltas(staging / INDEX, [backup_dir / "store" / name for name in manifest.deltas])
        merge_since_base(staging / INDEX)  # the rows an incremental backup kept apart, before the store reads its index
        damaged = damaged_in(staging)  # the backup's index as a whole copy would be: every segment's digests in it
        if damaged:
            shutil.rmtree(staging)
            raise IncompleteBackup(f"{len(damaged):,} segment(s) of the backup in {backup_dir} are damaged, nothing was restored: "
                                   f"{'; '.join(damaged[:3])}{' …' if len(damaged) > 3 else ''}; restore another backup")
        home_ledger = ledger_path(store_root)
        erasures, others = merged_erasures(manifest.store_id, [home_ledger, backup_dir / LEDGER_DIR / LEDGER_FILE, *ledgers])
        with EventStore(staging, writer=True, holder="planning restore", erasure_ledger=home_ledger) as store:
            shredded, redacted = store.reapplied_at_open  # the home ledger's entries, applied as the copy opened
            if store.vault is not None:
                more_shredded, more_redacted = store.reapply_erasures(erasures)
                shredded, redacted = shredded + more_shredded, redacted + more_redacted
        if erasures:
            with ErasureLedger(home_ledger) as ledger:
                ledger.merge(manifest.store_id, erasures)
        moved_to = None
        if made_for_lock:  # the restored store takes its place: a rename onto an empty folder
            (store_root / WRITER_LOCK).unlink()
        else:
            stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
            moved_to = _free_name(store_root.parent / f"{store_root.name}.replaced-{stamp}")
            os.rename(store_root, moved_to)
        _put_in_place(staging, store_root)
        placed = True
        fsync_dir(store_root.parent)
    finally:
        lock.close()
        if made_for_lock and not placed:  # refused or cut short: the store stays missing, as it was
            _remove_if_only_the_lock(store_root)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    done = tuple(_restore_site_database(backup_dir / d.name, d, stamp) for d in site if d.name in manifest.databases)
    return RestoreReport(manifest, state, moved_to, len(erasures), shredded, redacted, others, len(manifest.quarantine), done)


def _restore_site_database(copy: Path, database: SiteDatabase, stamp: str) -> str:
    """Put the backup's copy of a site database in place, or add to the home's, or put it beside it; what was done."""
    database.path.parent.mkdir(parents=True, exist_ok=True)
    database.path.parent.chmod(0o700)
    if not database.path.exists():
        copy_file(copy, database.path)
        database.path.chmod(0o600)
        fsync_dir(database.path.parent)
        return f"{database.name} restored"
    if database.append_only:
        return f"{database.name} kept, {_add_missing_rows(copy, database.path):,} row(s) of the backup's added to it"
    beside = _free_name(database.path.with_name(f"{database.path.name}.from-backup-{stamp}"))
    copy_file(copy, beside)
    beside.chmod(0o600)
    fsync_dir(beside.parent)
    return f"{database.name} kept as it is (newer than the backup); the backup's copy is at {beside}"


def _add_missing_rows(copy: Path, path: Path) -> int:
    """Add to the database at ``path`` the rows of ``copy`` it lacks, table by table, counting equal rows
    (two views of one page in the same second are two rows); how many were added."""
    db = sqlite3.connect(path, timeout=30)
    try:
        db.execute("ATTACH DATABASE ? AS b", (str(copy),))
        added = 0
        with db:
            tables = [name for (name,) in db.execute("SELECT name FROM b.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            for table in tables:
                columns = [row[1] for row in db.execute(f'PRAGMA b.table_info("{table}")')]
                listed = ", ".join(f'"{c}"' for c in columns)
                same = " AND ".join(f'm."{c}" IS x."{c}"' for c in columns)
                added += db.execute(
                    f'INSERT INTO main."{table}" ({listed}) SELECT {listed} FROM'
                    f' (SELECT {listed}, rowid AS was, row_number() OVER (PARTITION BY {listed} ORDER BY rowid) AS nth'
                    f' FROM b."{table}") AS x WHERE nth > (SELECT count(*) FROM main."{table}" AS m WHERE {same}) ORDER BY was').rowcount
        db.execute("DETACH DATABASE b")
        return added
    finally:
        db.close()


def _remove_if_only_the_lock(folder: Path) -> None:
    try:
        (folder / WRITER_LOCK).unlink(missing_ok=True)
        folder.rmdir()
    except OSError:  # something else is in it: left as it is
        pass


def _put_in_place(staging: Path, store_root: Path) -> None:
    """Rename the restored copy to ``store_root``, now an empty folder or none. A writer that took no lock
    and wrote there meanwhile makes the rename fail: its events are left where it wrote them, not replaced."""
    try:
        os.rename(staging, store_root)
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise RestoreRefused(f"something wrote into {store_root} while it was restored: it is left as it is, and the "
                             f"restored copy is at {staging}; stop every writer, then run `planning restore` again") from error


def _copy_backup(backup_dir: Path, manifest: Manifest, staging: Path) -> None:
    (staging / "segments").mkdir(parents=True)
    for name in manifest.segments:
        copy_file(backup_dir / "store" / "segments" / name, staging / "segments" / name)
    fsync_dir(staging / "segments")
    if manifest.quarantine:  # not committed, so not restored as events: kept for `planning recover`
        (staging / QUARANTINE).mkdir()
        for name in manifest.quarantine:
            copy_file(backup_dir / "store" / QUARANTINE / name, staging / QUARANTINE / name)
        fsync_dir(staging / QUARANTINE)
    copy_file(backup_dir / "store" / manifest.index, staging / INDEX)  # its base copy, whatever its name in the backup
    if (backup_dir / "store" / REGISTRY_FILE).is_file():
        copy_file(backup_dir / "store" / REGISTRY_FILE, staging / REGISTRY_FILE)
    fsync_dir(staging)


def merged_erasures(store_id: str, paths: list[Path]) -> tuple[list[Erasure], int]:
    """Every erasure of this store that any of the ledgers records (the earliest time of each), and
    how many entries of other stores they hold."""
    merged: dict[bytes, str] = {}
    others = 0
    for path in paths:
        ledger = ErasureLedger.existing(path)
        if ledger is None:
            continue
        with ledger:
            for erasure in ledger.erasures(store_id):
                merged[erasure.ref_digest] = min(erasure.erased_at, merged.get(erasure.ref_digest, erasure.erased_at))
            others = max(others, ledger.other_stores(store_id))
    return [Erasure(digest, at) for digest, at in sorted(merged.items(), key=lambda item: (item[1], item[0]))], others


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate
