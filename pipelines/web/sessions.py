"""Server-side sessions: the cookie carries a random token, the accounts file only its SHA-256.

A stolen copy of the file therefore opens no session, and ending a session is deleting its row: the
cookie the browser still holds is then worth nothing (sign-out, a disabled account, a reset password).

A session ends ``IDLE`` after its last request, and ``ABSOLUTE`` after sign-in whatever happens. Each
session has its own CSRF token for the forms it shows (a synchronizer token). Before sign-in there is
no session: the sign-in form's token is an HMAC, under a key kept in the accounts file, of a random
pre-sign-in cookie, so a site that cannot read that cookie cannot make a valid form (``pre_sign_in_token``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.web.accounts import NO_PASSWORD, AccountBook, stamp
from pipelines.web.roles import Role

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often, not on every request
SESSION_COOKIE = "planning_session"
PRE_SIGN_IN_COOKIE = "planning_pre_sign_in"


@dataclass(frozen=True)
class Session:
    account: str
    role: Role
    must_change: bool
    csrf_token: str
    token_sha256: str
    has_password: bool = True  # False: the account signs in through the identity provider only


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def start(book: AccountBook, account: str) -> str:
    """A new session for the account; its token, for the cookie (only its digest is kept)."""
    token, now = new_token(), book.now()
    with book.connection() as db:
        db.execute("INSERT INTO sessions (token_sha256, account, csrf_token, started_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
                   (digest(token), account, new_token(), now, now))
    return token


def current(book: AccountBook, token: str | None) -> Session | None:
    """The live session of this cookie's token, of an active account, or None (an expired one is ended)."""
    if not token:
        return None
    now = book.clock()
    with book.connection() as db:
        row = db.execute(
            "SELECT s.token_sha256, s.account, a.role, a.must_change, s.csrf_token, s.started_at, s.last_seen_at, "
            "a.password_hash != ? "
            "FROM sessions AS s JOIN accounts AS a ON a.name = s.account "
            "WHERE s.token_sha256 = ? AND a.active = 1", (NO_PASSWORD, digest(token))).fetchone()
        if row is None:
            return None
        key, account, role, must_change, csrf, started, seen, has_password = row
        started_at, seen_at = _moment(started), _moment(seen)
        if now - seen_at >= IDLE or now - started_at >= ABSOLUTE:
            db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (key,))
            return None
        if now - seen_at >= TOUCH_EVERY:
            db.execute("UPDATE sessions SET last_seen_at = ? WHERE token_sha256 = ?", (stamp(now), key))
    return Session(account, role, bool(must_change), csrf, key, bool(has_password))


def end(book: AccountBook, token_sha256: str) -> None:
    with book.connection() as db:
        db.execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256,))


def end_others(book: AccountBook, account: str, keep_sha256: str | None = None) -> None:
    """End every session of the account but ``keep_sha256`` (after a password change)."""
    with book.connection() as db:
        db.execute("DELETE FROM sessions WHERE account = ? AND token_sha256 IS NOT ?", (account, keep_sha256))


def pre_sign_in_token(book: AccountBook, cookie: str) -> str:
    """The sign-in form's CSRF token for this pre-sign-in cookie."""
    return hmac.new(_site_key(book), cookie.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _site_key(book: AccountBook) -> bytes:
    with book.connection() as db:
        db.execute("INSERT OR IGNORE INTO site_keys (purpose, secret) VALUES ('pre-sign-in', ?)", (secrets.token_hex(32),))
        return bytes.fromhex(db.execute("SELECT secret FROM site_keys WHERE purpose = 'pre-sign-in'").fetchone()[0])


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
