"""Public pages rendered once per published snapshot, then answered from memory.

A public page shows only the current snapshot's published aggregates, the same for every reader who is
not signed in, so reading the snapshot (DuckDB) and rendering the page (Jinja) again for each of 50
readers of ``/boroughs/hackney`` is work thrown away. The page is kept, keyed by the snapshot's identity
and the page's address, until another snapshot is published.

The snapshot's identity is the pointer file's (``published.json``): its inode, modification time and
size. Publishing writes a new pointer and renames it over the old one (``projections.reading.snapshots``),
so every publish gives a new identity and the pages of the old one are never answered again; they are
dropped when the first page of the new one is kept. Asking for the identity is one ``stat`` of that file,
no read, so a page already kept is answered without a thread (``kept``).

Only a 200 is kept (a 404 for a name that is no borough is rendered each time, so the memory held stays
bounded by the real pages: ``MOST_PAGES``), and only when the pointer did not change while it was rendered.
Two readers missing the same page at once render it once: the second waits for the first.

What is kept is the page's body. The headers are every response's own, set on the way out
(``pipelines.web.headers``: the same fixed policy for every response, no nonce), and a signed-in reader's
page is never kept: its header names the account and its sign-out form holds the session's CSRF token.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import HTMLResponse, Response

from projections.reading.snapshots import POINTER

MOST_PAGES = 2_000  # 3 pages + 32 boroughs x (cycles + 1): far more than there are; a guard, never reached
Identity = tuple[int, int, int]


@dataclass(frozen=True)
class Kept:
    body: bytes
    media_type: str | None

    def response(self) -> HTMLResponse:
        return HTMLResponse(self.body, media_type=self.media_type)


class PublicPages:
    """The public pages of one site, kept per published snapshot. Safe to use from any thread."""

    def __init__(self, projections: Path) -> None:
        self.pointer = projections / POINTER
        self._lock = threading.Lock()
        self._kept: dict[tuple[Identity, str], Kept] = {}
        self._rendering: dict[tuple[Identity, str], threading.Lock] = {}

    def identity(self) -> Identity | None:
        """The current snapshot's identity; None when nothing is published."""
        try:
            facts = os.stat(self.pointer)
        except FileNotFoundError:
            return None
        return facts.st_ino, facts.st_mtime_ns, facts.st_size

    def kept(self, page: str) -> Response | None:
        """The page at address ``page`` as rendered for the current snapshot, if it was."""
        identity = self.identity()
        if identity is None:
            return None
        with self._lock:
            found = self._kept.get((identity, page))
        return None if found is None else found.response()

    def rendered(self, page: str, render: Callable[[], Response]) -> Response:
        """The page at ``page``: the one kept for the current snapshot, else ``render()``'s (kept if a 200)."""
        identity = self.identity()
        if identity is None:
            return render()
        key = (identity, page)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                return found.response()
            one_at_a_time = self._rendering.setdefault(key, threading.Lock())
        with one_at_a_time:
            with self._lock:
                found = self._kept.get(key)
            if found is not None:
                return found.response()
            response = render()
            if response.status_code == 200 and self.identity() == identity:
                self._keep(key, Kept(bytes(response.body), response.media_type))
        with self._lock:
            self._rendering.pop(key, None)
        return response

    def _keep(self, key: tuple[Identity, str], page: Kept) -> None:
        """Keep ``page``, dropping every page of an older snapshot (and all of them past ``MOST_PAGES``)."""
        with self._lock:
            if len(self._kept) >= MOST_PAGES:
                self._kept.clear()
            for stale in [k for k in self._kept if k[0] != key[0]]:
                del self._kept[stale]
            self._kept[key] = page
