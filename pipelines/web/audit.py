"""The site's audit log: who signed in and out, who failed to, who viewed which page and downloaded what,
and when. The data team reads it at ``/audit``.

Kept in ``$PLANNING_HOME/web/audit.sqlite`` (0600), apart from the accounts: it only grows, and it is
the record an authority keeps of who saw what, backed up and retained on its own terms. Rows are only
ever added. A failed sign-in records the name tried only when it is an account's: people type their
password into the name field, and that must not be kept.

What is recorded: every sign-in, sign-out, failed or refused (locked) sign-in and password change, by
the account pages; every successful GET of a page that is not public (a view), and every response that
is an attachment (a download, by anyone), by ``AuditTrail``, the middleware inside the guard. Assets
are not recorded.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events.home import PlanningHome
from pipelines.web.accounts import stamp, utc_now
from pipelines.web.audience import VIEWER_KEY

AUDIT_FILE = "audit.sqlite"
AUDIENCE_KEY = "planning.audience"  # the matched page's audience, set by the guard
MAX_PATH = 2_000
SHOWN = 500  # rows on the /audit page

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    at        TEXT NOT NULL,             -- when, UTC
    account   TEXT,                      -- who; NULL: nobody signed in
    action    TEXT NOT NULL,             -- signed_in, signed_out, sign_in_failed, sign_in_locked, password_changed, viewed, downloaded
    path      TEXT NOT NULL,             -- the page, with its query (what was filtered)
    detail    TEXT NOT NULL DEFAULT '',  -- the file downloaded; the account name tried
    address   TEXT NOT NULL DEFAULT ''   -- the client's address
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);
CREATE INDEX IF NOT EXISTS audit_by_account ON audit (account, at);
"""


@dataclass(frozen=True)
class Entry:
    at: str
    account: str | None
    action: str
    path: str
    detail: str
    address: str


class AuditLog:
    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        with self._connection() as db:
            db.executescript(SCHEMA)
        self.path.chmod(0o600)

    @classmethod
    def of(cls, home: PlanningHome, **options: Callable[[], datetime]) -> AuditLog:
        return cls(home.root / "web" / AUDIT_FILE, **options)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """The log's one connection, opened at first use and kept, used by one thread at a time.

        Opening a connection and setting WAL for each record cost a signed-in page ~20 ms; a kept one costs
        the insert and its commit. The commit still waits for the disk (``synchronous`` stays FULL): a record
        is on disk before the page it records is sent."""
        with self._lock:
            if self._db is None:
                self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
            yield self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def record(self, account: str | None, action: str, path: str, detail: str = "", address: str = "") -> None:
        with self._connection() as db:
            db.execute("INSERT INTO audit (at, account, action, path, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
                       (stamp(self.clock()), account, action, path[:MAX_PATH], detail[:MAX_PATH], address))

    def latest(self, account: str | None = None, limit: int = SHOWN) -> list[Entry]:
        """The newest first; only this account's when given."""
        where, values = ("WHERE account = ?", (account,)) if account else ("", ())
        with self._connection() as db:
            rows = db.execute(f"SELECT at, account, action, path, detail, address FROM audit {where} "
                              "ORDER BY at DESC, rowid DESC LIMIT ?", (*values, limit)).fetchall()
        return [Entry(*row) for row in rows]


def path_of(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")


def address_of(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def attachment(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The file name of an attachment response ("" when it names none), or None when it is not one."""
    for name, value in headers:
        if name.lower() == b"content-disposition":
            text = value.decode("latin-1")
            if text.strip().lower().startswith("attachment"):
                _, _, rest = text.partition("filename=")
                return rest.split(";", 1)[0].strip().strip('"')
    return None


class AuditTrail:
    """Records views of non-public pages and downloads whose answer is a 200, before the answer is sent: a
    reader never has a page the log does not hold yet, and the log's order is the order of the answers."""

    def __init__(self, app: ASGIApp, *, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or AUDIENCE_KEY not in scope:
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                viewer = scope.get(VIEWER_KEY)
                download = attachment(message.get("headers", []))
                noted = None
                if download is not None:
                    noted = ("downloaded", download)
                elif scope["method"] == "GET" and viewer is not None and scope[AUDIENCE_KEY] != "public":
                    noted = ("viewed", "")
                if noted is not None:
                    await run_in_threadpool(self.log.record, viewer.name if viewer else None, noted[0], path_of(scope),
                                            noted[1], address_of(scope))
            await send(message)

        await self.app(scope, receive, sending)
