"""What a page shows of the published snapshot, kept until the next publish.

The same figures go to every reader until the next publish. The public pages are kept whole
(``pipelines.web.pages.published``). Of a signed-in page (a Panel table filtered to one borough, the stage
dashboard, a table's download) only the part read from the snapshot is kept: its header (the account's
name, the sign-out form with the session's CSRF token) is the reader's own, rendered around it for each
request. The session check, the role check and the audit record stay per request: they run before and
after the page (``pipelines.web.guard``, ``pipelines.web.audit``), whether its content was kept or not.

A piece is keyed by the snapshot's identity (``snapshot_identity``: one ``stat`` of the pointer file) and
by what the page reads (its path and query). What is kept names nobody: it is made from the snapshot and
the query only, never from the request's viewer or session. A refusal (a cycle or filter that does not
exist) is raised, not kept. Something is kept only when the pointer did not change while it was made, and
the pieces of an older snapshot are dropped when the first piece of the new one is kept. Two readers
missing the same piece at once make it once: the second waits for the first. The memory held is bounded:
at most ``MOST_PIECES`` pieces and ``MOST_BYTES`` in all; past either, everything kept is dropped and made
again as readers ask (a download of a whole table, a few MB at 10M, is the largest piece).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

from projections.reading.snapshots import POINTER

MOST_PIECES = 2_000
MOST_BYTES = 64 * 1024 * 1024

T = TypeVar("T")
Identity = tuple[int, int, int]
Key = tuple[Identity, Hashable]


def snapshot_identity(projections: Path) -> Identity | None:
    """The published snapshot's identity: the pointer file's inode, modification time and size (one ``stat``,
    no read); None when nothing is published. A publish renames a new pointer over the old one, so every
    publish gives a new identity."""
    try:
        facts = os.stat(projections / POINTER)
    except FileNotFoundError:
        return None
    return facts.st_ino, facts.st_mtime_ns, facts.st_size


def _always(piece: object) -> bool:
    return True


class KeptContent(Generic[T]):
    """Content made from the current published snapshot, kept until the next publish. Safe from any thread.

    ``size`` gives a piece's size in bytes, for the bound on what is held."""

    def __init__(self, projections: Path, size: Callable[[T], int]) -> None:
        self._projections = projections
        self._size = size
        self._lock = threading.Lock()
        self._kept: dict[Key, T] = {}
        self._bytes = 0
        self._making: dict[Key, threading.Lock] = {}

    def kept(self, key: Hashable) -> T | None:
        """The piece ``key`` as kept for the current snapshot, if it was (never made here)."""
        identity = snapshot_identity(self._projections)
        if identity is None:
            return None
        with self._lock:
            return self._kept.get((identity, key))

    def made(self, key: Hashable, make: Callable[[], T], keep: Callable[[T], bool] = _always) -> T:
        """The piece ``key`` of the current snapshot: the one kept, else ``make()``'s (then kept, if ``keep`` says so)."""
        identity = snapshot_identity(self._projections)
        if identity is None:
            return make()
        full = (identity, key)
        with self._lock:
            if full in self._kept:
                return self._kept[full]
            one_at_a_time = self._making.setdefault(full, threading.Lock())
        try:
            with one_at_a_time:  # two readers of the same piece at once: the second waits and takes the first's
                with self._lock:
                    if full in self._kept:
                        return self._kept[full]
                piece = make()
                if keep(piece) and snapshot_identity(self._projections) == identity:
                    self._keep(full, piece)
                return piece
        finally:
            with self._lock:
                self._making.pop(full, None)

    def _keep(self, key: Key, piece: T) -> None:
        size = self._size(piece)
        with self._lock:
            for stale in [k for k in self._kept if k[0] != key[0]]:
                self._bytes -= self._size(self._kept.pop(stale))
            if len(self._kept) >= MOST_PIECES or self._bytes + size > MOST_BYTES:
                self._kept.clear()
                self._bytes = 0
            if size <= MOST_BYTES and key not in self._kept:
                self._kept[key] = piece
                self._bytes += size

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)
