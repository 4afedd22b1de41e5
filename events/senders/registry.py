"""The registry of senders: who may deliver events, which event types and boroughs each may send.

It lives with the store (``senders.sqlite`` in the store's directory) because it decides
what the store accepts, and it is its own SQLite file so that the data team can add,
rotate or revoke a sender while the stream worker or the collector holds the store's
writer lock; they read it afresh as they go.

A sender authenticates with a secret the registry issues (``add``, ``rotate``): 256 random
bits, shown once to the data team and kept here only as its SHA-256. A slow password hash
would add nothing to a secret nobody chose and nobody can guess, and would cost every
request it authenticates. The same secret is the sender's SCRAM password on Kafka, where
the broker keeps its own salted keys of it.

A revoked sender stays in the registry: the store's events still name it, and a request
with its secret is told it is revoked (rather than that the secret is unknown). A name is
never given to a second sender, so the store's record of who sent an event keeps its
meaning. ``rotate`` gives a new secret; the old one stops working at once.

The data team at the command line is an operator (``operator(user)``), not a registered
sender: ``planning ingest`` records ``operator:<user>`` as the sender of what it stores,
with every grant, unless ``--as NAME`` applies a registered sender's.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from events.contract import vocabulary
from events.contract.models import EVENT_TYPES
from events.home import PlanningHome

OPERATOR_PREFIX = "operator:"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # no dots: a name is a Kafka principal and topic segment
RESERVED_NAMES = frozenset({"admin", "worker", "collector", "controller", "unknown", "operator"})  # service principals
SECRET_PREFIX = "pps_"
REGISTRY_FILE = "senders.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS senders (
    name          TEXT PRIMARY KEY,
    event_types   TEXT NOT NULL,          -- JSON array of the event types it may send
    boroughs      TEXT,                   -- JSON array of borough codes; NULL: every borough
    secret_sha256 TEXT NOT NULL UNIQUE,   -- of its current secret; the secret itself is never kept
    active        INTEGER NOT NULL,       -- 0 once revoked
    created_at    TEXT NOT NULL,
    rotated_at    TEXT,
    revoked_at    TEXT
);
"""


class BadGrant(ValueError):
    """A sender's name, event types or boroughs are not valid; the message names the field."""


class SenderExists(ValueError):
    pass


class UnknownSender(KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Sender:
    name: str
    event_types: frozenset[str]
    boroughs: frozenset[str] | None  # None: every borough
    active: bool
    created_at: str = ""
    rotated_at: str | None = None
    revoked_at: str | None = None

    @property
    def is_operator(self) -> bool:
        return is_operator(self.name)

    def describe_boroughs(self) -> str:
        return "all" if self.boroughs is None else ",".join(sorted(self.boroughs))


def is_operator(name: str | None) -> bool:
    return name is not None and name.startswith(OPERATOR_PREFIX)


def operator(user: str | None = None) -> Sender:
    """The data team at the command line: every event type, every borough, and any retraction."""
    return Sender(f"{OPERATOR_PREFIX}{user or _login()}", frozenset(EVENT_TYPES), None, True)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's)
        return "unknown"


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def checked_grant(name: str, event_types: Iterable[str], boroughs: Iterable[str] | None) -> tuple[frozenset[str], frozenset[str] | None]:
    """The grant as the registry keeps it, or :class:`BadGrant` naming what is wrong."""
    if not NAME_PATTERN.match(name):
        raise BadGrant(f"name: {name!r} is not a sender name: use 2 to 63 lower-case letters, digits and hyphens, "
                       "starting with a letter or digit (e.g. cdrp-harrow)")
    if name in RESERVED_NAMES:
        raise BadGrant(f"name: {name!r} is reserved for the pipeline's own services; choose another name")
    types = frozenset(t.strip() for t in event_types if t.strip())
    if not types:
        raise BadGrant("event types: give at least one event type")
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise BadGrant(f"event types: {', '.join(unknown)} is not an event type (one of: {', '.join(sorted(EVENT_TYPES))})")
    if boroughs is None:
        return types, None
    codes = frozenset(b.strip() for b in boroughs if b.strip())
    if not codes:
        raise BadGrant("boroughs: give at least one borough code, or all")
    wrong = sorted(codes - set(vocabulary.BOROUGHS))
    if wrong:
        raise BadGrant(f"boroughs: {', '.join(wrong)} is not a London borough code (E09000002 to E09000033), or use all")
    return types, codes


class SenderRegistry:
    def __init__(self, store_root: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        root = Path(store_root)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / REGISTRY_FILE
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(SCHEMA)
        self.path.chmod(0o600)

    @classmethod
    def of(cls, home: PlanningHome, **options: Callable[[], datetime]) -> SenderRegistry:
        return cls(home.store, **options)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SenderRegistry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _now(self) -> str:
        return self._clock().astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

    # --- changes ---------------------------------------------------------------------------------

    def add(self, name: str, event_types: Iterable[str], boroughs: Iterable[str] | None) -> str:
        """Register a sender; its secret, which is not kept and cannot be shown again."""
        types, codes = checked_grant(name, event_types, boroughs)
        existing = self.get(name)
        if existing is not None:
            state = "active" if existing.active else "revoked"
            raise SenderExists(f"name: sender {name} exists already ({state}); a name is never reused, so that "
                               "the store's record of who sent what keeps its meaning: choose another name"
                               + (", or `planning senders rotate` it for a new secret" if existing.active else ""))
        secret = new_secret()
        self._db.execute(
            "INSERT INTO senders (name, event_types, boroughs, secret_sha256, active, created_at) VALUES (?, ?, ?, ?, 1, ?)",
            (name, json.dumps(sorted(types)), None if codes is None else json.dumps(sorted(codes)), secret_digest(secret), self._now()),
        )
        return secret

    def rotate(self, name: str) -> str:
        """A new secret for an active sender; the old one stops working at once."""
        sender = self._existing(name)
        if not sender.active:
            raise UnknownSender(f"sender {name} is revoked; a revoked sender stays revoked: add a new sender")
        secret = new_secret()
        self._db.execute("UPDATE senders SET secret_sha256 = ?, rotated_at = ? WHERE name = ?",
                         (secret_digest(secret), self._now(), name))
        return secret

    def revoke(self, name: str) -> Sender:
        sender = self._existing(name)
        if sender.active:
            self._db.execute("UPDATE senders SET active = 0, revoked_at = ? WHERE name = ?", (self._now(), name))
        return self._existing(name)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, name: str) -> Sender | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM senders WHERE name = ?", (name,)).fetchone()
        return None if row is None else _sender(row)

    def all(self) -> list[Sender]:
        return [_sender(row) for row in self._db.execute(f"SELECT {_COLUMNS} FROM senders ORDER BY name")]

    def identify(self, secret: str) -> Sender | None:
        """The sender whose current secret this is (active or revoked), or None."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM senders WHERE secret_sha256 = ?", (secret_digest(secret),)).fetchone()
        return None if row is None else _sender(row)

    def _existing(self, name: str) -> Sender:
        sender = self.get(name)
        if sender is None:
            raise UnknownSender(f"sender {name} is not registered (`planning senders list` shows who is)")
        return sender


_COLUMNS = "name, event_types, boroughs, active, created_at, rotated_at, revoked_at"


def _sender(row: tuple) -> Sender:
    name, types, boroughs, active, created, rotated, revoked = row
    return Sender(name, frozenset(json.loads(types)), None if boroughs is None else frozenset(json.loads(boroughs)),
                  bool(active), created, rotated, revoked)
