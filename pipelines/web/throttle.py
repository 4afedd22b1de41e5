"""Throttling sign-in: an account locks after repeated failures, and so does a client address.

Guessing a password then takes years rather than hours: ``ACCOUNT_LIMIT`` wrong passwords for one name
lock that name for ``LOCKED_FOR``, and ``ADDRESS_LIMIT`` failures from one client address (over any
names) lock that address as long; both counted in the accounts file (``sign_in_failures``). Failures
count within ``WINDOW`` of the first; a lock ends by itself when its time is up, and `planning users
reset` ends an account's at once. A right password resets
the account's count, not the address's (one good account must not buy an address more guesses).

Names are counted whether or not an account has them, and a locked name is told the same words as a
locked account, so the lock says nothing about who has an account.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pipelines.web.accounts import AccountBook, stamp

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCKED_FOR = timedelta(minutes=15)


def _keys(name: str, address: str) -> dict[str, int]:
    return {f"account:{name}": ACCOUNT_LIMIT, f"address:{address}": ADDRESS_LIMIT}


def locked_for(book: AccountBook, name: str, address: str) -> int | None:
    """Whole seconds until sign-in may be tried again for this name from this address, or None."""
    now = book.clock()
    with book.connection() as db:
        untils = [row[0] for row in db.execute(
            "SELECT locked_until FROM sign_in_failures WHERE key IN (?, ?) AND locked_until IS NOT NULL",
            tuple(_keys(name, address)))]
    left = [(_moment(until) - now).total_seconds() for until in untils]
    waiting = [seconds for seconds in left if seconds > 0]
    return math.ceil(max(waiting)) if waiting else None


def failed(book: AccountBook, name: str, address: str) -> None:
    """Count a failed sign-in against the name and the address; lock whichever reaches its limit."""
    now = book.clock()
    with book.connection() as db:
        db.execute("BEGIN IMMEDIATE")
        for key, limit in _keys(name, address).items():
            row = db.execute("SELECT failures, first_at FROM sign_in_failures WHERE key = ?", (key,)).fetchone()
            failures = 1 if row is None or now - _moment(row[1]) >= WINDOW else row[0] + 1
            first_at = stamp(now) if failures == 1 else row[1]
            locked_until = stamp(now + LOCKED_FOR) if failures >= limit else None
            db.execute("INSERT OR REPLACE INTO sign_in_failures (key, failures, first_at, locked_until) VALUES (?, ?, ?, ?)",
                       (key, failures, first_at, locked_until))
        db.execute("COMMIT")


def succeeded(book: AccountBook, name: str) -> None:
    """A right password: the account's count starts again (`planning users reset` clears it too)."""
    with book.connection() as db:
        db.execute("DELETE FROM sign_in_failures WHERE key = ?", (f"account:{name}",))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
