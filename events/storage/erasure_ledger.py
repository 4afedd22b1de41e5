"""The erasure ledger: which respondents were erased, kept apart from the store it protects.

A backup taken before an erasure still holds that respondent's key, so restoring it would
bring their personal data back. The ledger is what ``planning restore`` re-applies to the
restored store: every erasure the store ever committed, as the vault knows the respondent,
by the HMAC of the reference under the store's pepper (``Vault.digests_of``), never the
reference itself. The ledger holds nothing personal on its own: without the store's pepper a
digest cannot even be tested against a guessed reference.

It lives at ``$PLANNING_HOME/erasures/ledger.sqlite``, beside the store and not in it, so
deleting or replacing the store leaves it; ``planning backup`` copies it too, and the
operator keeps a copy off this machine (docs/decisions.md, "Backups and erasure").

The store writes the ledger inside the append that stores a ``respondent.erasure_requested``,
before that append commits: an erasure the store holds is always in the ledger. A crash
between the two leaves an entry for an erasure the store has not stored; the next writer to
open the store applies it (``EventStore._reconcile_erasure_ledger``), as ``restore`` applies
the ledger to a backup: it erases someone whose request was received, which is what they asked.
The same writer copies into the ledger any erasure the store holds and the ledger lacks (a
ledger lost, or put back from an older copy).

Entries name the store by ``store_id``, a digest of its pepper: a digest is meaningful only
under the pepper it was made with, and a restore re-applies only the entries of the store
it restores.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LEDGER_DIR = "erasures"
LEDGER_FILE = "ledger.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS erasures (
    store_id   TEXT NOT NULL,   -- sha256 of the store's pepper (hex): whose digests these are
    ref_digest BLOB NOT NULL,   -- HMAC-SHA256(pepper, respondent_ref), one row per spelling of the reference
    erased_at  TEXT NOT NULL,   -- when the store committed the erasure (its recorded_at)
    PRIMARY KEY (store_id, ref_digest)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Erasure:
    ref_digest: bytes
    erased_at: str


def ledger_path(store_root: Path) -> Path:
    """Where the ledger of the store at ``store_root`` ($PLANNING_HOME/store) lives: $PLANNING_HOME/erasures."""
    return Path(store_root).resolve().parent / LEDGER_DIR / LEDGER_FILE


class ErasureLedger:
    """One ledger file; every write is committed with ``synchronous = FULL`` before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(SCHEMA)

    @classmethod
    def existing(cls, path: Path) -> ErasureLedger | None:
        """The ledger at ``path`` if there is one (a backup's copy, an off-site copy), else None."""
        return cls(path) if Path(path).is_file() else None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ErasureLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def record(self, store_id: str, digests: Iterable[bytes], erased_at: str) -> None:
        """Add erasures (idempotent: the first time an erasure was recorded is kept)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO erasures (store_id, ref_digest, erased_at) VALUES (?, ?, ?)",
                [(store_id, digest, erased_at) for digest in digests],
            )

    def merge(self, store_id: str, erasures: Iterable[Erasure]) -> None:
        """Add erasures read from other copies of the ledger (idempotent)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO erasures (store_id, ref_digest, erased_at) VALUES (?, ?, ?)",
                [(store_id, e.ref_digest, e.erased_at) for e in erasures],
            )

    def erasures(self, store_id: str) -> list[Erasure]:
        rows = self._db.execute(
            "SELECT ref_digest, erased_at FROM erasures WHERE store_id = ? ORDER BY erased_at, ref_digest", (store_id,)
        )
        return [Erasure(bytes(digest), at) for digest, at in rows]

    def other_stores(self, store_id: str) -> int:
        """How many entries belong to other stores (their digests mean nothing to this one)."""
        return self._db.execute("SELECT count(*) FROM erasures WHERE store_id <> ?", (store_id,)).fetchone()[0]

    def copy_to(self, target: Path) -> None:
        """A consistent copy at ``target`` (SQLite's backup API), fsynced, replacing any older copy."""
        copy_sqlite(self._db, Path(target))


def copy_sqlite(source: sqlite3.Connection, target: Path) -> None:
    """Copy an open SQLite database to ``target`` with the backup API in one step (one read
    transaction: a consistent snapshot, which in WAL mode never blocks a writer), through a
    temporary file that is fsynced and renamed, so ``target`` is the old copy or the new, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    copy = sqlite3.connect(temporary)
    try:
        # a temporary file, fsynced once below: no journal and no fsync of its own (twice as fast at 1M events)
        copy.execute("PRAGMA journal_mode = OFF")
        copy.execute("PRAGMA synchronous = OFF")
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    finally:
        copy.close()
    fsync_file(temporary)
    os.replace(temporary, target)
    fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_file(path)
