"""The site's accounts: who may sign in, with which role, and their password's Argon2id hash.

Kept in ``$PLANNING_HOME/web/accounts.sqlite`` (0600), apart from the event store: an account is not
evidence, and the data team must be able to add, disable or reset one while `planning serve` runs
(each request reads the file afresh). The site's sessions live in the same file (``sessions.py``), so
disabling an account ends its sessions in the same transaction.

A password is never chosen on the command line: ``add`` and ``reset`` generate a one-time password,
shown once, which must be changed at the first sign-in. Only its Argon2id hash is kept (argon2-cffi's
defaults, RFC 9106's second recommended set). A disabled account stays, as a revoked sender does, and
its name is never given to anyone else: the audit log's record of who saw what keeps its meaning.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from events.home import PlanningHome
from pipelines.web.roles import ROLES, Role

ACCOUNTS_FILE = "accounts.sqlite"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 12  # NCSC: length over complexity
MAX_PASSWORD = 1_024  # a longer one would only cost the hash time
ONE_TIME_BYTES = 15  # 120 random bits, 20 characters
NO_PASSWORD = ""  # the hash of an account that signs in through the identity provider only (identities.py)

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('panel', 'data_team')),
    password_hash  TEXT NOT NULL,          -- Argon2id, in its own encoding (parameters and salt included);
                                           -- '' once linked to the identity provider (no password at all)
    must_change    INTEGER NOT NULL,       -- 1 while the password is a one-time one
    active         INTEGER NOT NULL,       -- 0 once disabled
    created_at     TEXT NOT NULL,
    password_set_at TEXT NOT NULL,
    disabled_at    TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256   TEXT PRIMARY KEY,       -- of the cookie's token; the token itself is never kept
    account        TEXT NOT NULL REFERENCES accounts (name),
    csrf_token     TEXT NOT NULL,          -- the synchronizer token of this session's forms
    started_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_account ON sessions (account);
CREATE TABLE IF NOT EXISTS sign_in_failures (  -- pipelines/web/throttle.py
    key            TEXT PRIMARY KEY,       -- 'account:<name>' or 'address:<client address>'
    failures       INTEGER NOT NULL,       -- since first_at
    first_at       TEXT NOT NULL,
    locked_until   TEXT                    -- NULL: not locked
);
CREATE TABLE IF NOT EXISTS identities (  -- pipelines/web/identities.py: who the identity provider may sign in
    issuer         TEXT NOT NULL,          -- the provider's issuer URL, as its ID tokens say it
    subject        TEXT NOT NULL,          -- its stable identifier of the person ('sub'), never an e-mail
    account        TEXT NOT NULL REFERENCES accounts (name),
    linked_at      TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX IF NOT EXISTS identities_by_account ON identities (account, issuer);
CREATE TABLE IF NOT EXISTS sign_in_flows (  -- pipelines/web/flows.py: a provider sign-in under way
    token_sha256   TEXT PRIMARY KEY,       -- of the flow cookie's token
    state          TEXT NOT NULL,          -- JSON: the OpenID Connect state, nonce and PKCE verifier; where to go
    started_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS site_keys (
    purpose        TEXT PRIMARY KEY,       -- 'pre-sign-in': signs the sign-in form's CSRF token
    secret         TEXT NOT NULL
);
"""


class AccountRefused(ValueError):
    """A name, role or password that cannot be accepted; the message names the field and what to do."""


class UnknownAccount(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    must_change: bool
    active: bool
    created_at: str
    password_set_at: str
    disabled_at: str | None
    has_password: bool = True  # False once linked to the identity provider, until a reset


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def one_time_password() -> str:
    return secrets.token_urlsafe(ONE_TIME_BYTES)


def checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountRefused(f"new password: use at least {MIN_PASSWORD} characters (three random words are easy to remember)")
    if len(password) > MAX_PASSWORD:
        raise AccountRefused(f"new password: use at most {MAX_PASSWORD:,} characters")
    return password


def accounts_path(home: PlanningHome) -> Path:
    return home.root / "web" / ACCOUNTS_FILE


class AccountBook:
    """The accounts file. Each call opens its own connection, so one book serves every thread of the server."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utc_now,
                 hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        with self.connection() as db:
            db.executescript(SCHEMA)
        self.path.chmod(0o600)

    @classmethod
    def of(cls, home: PlanningHome, **options: object) -> AccountBook:
        return cls(accounts_path(home), **options)  # type: ignore[arg-type]

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA foreign_keys = ON")
            yield db
        finally:
            db.close()

    def now(self) -> str:
        return stamp(self.clock())

    # --- the data team's changes -----------------------------------------------------------------

    def add(self, name: str, role: str) -> str:
        """A new account with a one-time password, returned (it is not kept and cannot be shown again)."""
        if not NAME_PATTERN.match(name):
            raise AccountRefused(f"name: {name!r} is not an account name: use 2 to 63 lower-case letters, digits, "
                                 "dots, hyphens and underscores, starting with a letter or digit (e.g. j.smith)")
        if role not in ROLES:
            raise AccountRefused(f"role: {role!r} is not a role: use one of {', '.join(ROLES)}")
        existing = self.get(name)
        if existing is not None:
            state = "active" if existing.active else "disabled"
            raise AccountRefused(f"name: account {name} exists already ({state}); a name is never reused, so that the "
                                 "audit log's record of who saw what keeps its meaning: choose another name"
                                 + (", or `planning users reset` it for a new one-time password" if existing.active else ""))
        password, now = one_time_password(), self.now()
        with self.connection() as db:
            db.execute("INSERT INTO accounts (name, role, password_hash, must_change, active, created_at, password_set_at) "
                       "VALUES (?, ?, ?, 1, 1, ?, ?)", (name, role, self.hasher.hash(password), now, now))
        return password

    def reset(self, name: str) -> str:
        """A new one-time password for an active account; its sessions end, the old password stops working,
        and a lock after failed sign-ins is lifted."""
        if not self.existing(name).active:
            raise AccountRefused(f"account {name} is disabled; a disabled account stays disabled: add a new account")
        password = one_time_password()
        with self.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE accounts SET password_hash = ?, must_change = 1, password_set_at = ? WHERE name = ?",
                       (self.hasher.hash(password), self.now(), name))
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))
            db.execute("DELETE FROM sign_in_failures WHERE key = ?", (f"account:{name}",))
            db.execute("COMMIT")
        return password

    def disable(self, name: str) -> Account:
        """Stop an account: it cannot sign in, and its sessions end now."""
        account = self.existing(name)
        with self.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            if account.active:
                db.execute("UPDATE accounts SET active = 0, disabled_at = ? WHERE name = ?", (self.now(), name))
            db.execute("DELETE FROM sessions WHERE account = ?", (name,))
            db.execute("COMMIT")
        return self.existing(name)

    # --- the account holder's ----------------------------------------------------------------------

    def signs_in(self, name: str, password: str) -> Account | None:
        """The active account with this name and password, or None (the same None whatever was wrong)."""
        with self.connection() as db:
            row = db.execute("SELECT password_hash FROM accounts WHERE name = ? AND active = 1", (name,)).fetchone()
        if row is None or row[0] == NO_PASSWORD or len(password) > MAX_PASSWORD:
            self._spend_like_a_check(password)
            return None
        try:
            self.hasher.verify(row[0], password)
        except (VerificationError, InvalidHashError):
            return None
        return self.get(name)

    def change_password(self, name: str, current: str, new: str, confirmed: str) -> None:
        """Replace the password (one-time or not); the account's other sessions are the caller's to end."""
        if self.signs_in(name, current) is None:
            raise AccountRefused("current password: it is not your current password")
        if new != confirmed:
            raise AccountRefused("confirm new password: it is not the same as the new password")
        checked_password(new)
        if new == current:
            raise AccountRefused("new password: choose a password other than your current one")
        with self.connection() as db:
            db.execute("UPDATE accounts SET password_hash = ?, must_change = 0, password_set_at = ? WHERE name = ?",
                       (self.hasher.hash(new), self.now(), name))

    def _spend_like_a_check(self, password: str) -> None:
        """Hash anyway, so that an unknown name takes as long to refuse as a wrong password."""
        self.hasher.hash(password[:MAX_PASSWORD])

    # --- reading ---------------------------------------------------------------------------------

    def get(self, name: str) -> Account | None:
        with self.connection() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM accounts WHERE name = ?", (name,)).fetchone()
        return None if row is None else _account(row)

    def all(self) -> list[Account]:
        with self.connection() as db:
            return [_account(row) for row in db.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY name")]

    def existing(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise UnknownAccount(f"account {name} does not exist (`planning users list` shows who does)")
        return account


_COLUMNS = f"name, role, must_change, active, created_at, password_set_at, disabled_at, password_hash != '{NO_PASSWORD}'"


def _account(row: tuple) -> Account:
    name, role, must_change, active, created, password_set, disabled, has_password = row
    return Account(name, role, bool(must_change), bool(active), created, password_set, disabled, bool(has_password))
